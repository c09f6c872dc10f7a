"""Mini-batch plans for contrastive training: ``(steps, batch_size)`` int64 arrays of image indices.

Random batches come from ``torch.utils.data.DistributedSampler`` (one shard per rank, reshuffled per epoch
with the seed). Hard-negative batches follow the paper: each query image plus its ``batch_size - 1`` nearest
neighbours by the current embeddings (faiss inner product), so the other images in a batch are the
hardest negatives available.
"""
from __future__ import annotations

import numpy as np


def steps_per_epoch(num_images: int, batch_size: int, world_size: int = 1) -> int:
    """Full random batches one rank gets from one epoch."""
    return (num_images // world_size) // batch_size


def random_batches(
    num_images: int, batch_size: int, epoch: int, seed: int, world_size: int = 1, rank: int = 0
) -> np.ndarray:
    """All full batches of ``epoch`` for ``rank``: (steps_per_epoch, batch_size) int64, deterministic."""
    from torch.utils.data import DistributedSampler

    if num_images < batch_size * world_size:
        raise ValueError(
            f"need at least batch_size x world_size = {batch_size * world_size} training images, got {num_images}"
        )
    sampler = DistributedSampler(
        range(num_images), num_replicas=world_size, rank=rank, shuffle=True, seed=seed, drop_last=True
    )
    sampler.set_epoch(epoch)
    order = np.fromiter(iter(sampler), dtype=np.int64)
    steps = len(order) // batch_size
    return order[: steps * batch_size].reshape(steps, batch_size)


def hard_negative_batches(embeddings: np.ndarray, queries: np.ndarray, batch_size: int) -> np.ndarray:
    """(N, D) float32 embeddings, (Q,) query indices -> (Q, batch_size) int64: each query followed by its
    ``batch_size - 1`` most similar other images (inner product, faiss), most similar first."""
    import faiss

    embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    _check(embeddings, queries, batch_size)
    index = faiss.IndexFlatIP(embeddings.shape[1])
    index.add(embeddings)
    _, found = index.search(embeddings[queries], batch_size + 1)
    return _assemble(found, queries, batch_size)


def hard_negative_batches_reference(embeddings: np.ndarray, queries: np.ndarray, batch_size: int) -> np.ndarray:
    """Numpy reference of :func:`hard_negative_batches` (dense similarities + stable argsort)."""
    embeddings = np.asarray(embeddings, dtype=np.float32)
    _check(embeddings, queries, batch_size)
    sims = embeddings[queries] @ embeddings.T
    found = np.argsort(-sims, axis=1, kind="stable")[:, : batch_size + 1]
    return _assemble(found, queries, batch_size)


def _check(embeddings: np.ndarray, queries: np.ndarray, batch_size: int) -> None:
    if embeddings.ndim != 2:
        raise ValueError(f"embeddings must be (N, D), got shape {embeddings.shape}")
    if not 2 <= batch_size <= embeddings.shape[0]:
        raise ValueError(f"batch_size must be in [2, N={embeddings.shape[0]}], got {batch_size}")
    if len(queries) and (np.min(queries) < 0 or np.max(queries) >= embeddings.shape[0]):
        raise ValueError("query indices out of range")


def _assemble(found: np.ndarray, queries: np.ndarray, batch_size: int) -> np.ndarray:
    """Put each query first and drop it from its neighbour list (it is usually, not always, found first)."""
    out = np.empty((len(queries), batch_size), dtype=np.int64)
    for row, (query, neighbours) in enumerate(zip(queries, found)):
        others = [int(i) for i in neighbours if i != query and i >= 0][: batch_size - 1]
        out[row] = [int(query), *others]
    return out
