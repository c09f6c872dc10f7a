"""Path searches of the classical temporal-alignment localizers (DTW, DP, TN) on a frame-to-frame map.

Maps are ``(Q, R)`` float64 arrays (rows = query frames, columns = reference frames); paths are ``(L, 2)``
int64 arrays of ``(query frame, reference frame)`` points in increasing order. Each op runs the compiled
kernel of ``vcl_fast._C`` (``csrc/cpu/alignment_paths.cpp``) and falls back to its plain numpy reference,
defined beside it, with one warning when the extension is missing. Kernel and reference do the same float64
arithmetic in the same order and break ties the same way, so their paths are identical.
"""
from __future__ import annotations

import numpy as np

from vcl_fast._ext import extension, extension_error, warn_fallback

# Back-tracking steps: 0 diagonal, 1 vertical (query - 1), 2 horizontal (reference - 1); -1 = path start.
_STEP_ROWS = np.array([1, 1, 0])
_STEP_COLS = np.array([1, 0, 1])


def _float_map(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (Q, R) map, got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{name} must hold floats, got dtype {x.dtype}")
    return np.ascontiguousarray(x, dtype=np.float64)


def _kernel(name: str):
    """The compiled function ``name`` or None (after one warning) when the extension lacks it."""
    ext = extension()
    if ext is not None and hasattr(ext, name):
        return getattr(ext, name)
    warn_fallback(name, extension_error() or "the compiled core predates this op; rebuild it")
    return None


def _split_paths(points: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    return [points[offsets[p]:offsets[p + 1]] for p in range(len(offsets) - 1)]


def _as_path(points: list[tuple[int, int]]) -> np.ndarray:
    return np.array(points, dtype=np.int64).reshape(-1, 2)


# ----------------------------------------------------------------------------------------------------- DTW


def dtw_path_reference(cost: np.ndarray) -> np.ndarray:
    """Reference of :func:`dtw_path`: the accumulated cost one anti-diagonal at a time."""
    cost = _float_map(cost, "cost")
    rows, cols = cost.shape
    if rows == 0 or cols == 0:
        return np.zeros((0, 2), dtype=np.int64)
    acc = np.full((rows + 1, cols + 1), np.inf)  # acc[i + 1, j + 1] belongs to cell (i, j)
    acc[0, 0] = 0.0
    for diag in range(rows + cols - 1):
        i = np.arange(max(0, diag - cols + 1), min(rows, diag + 1))
        j = diag - i
        acc[i + 1, j + 1] = cost[i, j] + np.minimum(np.minimum(acc[i, j], acc[i, j + 1]), acc[i + 1, j])
    i, j = rows - 1, cols - 1
    points = [(i, j)]
    while i > 0 or j > 0:  # the infinite border makes the first and last rows/columns walk straight
        step = int(np.argmin([acc[i, j], acc[i, j + 1], acc[i + 1, j]]))  # diagonal, vertical, horizontal
        i, j = i - _STEP_ROWS[step], j - _STEP_COLS[step]
        points.append((i, j))
    return _as_path(points[::-1])


def dtw_path(cost: np.ndarray) -> np.ndarray:
    """Minimum-cost dynamic-time-warping path through a ``(Q, R)`` cost map.

    The path runs from ``(0, 0)`` to ``(Q - 1, R - 1)`` with diagonal, vertical and horizontal unit steps;
    ``acc[i, j] = cost[i, j] + min(acc[i-1, j-1], acc[i-1, j], acc[i, j-1])`` (tslearn's recurrence, used by
    the VCSL benchmark). Back-tracking prefers the diagonal, then the vertical, then the horizontal step.
    Returns ``(L, 2)`` int64 points; ``(0, 2)`` for an empty map.
    """
    cost = _float_map(cost, "cost")
    kernel = _kernel("dtw_path")
    return kernel(cost) if kernel is not None else dtw_path_reference(cost)


# ------------------------------------------------------------------------------------------------ DP (mPDP)


def _mpdp_tables(score: np.ndarray, discontinue: int, min_score: float) -> tuple[np.ndarray, np.ndarray]:
    """The mPDP score table and back-tracking steps, one anti-diagonal at a time."""
    rows, cols = score.shape
    dp = score.copy()
    unmatched = np.zeros(score.shape, dtype=np.int64)
    back = np.full(score.shape, -1, dtype=np.int8)
    for diag in range(2, rows + cols - 1):
        i = np.arange(max(1, diag - cols + 1), min(rows, diag))
        j = diag - i
        s = score[i, j]
        candidates = np.stack([dp[i - 1, j - 1] + s, dp[i - 1, j] + 0.5 * s, dp[i, j - 1] + 0.5 * s])
        step = np.argmax(candidates, axis=0)  # first maximum: diagonal, then vertical, then horizontal
        best = candidates[step, np.arange(len(i))]
        run = np.where(s < min_score, unmatched[i - _STEP_ROWS[step], j - _STEP_COLS[step]] + 1, 0)
        unmatched[i, j] = run
        keep = run <= discontinue
        dp[i[keep], j[keep]] = best[keep]
        back[i[keep], j[keep]] = step[keep]
    return dp, back


def mpdp_paths_reference(score: np.ndarray, discontinue: int, min_score: float, max_paths: int) -> list[np.ndarray]:
    """Reference of :func:`mpdp_paths`."""
    score = _float_map(score, "score")
    if score.size == 0:
        return []
    dp, back = _mpdp_tables(score, discontinue, min_score)
    paths = []
    for _ in range(max_paths):
        i, j = (int(k) for k in np.unravel_index(int(np.argmax(dp)), dp.shape))
        if dp[i, j] == -np.inf:
            break
        points = [(i, j)]
        while back[i, j] != -1:
            step = back[i, j]
            pi, pj = i - _STEP_ROWS[step], j - _STEP_COLS[step]
            if dp[pi, pj] == -np.inf:
                break
            i, j = pi, pj
            points.append((i, j))
        path = _as_path(points[::-1])
        dp[path[0, 0]:path[-1, 0] + 1, path[0, 1]:path[-1, 1] + 1] = -np.inf
        paths.append(path)
    return paths


def mpdp_paths(score: np.ndarray, discontinue: int, min_score: float, max_paths: int) -> list[np.ndarray]:
    """Matching paths of the mPDP dynamic programme on a non-negative ``(Q, R)`` score map.

    For ``i, j >= 1``: ``dp[i, j] = max(dp[i-1, j-1] + s, dp[i-1, j] + s/2, dp[i, j-1] + s/2)`` (first
    maximum wins), ``s = score[i, j]``; a cell with ``s < min_score`` extends the unmatched run of its
    predecessor, and a cell whose run exceeds ``discontinue`` starts a new path (``dp = s``). Then up to
    ``max_paths`` times: back-track from the first maximum of ``dp`` (row-major) until a masked cell and mask
    the path's bounding box. Returns the paths in the order found.
    """
    score = _float_map(score, "score")
    kernel = _kernel("mpdp_paths")
    if kernel is None:
        return mpdp_paths_reference(score, discontinue, min_score, max_paths)
    return _split_paths(*kernel(score, discontinue, min_score, max_paths))


# ------------------------------------------------------------------------------------------ temporal network


def _tn_edges(top_cols: np.ndarray, top_sims: np.ndarray, max_step: int, min_sim: float):
    """Edges ``(src, dst, weight)`` of the temporal network sorted by (dst, src); node = row * k + rank."""
    rows, k = top_cols.shape
    src, dst, weight = [], [], []
    for qi in range(rows):
        cols_i = top_cols[qi]
        reached = np.zeros(0, dtype=np.int64)  # columns reached from row qi at smaller row steps
        for qj in range(qi + 1, min(rows, qi + max_step)):
            cols_j = top_cols[qj]
            diff = cols_j[:, None] - cols_i[None, :]  # (dst rank, src rank)
            valid = (diff > 0) & (diff < max_step) & (top_sims[qj] >= min_sim)[:, None]
            between = (reached > cols_i[None, :, None]) & (reached < cols_j[:, None, None])
            valid &= ~between.any(axis=-1)
            r, c = np.nonzero(valid)
            src.append(qi * k + c)
            dst.append(qj * k + r)
            weight.append(top_sims[qj, r])
            reached = np.union1d(reached, cols_j[r])
    sources, targets, weights = (np.concatenate(a) if a else np.zeros(0) for a in (src, dst, weight))
    order = np.lexsort((sources, targets))
    return sources[order].astype(np.int64), targets[order].astype(np.int64), weights[order].astype(np.float64)


def tn_paths_reference(
    top_cols: np.ndarray, top_sims: np.ndarray, max_step: int, min_sim: float, num_paths: int
) -> list[np.ndarray]:
    """Reference of :func:`tn_paths`: the longest-path recurrence one row of nodes at a time."""
    top_cols = np.ascontiguousarray(top_cols, dtype=np.int64)
    top_sims = np.ascontiguousarray(top_sims, dtype=np.float64)
    rows, k = top_cols.shape
    if rows * k == 0:
        return []
    src, dst, weight = _tn_edges(top_cols, top_sims, max_step, min_sim)
    row_start = np.searchsorted(dst, np.arange(rows + 1) * k)
    dist = np.zeros(rows * k)
    pred = np.full(rows * k, -1)
    paths = []
    for _ in range(num_paths):
        dist[:], pred[:] = 0.0, -1
        for q in range(rows):
            lo, hi = row_start[q], row_start[q + 1]
            if lo == hi:
                continue
            cand = dist[src[lo:hi]] + weight[lo:hi]
            order = np.lexsort((src[lo:hi], -cand, dst[lo:hi]))  # per node: best, then smallest source
            first = order[np.unique(dst[lo:hi][order], return_index=True)[1]]
            extend = cand[first] > 0.0
            nodes = dst[lo + first[extend]]
            dist[nodes] = cand[first[extend]]
            pred[nodes] = lo + first[extend]
        node = int(np.argmax(dist))
        if not dist[node] > 0.0:
            break
        points = [(node // k, top_cols.flat[node])]
        while pred[node] >= 0:
            edge = pred[node]
            weight[edge] = 0.0
            node = src[edge]
            points.append((node // k, top_cols.flat[node]))
        paths.append(_as_path(points[::-1]))
    return paths


def tn_paths(
    top_cols: np.ndarray, top_sims: np.ndarray, max_step: int, min_sim: float, num_paths: int
) -> list[np.ndarray]:
    """Longest paths of the temporal network over each query frame's top-k reference frames.

    ``top_cols`` (int64) and ``top_sims`` (float64) are ``(Q, k)``: row q's k best reference frames and their
    similarities. Node ``(q, rank)`` links to ``(q', rank')`` when ``0 < q' - q < max_step``,
    ``0 < col' - col < max_step``, ``sim' >= min_sim`` and no reference frame already reached from row q at a
    smaller row step lies strictly between the two columns; the edge weighs ``sim'``. ``num_paths`` times:
    take the maximum-weight path (a node continues its best predecessor only when that gives a positive
    weight; ties go to the smaller node index ``q * k + rank``), stop when no positive path is left, and set
    its edge weights to 0. Returns the paths as ``(q, reference frame)`` points.
    """
    top_cols = np.ascontiguousarray(top_cols, dtype=np.int64)
    top_sims = np.ascontiguousarray(top_sims, dtype=np.float64)
    if top_cols.ndim != 2 or top_cols.shape != top_sims.shape:
        raise ValueError(
            f"top_cols and top_sims must be (Q, k) arrays of the same shape, got {top_cols.shape} and {top_sims.shape}"
        )
    kernel = _kernel("tn_paths")
    if kernel is None:
        return tn_paths_reference(top_cols, top_sims, max_step, min_sim, num_paths)
    return _split_paths(*kernel(top_cols, top_sims, max_step, min_sim, num_paths))
