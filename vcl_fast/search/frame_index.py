"""The faiss index over a reference library's frame tokens: presets, training, per-shard encoding, kNN.

Every token of every library frame is one vector: the features ``(L, T, D)`` of the videos, in library
order, flattened to ``(sum L * T, D)`` float32 and L2-normalised, so the inner product is the cosine
similarity and vector id ``v`` belongs to library frame ``v // T``.

Presets (``IndexConfig``; ``--preset`` on the command line, fields overridable with ``--param KEY=VALUE``):

======== ============================== ============================== ==============================
preset   faiss index                    memory per vector (D = 256)    use
======== ============================== ============================== ==============================
exact    ``IndexFlatIP``                4 D bytes = 1,024 B            up to ~1M vectors (~1,000 videos
                                                                       of 3 min at 1 fps, T = 2);
                                                                       exact, search cost ~ library size
ivf      ``IVF{nlist},Flat`` (IP)       4 D + 8 bytes = 1,032 B        faster search, same memory
ivfpq    ``IVF{nlist},PQ{pq_bytes}``    pq_bytes + 8 bytes = 40 B      large libraries: ~25x less memory
======== ============================== ============================== ==============================

(The 8 bytes are the stored int64 id of each vector in an inverted list; IVF adds ``nlist * D * 4`` bytes
of centroids.) ``nlist`` 0 means automatic: the power of two nearest to ``sqrt(num_vectors)`` (e.g. 2,048
lists for 3.3M vectors). Training: ``train_size`` 0 means ``64 * nlist`` vectors (and at least 9,984 =
39 x 256 for PQ's 8-bit codebooks), capped at the library size; they are a uniform sample without
replacement drawn with ``numpy.random.default_rng(seed)``, so a build is reproducible. ``nprobe`` lists are
scanned per query vector (stored in the index; the search command can override it). Measured on 10,000
synthetic videos (3.3M vectors, D = 256; bench/README.md, section "Search", has every figure): IVF2048,Flat
1,033 B per vector in the file, built in 168 s, 1.0 queries/s; IVF2048,PQ32 41 B per vector, 232 s,
3.3 queries/s; both 100% recall of the planted copies. Building holds the index in memory and peaks at about
twice its size.

Encoding is per shard (``encode_shard``: the trained empty index plus one shard's vectors, serialised) and
the shard indexes are merged in library order (``merge_encoded``); faiss's ``merge_from`` appends inverted
lists, so the result is byte-identical to adding every vector to one index in order, whichever machine
encoded which shard. faiss is imported late: only building and searching need it.
"""
from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Iterable, Mapping

import numpy as np

from vcl_fast.atomic import atomic_save
from vcl_fast.config import preset

KINDS = ("flat", "ivf", "ivfpq")
PQ_MIN_TRAIN = 39 * 256  # faiss warns below 39 training points per centroid; PQ codebooks have 256
ADD_BATCH = 65536  # vectors normalised and added per faiss call while encoding
BLAS_THRESHOLD = 20  # query rows from which exact search uses BLAS (faiss's default before 1.9)
MISSING = float(np.finfo(np.float32).min)  # faiss's similarity for a neighbour slot it could not fill


@dataclasses.dataclass(frozen=True)
class IndexConfig:
    """Which faiss index to build (see the module docstring for the presets and their memory)."""

    kind: str = "flat"  # flat | ivf | ivfpq
    nlist: int = 0  # IVF lists; 0 = power of two nearest sqrt(num_vectors)
    nprobe: int = 16  # IVF lists scanned per query vector
    pq_bytes: int = 32  # ivfpq: code bytes per vector (sub-quantizers of 8 bits); must divide D
    train_size: int = 0  # training vectors; 0 = 64 * nlist (at least 9,984 for PQ), capped at the library
    seed: int = 0  # training sample

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"IndexConfig.kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        for name in ("nlist", "train_size", "seed"):
            if getattr(self, name) < 0:
                raise ValueError(f"IndexConfig.{name} must be >= 0, got {getattr(self, name)}")
        if self.nprobe < 1 or self.pq_bytes < 1:
            raise ValueError(f"IndexConfig.nprobe and pq_bytes must be >= 1, got {self.nprobe}, {self.pq_bytes}")


PRESETS: dict[str, IndexConfig] = {
    "exact": IndexConfig("flat"),
    "ivf": IndexConfig("ivf"),
    "ivfpq": IndexConfig("ivfpq"),
}


def _faiss():
    """The faiss module, or an ImportError that says how to install it."""
    try:
        import faiss
    except ImportError:
        raise ImportError('the search index needs faiss: pip install "vcl_fast[search]"') from None
    return faiss


def index_config(name: str = "exact", overrides: Mapping[str, Any] | Iterable[str] | None = None) -> IndexConfig:
    """Preset ``name`` (exact, ivf, ivfpq) with ``overrides`` (``{"nlist": 1024}`` or ``["nlist=1024"]``)."""
    return preset(PRESETS, name, overrides)


def resolved_lists(config: IndexConfig, num_vectors: int) -> int:
    """The number of IVF lists for a library of ``num_vectors`` (``config.nlist`` or the automatic choice)."""
    if config.nlist:
        return config.nlist
    return 2 ** max(0, round(math.log2(max(1.0, math.sqrt(num_vectors)))))


def training_size(config: IndexConfig, num_vectors: int) -> int:
    """How many vectors train the index (0 for ``flat``)."""
    if config.kind == "flat":
        return 0
    wanted = config.train_size or 64 * resolved_lists(config, num_vectors)
    if config.kind == "ivfpq":
        wanted = max(wanted, PQ_MIN_TRAIN)
    return min(wanted, num_vectors)


def bytes_per_vector(config: IndexConfig, dim: int) -> int:
    """Memory of one indexed vector (codes + stored id), without the fixed centroid tables."""
    return {"flat": 4 * dim, "ivf": 4 * dim + 8, "ivfpq": config.pq_bytes + 8}[config.kind]


def factory_string(config: IndexConfig, dim: int, num_vectors: int) -> str:
    """The ``faiss.index_factory`` description of ``config`` for a library of ``num_vectors``."""
    if config.kind == "flat":
        return "Flat"
    nlist = resolved_lists(config, num_vectors)
    if nlist > num_vectors:
        raise ValueError(
            f"the {config.kind} index needs at least nlist={nlist} vectors, the library has {num_vectors}; "
            "use the exact preset or a smaller nlist"
        )
    if config.kind == "ivf":
        return f"IVF{nlist},Flat"
    if dim % config.pq_bytes:
        raise ValueError(f"ivfpq: pq_bytes={config.pq_bytes} must divide the feature dim {dim}")
    if num_vectors < PQ_MIN_TRAIN:
        raise ValueError(
            f"the ivfpq index needs at least {PQ_MIN_TRAIN} vectors to train its codebooks, the library has "
            f"{num_vectors}; use the exact or ivf preset"
        )
    return f"IVF{nlist},PQ{config.pq_bytes}"


def unit_rows(features: np.ndarray) -> np.ndarray:
    """``(L, T, D)`` features -> ``(L * T, D)`` float32 rows of unit length (zero rows stay zero)."""
    faiss = _faiss()
    rows = np.array(features, dtype=np.float32, order="C").reshape(-1, features.shape[-1])
    faiss.normalize_L2(rows)
    return rows


def new_index(config: IndexConfig, dim: int, num_vectors: int):
    """An empty inner-product faiss index for ``config`` (not yet trained when IVF)."""
    faiss = _faiss()
    index = faiss.index_factory(dim, factory_string(config, dim, num_vectors), faiss.METRIC_INNER_PRODUCT)
    if config.kind != "flat":
        faiss.extract_index_ivf(index).nprobe = min(config.nprobe, resolved_lists(config, num_vectors))
    if config.kind == "ivfpq":
        index.do_polysemous_training = False  # only for polysemous (Hamming) search, which we do not use; slow
    return index


def train(index, sample: np.ndarray) -> None:
    """Train ``index`` on ``sample`` ``(N, D)`` unit float32 rows (nothing to do for a flat index)."""
    if not index.is_trained:
        index.train(np.ascontiguousarray(sample, dtype=np.float32))


def serialize(index) -> np.ndarray:
    """The index as a uint8 array (what travels between machines)."""
    faiss = _faiss()
    return faiss.serialize_index(index)


def deserialize(data: np.ndarray):
    """The index of ``serialize``'s bytes."""
    faiss = _faiss()
    return faiss.deserialize_index(np.asarray(data, dtype=np.uint8))


def read_index(path: str | os.PathLike, mmap: bool = False):
    """A faiss index file; ``mmap`` maps it read-only (processes on one machine share its pages)."""
    faiss = _faiss()
    return faiss.read_index(str(path), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY if mmap else 0)


def write_index(index, path: str | os.PathLike) -> None:
    """Write ``index`` to ``path`` atomically."""
    faiss = _faiss()
    atomic_save(path, lambda tmp: faiss.write_index(index, tmp))


def encode_shard(empty_index: np.ndarray, videos: Iterable) -> np.ndarray:
    """The serialised trained-but-empty index with the tokens of ``videos`` (VideoFeatures, in order) added."""
    index = deserialize(empty_index)
    pending: list[np.ndarray] = []
    count = 0
    for video in videos:
        pending.append(unit_rows(video.features))
        count += len(pending[-1])
        if count >= ADD_BATCH:
            index.add(np.concatenate(pending))
            pending, count = [], 0
    if pending:
        index.add(np.concatenate(pending))
    return serialize(index)


def merge_encoded(index, encoded: np.ndarray) -> None:
    """Append the vectors of a serialised shard index (from ``encode_shard``) to ``index`` in place."""
    faiss = _faiss()
    part = deserialize(encoded)
    index.merge_from(part, 0 if faiss.try_extract_index_ivf(index) is None else index.ntotal)


def search(index, rows: np.ndarray, k: int, nprobe: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """kNN of unit rows ``(N, D)``: similarities ``(N, k)`` float32 (descending) and vector ids ``(N, k)`` int64,
    -1 (similarity ``MISSING``) where fewer than ``k`` neighbours were found. ``nprobe`` overrides the index's
    for this call (IVF only).

    Exact search goes through faiss's BLAS path for any batch of at least ``BLAS_THRESHOLD`` rows (faiss
    1.15's default sends batches under 128,000 rows through a SIMD loop, about 7x slower for the few hundred
    rows of one query here); the setting is faiss-global, so it is restored after the call.
    """
    faiss = _faiss()
    if nprobe is not None and faiss.try_extract_index_ivf(index) is not None:
        return index.search(rows, k, params=faiss.SearchParametersIVF(nprobe=int(nprobe)))
    saved = faiss.cvar.distance_compute_blas_threshold
    faiss.cvar.distance_compute_blas_threshold = BLAS_THRESHOLD
    try:
        return index.search(rows, k)
    finally:
        faiss.cvar.distance_compute_blas_threshold = saved


def search_reference(vectors: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Plain numpy exact kNN by inner product (what ``IndexFlatIP`` computes); tied neighbours may come in
    another order than faiss's."""
    sims = rows.astype(np.float64) @ vectors.astype(np.float64).T
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    found = np.take_along_axis(sims, order, axis=1).astype(np.float32)
    missing = k - order.shape[1]
    if missing > 0:
        found = np.pad(found, ((0, 0), (0, missing)), constant_values=MISSING)
        order = np.pad(order, ((0, 0), (0, missing)), constant_values=-1)
    return found, order.astype(np.int64)
