"""A similarity map computed a block at a time, for videos whose whole map would not fit in memory.

``LazySimilarityMap(query, reference)`` stands for ``similarity_map(query, reference)`` (``(Q, R)`` float32)
without holding it: slicing it with two slices computes that block only, equal bit for bit to the same block
of the whole map (the kernel computes every cell on its own). The YOLOX localizer reads maps tile by tile
(``vcl_fast.detect.localizer``), so with a lazy map its memory is that of one batch of tiles, whatever the
videos' lengths; ``np.asarray`` computes the whole map.
"""
from __future__ import annotations

import numpy as np

from vcl_fast.ops.similarity import similarity_map


class LazySimilarityMap:
    """``similarity_map(query, reference)`` on demand: query ``(Q, T, D)``, reference ``(R, T2, D)`` float32 or
    float16 numpy arrays; ``m[rows, cols]`` (two slices of step 1) -> a ``(rows, cols)`` float32 block."""

    ndim = 2
    dtype = np.dtype(np.float32)

    def __init__(self, query: np.ndarray, reference: np.ndarray):
        for name, array in (("query", query), ("reference", reference)):
            if not isinstance(array, np.ndarray) or array.ndim != 3:
                raise TypeError(f"{name} must be a (frames, tokens, dim) numpy array, got "
                                f"{getattr(array, 'shape', type(array).__name__)}")
        if query.shape[2] != reference.shape[2]:
            raise ValueError(f"query and reference feature dims differ: {query.shape[2]} vs {reference.shape[2]}")
        self.query, self.reference = query, reference

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.query), len(self.reference)

    @property
    def T(self) -> "LazySimilarityMap":
        """The transposed map: the reference's frames against the query's."""
        return LazySimilarityMap(self.reference, self.query)

    def __getitem__(self, index) -> np.ndarray:
        if not (isinstance(index, tuple) and len(index) == 2 and all(isinstance(s, slice) for s in index)):
            raise TypeError(f"a LazySimilarityMap is read by blocks, m[rows, cols] with two slices; got {index!r}")
        rows, cols = (range(*s.indices(n)) for s, n in zip(index, self.shape))
        if rows.step != 1 or cols.step != 1:
            raise ValueError("a LazySimilarityMap block takes slices of step 1")
        return similarity_map(self.query[rows.start:max(rows.start, rows.stop)],
                              self.reference[cols.start:max(cols.start, cols.stop)])

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        whole = similarity_map(self.query, self.reference)
        return whole if dtype is None else whole.astype(dtype)
