"""Max-over-token-combination cosine similarity maps between two videos' frame features.

A video's features are an array ``(frames, tokens, dim)``: per frame the CLS token and the Regional Token(s),
or the features of several crops. ``similarity_map(query, reference)[i, j]`` is the highest cosine similarity
between any token of query frame ``i`` and any token of reference frame ``j``: a ``(Q, R)`` float32 map of the
same kind and device as the inputs (numpy, torch CPU / CUDA, CuPy). The compiled kernels (``vcl_fast._C``:
CPU SIMD + OpenMP, CUDA) never materialise the ``(Q*T) x (R*T2)`` token product;
``similarity_map_reference`` (numpy) and ``similarity_map_torch_reference`` are the plain definitions they
are tested against, and the op falls back to them (with one warning) when the compiled core is missing.
``mode="dual_softmax"`` (or ``dual_softmax`` on any map) re-weights a map the TransVCL way.

``precision="int16"`` (CPU only) trades exactness for speed: every token vector is normalised (in float64)
and quantised to int16 with scale 32767, the dot products are exact int32 sums (AVX2 ``VPMADDWD``, about
1.5x the float32 kernel's speed), the map is ``float32(max dot) * float32(1 / 32767**2)``.
``similarity_map_int16_reference`` is its numpy definition (bit-identical to the kernel) and
``int16_error_bound(dim)`` its worst-case absolute error against the exact cosine map.
"""
from __future__ import annotations

import itertools
import numbers
from typing import Any, Sequence

import numpy as np

from vcl_fast._ext import extension, warn_fallback
from vcl_fast.ops import _arrays

ACCEPTED_DTYPES = ("float32", "float16")
MODES = ("max", "dual_softmax")
PRECISIONS = ("fp32", "int16")
INT16_SCALE = 32767  # unit vectors -> int16: round(32767 * x / |x|)
_PAIR_COLUMNS = 6  # query_row, query_frames, reference_row, reference_frames, out_offset, owns_query (CUDA table)
_KIND_NAMES = {
    _arrays.NUMPY: "numpy array",
    _arrays.TORCH_CPU: "torch CPU tensor",
    _arrays.TORCH_CUDA: "torch CUDA tensor",
    _arrays.CUPY: "CuPy array",
    _arrays.CUDA_INTERFACE: "__cuda_array_interface__ array",
}


def similarity_map(query: Any, reference: Any, *, normalized: bool = False, precision: str = "fp32",
                   mode: str = "max", temperature: float = 0.1) -> Any:
    """The ``(Q, R)`` float32 map ``S[i, j] = max over a, b of cos(query[i, a], reference[j, b])``.

    query: ``(Q, T, D)``, reference: ``(R, T2, D)``, float32 or float16, both numpy arrays, torch tensors (CPU
    or one CUDA device) or CuPy arrays, of one dtype. ``normalized=False`` L2-normalises every token vector (a
    zero vector has similarity 0 with everything); ``normalized=True`` trusts them to have unit length.
    ``precision="fp32"`` (default) computes in float32 (within ~1e-5 of ``similarity_map_reference``);
    ``precision="int16"`` runs the faster quantised CPU kernel: it always normalises, equals
    ``similarity_map_int16_reference`` exactly and is within ``int16_error_bound(D)`` (6.0e-4 at D = 384) of
    the exact cosine map. On CUDA inputs, and without the compiled core, ``"int16"`` computes as ``"fp32"``.
    ``mode="dual_softmax"`` returns ``dual_softmax(S, temperature=temperature)`` instead of S.
    Returns the map as the inputs' kind on their device (no autograd). TypeError / ValueError on bad input,
    including NaN or infinite features; an empty query or reference gives an empty map.
    """
    return _compute([query], [reference], ["query"], ["reference"], normalized, precision, mode, temperature)[0]


def similarity_maps(query: Any, references: Sequence[Any], *, normalized: bool = False, precision: str = "fp32",
                    mode: str = "max", temperature: float = 0.1) -> list[Any]:
    """One map per reference, all computed in one kernel call into one buffer (the maps are views of it).

    query: one ``(Q, T, D)`` array matched against every ``references[i]`` (``(R_i, T2, D)``), or a list/tuple
    of queries ``(Q_i, T, D)`` as long as ``references`` for the pairwise maps ``query[i]`` vs ``references[i]``.
    Lengths may differ freely (no padding). Inputs and options as in ``similarity_map``; returns a list of
    ``(Q_i, R_i)`` float32 maps.
    """
    if not isinstance(references, (list, tuple)):
        raise TypeError(
            f"references must be a list or tuple of (frames, tokens, dim) arrays, got {type(references).__name__}"
        )
    reference_names = [f"references[{i}]" for i in range(len(references))]
    if isinstance(query, (list, tuple)):
        if len(query) != len(references):
            raise ValueError(
                f"query is a list of {len(query)} arrays but references holds {len(references)}; "
                "pairwise maps need exactly one query per reference"
            )
        queries, query_names = list(query), [f"query[{i}]" for i in range(len(query))]
    else:
        queries, query_names = [query] * len(references), ["query"] * len(references)
    return _compute(queries, list(references), query_names, reference_names, normalized, precision, mode,
                    temperature)


def dual_softmax(similarity: Any, *, temperature: float = 0.1) -> Any:
    """TransVCL's dual-softmax confidence of a ``(Q, R)`` map: ``softmax(S / t, over query frames) *
    softmax(S / t, over reference frames)``, float32, same kind and device as ``similarity`` (numpy, torch, CuPy).

    TransVCL applies it to feature dot products scaled by 1/dim with t = 0.1; here it re-weights any map,
    e.g. the cosine maps of ``similarity_map``, so a cell scores high only when it is a clear best match both
    in its row and in its column.
    """
    _check_temperature(temperature)
    kind = _arrays.array_kind(similarity, "similarity")
    if len(similarity.shape) != 2:
        raise ValueError(f"similarity must be a (Q, R) map, got shape {tuple(similarity.shape)}")
    if kind in (_arrays.TORCH_CPU, _arrays.TORCH_CUDA):
        scaled = similarity.float() / temperature
        return scaled.softmax(dim=0) * scaled.softmax(dim=1)
    xp = _arrays.array_module(similarity, kind)
    scaled = similarity.astype(np.float32) / np.float32(temperature)
    return _softmax(xp, scaled, axis=0) * _softmax(xp, scaled, axis=1)


def _check_temperature(temperature: float) -> None:
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) or not (
            np.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")


def _softmax(xp: Any, x: Any, axis: int) -> Any:
    if x.size == 0:
        return x
    e = xp.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def similarity_map_reference(query: np.ndarray, reference: np.ndarray, *, normalized: bool = False) -> np.ndarray:
    """Plain numpy definition: normalise, full ``(Q*T, R*T2)`` token product, max over each frame pair's tokens.

    Computes in float32 (float16 inputs are upcast) and returns a ``(Q, R)`` float32 array.
    """
    q = np.asarray(query, dtype=np.float32)
    r = np.asarray(reference, dtype=np.float32)
    if not normalized:
        q, r = _unit_vectors(q), _unit_vectors(r)
    (n_q, t_q, dim), (n_r, t_r, _) = q.shape, r.shape
    product = q.reshape(n_q * t_q, dim) @ r.reshape(n_r * t_r, dim).T
    return product.reshape(n_q, t_q, n_r, t_r).max(axis=(1, 3))


def similarity_map_torch_reference(query: Any, reference: Any, *, normalized: bool = False) -> Any:
    """Plain torch definition (any device): ``matmul`` of the normalised tokens, ``amax`` over ``(Q, T, R, T2)``.

    Computes in float32 and returns a ``(Q, R)`` float32 tensor on the inputs' device.
    """
    import torch.nn.functional as F

    q, r = query.float(), reference.float()
    if not normalized:
        q, r = F.normalize(q, dim=-1), F.normalize(r, dim=-1)
    (n_q, t_q, dim), (n_r, t_r, _) = q.shape, r.shape
    product = q.reshape(n_q * t_q, dim) @ r.reshape(n_r * t_r, dim).T
    return product.reshape(n_q, t_q, n_r, t_r).amax(dim=(1, 3))


def similarity_map_int16_reference(query: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Plain numpy definition of ``similarity_map(..., precision="int16")``, equal to the kernel bit for bit.

    Every token vector is quantised by ``quantize_int16``; the map is ``float32(max over a, b of the integer dot
    product) * float32(1 / 32767**2)``. Returns a ``(Q, R)`` float32 array.
    """
    q, r = quantize_int16(query).astype(np.float64), quantize_int16(reference).astype(np.float64)
    (n_q, t_q, dim), (n_r, t_r, _) = q.shape, r.shape
    if dim >= 2**23:
        raise ValueError(f"dim {dim} too large for the exact float64 product (< 2**23)")
    # exact: every product (< 2**30) and partial sum (< 2**53) is an integer float64 holds exactly
    product = q.reshape(n_q * t_q, dim) @ r.reshape(n_r * t_r, dim).T
    best = product.reshape(n_q, t_q, n_r, t_r).max(axis=(1, 3))
    return best.astype(np.float32) * np.float32(1.0 / (INT16_SCALE * INT16_SCALE))


def quantize_int16(x: np.ndarray) -> np.ndarray:
    """``round_half_even(32767 * x / |x|)`` per token vector of ``x`` (``(..., D)``, any float dtype) as int16.

    Computed in float64 exactly as the kernel does (csrc/cpu/similarity_map_kernel.h, ``quantize_int16``):
    ``|x|^2`` summed in 8 interleaved lanes (``x[k]^2`` into lane ``k % 8``, in ``k`` order), the lanes added as
    ``((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7))``; a zero vector gives zeros.
    """
    x64 = np.asarray(x, dtype=np.float64)
    dim = x64.shape[-1]
    blocks = -(-dim // 8)
    squares = np.zeros(x64.shape[:-1] + (blocks * 8,))
    squares[..., :dim] = x64 * x64
    lanes = np.cumsum(squares.reshape(x64.shape[:-1] + (blocks, 8)), axis=-2)[..., -1, :]  # cumsum: in k order
    norm2 = ((lanes[..., 0] + lanes[..., 4]) + (lanes[..., 2] + lanes[..., 6])) + (
        (lanes[..., 1] + lanes[..., 5]) + (lanes[..., 3] + lanes[..., 7]))
    scale = np.divide(INT16_SCALE, np.sqrt(norm2), out=np.zeros_like(norm2), where=norm2 > 0)
    return np.rint(x64 * scale[..., None]).astype(np.int16)


def int16_error_bound(dim: int) -> float:
    """Worst-case ``|similarity_map(..., precision="int16") - S|`` for feature dim ``dim``, S the exact cosine map.

    With u = x / |x| and v = y / |y| (computed in float64, error ~1e-16) and their quantised vectors
    ``q = 32767 u + e``, ``r = 32767 v + f`` (``|e_k|, |f_k| <= 1/2``, so ``|e|, |f| <= sqrt(D) / 2``):
    ``q . r / 32767^2 = u . v + (u . f + v . e) / 32767 + e . f / 32767^2``, and by Cauchy-Schwarz the last two
    terms are at most ``sqrt(D) / 32767`` and ``D / (4 * 32767^2)``. The int32 sums are exact
    (``|q . r| <= (32767 + sqrt(D) / 2)^2 < 2^31`` for D < 7e8); converting the int32 maximum to float32 and
    multiplying by ``float32(1 / 32767^2)`` adds three roundings of relative 2^-24 on a value below 1.001, under
    2^-22. The max over token pairs does not increase the error (max is 1-Lipschitz). So:
    ``sqrt(D) / 32767 + D / (4 * 32767^2) + 2^-22`` (4.9e-4 at D = 256, 6.0e-4 at D = 384; measured on random
    600 x 600 maps: max 6e-5, mean 1e-5).
    """
    return float(np.sqrt(dim) / INT16_SCALE + dim / (4.0 * INT16_SCALE**2) + 2.0**-22)


def _unit_vectors(x: np.ndarray) -> np.ndarray:
    norm = np.sqrt(np.square(x).sum(axis=-1, keepdims=True))
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)


def _check_features(x: Any, name: str) -> tuple[str, str, str]:
    """(kind, dtype name, where it lives) of one feature array after checking its dtype and shape."""
    kind = _arrays.array_kind(x, name)
    dtype = _arrays.dtype_name(x)
    if dtype not in ACCEPTED_DTYPES:
        raise TypeError(f"{name} has dtype {dtype}; similarity maps accept float32 or float16 features")
    shape = tuple(x.shape)
    if len(shape) != 3:
        raise ValueError(
            f"{name} must have shape (frames, tokens, dim), got shape {shape}; "
            "for one feature vector per frame use x[:, None, :]"
        )
    if shape[1] == 0 or shape[2] == 0:
        raise ValueError(f"{name} has shape {shape}: every frame needs at least one token and dim must be >= 1")
    if kind in (_arrays.TORCH_CUDA, _arrays.CUPY):
        return kind, dtype, f"a {_KIND_NAMES[kind]} on cuda:{_arrays.device_index(x, kind)}"
    return kind, dtype, f"a {_KIND_NAMES[kind]}"


def _check_all(queries: list[Any], references: list[Any], query_names: list[str], reference_names: list[str]) -> str:
    """Checks every array and that they agree (kind, device, dtype, dim, tokens); returns their kind."""
    arrays, names = queries + references, query_names + reference_names
    described = [_check_features(x, name) for x, name in zip(arrays, names)]
    (kind, dtype, where), first, first_name = described[0], arrays[0], names[0]
    for x, name, (_, x_dtype, x_where) in zip(arrays, names, described):
        if x_where != where:
            raise TypeError(
                f"{name} is {x_where} but {first_name} is {where}; "
                "pass every feature array as the same kind of array on the same device"
            )
        if x_dtype != dtype:
            raise TypeError(
                f"{name} is {x_dtype} but {first_name} is {dtype}; pass every feature array in one dtype "
                "(float32 or float16)"
            )
        if x.shape[2] != first.shape[2]:
            raise ValueError(
                f"{name} has dim {x.shape[2]} but {first_name} has dim {first.shape[2]}; "
                "query and reference features must have the same dim"
            )
    for group, group_names in ((queries, query_names), (references, reference_names)):
        for x, name in zip(group, group_names):
            if x.shape[1] != group[0].shape[1]:
                raise ValueError(
                    f"{name} has {x.shape[1]} tokens per frame but {group_names[0]} has {group[0].shape[1]}; "
                    "the queries (and the references) of one call must have the same number of tokens"
                )
    return kind


def _compute(queries: list[Any], references: list[Any], query_names: list[str], reference_names: list[str],
             normalized: bool, precision: str, mode: str, temperature: float) -> list[Any]:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    _check_temperature(temperature)
    maps = _maps(queries, references, query_names, reference_names, normalized, precision)
    if mode == "dual_softmax":
        for m in maps:
            m[...] = dual_softmax(m, temperature=temperature)  # in place: batched maps stay views of one buffer
    return maps


def _maps(queries: list[Any], references: list[Any], query_names: list[str], reference_names: list[str],
          normalized: bool, precision: str) -> list[Any]:
    """Maps of the pairs (queries[p], references[p]); queries[p] is queries[p - 1] for a shared query."""
    if not references:
        return []
    kind = _check_all(queries, references, query_names, reference_names)
    ext = extension()
    gpu = _arrays.is_gpu(kind)
    if ext is None or (gpu and not ext.cuda_compiled()):
        warn_fallback("similarity_map", "compiled core missing" if ext is None else "CUDA kernels not compiled in")
        return _maps_reference(queries, references, query_names, reference_names, kind, normalized)
    if gpu:
        return _maps_cuda(ext, queries, references, query_names, reference_names, kind, normalized)
    return _maps_cpu(ext, queries, references, query_names, reference_names, kind, normalized, precision)


def _layout(queries: list[Any], references: list[Any]) -> tuple[list[int], int]:
    """Offsets of each pair's map in the shared output buffer (one more at the end), and its total size."""
    offsets = list(itertools.accumulate((int(q.shape[0]) * int(r.shape[0]) for q, r in zip(queries, references)),
                                        initial=0))
    return offsets, offsets[-1]


def _views(flat: Any, queries: list[Any], references: list[Any], offsets: list[int]) -> list[Any]:
    return [flat[o:o + q.shape[0] * r.shape[0]].reshape(q.shape[0], r.shape[0])
            for q, r, o in zip(queries, references, offsets)]


def _distinct(arrays: list[Any], convert) -> list[Any]:
    """``convert`` applied once per distinct array object (a shared query stays one object, packed once)."""
    converted: dict[int, Any] = {}
    for x in arrays:
        if id(x) not in converted:
            converted[id(x)] = convert(x)
    return [converted[id(x)] for x in arrays]


def _raise_not_finite(flags: np.ndarray, query_names: list[str], reference_names: list[str]) -> None:
    """ValueError naming the first array the kernels flagged (bit 1: query, bit 2: reference)."""
    bad = np.flatnonzero(flags)
    if bad.size:
        p = int(bad[0])
        name = query_names[p] if flags[p] & 1 else reference_names[p]
        raise ValueError(f"{name} contains NaN or infinite values; similarity maps need finite features")


def _maps_cpu(ext, queries, references, query_names, reference_names, kind, normalized, precision) -> list[Any]:
    as_host = lambda x: np.ascontiguousarray(_arrays.to_numpy(x))  # noqa: E731
    host_queries, host_references = _distinct(queries, as_host), _distinct(references, as_host)
    offsets, total = _layout(host_queries, host_references)
    flat = np.empty(total, dtype=np.float32)
    if total:
        flags = ext.similarity_map_cpu(host_queries, host_references, flat, normalized, precision)
        _raise_not_finite(flags, query_names, reference_names)
    return [_arrays.like_input(m, kind) for m in _views(flat, host_queries, host_references, offsets)]


def _maps_cuda(ext, queries, references, query_names, reference_names, kind, normalized) -> list[Any]:
    like = references[0]
    offsets, total = _layout(queries, references)
    out = _arrays.gpu_empty((total,), np.float32, like, kind)
    maps = _views(out, queries, references, offsets)
    if not total:
        return maps
    shared = all(q is queries[0] for q in queries)
    distinct_queries = queries[:1] if shared else queries
    query_rows = np.zeros(len(queries), dtype=np.int64)
    if not shared:
        query_rows[1:] = np.cumsum([q.shape[0] for q in queries[:-1]])
    reference_rows = np.concatenate([[0], np.cumsum([r.shape[0] for r in references[:-1]], dtype=np.int64)])
    table = np.zeros((len(references), _PAIR_COLUMNS), dtype=np.int64)
    table[:, 0] = query_rows
    table[:, 1] = [q.shape[0] for q in queries]
    table[:, 2] = reference_rows
    table[:, 3] = [r.shape[0] for r in references]
    table[:, 4] = offsets[:-1]
    nonempty = (table[:, 1] > 0) & (table[:, 3] > 0)
    table[:, 5] = nonempty & (np.cumsum(nonempty) == 1) if shared else 1

    def joined(arrays: list[Any]) -> Any:
        detached = [x.detach() if kind == _arrays.TORCH_CUDA else x for x in arrays]  # the maps carry no gradient
        contiguous = [_arrays.gpu_contiguous(x, kind) for x in detached]
        return contiguous[0] if len(contiguous) == 1 else _arrays.gpu_concat(contiguous, kind)

    query_buffer, reference_buffer = joined(distinct_queries), joined(references)
    tokens_q, tokens_r = int(queries[0].shape[1]), int(references[0].shape[1])
    query_scale = _arrays.gpu_empty((query_buffer.shape[0] * tokens_q,), np.float32, like, kind)
    reference_scale = _arrays.gpu_empty((reference_buffer.shape[0] * tokens_r,), np.float32, like, kind)
    flags = _arrays.gpu_empty((len(references),), np.int32, like, kind)
    device_table = _arrays.gpu_from_host(table, like, kind)
    ptr = lambda x: _arrays.device_view(x).ptr  # noqa: E731
    ext.similarity_map_cuda(
        queries=ptr(query_buffer), references=ptr(reference_buffer), pairs=ptr(device_table),
        num_pairs=len(references), max_query_frames=int(table[:, 1].max()),
        max_reference_frames=int(table[:, 3].max()), query_scale=ptr(query_scale),
        reference_scale=ptr(reference_scale), flags=ptr(flags), out=ptr(out),
        device=_arrays.device_index(like, kind), query_tokens=tokens_q, reference_tokens=tokens_r,
        dim=int(like.shape[2]), half=_arrays.dtype_name(like) == "float16", normalized=normalized,
        stream=_arrays.current_stream(like, kind),
    )
    _raise_not_finite(_arrays.gpu_to_host(flags, kind), query_names, reference_names)
    return maps


def _maps_reference(queries, references, query_names, reference_names, kind, normalized) -> list[Any]:
    """The fallback: the same checks (finite features) and the plain references, pair by pair."""
    is_torch = kind in (_arrays.TORCH_CPU, _arrays.TORCH_CUDA)
    for x, name in zip(queries + references, query_names + reference_names):
        finite = bool(x.isfinite().all()) if is_torch else bool(np.isfinite(_host(x, kind)).all())
        if not finite:
            raise ValueError(f"{name} contains NaN or infinite values; similarity maps need finite features")
    if is_torch:
        return [similarity_map_torch_reference(q, r, normalized=normalized) for q, r in zip(queries, references)]
    maps = [similarity_map_reference(_host(q, kind), _host(r, kind), normalized=normalized)
            for q, r in zip(queries, references)]
    if kind == _arrays.NUMPY:
        return maps
    return [_arrays.gpu_from_host(m, references[0], kind) for m in maps]


def _host(x: Any, kind: str) -> np.ndarray:
    return x if kind == _arrays.NUMPY else _arrays.gpu_to_host(x, kind)
