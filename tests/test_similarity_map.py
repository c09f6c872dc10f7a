"""The similarity-map kernels (CPU at every SIMD level, CUDA) against the plain numpy / torch references."""
import itertools
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from vcl_fast import _ext
from vcl_fast.ops import similarity as similarity_module
from vcl_fast.ops import (
    dual_softmax,
    int16_error_bound,
    quantize_int16,
    similarity_map,
    similarity_map_int16_reference,
    similarity_map_reference,
    similarity_map_torch_reference,
    similarity_maps,
)

SIMD_LEVELS = ("scalar", "avx2", "avx512")
FP32_ATOL = 1e-5
CUDA_ATOL = {torch.float32: FP32_ATOL, torch.float16: 1e-4}  # float16: tensor-core products, float32 sums


def cuda_test(fn):
    """Marks a test `cuda` and skips it without a GPU and the CUDA build."""
    skip = pytest.mark.skipif(not _ext.cuda_available(), reason="needs a CUDA GPU and the CUDA build of vcl_fast._C")
    return pytest.mark.cuda(skip(fn))


def features(rng, frames, tokens, dim, dtype=np.float32):
    return rng.standard_normal((frames, tokens, dim), dtype=np.float32).astype(dtype, copy=False)


@pytest.fixture(params=SIMD_LEVELS)
def simd_level(request):
    """Runs the test with the CPU kernels at one SIMD level (skipped where the CPU lacks it)."""
    ext = _ext.extension()
    assert ext is not None, _ext.extension_error()
    if SIMD_LEVELS.index(request.param) > SIMD_LEVELS.index(ext.cpu_simd_level()):
        pytest.skip(f"this CPU does not support {request.param}")
    previous = ext.simd_level()
    assert ext.set_simd_level(request.param) == request.param
    yield request.param
    ext.set_simd_level(previous)


def assert_matches_reference(query, reference, normalized=False, atol=FP32_ATOL):
    got = similarity_map(query, reference, normalized=normalized)
    want = similarity_map_reference(query, reference, normalized=normalized)
    assert isinstance(got, np.ndarray) and got.dtype == np.float32
    assert got.shape == (query.shape[0], reference.shape[0])
    np.testing.assert_allclose(got, want, rtol=0, atol=atol)


# ---- CPU kernels against the numpy reference -----------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_shape_sweep(simd_level, dtype):
    rng = np.random.default_rng(0)
    for n_q, n_r, t_q, t_r, dim in itertools.product((0, 1, 7, 64), (0, 1, 7, 64), (1, 2, 3, 4), (1, 3), (1, 3, 256)):
        query, reference = features(rng, n_q, t_q, dim, dtype), features(rng, n_r, t_r, dim, dtype)
        assert_matches_reference(query, reference)


@pytest.mark.parametrize(
    "n_q, n_r, t_q, t_r, dim",
    [(257, 64, 2, 2, 384), (64, 257, 4, 1, 256), (257, 257, 2, 2, 256), (257, 7, 3, 4, 384), (1, 257, 1, 2, 3),
     (130, 90, 2, 2, 17)],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_large_shapes(simd_level, n_q, n_r, t_q, t_r, dim, dtype):
    rng = np.random.default_rng(1)
    assert_matches_reference(features(rng, n_q, t_q, dim, dtype), features(rng, n_r, t_r, dim, dtype))


def test_normalized_inputs_are_trusted(simd_level):
    rng = np.random.default_rng(2)
    query, reference = features(rng, 70, 2, 256), features(rng, 33, 3, 256)
    # unit vectors: both modes agree; arbitrary vectors: normalized=True gives the raw dot products
    unit_q = query / np.linalg.norm(query, axis=-1, keepdims=True)
    unit_r = reference / np.linalg.norm(reference, axis=-1, keepdims=True)
    np.testing.assert_allclose(similarity_map(unit_q, unit_r, normalized=True), similarity_map(query, reference),
                               rtol=0, atol=FP32_ATOL)
    assert_matches_reference(query * 0.1, reference * 0.1, normalized=True, atol=1e-4)


@pytest.mark.parametrize("scale", [1e-6, 3e4], ids=["subnormal-halves", "large-halves"])
def test_float16_extremes(simd_level, scale):
    rng = np.random.default_rng(15)
    query = (np.clip(features(rng, 30, 2, 100), -2, 2) * scale).astype(np.float16)  # float16 max is 65504
    reference = (np.clip(features(rng, 20, 2, 100), -2, 2) * scale).astype(np.float16)
    assert_matches_reference(query, reference)


def test_zero_vectors_have_similarity_zero(simd_level):
    rng = np.random.default_rng(3)
    query, reference = features(rng, 20, 2, 256), features(rng, 30, 2, 256)
    query[3] = 0.0  # every token of frame 3
    reference[5, 1] = 0.0  # one token of frame 5
    reference[7] = 0.0
    got = similarity_map(query, reference)
    np.testing.assert_array_equal(got[3], 0.0)
    np.testing.assert_array_equal(got[:, 7], 0.0)
    assert_matches_reference(query, reference)


def test_identical_frames_score_one(simd_level):
    query = features(np.random.default_rng(4), 40, 2, 256)
    np.testing.assert_allclose(np.diag(similarity_map(query, query)), 1.0, atol=FP32_ATOL)


@pytest.mark.parametrize(
    "view",
    [lambda x: x[::-1], lambda x: x[:, ::-1], lambda x: x[..., ::-2], lambda x: x[::3],
     lambda x: np.ascontiguousarray(x.transpose(1, 0, 2)).transpose(1, 0, 2)],
    ids=["frames-reversed", "tokens-reversed", "dim-strided-reversed", "frames-strided", "transposed"],
)
def test_non_contiguous_and_negative_strides(simd_level, view):
    rng = np.random.default_rng(5)
    query, reference = view(features(rng, 40, 2, 64)), view(features(rng, 50, 2, 64))
    assert not query.flags.c_contiguous
    assert_matches_reference(query, reference)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_unpickled_arrays(dtype):
    # pickling copies the dtype object (arrays sent to other processes, e.g. Ray or multiprocessing workers)
    import pickle

    rng = np.random.default_rng(6)
    query, reference = (pickle.loads(pickle.dumps(features(rng, n, 2, 32, dtype), protocol=5)) for n in (7, 9))
    assert_matches_reference(query, reference)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_torch_cpu_tensors_in_torch_tensors_out(simd_level, dtype):
    generator = torch.Generator().manual_seed(6)
    query = torch.randn(2, 45, 256, generator=generator).to(dtype).transpose(0, 1)  # non-contiguous
    reference = torch.randn(60, 3, 256, generator=generator).to(dtype).requires_grad_()
    got = similarity_map(query, reference)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float32 and got.shape == (45, 60)
    torch.testing.assert_close(got, similarity_map_torch_reference(query, reference), rtol=0, atol=FP32_ATOL)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_one_query_many_references(simd_level, dtype):
    rng = np.random.default_rng(7)
    query = features(rng, 37, 2, 256, dtype)
    references = [features(rng, n, 2, 256, dtype) for n in (60, 0, 1, 257, 13, 100)]
    maps = similarity_maps(query, references)
    assert len(maps) == len(references)
    for got, reference in zip(maps, references):
        assert got.shape == (37, reference.shape[0])
        np.testing.assert_allclose(got, similarity_map_reference(query, reference), rtol=0, atol=FP32_ATOL)
    assert all(m.base is maps[0].base is not None for m in maps)  # views into one output buffer


def test_pairwise_ragged(simd_level):
    rng = np.random.default_rng(8)
    lengths = [(5, 9), (0, 4), (64, 1), (1, 64), (100, 37), (3, 0), (257, 70)]
    queries = [features(rng, q, 3, 384) for q, _ in lengths]
    references = [features(rng, r, 2, 384)[:, ::-1] for _, r in lengths]  # non-contiguous too
    maps = similarity_maps(tuple(queries), references)
    for got, query, reference in zip(maps, queries, references):
        np.testing.assert_allclose(got, similarity_map_reference(query, reference), rtol=0, atol=FP32_ATOL)


def test_pairwise_with_repeated_query_objects(simd_level):
    rng = np.random.default_rng(9)
    a, b = features(rng, 20, 2, 32), features(rng, 30, 2, 32)
    references = [features(rng, n, 2, 32) for n in (10, 11, 12, 13)]
    maps = similarity_maps([a, a, b, a], references)
    for got, query, reference in zip(maps, [a, a, b, a], references):
        np.testing.assert_allclose(got, similarity_map_reference(query, reference), rtol=0, atol=FP32_ATOL)


# ---- int16 precision: exactly the quantised reference, within the bound of the float32 one ----------------------


def assert_int16_matches(query, reference, got=None):
    """The kernel's int16 map equals the quantised numpy reference bit for bit and is within the documented
    bound of the float32 reference (whose own error is below FP32_ATOL)."""
    got = similarity_map(query, reference, precision="int16") if got is None else got
    assert isinstance(got, np.ndarray) and got.dtype == np.float32
    np.testing.assert_array_equal(got, similarity_map_int16_reference(query, reference))
    bound = int16_error_bound(query.shape[2]) + FP32_ATOL
    np.testing.assert_allclose(got, similarity_map_reference(query, reference), rtol=0, atol=bound)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_int16_shape_sweep(simd_level, dtype):
    rng = np.random.default_rng(30)
    sizes = (0, 1, 7, 64, 257)
    for n_q, n_r, t_q, dim in itertools.product(sizes, sizes, (1, 2, 3, 4), (1, 3, 256, 384)):
        if n_q == n_r == 257:
            continue  # 60% of the sweep's time; test_int16_batches has 257 x 257 pairs
        t_r = 5 - t_q  # every token count on both sides
        assert_int16_matches(features(rng, n_q, t_q, dim, dtype), features(rng, n_r, t_r, dim, dtype))


def test_int16_quantization():
    x = np.array([[[3.0, -4.0, 0.0]], [[0.0, 0.0, 0.0]], [[1e-30, 0.0, 0.0]], [[-7.0, 0.0, 0.0]]], np.float32)
    np.testing.assert_array_equal(quantize_int16(x)[:, 0], [[19660, -26214, 0], [0, 0, 0], [32767, 0, 0],
                                                           [-32767, 0, 0]])
    # worst case for the int32 sums: one-hot and constant vectors give the largest |q . r|
    one_hot = np.eye(384, dtype=np.float32)[:, None, :]
    constant = np.ones((2, 1, 384), np.float32) * np.array([1, -1], np.float32)[:, None, None]
    for query in (one_hot, constant):
        got = similarity_map(query, query, precision="int16")
        assert_int16_matches(query, query, got)
        np.testing.assert_allclose(np.diag(got), 1.0, rtol=0, atol=int16_error_bound(384))
    opposite = similarity_map(constant, constant, precision="int16")[0, 1]
    assert opposite == pytest.approx(-1.0, abs=int16_error_bound(384))


def test_int16_error_bound_values():
    assert int16_error_bound(256) == pytest.approx(16 / 32767 + 256 / (4 * 32767**2) + 2**-22)
    assert 5.9e-4 < int16_error_bound(384) < 6.0e-4
    # random features stay far below the worst case
    rng = np.random.default_rng(31)
    query, reference = features(rng, 64, 2, 256), features(rng, 64, 2, 256)
    error = np.abs(similarity_map(query, reference, precision="int16") - similarity_map_reference(query, reference))
    assert error.max() < int16_error_bound(256) / 4


def test_int16_zero_vectors_normalization_and_fp16_extremes(simd_level):
    rng = np.random.default_rng(32)
    query, reference = features(rng, 20, 2, 256), features(rng, 30, 2, 256)
    query[3] = 0.0
    reference[5, 1] = 0.0
    got = similarity_map(query, reference, precision="int16")
    np.testing.assert_array_equal(got[3], 0.0)
    assert_int16_matches(query, reference, got)
    # int16 always normalises: normalized=True and scaled inputs give the same map
    np.testing.assert_array_equal(similarity_map(query * 0.1, reference * 7.0, normalized=True, precision="int16"),
                                  similarity_map_int16_reference(query * 0.1, reference * 7.0))
    for scale in (1e-6, 3e4):  # subnormal and large halves
        q16 = (np.clip(features(rng, 30, 2, 100), -2, 2) * scale).astype(np.float16)
        r16 = (np.clip(features(rng, 20, 2, 100), -2, 2) * scale).astype(np.float16)
        assert_int16_matches(q16, r16)


@pytest.mark.parametrize(
    "view",
    [lambda x: x[::-1], lambda x: x[:, ::-1], lambda x: x[..., ::-2], lambda x: x[::3],
     lambda x: np.ascontiguousarray(x.transpose(1, 0, 2)).transpose(1, 0, 2)],
    ids=["frames-reversed", "tokens-reversed", "dim-strided-reversed", "frames-strided", "transposed"],
)
def test_int16_non_contiguous_and_negative_strides(simd_level, view):
    rng = np.random.default_rng(33)
    query, reference = view(features(rng, 40, 2, 64)), view(features(rng, 50, 2, 64))
    assert not query.flags.c_contiguous
    assert_int16_matches(query, reference)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_int16_batches(simd_level, dtype):
    rng = np.random.default_rng(34)
    query = features(rng, 37, 2, 256, dtype)
    references = [features(rng, n, 2, 256, dtype) for n in (60, 0, 1, 257, 13, 100)]
    maps = similarity_maps(query, references, precision="int16")
    for got, reference in zip(maps, references):
        assert_int16_matches(query, reference, got)
    lengths = [(5, 9), (0, 4), (64, 1), (1, 64), (100, 37), (3, 0), (257, 257)]
    queries = [features(rng, q, 3, 384, dtype) for q, _ in lengths]
    references = [features(rng, r, 2, 384, dtype)[:, ::-1] for _, r in lengths]
    maps = similarity_maps(tuple(queries), references, precision="int16")
    for got, q, reference in zip(maps, queries, references):
        assert_int16_matches(q, reference, got)


def test_int16_torch_tensors_and_bad_input(simd_level):
    generator = torch.Generator().manual_seed(35)
    query = torch.randn(2, 45, 256, generator=generator).transpose(0, 1)
    reference = torch.randn(60, 3, 256, generator=generator)
    got = similarity_map(query, reference, precision="int16")
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float32 and got.shape == (45, 60)
    np.testing.assert_array_equal(got.numpy(), similarity_map_int16_reference(query.numpy(), reference.numpy()))
    with pytest.raises(ValueError, match="precision must be one of"):
        similarity_map(query, reference, precision="int8")
    with pytest.raises(ValueError, match=r"references\[1\] contains NaN"):
        similarity_maps(query, [reference, torch.from_numpy(_with_value(reference.numpy(), (2, 1, 0), np.nan))],
                        precision="int16")


THREADS_SCRIPT = """
import numpy as np
from vcl_fast.ops import similarity_map_int16_reference, similarity_map_reference, similarity_maps
rng = np.random.default_rng(14)
f = lambda n, t: rng.standard_normal((n, t, 256), dtype=np.float32)
query, references = f(301, 2), [f(n, 2) for n in (600, 0, 37, 257, 1, 90)]
queries = [f(n, 3) for n in (5, 70, 0, 600, 64, 257)]
for first, qs in ((query, [query] * 6), (queries, queries)):
    for got, q, r in zip(similarity_maps(first, references), qs, references):
        np.testing.assert_allclose(got, similarity_map_reference(q, r), rtol=0, atol=1e-5)
    for got, q, r in zip(similarity_maps(first, references, precision="int16"), qs, references):
        np.testing.assert_array_equal(got, similarity_map_int16_reference(q, r))
"""


@pytest.mark.parametrize("threads", [1, 3])
def test_thread_counts(threads):
    # the work split (reference blocks, query blocks) depends on the number of OpenMP threads
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    result = subprocess.run([sys.executable, "-c", THREADS_SCRIPT], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_empty_batch():
    assert similarity_maps(np.zeros((3, 2, 8), np.float32), []) == []


def torch_dual_softmax(similarity, temperature):
    return torch.softmax(similarity / temperature, 0) * torch.softmax(similarity / temperature, 1)


def test_dual_softmax_mode():
    rng = np.random.default_rng(12)
    query = features(rng, 40, 2, 64)
    references = [features(rng, n, 2, 64) for n in (30, 0, 1, 55)]
    maps = similarity_maps(query, references, mode="dual_softmax", temperature=0.05)
    for got, reference in zip(maps, references):
        want = torch_dual_softmax(similarity_map_torch_reference(torch.from_numpy(query), torch.from_numpy(reference)),
                                  0.05)
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-7)
    assert all(m.base is maps[0].base is not None for m in maps)  # still views into one buffer
    tensor_map = similarity_map(torch.from_numpy(query), torch.from_numpy(references[0]), mode="dual_softmax")
    np.testing.assert_allclose(tensor_map.numpy(), dual_softmax(similarity_map(query, references[0])), rtol=1e-5)


@pytest.mark.parametrize("kwargs, message", [({"mode": "mean"}, "mode must be one of"),
                                             ({"mode": "dual_softmax", "temperature": 0.0}, "temperature"),
                                             ({"mode": "dual_softmax", "temperature": float("nan")}, "temperature")])
def test_bad_mode_or_temperature(kwargs, message):
    with pytest.raises(ValueError, match=message):
        similarity_map(np.ones((2, 1, 4), np.float32), np.ones((3, 1, 4), np.float32), **kwargs)


# ---- bad input: identical errors on CPU and CUDA ---------------------------------------------------------------


def _with_value(x, index, value):
    x = x.copy()
    x[index] = value
    return x


def bad_input_cases():
    """(id, call(make), exception, message): ``make(numpy_array)`` turns features into the kind under test."""
    rng = np.random.default_rng(10)
    q, r = features(rng, 6, 2, 8), features(rng, 5, 2, 8)
    return [
        ("rank-2", lambda m: similarity_map(m(q[:, 0]), m(r)), ValueError, r"query must have shape \(frames"),
        ("rank-4", lambda m: similarity_map(m(q), m(r[None])), ValueError, "reference must have shape"),
        ("dim-mismatch", lambda m: similarity_map(m(q), m(r[..., :4])), ValueError, "same dim"),
        ("zero-tokens", lambda m: similarity_map(m(q[:, :0]), m(r)), ValueError, "at least one token"),
        ("zero-dim", lambda m: similarity_map(m(q[..., :0]), m(r[..., :0])), ValueError, "dim must be >= 1"),
        ("float64", lambda m: similarity_map(m(q.astype(np.float64)), m(r)), TypeError, "float64.*float32 or float16"),
        ("int32", lambda m: similarity_map(m(q.astype(np.int32)), m(r)), TypeError, "int32"),
        ("mixed-dtypes", lambda m: similarity_map(m(q.astype(np.float16)), m(r)), TypeError, "one dtype"),
        ("nan-query", lambda m: similarity_map(m(_with_value(q, (2, 1, 3), np.nan)), m(r)), ValueError,
         "query contains NaN or infinite"),
        ("inf-reference", lambda m: similarity_map(m(q), m(_with_value(r, (4, 0, 0), np.inf))), ValueError,
         "reference contains NaN or infinite"),
        ("inf-float16", lambda m: similarity_map(m(q.astype(np.float16)), m(_with_value(r, 0, np.inf).astype(np.float16))),
         ValueError, "reference contains NaN"),
        ("nan-normalized", lambda m: similarity_map(m(_with_value(q, 0, np.nan)), m(r), normalized=True), ValueError,
         "query contains NaN"),
        ("nan-in-batch", lambda m: similarity_maps(m(q), [m(r), m(r), m(_with_value(r, 1, -np.inf))]), ValueError,
         r"references\[2\] contains NaN"),
        ("nan-pairwise", lambda m: similarity_maps([m(q), m(_with_value(q, 5, np.nan))], [m(r), m(r)]), ValueError,
         r"query\[1\] contains NaN"),
        ("list-lengths", lambda m: similarity_maps([m(q), m(q)], [m(r)]), ValueError, "one query per reference"),
        ("references-not-a-list", lambda m: similarity_maps(m(q), m(r)), TypeError, "list or tuple"),
        ("not-an-array", lambda m: similarity_map(q.tolist(), m(r)), TypeError, "query must be a numpy array"),
        ("token-mismatch", lambda m: similarity_maps(m(q), [m(r), m(r[:, :1])]), ValueError, "same number of tokens"),
    ]


@pytest.mark.parametrize("case", bad_input_cases(), ids=lambda case: case[0])
def test_bad_input_cpu(simd_level, case):
    _, call, exception, message = case
    with pytest.raises(exception, match=message):
        call(lambda x: x)


def test_mixed_array_kinds_rejected():
    q = np.zeros((3, 2, 8), np.float32)
    with pytest.raises(TypeError, match="same kind of array"):
        similarity_map(q, torch.zeros(3, 2, 8))
    with pytest.raises(TypeError, match="bfloat16"):
        similarity_map(torch.zeros(3, 2, 8, dtype=torch.bfloat16), torch.zeros(3, 2, 8, dtype=torch.bfloat16))


# ---- fallback without the compiled core ------------------------------------------------------------------------


def test_fallback_warns_once_and_matches(monkeypatch):
    monkeypatch.setattr(similarity_module, "extension", lambda: None)
    monkeypatch.setattr(_ext, "_warned", set())
    rng = np.random.default_rng(11)
    query, reference = features(rng, 9, 2, 16), features(rng, 4, 2, 16)
    with pytest.warns(RuntimeWarning, match="similarity_map"):
        got = similarity_map(query, reference)
    np.testing.assert_allclose(got, similarity_map_reference(query, reference))
    np.testing.assert_array_equal(similarity_map(query, reference, precision="int16"), got)  # int16: the fp32 path
    torch_maps = similarity_maps(torch.from_numpy(query), [torch.from_numpy(reference)] * 2)  # no second warning
    assert all(isinstance(m, torch.Tensor) and m.shape == (9, 4) for m in torch_maps)
    with pytest.raises(ValueError, match="reference contains NaN"):
        similarity_map(query, _with_value(reference, 0, np.nan))


# ---- CUDA kernels against the torch reference on the GPU -------------------------------------------------------


def _cuda(x):
    return torch.from_numpy(np.ascontiguousarray(x)).cuda()


@cuda_test
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_cuda_shape_sweep(dtype):
    generator = torch.Generator().manual_seed(20)
    atol = CUDA_ATOL[dtype]
    shapes = itertools.product((0, 1, 7, 64, 257), (0, 1, 7, 64, 257), (1, 2, 3, 4), (1, 3), (1, 3, 256, 384))
    for n_q, n_r, t_q, t_r, dim in shapes:
        query = torch.randn(n_q, t_q, dim, generator=generator).to(dtype).cuda()
        reference = torch.randn(n_r, t_r, dim, generator=generator).to(dtype).cuda()
        for normalized in (False, True):
            got = similarity_map(query, reference, normalized=normalized)
            assert got.device == query.device and got.dtype == torch.float32
            want = similarity_map_torch_reference(query, reference, normalized=normalized)
            torch.testing.assert_close(got, want, rtol=0, atol=atol * (1 if not normalized else dim))


@cuda_test
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_cuda_batched_ragged_zero_vectors_and_strides(dtype):
    generator = torch.Generator().manual_seed(21)
    atol = CUDA_ATOL[dtype]
    query = torch.randn(2, 90, 256, generator=generator).to(dtype).cuda().transpose(0, 1)  # non-contiguous
    query[4] = 0
    references = [torch.randn(n, 2, 256, generator=generator).to(dtype).cuda() for n in (60, 0, 1, 600, 130)]
    references[3][10, 1] = 0
    maps = similarity_maps(query, references)
    for got, reference in zip(maps, references):
        torch.testing.assert_close(got, similarity_map_torch_reference(query, reference), rtol=0, atol=atol)
    queries = [torch.randn(n, 3, 256, generator=generator).to(dtype).cuda() for n in (5, 70, 0, 300, 64)]
    maps = similarity_maps(queries, references)
    for got, q, reference in zip(maps, queries, references):
        torch.testing.assert_close(got, similarity_map_torch_reference(q, reference), rtol=0, atol=atol)


@cuda_test
def test_cuda_int16_precision_computes_as_fp32():
    generator = torch.Generator().manual_seed(24)
    query, reference = torch.randn(70, 2, 256, generator=generator).cuda(), torch.randn(90, 2, 256).cuda()
    torch.testing.assert_close(similarity_map(query, reference, precision="int16"), similarity_map(query, reference),
                               rtol=0, atol=0)


@cuda_test
def test_cuda_dual_softmax_mode():
    generator = torch.Generator().manual_seed(23)
    query, reference = torch.randn(70, 2, 256, generator=generator).cuda(), torch.randn(90, 2, 256).cuda()
    got = similarity_map(query, reference, mode="dual_softmax")
    want = torch_dual_softmax(similarity_map_torch_reference(query, reference), 0.1)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-7)


@cuda_test
def test_cuda_matches_cpu_kernel_on_a_side_stream():
    rng = np.random.default_rng(22)
    query, reference = features(rng, 300, 2, 256), features(rng, 200, 2, 256)
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        got = similarity_map(_cuda(query).requires_grad_(), _cuda(reference))
    stream.synchronize()
    np.testing.assert_allclose(got.cpu().numpy(), similarity_map(query, reference), rtol=0, atol=FP32_ATOL)


@cuda_test
@pytest.mark.parametrize("case", bad_input_cases(), ids=lambda case: case[0])
def test_bad_input_cuda(case):
    _, call, exception, message = case
    with pytest.raises(exception, match=message):
        call(_cuda)
