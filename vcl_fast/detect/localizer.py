"""Copied-segment detection in similarity maps with YOLOX, as the paper's inference code does it.

A (Q, R) map longer than ``chunk_length`` frames on an axis is cut into chunks of ``chunk_length`` frames
(the last chunk holds the remainder); every query-chunk x reference-chunk tile is rendered to S x S
(``vcl_fast.detect.render``), run through the detector and decoded: x = reference axis (columns),
y = query axis (rows), x scaled by R_tile / S and y by Q_tile / S, then the tile offsets are added back.
A detector trained on short maps finds copies only where they are a fair share of its tile, so it carries a
shorter ``chunk_length`` with a ``chunk_overlap``: chunks then start every ``chunk_length - chunk_overlap``
frames (the last one ends with the map, all of full length), so a copy near a seam is whole in some tile, and the
pieces of a copy longer than a tile are joined (:func:`join_tile_pieces`). A tile holding no cell at the lowest
cosine floor is not run (no box from it could pass the floor alone).

Detections are kept when objectness x class probability >= ``conf_threshold`` and go through class-agnostic
NMS (``nms_threshold``) per tile, ranked by that confidence, as in the reference. The reported score is the
objectness, as in the reference code (``output[:, :5]`` of YOLOX's ``postprocess``). One deviation: boxes
are clipped to their tile (the reference lets them run past the map ends, where nothing can match). One
addition, off by default (-1): with ``min_similarity`` above -1, a detection is kept only when some cell of the map
inside its box reaches that cosine (a copy holds at least one near-duplicate frame pair; the floor is a
property of the extractor, calibrated on held-out pairs and carried in an exported model's manifest).
The floor may be lower for confident detections: with ``confident_similarity`` above -1, a detection scored
at least ``confident_score`` is also kept when its box reaches that lower cosine (copies under heavy edits
such as picture-in-picture hold no near-duplicate frame pair, but the detector sees their line; weak
detections still need the full floor). It is calibrated with the floor.
A second addition, also off by default: with ``extent_similarity`` above -1, each kept box is fitted to the map
(:func:`fit_extents`): its query and reference extents become the runs of frames around the box's best cell
whose best similarity reaches that cosine (the detector places copies well but cuts their extents short or
long, most of all on maps far from square). Like the floor it is calibrated per extractor and carried in the
manifest.
A third addition, also off by default: with ``transpose_fusion_iou`` above -1, the detector also sees every map
transposed (queries and references swapped: the same copies, mirrored) and :func:`fuse_views` merges the two
views' boxes (weighted box fusion: a box of one view and the best-scored box of the other at that IoU or more
become their score-weighted mean, scored by the mean of the two scores; a box only one view found keeps half
its score), then NMS again. It makes the detections the same whichever video is the query, and is calibrated
(with the floors, whose ``confident_score`` it rescales) and carried in the manifest like them.
A fourth addition, also off by default (-1): with ``merge_overlap`` in (0, 1], after the floors, a box whose
intersection with a better-scored one covers that share of the smaller box merges into it (their union, the
better score; :func:`merge_overlapping`): the detector reports a copy that spans both videos (a whole video
re-uploaded) as two boxes overlapping by about half, which NMS keeps. Calibrated and carried like the floors.
A last step, also off by default (0): ``query_margin`` and ``reference_margin`` move both ends of every kept box
out by that many frames on the query and on the reference axis (in, for a negative margin; by at most a quarter
of the box's extent, so that no box vanishes), within the map. They correct the detector's bias at a copy's
ends, which depends on the videos: with references of 12 s and more its boxes end about half a frame short on
the query axis (a copy cut into other footage) and half a frame long on the reference axis (whose neighbouring
frames, the copy's own context, still look alike); with 5 s references they end short on both
(docs/model_card.md, "Box margins"). Calibrated and carried in the manifest like the floors.

Everything here is in frame units (``vcl_fast.api.frames_to_seconds`` converts on each video's timestamps).
Torch-free: the model is any callable ``run(images float32 (B, 3, S, S)) -> raw outputs (B, A, 5 + C)``.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np

from vcl_fast.detect.decode import STRIDES, decode_raw_outputs
from vcl_fast.detect.render import render_maps
from vcl_fast.runtime.specs import CALIBRATED_FIELDS, TILING_FIELDS, check_calibrated, check_tiling

if TYPE_CHECKING:
    from vcl_fast.ops import LazySimilarityMap

Runner = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class DetectionSettings:
    """Inference settings; defaults are the paper's (640 input, 1,200-frame chunks, conf 0.1, NMS 0.3)."""

    input_size: int = 640
    conf_threshold: float = 0.1
    nms_threshold: float = 0.3
    chunk_length: int = 1200
    chunk_overlap: int = 0  # frames neighbouring chunks share (0: the paper's disjoint chunks)
    batch_size: int = 16  # tiles rendered and run per call of the runner
    min_similarity: float = -1.0  # keep a detection only if its box holds a cell >= this cosine (-1: all)
    confident_similarity: float = -1.0  # ... or one >= this lower cosine when scored >= confident_score (-1: off)
    confident_score: float = 1.0  # detector score (objectness, 0-1) from which confident_similarity applies
    extent_similarity: float = -1.0  # fit box extents to the frames >= this cosine (-1: boxes as detected)
    extent_margin: float = 0.25  # fit_extents looks this fraction of the box size beyond each side
    extent_gap: int = 1  # fit_extents bridges runs of at most this many frames below extent_similarity
    transpose_fusion_iou: float = -1.0  # also detect on the transposed map, fuse boxes at this IoU (-1: off)
    merge_overlap: float = -1.0  # boxes overlapping a better one by this share of the smaller become their union
    query_margin: float = 0.0  # frames added to each end of a box's query extent (negative: removed; 0: off)
    reference_margin: float = 0.0  # the same on the reference axis

    def __post_init__(self) -> None:
        if self.input_size <= 0 or self.input_size % max(STRIDES) != 0:
            raise ValueError(f"input_size must be a positive multiple of {max(STRIDES)}, got {self.input_size}")
        if not 0.0 <= self.conf_threshold <= 1.0 or not 0.0 <= self.nms_threshold <= 1.0:
            raise ValueError(f"conf_threshold and nms_threshold must lie in [0, 1], got "
                             f"{self.conf_threshold} and {self.nms_threshold}")
        check_calibrated(self)
        if self.extent_margin < 0 or self.extent_gap < 0:
            raise ValueError(f"extent_margin and extent_gap must be >= 0, got {self.extent_margin}, {self.extent_gap}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        check_tiling(self)


def detection_settings(spec, overrides: Mapping[str, Any] | None = None) -> DetectionSettings:
    """The settings for a detector of ``spec`` (a ``vcl_fast.runtime.specs.DetectorSpec``): its input size, its
    calibrated post-processing (floors, extent cosine, ...) and its tiling, then ``overrides`` (any other field;
    ValueError for ``input_size`` or other strides)."""
    from vcl_fast.config import replace_fields

    overrides = dict(overrides or {})
    if tuple(spec.strides) != STRIDES:
        raise ValueError(f"the detector's strides {tuple(spec.strides)} are not {STRIDES}")
    if "input_size" in overrides:
        raise ValueError("input_size is the detector's own; it cannot be overridden")
    carried = {name: getattr(spec, name) for name in (*CALIBRATED_FIELDS, *TILING_FIELDS)}
    return replace_fields(DetectionSettings(input_size=spec.input_size, **carried), **overrides)


def chunk_spans(length: int, chunk_length: int = 1200, overlap: int = 0) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` covering ``range(length)``: without ``overlap``, full chunks and the remainder last
    (the paper's); with it, chunks of ``chunk_length`` frames starting every ``chunk_length - overlap`` frames, the
    last one ending at ``length`` (one chunk of ``length`` frames when that is not longer)."""
    if overlap == 0 or length <= chunk_length:
        return [(start, min(start + chunk_length, length)) for start in range(0, length, chunk_length)]
    starts = [*range(0, length - chunk_length, chunk_length - overlap), length - chunk_length]
    return [(start, start + chunk_length) for start in starts]


def tile_floor(settings: DetectionSettings) -> float:
    """The lowest cosine a kept box must hold somewhere (the floor, or the lower floor of confident detections);
    -inf without a floor. A tile whose cells are all below it is not run."""
    if settings.min_similarity <= -1.0:
        return -np.inf
    if settings.confident_similarity <= -1.0:
        return settings.min_similarity
    return min(settings.min_similarity, settings.confident_similarity)


# Boxes of tiles that share frames are pieces of one copy when they overlap on both axes by this share of the
# shorter extent (pieces of a copy in half-overlapping tiles: about 0.5; one copy seen by two tiles: about 1).
TILE_JOIN_SHARE = 0.3


def join_tile_pieces(boxes: np.ndarray, tiles: np.ndarray, min_share: float = TILE_JOIN_SHARE) -> np.ndarray:
    """(N, 5) float32 frame boxes ``[q_s, r_s, q_e, r_e, score]`` of one map, found in the tiles ``tiles`` (N,) ->
    (M, 5) with the pieces of each copy joined: boxes of different tiles that overlap on both axes by
    ``min_share`` or more of the shorter extent become their union, scored by the best of them, until no two such
    remain (a union may reach further pieces). Each union stands where its first box stood (boxes that join
    nothing keep their order)."""
    groups: list[tuple[int, np.ndarray, set[int]]] = []  # (index of the first box, union, tiles)
    for index, (box, tile) in enumerate(zip(np.asarray(boxes, dtype=np.float32).reshape(-1, 5),
                                            np.asarray(tiles).tolist())):
        first, joined, members = index, box.copy(), {int(tile)}
        while True:
            touching = [not tiles_of & members and _axis_share(joined, other) >= min_share
                        for _, other, tiles_of in groups]
            if not any(touching):
                break
            for (other_first, other, tiles_of), joins in zip(groups, touching):
                if joins:
                    first = min(first, other_first)
                    joined[:2] = np.minimum(joined[:2], other[:2])
                    joined[2:4] = np.maximum(joined[2:4], other[2:4])
                    joined[4] = max(joined[4], other[4])
                    members |= tiles_of
            groups = [group for group, joins in zip(groups, touching) if not joins]
        groups.append((first, joined, members))
    groups.sort(key=lambda group: group[0])
    return np.array([union for _, union, _ in groups], dtype=np.float32).reshape(-1, 5)


def _axis_share(a: np.ndarray, b: np.ndarray) -> float:
    """The smaller, over the query and the reference axis, of the share of the shorter extent that boxes ``a`` and
    ``b`` (``[q_s, r_s, q_e, r_e, ...]``) have in common."""
    shares = []
    for start, end in ((0, 2), (1, 3)):
        shorter = min(a[end] - a[start], b[end] - b[start])
        common = min(a[end], b[end]) - max(a[start], b[start])
        shares.append(common / shorter if shorter > 0 else 0.0)
    return float(min(shares))


@dataclass(frozen=True)
class _Tile:
    pair: int
    q0: int
    r0: int
    q_len: int
    r_len: int
    source: Any  # the pair's map: a numpy array or a LazySimilarityMap

    def view(self) -> np.ndarray:
        """The tile's (q_len, r_len) block of its map (computed now for a LazySimilarityMap)."""
        return self.source[self.q0:self.q0 + self.q_len, self.r0:self.r0 + self.r_len]


def _tiles(maps: Sequence, chunk_length: int, overlap: int) -> list[_Tile]:
    tiles = []
    for pair, m in enumerate(maps):
        if m.ndim != 2:
            raise ValueError(f"map {pair} must be a 2-D (Q, R) array, got shape {m.shape}")
        for q0, q1 in chunk_spans(m.shape[0], chunk_length, overlap):
            for r0, r1 in chunk_spans(m.shape[1], chunk_length, overlap):
                tiles.append(_Tile(pair, q0, r0, q1 - q0, r1 - r0, m))
    return tiles


def _tile_detections(raw: np.ndarray, tiles: Sequence[_Tile], settings: DetectionSettings
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Thresholded detections of one batch: boxes (N, 4) frames within their tile, confidence (N,),
    objectness (N,), index of the tile in the batch (N,)."""
    boxes, obj, cls = decode_raw_outputs(raw, settings.input_size)
    conf = obj * cls.max(axis=-1)
    tile_idx, anchor_idx = np.nonzero(conf >= settings.conf_threshold)
    cx, cy, w, h = np.moveaxis(boxes[tile_idx, anchor_idx], -1, 0)
    sizes = np.array([(t.q_len, t.r_len) for t in tiles], dtype=np.float32).reshape(-1, 2)[tile_idx]
    q_len, r_len = sizes[:, 0], sizes[:, 1]
    q_scale, r_scale = q_len / settings.input_size, r_len / settings.input_size
    frames = np.stack([(cy - h / 2) * q_scale, (cx - w / 2) * r_scale,
                       (cy + h / 2) * q_scale, (cx + w / 2) * r_scale], axis=1)
    np.clip(frames, 0, np.stack([q_len, r_len, q_len, r_len], axis=1), out=frames)
    ok = (frames[:, 2] > frames[:, 0]) & (frames[:, 3] > frames[:, 1])
    return frames[ok], conf[tile_idx, anchor_idx][ok], obj[tile_idx, anchor_idx][ok], tile_idx[ok]


def localize_maps(maps: Sequence[np.ndarray | LazySimilarityMap], run: Runner, settings: DetectionSettings = DetectionSettings()
                  ) -> list[np.ndarray]:
    """Detect copies in similarity maps (rows = query frames, columns = reference frames).

    Returns one float32 array (N_b, 5) per map: ``[q_start, r_start, q_end, r_end, score]`` in frames,
    ordered by decreasing confidence. All tiles of all maps (and of their transposes, with
    ``transpose_fusion_iou``) are batched together (``settings.batch_size``). A map may be a
    :class:`~vcl_fast.ops.LazySimilarityMap`: its tiles are computed batch by batch and only the boxes' blocks
    are read afterwards, so no whole map is held.
    """
    from vcl_fast.ops import LazySimilarityMap

    maps = [m if isinstance(m, LazySimilarityMap) else np.asarray(m) for m in maps]
    found = with_transposed_view(maps, lambda views: detect_maps(views, run, settings), settings)
    return [postprocess(f, m, settings) for f, m in zip(found, maps)]


def detect_maps(maps: Sequence[np.ndarray], run: Runner, settings: DetectionSettings) -> list[np.ndarray]:
    """The detector's boxes per map (N_b, 5) float32 frames, after the per-tile NMS and before
    :func:`postprocess`, by decreasing confidence."""
    from vcl_fast.ops import segment_nms

    tiles = _tiles(maps, settings.chunk_length, settings.chunk_overlap)
    floor = tile_floor(settings)
    views = ((index, tile.view()) for index, tile in enumerate(tiles))
    runnable = ((index, view) for index, view in views if float(np.max(view)) >= floor)
    parts = []
    while batch := list(itertools.islice(runnable, settings.batch_size)):
        indices = np.array([index for index, _ in batch], dtype=np.int64)
        raw = np.asarray(run(render_maps([view for _, view in batch], settings.input_size)))
        if raw.ndim != 3 or raw.shape[0] != len(batch):
            raise ValueError(f"the detector returned shape {raw.shape} for {len(batch)} images; "
                             "expected raw outputs (B, A, 5 + num_classes)")
        frames, conf, obj, idx = _tile_detections(raw, [tiles[i] for i in indices], settings)
        parts.append((frames, conf, obj, indices[idx]))
    if not parts:
        return [np.zeros((0, 5), np.float32) for _ in maps]
    frames, conf, obj, tile_ids = (np.concatenate(p) for p in zip(*parts))
    keep = np.asarray(segment_nms(frames, conf, settings.nms_threshold, groups=tile_ids), dtype=np.int64)
    keep = keep[np.argsort(-conf[keep], kind="stable")]
    offsets = np.array([(t.q0, t.r0, t.q0, t.r0) for t in tiles], dtype=np.float32)[tile_ids[keep]]
    found = np.concatenate([frames[keep] + offsets, obj[keep, None]], axis=1).astype(np.float32)
    pair_of_kept = np.array([t.pair for t in tiles], dtype=np.int64)[tile_ids[keep]]
    return boxes_per_map(found, pair_of_kept, tile_ids[keep], len(maps))


def boxes_per_map(found: np.ndarray, pair_of_kept: np.ndarray, tile_of_kept: np.ndarray, num_maps: int
                  ) -> list[np.ndarray]:
    """The (N, 5) float32 boxes of all maps, by decreasing confidence, with the map (pair) and the tile each came
    from -> per map its boxes with the pieces of each copy joined (:func:`join_tile_pieces`)."""
    return [join_tile_pieces(found[pair_of_kept == pair], tile_of_kept[pair_of_kept == pair])
            for pair in range(num_maps)]


def with_transposed_view(maps: Sequence, detect: Callable[[list], list[np.ndarray]], settings: DetectionSettings
                         ) -> list[np.ndarray]:
    """``detect(maps)`` (per map (N, 5) float32 frame boxes), or with ``settings.transpose_fusion_iou`` on,
    ``detect`` over the maps and their transposes (numpy arrays or torch tensors) in one call, fused map by map
    (:func:`fuse_views`)."""
    maps = list(maps)
    if settings.transpose_fusion_iou <= -1.0:
        return detect(maps)
    found = detect(maps + [m.T for m in maps])
    return [fuse_views(direct, swap_axes(transposed), settings.transpose_fusion_iou, settings.nms_threshold)
            for direct, transposed in zip(found[:len(maps)], found[len(maps):])]


def swap_axes(boxes: np.ndarray) -> np.ndarray:
    """(N, 5) boxes of a transposed map ``[r_start, q_start, r_end, q_end, score]`` -> the map's own order."""
    return boxes[:, [1, 0, 3, 2, 4]]


def fuse_views(first: np.ndarray, second: np.ndarray, iou_threshold: float, nms_threshold: float) -> np.ndarray:
    """Weighted box fusion of two views' (N, 5) boxes ``[q_start, r_start, q_end, r_end, score]`` of one map.

    In decreasing score, each box joins the fused box it overlaps most among those led by a box of the other view
    and not yet joined, when that IoU is >= ``iou_threshold``; else it leads a new one. A fused box
    is the score-weighted mean of its (one or two) boxes, scored by the mean of the two views' scores (0 for a
    view without a box there). Returns (M, 5) float32 by decreasing score after NMS at ``nms_threshold``."""
    from vcl_fast.data.boxes import box_iou
    from vcl_fast.ops import segment_nms

    boxes = np.concatenate([first, second]).astype(np.float64).reshape(-1, 5)
    view = np.repeat([0, 1], [len(first), len(second)])
    order = np.argsort(-boxes[:, 4], kind="stable")
    groups: list[list[int]] = []
    for i in order:
        open_groups = [g for g in groups if len(g) == 1 and view[g[0]] != view[i]]
        if open_groups:
            leaders = boxes[[g[0] for g in open_groups]]
            overlap = box_iou(boxes[i], leaders)
            best = int(np.argmax(overlap))
            if overlap[best] >= iou_threshold:
                open_groups[best].append(i)
                continue
        groups.append([i])
    if not groups:
        return np.zeros((0, 5), np.float32)
    fused = np.empty((len(groups), 5))
    for row, members in zip(fused, groups):
        weights = boxes[members, 4]
        row[:4] = weights @ boxes[members, :4] / max(weights.sum(), 1e-12)
        row[4] = weights.sum() / 2
    fused = fused.astype(np.float32)
    fused = fused[np.argsort(-fused[:, 4], kind="stable")]
    keep = np.sort(np.asarray(segment_nms(fused[:, :4], fused[:, 4], nms_threshold), dtype=np.int64))
    return fused[keep]


def postprocess(detections: np.ndarray, similarity, settings: DetectionSettings) -> np.ndarray:
    """The (N, 5) frame detections of one map ((Q, R) numpy array or torch tensor) after the cosine floor, the
    extent fit and the margins of ``settings``."""
    kept = drop_weak_detections(detections, similarity, settings.min_similarity, settings.confident_similarity,
                                settings.confident_score)
    if settings.merge_overlap > -1.0:
        kept = merge_overlapping(kept, settings.merge_overlap)
    if settings.extent_similarity > -1.0:
        kept = fit_extents(kept, similarity, settings.extent_similarity, settings.extent_margin, settings.extent_gap)
    if settings.query_margin == 0.0 and settings.reference_margin == 0.0:
        return kept
    return add_margins(kept, similarity.shape, settings.query_margin, settings.reference_margin)


def merge_overlapping(detections: np.ndarray, min_overlap: float) -> np.ndarray:
    """(N, 5) float32 frame detections ``[q_s, r_s, q_e, r_e, score]`` with each box that overlaps a better-scored
    kept one by ``min_overlap`` or more of the smaller of the two (:func:`~vcl_fast.data.boxes.box_overlap`)
    merged into it: the kept box becomes their union and keeps its score. By decreasing score, as given."""
    from vcl_fast.data.boxes import box_overlap

    boxes = np.array(detections, dtype=np.float32).reshape(-1, 5)
    kept: list[np.ndarray] = []
    for box in boxes[np.argsort(-boxes[:, 4], kind="stable")]:
        overlap = box_overlap(box, kept)
        if len(kept) and overlap.max() >= min_overlap:
            into = kept[int(np.argmax(overlap))]
            into[:2] = np.minimum(into[:2], box[:2])
            into[2:4] = np.maximum(into[2:4], box[2:4])
        else:
            kept.append(box.copy())
    return np.array(kept, dtype=np.float32).reshape(-1, 5)


def add_margins(detections: np.ndarray, shape: tuple[int, int], query_margin: float, reference_margin: float
                ) -> np.ndarray:
    """(N, 5) float32 frame detections ``[q_s, r_s, q_e, r_e, score]`` with both ends of each query extent moved
    out by ``query_margin`` frames and of each reference extent by ``reference_margin`` (in, when negative, by
    at most a quarter of that extent), clipped to a map of ``shape`` (Q, R); scores and order unchanged."""
    boxes = np.array(detections, dtype=np.float32).reshape(-1, 5)
    for axis, margin, length in ((0, query_margin, shape[0]), (1, reference_margin, shape[1])):
        start, end = boxes[:, axis], boxes[:, axis + 2]
        step = np.maximum(np.float32(margin), (start - end) / 4)
        boxes[:, axis] = np.clip(start - step, 0, length)
        boxes[:, axis + 2] = np.clip(end + step, 0, length)
    return boxes


def box_peaks(detections: np.ndarray, similarity) -> np.ndarray:
    """(N,) float64 highest value of ``similarity`` ((Q, R) numpy array or torch tensor) over the cells each
    (N, >= 4) ``[q_start, r_start, q_end, r_end, ...]`` frame box touches (-inf for a box outside the map)."""
    q_len, r_len = similarity.shape
    peaks = np.full(len(detections), -np.inf)
    for i, (q0, r0, q1, r1) in enumerate(np.asarray(detections, dtype=np.float64)[:, :4]):
        rows = slice(max(int(np.floor(q0)), 0), min(int(np.ceil(q1)), q_len))
        cols = slice(max(int(np.floor(r0)), 0), min(int(np.ceil(r1)), r_len))
        if rows.start < rows.stop and cols.start < cols.stop:
            peaks[i] = float(similarity[rows, cols].max())
    return peaks


def drop_weak_detections(detections: np.ndarray, similarity, min_similarity: float,
                         confident_similarity: float = -1.0, confident_score: float = 1.0) -> np.ndarray:
    """The rows of (N, 5) frame ``detections`` whose box holds a cell of ``similarity`` >= ``min_similarity``,
    or >= ``confident_similarity`` for a row scored (column 4) >= ``confident_score`` (all rows when
    ``min_similarity`` <= -1, the lowest cosine; no second floor when ``confident_similarity`` <= -1)."""
    if min_similarity <= -1.0 or not len(detections):
        return detections
    peaks = box_peaks(detections, similarity)
    kept = peaks >= min_similarity
    if confident_similarity > -1.0:
        kept |= (peaks >= confident_similarity) & (detections[:, 4] >= confident_score)
    return detections[kept]


def _run_around(profile: np.ndarray, peak: int, threshold: float, max_gap: int) -> tuple[int, int]:
    """``[start, stop)`` of the run of ``profile`` >= ``threshold`` that holds index ``peak`` (itself >=
    ``threshold``), runs of at most ``max_gap`` values below it bridged."""
    above = np.flatnonzero(profile >= threshold)
    breaks = np.flatnonzero(np.diff(above) > max_gap + 1)  # the run ends after above[b] for b in breaks
    run = np.searchsorted(breaks, np.searchsorted(above, peak))
    first = 0 if run == 0 else breaks[run - 1] + 1
    last = breaks[run] if run < len(breaks) else len(above) - 1
    return int(above[first]), int(above[last]) + 1


def fit_extents(detections: np.ndarray, similarity, threshold: float, margin: float = 0.25, max_gap: int = 1
                ) -> np.ndarray:
    """(N, 5) frame detections ``[q_s, r_s, q_e, r_e, score]`` with their extents fitted to ``similarity``
    ((Q, R) numpy array or torch tensor; only the boxes' windows are read): float32, in the same order, the
    exact duplicates the fit makes dropped (the first kept).

    Each box is widened by ``margin`` x its size on every side (within the map); in that window, the query
    extent becomes the run of rows whose best cell reaches ``threshold`` around the row of the window's best
    cell (runs of at most ``max_gap`` rows below it bridged), and the reference extent likewise over columns.
    A box whose window holds no cell >= ``threshold`` is kept as detected."""
    detections = np.asarray(detections, dtype=np.float32).reshape(-1, 5)
    q_len, r_len = similarity.shape
    fitted = detections.copy()
    for box in fitted:
        q0, r0, q1, r1 = (float(v) for v in box[:4])
        dq, dr = (q1 - q0) * margin, (r1 - r0) * margin
        a0, a1 = max(int(np.floor(q0 - dq)), 0), min(int(np.ceil(q1 + dq)), q_len)
        b0, b1 = max(int(np.floor(r0 - dr)), 0), min(int(np.ceil(r1 + dr)), r_len)
        window = similarity[a0:a1, b0:b1]
        window = np.asarray(window.float().cpu() if hasattr(window, "cpu") else window, dtype=np.float32)
        if window.size == 0 or not window.max() >= threshold:
            continue
        row, col = (int(i) for i in np.unravel_index(int(np.argmax(window)), window.shape))
        qs, qe = _run_around(window.max(axis=1), row, threshold, max_gap)
        rs, re = _run_around(window.max(axis=0), col, threshold, max_gap)
        box[:4] = a0 + qs, b0 + rs, a0 + qe, b0 + re
    _, first = np.unique(fitted[:, :4], axis=0, return_index=True)
    return fitted[np.sort(first)]
