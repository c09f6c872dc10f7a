"""Detection in similarity maps: chunking, decoding, thresholds, NMS, offsets (with fake runners)."""
import numpy as np
import pytest

from vcl_fast.detect.decode import anchor_points
from vcl_fast.data.boxes import box_iou, box_overlap
from vcl_fast.detect.localizer import (DetectionSettings, add_margins, box_peaks, chunk_spans, detect_maps,
                                       drop_weak_detections, fit_extents, fuse_views, join_tile_pieces,
                                       localize_maps, merge_overlapping, postprocess, swap_axes, tile_floor)

S = 64
ANCHORS = anchor_points(S)


def encode(cx, cy, w, h, obj_logit=6.0, cls_logit=6.0):
    """Raw outputs of the stride-8 anchor holding (cx, cy) that decode to the box [cx, cy, w, h] (pixels)."""
    on_anchor = (ANCHORS[:, 2] == 8) & (ANCHORS[:, 0] == int(cx // 8)) & (ANCHORS[:, 1] == int(cy // 8))
    index = int(np.nonzero(on_anchor)[0][0])
    gx, gy = ANCHORS[index, :2]
    return index, [cx / 8 - gx, cy / 8 - gy, np.log(w / 8), np.log(h / 8), obj_logit, cls_logit]


def bright_region_runner(images):
    """Fake detector: one box around the pixels above 0.5 of each image, if any."""
    raw = np.full((len(images), len(ANCHORS), 6), -12.0, np.float32)
    for b, image in enumerate(images):
        ys, xs = np.nonzero(image[0] > 0.5)
        if len(ys):
            x1, x2, y1, y2 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
            index, values = encode((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1)
            raw[b, index] = values
    return raw


def constant_runner(rows):
    """Fake detector returning the same hand-made raw rows {anchor: values} for every image."""
    def run(images):
        raw = np.full((len(images), len(ANCHORS), 6), -12.0, np.float32)
        for index, values in rows.items():
            raw[:, index] = values
        return raw
    return run


def test_chunk_spans():
    assert chunk_spans(0) == []
    assert chunk_spans(1) == [(0, 1)]
    assert chunk_spans(1200) == [(0, 1200)]
    assert chunk_spans(2500) == [(0, 1200), (1200, 2400), (2400, 2500)]
    assert chunk_spans(7, 3) == [(0, 3), (3, 6), (6, 7)]


@pytest.mark.parametrize("length", [0, 1, 63, 64, 65, 96, 100, 1000])
def test_overlapping_chunk_spans_are_full_and_cover_the_map(length):
    spans = chunk_spans(length, 64, 32)
    if length <= 64:
        assert spans == ([(0, length)] if length else [])
        return
    assert all(stop - start == 64 for start, stop in spans)  # every tile at the scale the detector knows
    assert spans[0][0] == 0 and spans[-1][1] == length
    assert all(b[0] - a[0] <= 32 for a, b in zip(spans, spans[1:]))  # each shares >= 32 frames with the next
    assert chunk_spans(100, 64, 32) == [(0, 64), (32, 96), (36, 100)]


def test_tile_floor_is_the_lowest_floor():
    assert tile_floor(DetectionSettings(input_size=S)) == -np.inf
    assert tile_floor(DetectionSettings(input_size=S, min_similarity=0.9)) == 0.9
    assert tile_floor(DetectionSettings(input_size=S, min_similarity=0.9, confident_similarity=0.8)) == 0.8


def test_tiles_below_the_floor_are_not_run():
    sim = np.full((130, 70), 0.5, np.float32)
    sim[100:110, 10:20] = 0.95  # in the last query chunk only
    shown = []

    def run(images):
        shown.append(len(images))
        return bright_region_runner(images)

    floored = DetectionSettings(input_size=S, chunk_length=50, min_similarity=0.9, batch_size=2)
    found = localize_maps([sim], run, floored)[0]
    assert shown == [1]  # of the 3 x 2 tiles, the one holding the copy
    np.testing.assert_allclose(found[:, :4], [[100, 10, 110, 20]], atol=2.5)  # through a bicubic resize
    shown.clear()
    localize_maps([sim], run, DetectionSettings(input_size=S, chunk_length=50, batch_size=4))
    assert shown == [4, 2]  # no floor: every tile


def test_join_tile_pieces_chains_the_pieces_of_one_copy():
    pieces = np.array([[32, 30, 96, 94, 0.9],   # the middle tile's piece, best scored, first
                       [0, 0, 64, 62, 0.5],      # overlaps it by half on both axes
                       [64, 62, 110, 108, 0.7],  # the next tile's
                       [0, 0, 20, 20, 0.8],      # another box of the first tile: not a piece of the same copy
                       [40, 200, 60, 220, 0.6]], np.float32)  # the same query span, another reference span
    joined = join_tile_pieces(pieces, np.array([1, 0, 2, 0, 3]))
    np.testing.assert_allclose(joined, [[0, 0, 110, 108, 0.9], [0, 0, 20, 20, 0.8], [40, 200, 60, 220, 0.6]])
    bridge = join_tile_pieces(np.array([[0, 0, 40, 40, 0.9], [60, 60, 100, 100, 0.8], [20, 20, 80, 80, 0.7]],
                                       np.float32), np.array([0, 2, 1]))
    np.testing.assert_allclose(bridge, [[0, 0, 100, 100, 0.9]])  # a later piece bridges two
    same_tile = np.array([[0, 0, 40, 40, 0.8], [20, 20, 60, 60, 0.9]], np.float32)  # order kept as given
    np.testing.assert_array_equal(join_tile_pieces(same_tile, np.array([4, 4])), same_tile)
    assert join_tile_pieces(np.zeros((0, 5), np.float32), np.zeros(0, np.int64)).shape == (0, 5)


def test_a_copy_longer_than_a_tile_is_one_box():
    """A 300-frame copy across half-overlapping 64-frame tiles, and a short one at a seam: one box each."""
    sim = np.zeros((400, 420), np.float32)
    diagonal = np.arange(300)
    sim[50 + diagonal, 80 + diagonal] = 1.0
    sim[np.arange(376, 392), np.arange(10, 26)] = 1.0  # across the seam at query frame 384 of the disjoint tiles

    def diagonal_runner(images):  # one box around the bright pixels of each tile, as bright_region_runner
        return bright_region_runner([np.where(image > 0.2, 1.0, 0.0) for image in images])

    settings = DetectionSettings(input_size=S, chunk_length=64, chunk_overlap=32)
    found = localize_maps([sim], diagonal_runner, settings)[0]
    found = found[np.argsort(found[:, 0])]
    np.testing.assert_allclose(found[:, :4], [[50, 80, 350, 380], [376, 10, 392, 26]], atol=2.0)
    disjoint = localize_maps([sim], diagonal_runner, DetectionSettings(input_size=S, chunk_length=64))[0]
    assert len(disjoint) > 2  # without overlap the long copy stays in pieces


def test_planted_box_found_through_chunks():
    sim = np.zeros((2500, 1300), np.float32)
    sim[1500:1800, 300:600] = 1.0  # query chunk 1, reference chunk 0
    sim[2420:2480, 1210:1290] = 1.0  # the remainder chunks of both axes
    calls = []

    def run(images):
        calls.append(len(images))
        return bright_region_runner(images)

    found = localize_maps([sim], run, DetectionSettings(input_size=S, batch_size=4))[0]
    assert sum(calls) == 6 and max(calls) == 4  # 3 x 2 tiles in batches of 4
    boxes = found[np.argsort(found[:, 0])]
    np.testing.assert_allclose(boxes[:, :4], [[1500, 300, 1800, 600], [2420, 1210, 2480, 1290]], atol=1.0)


def test_many_pairs_batched_keep_their_own_detections():
    maps = []
    for k in range(5):
        sim = np.zeros((100 + 10 * k, 80), np.float32)
        sim[10 * k:10 * k + 30, 20:50] = 1.0
        maps.append(sim)
    maps.append(np.zeros((0, 40), np.float32))
    found = localize_maps(maps, bright_region_runner, DetectionSettings(input_size=S, batch_size=2))
    assert len(found) == 6 and found[5].shape == (0, 5)
    for k in range(5):
        assert found[k].shape == (1, 5)
        np.testing.assert_allclose(found[k][0, :4], [10 * k, 20, 10 * k + 30, 50], atol=1.5)


def test_decode_scaling_axes_and_objectness_score():
    # x (columns) = reference, y (rows) = query: a box at x 8..24, y 16..48 px of a 64 x 64 input
    index, values = encode(16, 32, 16, 32, obj_logit=1.0, cls_logit=3.0)
    run = constant_runner({index: values})
    found = localize_maps([np.zeros((128, 32), np.float32)], run, DetectionSettings(input_size=S))[0]
    # query scale 128 / 64 = 2, reference scale 32 / 64 = 0.5
    np.testing.assert_allclose(found[:, :4], [[32, 4, 96, 12]], rtol=1e-5)
    np.testing.assert_allclose(found[0, 4], 1 / (1 + np.exp(-1.0)), rtol=1e-6)  # objectness, not obj x cls


def test_confidence_threshold_uses_objectness_times_class():
    i1, v1 = encode(20, 20, 8, 8, obj_logit=0.0, cls_logit=-1.0)  # 0.5 * 0.269 = 0.134
    i2, v2 = encode(44, 44, 8, 8, obj_logit=0.0, cls_logit=-2.0)  # 0.5 * 0.119 = 0.060
    run = constant_runner({i1: v1, i2: v2})
    found = localize_maps([np.zeros((64, 64), np.float32)], run, DetectionSettings(input_size=S))[0]
    assert len(found) == 1 and found[0, 0] == pytest.approx(16)
    found = localize_maps([np.zeros((64, 64), np.float32)], run,
                          DetectionSettings(input_size=S, conf_threshold=0.05))[0]
    assert len(found) == 2


def test_nms_within_a_tile_keeps_the_most_confident():
    i1, v1 = encode(20, 20, 16, 16, cls_logit=2.0)
    i2, v2 = encode(21, 21, 16, 16, cls_logit=4.0)  # IoU ~0.78 with the first, more confident
    i3, v3 = encode(50, 50, 8, 8, cls_logit=0.0)
    found = localize_maps([np.zeros((64, 64), np.float32)], constant_runner({i1: v1, i2: v2, i3: v3}),
                          DetectionSettings(input_size=S))[0]
    np.testing.assert_allclose(found[:, :2], [[13, 13], [46, 46]], atol=1e-4)  # ordered by confidence


def test_no_nms_across_tiles_and_boxes_clipped_to_tiles():
    index, values = encode(60, 60, 40, 40)  # runs past the bottom-right corner of every tile
    found = localize_maps([np.zeros((128, 64), np.float32)], constant_runner({index: values}),
                          DetectionSettings(input_size=S, chunk_length=64))[0]
    found = found[np.argsort(found[:, 0])]
    np.testing.assert_allclose(found[:, :4], [[40, 40, 64, 64], [104, 40, 128, 64]], atol=1e-4)


def test_runner_with_wrong_output_is_an_error():
    with pytest.raises(ValueError, match="returned shape"):
        localize_maps([np.zeros((10, 10), np.float32)], lambda images: np.zeros((2, 84, 6), np.float32),
                      DetectionSettings(input_size=S))
    with pytest.raises(ValueError, match="raw outputs must have shape"):
        localize_maps([np.zeros((10, 10), np.float32)], lambda images: np.zeros((1, 99, 6), np.float32),
                      DetectionSettings(input_size=S))


@pytest.mark.parametrize("kwargs", [{"input_size": 100}, {"conf_threshold": 1.5}, {"nms_threshold": -0.1},
                                    {"chunk_length": 0}, {"batch_size": 0}, {"chunk_overlap": -1},
                                    {"chunk_length": 64, "chunk_overlap": 64}, {"chunk_length": 64.0},
                                    {"min_similarity": 1.01}, {"min_similarity": -1.5},
                                    {"extent_similarity": 1.5}, {"extent_margin": -0.1}, {"extent_gap": -1},
                                    {"transpose_fusion_iou": 0.0}, {"transpose_fusion_iou": -0.5},
                                    {"transpose_fusion_iou": 1.5}])
def test_bad_settings(kwargs):
    with pytest.raises(ValueError):
        DetectionSettings(**kwargs)


def test_shorter_tiles_than_their_overlap_say_to_set_both():
    with pytest.raises(ValueError, match=r"got 16 and 32 \(a shorter chunk_length needs its own chunk_overlap"):
        DetectionSettings(chunk_length=16, chunk_overlap=32)


def test_torch_runner_runs_a_detector(torch_one_thread):
    torch = pytest.importorskip("torch")
    from vcl_fast.detect.torch_runner import TorchRunner
    from vcl_fast.models import build_detector

    torch.manual_seed(0)
    model = build_detector("micro")
    runner = TorchRunner(model)
    images = np.random.default_rng(0).uniform(-1, 1, (2, 3, S, S)).astype(np.float32)
    raw = runner(images)
    with torch.no_grad():
        np.testing.assert_allclose(raw, model.eval()(torch.from_numpy(images)).numpy(), rtol=1e-5, atol=1e-5)
    found = localize_maps([np.zeros((30, 40), np.float32)], runner,
                          DetectionSettings(input_size=runner.input_size, conf_threshold=0.0))[0]
    assert found.shape[1] == 5 and (found[:, 2] <= 30).all() and (found[:, 3] <= 40).all()


def test_box_peaks_cover_every_touched_cell():
    sim = np.arange(20, dtype=np.float32).reshape(4, 5) / 20
    boxes = np.array([[0, 0, 1, 1], [0.5, 1.2, 1.5, 2.1], [2, 3, 4, 5], [3.9, 0, 4, 0.1], [4, 5, 6, 7]], np.float32)
    expected = [sim[0, 0], sim[1, 2], sim[3, 4], sim[3, 0], -np.inf]  # fractional edges touch their cells
    np.testing.assert_array_equal(box_peaks(boxes, sim), expected)
    assert box_peaks(np.zeros((0, 5), np.float32), sim).shape == (0,)


@pytest.mark.parametrize("floor, kept", [(-1.0, [0, 1]), (0.5, [0, 1]), (0.7, [0]), (0.95, [])])
def test_min_similarity_keeps_boxes_holding_a_near_duplicate(floor, kept):
    sim = np.full((40, 40), 0.2, np.float32)
    sim[5:15, 5:15] = 0.9  # a strong copy
    sim[25:35, 25:35] = 0.6  # a weak, look-alike structure
    detections = np.array([[5, 5, 15, 15, 0.8], [25, 25, 35, 35, 0.9]], np.float32)
    np.testing.assert_array_equal(drop_weak_detections(detections, sim, floor), detections[kept])
    # Through localize_maps: the fake detector boxes the region above 0.5 of each map.
    found = localize_maps([sim[:20, :20], sim[20:, 20:]], bright_region_runner,
                          DetectionSettings(input_size=S, min_similarity=floor))
    assert [len(f) for f in found] == [int(0 in kept), int(1 in kept)]


@pytest.mark.parametrize("floor, confident_floor, confident_score", [
    (0.7, -1.0, 0.5), (0.7, 0.5, 0.85), (0.7, 0.5, 0.9), (0.7, 0.65, 0.0), (-1.0, 0.5, 0.9), (0.95, 0.9, 0.0)])
def test_confident_detections_need_only_the_lower_floor(floor, confident_floor, confident_score):
    rng = np.random.default_rng(3)
    sim = rng.uniform(0.0, 1.0, (30, 30)).astype(np.float32)
    starts = rng.integers(0, 25, (12, 2))
    detections = np.column_stack([starts, starts + rng.integers(1, 6, (12, 2)), rng.uniform(0, 1, 12)])
    detections = detections[:, [0, 1, 2, 3, 4]].astype(np.float32)
    expected = []
    for q0, r0, q1, r1, score in detections:  # plain loop: the box's best cell against the floor for its score
        peak = sim[int(q0):int(q1), int(r0):int(r1)].max()
        needed = confident_floor if confident_floor > -1 and score >= confident_score else floor
        expected.append(floor <= -1 or peak >= min(floor, needed))
    found = drop_weak_detections(detections, sim, floor, confident_floor, confident_score)
    np.testing.assert_array_equal(found, detections[np.array(expected, bool)])
    settings = DetectionSettings(input_size=S, min_similarity=floor, confident_similarity=confident_floor,
                                 confident_score=confident_score)
    np.testing.assert_array_equal(postprocess(detections, sim, settings), found)


@pytest.mark.parametrize("field, value", [("confident_similarity", 1.5), ("confident_score", -0.1),
                                          ("confident_score", 1.2)])
def test_confident_settings_are_checked(field, value):
    with pytest.raises(ValueError, match=field):
        DetectionSettings(input_size=S, **{field: value})


def _fit_extents_loop(detections, sim, threshold, margin, max_gap):
    """Plain loops: widen, find the best cell, walk out from it over rows / columns (gaps <= max_gap)."""
    def walk(profile, peak):
        ends = []
        for step in (-1, 1):
            last, i, gap = peak, peak, 0
            while 0 <= i + step < len(profile) and gap <= max_gap:
                i += step
                if profile[i] >= threshold:
                    last, gap = i, 0
                else:
                    gap += 1
            ends.append(last)
        return ends[0], ends[1] + 1

    out = []
    for q0, r0, q1, r1, score in detections.astype(np.float64):
        dq, dr = (q1 - q0) * margin, (r1 - r0) * margin
        a0, a1 = max(int(np.floor(q0 - dq)), 0), min(int(np.ceil(q1 + dq)), sim.shape[0])
        b0, b1 = max(int(np.floor(r0 - dr)), 0), min(int(np.ceil(r1 + dr)), sim.shape[1])
        window = np.asarray(sim[a0:a1, b0:b1], np.float32)
        row = None
        if window.size and window.max() >= threshold:
            row, col = np.unravel_index(np.argmax(window), window.shape)
            (qs, qe), (rs, re) = walk(window.max(1), row), walk(window.max(0), col)
            q0, r0, q1, r1 = a0 + qs, b0 + rs, a0 + qe, b0 + re
        box = [q0, r0, q1, r1, score]
        if not any(np.array_equal(np.float32(box[:4]), np.float32(o[:4])) for o in out):
            out.append(box)
    return np.array(out, np.float32).reshape(-1, 5)


@pytest.mark.parametrize("shape, count, margin, max_gap, dtype, transposed",
                         [((1, 1), 1, 0.25, 1, np.float32, False), ((7, 3), 4, 0.0, 0, np.float32, False),
                          ((40, 12), 6, 0.25, 1, np.float32, True), ((64, 64), 10, 0.5, 2, np.float16, False),
                          ((257, 9), 3, 1.0, 3, np.float32, True), ((30, 30), 0, 0.25, 1, np.float32, False)])
def test_fit_extents_matches_a_loop_reference(shape, count, margin, max_gap, dtype, transposed):
    rng = np.random.default_rng(sum(shape) + count)
    sim = rng.uniform(0, 1, shape[::-1] if transposed else shape).astype(dtype)
    sim = sim.T if transposed else sim  # non-contiguous
    q0, r0 = rng.uniform(0, shape[0], count), rng.uniform(0, shape[1], count)
    detections = np.stack([q0, r0, q0 + rng.uniform(0.5, shape[0], count), r0 + rng.uniform(0.5, shape[1], count),
                           rng.uniform(0, 1, count)], axis=1).astype(np.float32)
    for threshold in (0.5, 0.9, 1.1):
        got = fit_extents(detections, sim, threshold, margin, max_gap)
        np.testing.assert_array_equal(got, _fit_extents_loop(detections, sim, threshold, margin, max_gap))
        assert got.dtype == np.float32 and got.shape[1] == 5
    np.testing.assert_array_equal(fit_extents(detections, sim, 1.1, margin, max_gap), detections)  # none above


def test_fit_extents_snaps_a_box_to_its_diagonal():
    sim = np.full((40, 12), 0.3, np.float32)
    for i in range(10):  # a copy: query 18-28 = reference 1-11, with one weak frame pair at 23
        sim[18 + i, 1 + i] = 0.6 if i == 5 else 0.95
    fragments = np.array([[18.3, 5.8, 28.3, 10.4, 0.8], [18.3, 1.8, 27.7, 5.6, 0.6]], np.float32)
    # Each fragment is fitted to the copy cells inside its window (rows 15-30 x columns 4-11 and 0-6): the
    # first to query 21-28 / reference 4-11 (the weak pair bridged), the second to 18-23 / 1-6 (its window ends
    # at column 6, so the weak pair ends its runs).
    np.testing.assert_array_equal(fit_extents(fragments, sim, 0.8, margin=0.25, max_gap=1),
                                  np.float32([[21, 4, 28, 11, 0.8], [18, 1, 23, 6, 0.6]]))
    # Windows holding the whole copy fit both fragments to it: one box is left, the better scored.
    np.testing.assert_array_equal(fit_extents(fragments, sim, 0.8, margin=2.0, max_gap=1),
                                  np.float32([[18, 1, 28, 11, 0.8]]))
    # Without bridging, the weak pair at query 23 splits the run around the best cell.
    assert fit_extents(fragments[:1], sim, 0.8, margin=1.0, max_gap=0)[0, 2] == 23


def test_postprocess_applies_floor_then_fit_and_takes_torch_maps():
    sim = np.full((20, 20), 0.2, np.float32)
    sim[np.arange(4, 14), np.arange(4, 14)] = 0.9
    sim[16:19, 16:19] = 0.5  # a look-alike block under the floor
    detections = np.array([[5, 5, 12, 12, 0.7], [16, 16, 19, 19, 0.6]], np.float32)
    off = DetectionSettings(input_size=S)
    np.testing.assert_array_equal(postprocess(detections, sim, off), detections)
    on = DetectionSettings(input_size=S, min_similarity=0.8, extent_similarity=0.8, extent_margin=0.5)
    np.testing.assert_array_equal(postprocess(detections, sim, on), np.float32([[4, 4, 14, 14, 0.7]]))
    torch = pytest.importorskip("torch")
    np.testing.assert_array_equal(postprocess(detections, torch.from_numpy(sim), on), np.float32([[4, 4, 14, 14, 0.7]]))


def _add_margins_loop(detections, shape, query_margin, reference_margin):
    """Plain loop: per box and axis, move both ends by the margin (in by at most a quarter), clip to the map."""
    out = []
    for q0, r0, q1, r1, score in np.asarray(detections, np.float64).reshape(-1, 5):
        row = [0.0] * 4 + [score]
        for axis, (start, end), margin, length in ((0, (q0, q1), query_margin, shape[0]),
                                                   (1, (r0, r1), reference_margin, shape[1])):
            step = max(margin, -(end - start) / 4)
            row[axis], row[axis + 2] = min(max(start - step, 0), length), min(max(end + step, 0), length)
        out.append(row)
    return np.array(out, np.float32).reshape(-1, 5)


@pytest.mark.parametrize("shape, count, dtype, transposed",
                         [((1, 1), 1, np.float32, False), ((30, 30), 0, np.float32, False),
                          ((40, 12), 7, np.float32, True), ((9, 257), 5, np.float16, False),
                          ((64, 64), 12, np.float64, True)])
@pytest.mark.parametrize("query_margin, reference_margin", [(0.5, -0.5), (0.0, 2.0), (-3.0, 0.25), (10.0, -10.0)])
def test_add_margins_matches_a_loop_reference(shape, count, dtype, transposed, query_margin, reference_margin):
    rng = np.random.default_rng(sum(shape) + count)
    q0, r0 = rng.uniform(0, shape[0] - 0.1, count), rng.uniform(0, shape[1] - 0.1, count)
    detections = np.stack([q0, r0, np.minimum(q0 + rng.uniform(0.1, shape[0], count), shape[0]),
                           np.minimum(r0 + rng.uniform(0.1, shape[1], count), shape[1]), rng.uniform(0, 1, count)],
                          axis=1).astype(dtype)
    if transposed:  # non-contiguous rows
        detections = np.asfortranarray(detections)
    got = add_margins(detections, shape, query_margin, reference_margin)
    expected = _add_margins_loop(detections, shape, query_margin, reference_margin)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * max(shape))
    assert got.dtype == np.float32 and got.shape == (count, 5)
    np.testing.assert_array_equal(got[:, 4], detections[:, 4].astype(np.float32))  # scores and order kept
    assert np.all(got[:, [0, 1]] >= 0) and np.all(got[:, 2] <= shape[0]) and np.all(got[:, 3] <= shape[1])
    lengths = detections[:, [2, 3]].astype(np.float32) - detections[:, [0, 1]].astype(np.float32)
    assert np.all(got[:, [2, 3]] - got[:, [0, 1]] >= lengths / 2 - 1e-5 * max(shape))  # no box vanishes
    np.testing.assert_array_equal(add_margins(detections, shape, 0.0, 0.0), detections.astype(np.float32))


def test_postprocess_adds_margins_after_the_floor_and_fit():
    sim = np.full((20, 30), 0.2, np.float32)
    sim[np.arange(4, 14), np.arange(4, 14)] = 0.9
    detections = np.array([[5, 5, 12, 12, 0.7], [16, 16, 19, 19, 0.6], [0.2, 0.2, 3, 3, 0.5]], np.float32)
    settings = DetectionSettings(input_size=S, min_similarity=0.8, extent_similarity=0.8, extent_margin=0.5,
                                 query_margin=0.5, reference_margin=-0.5)
    # the floor drops the second box, the fit snaps the first to 4-14 x 4-14, then the margins move its ends
    np.testing.assert_array_equal(postprocess(detections, sim, settings), np.float32([[3.5, 4.5, 14.5, 13.5, 0.7]]))
    plain = DetectionSettings(input_size=S, query_margin=1.0)  # clipped to the map, scores kept
    np.testing.assert_array_equal(postprocess(detections[2:], sim, plain), np.float32([[0, 0.2, 4, 3, 0.5]]))


@pytest.mark.parametrize("field, value", [("query_margin", 10.5), ("reference_margin", -11.0),
                                          ("query_margin", float("nan")), ("reference_margin", float("inf"))])
def test_margins_are_checked(field, value):
    with pytest.raises(ValueError, match=f"{field} is a number of frames"):
        DetectionSettings(input_size=S, **{field: value})


def boxes(*rows):
    return np.asarray(rows, dtype=np.float32).reshape(-1, 5)


def test_fuse_views_merges_matching_boxes_and_halves_lone_ones():
    first = boxes([0, 0, 10, 10, 0.8], [20, 30, 30, 40, 0.6])
    second = boxes([1, 1, 11, 11, 0.4], [50, 50, 60, 70, 0.2])
    fused = fuse_views(first, second, iou_threshold=0.5, nms_threshold=0.3)
    weighted = (0.8 * first[0, :4] + 0.4 * second[0, :4]) / 1.2
    np.testing.assert_allclose(fused, boxes([*weighted, 0.6], [20, 30, 30, 40, 0.3], [50, 50, 60, 70, 0.1]),
                               rtol=1e-6)
    assert fused.dtype == np.float32
    # below the IoU threshold nothing merges; every box keeps half its score
    apart = fuse_views(first, second, iou_threshold=0.9, nms_threshold=1.0)
    np.testing.assert_allclose(np.sort(apart[:, 4]), np.sort(np.r_[first[:, 4], second[:, 4]] / 2))


def test_fuse_views_takes_at_most_one_box_per_view_and_applies_nms():
    # two boxes of the first view overlap one of the second: only the best-scored joins it
    first = boxes([0, 0, 10, 10, 0.9], [0, 0, 10, 9, 0.5])
    second = boxes([0, 0, 10, 10, 0.7])
    fused = fuse_views(first, second, iou_threshold=0.5, nms_threshold=1.0)
    assert len(fused) == 2 and fused[0, 4] == pytest.approx(0.8) and fused[1, 4] == pytest.approx(0.25)
    assert len(fuse_views(first, second, iou_threshold=0.5, nms_threshold=0.3)) == 1  # NMS drops the second
    assert fuse_views(boxes(), boxes(), 0.5, 0.3).shape == (0, 5)
    np.testing.assert_allclose(fuse_views(boxes(), second, 0.5, 0.3), boxes([0, 0, 10, 10, 0.35]))


def test_box_iou_and_swap_axes():
    np.testing.assert_allclose(box_iou(np.array([0, 0, 10, 10.0]), boxes([5, 0, 15, 10, 1], [20, 20, 30, 30, 1])),
                               [50 / 150, 0.0])
    # the overlap is over the smaller box: 1 for a box inside the other, 0 for an empty one
    np.testing.assert_allclose(box_overlap([0, 0, 10, 10], boxes([5, 0, 15, 10, 1], [2, 2, 4, 4, 1], [3, 3, 3, 9, 1])),
                               [50 / 100, 1.0, 0.0])
    assert box_iou([0, 0, 1, 1], []).shape == box_overlap([0, 0, 1, 1], []).shape == (0,)
    np.testing.assert_array_equal(swap_axes(boxes([1, 2, 3, 4, 0.5])), boxes([2, 1, 4, 3, 0.5]))


def _merge_loop(detections, min_overlap):
    """Plain loop: by decreasing score, a box joins the first kept box it overlaps most (share of the smaller
    area >= min_overlap), which grows to their union; otherwise it is kept."""
    rows = sorted(np.asarray(detections, np.float64).reshape(-1, 5).tolist(), key=lambda row: -row[4])
    kept = []
    for q0, r0, q1, r1, score in rows:
        best, best_overlap = None, -1.0
        for k in kept:
            inter = max(0.0, min(q1, k[2]) - max(q0, k[0])) * max(0.0, min(r1, k[3]) - max(r0, k[1]))
            smaller = min((q1 - q0) * (r1 - r0), (k[2] - k[0]) * (k[3] - k[1]))
            overlap = inter / smaller if smaller > 0 else 0.0
            if overlap > best_overlap:
                best, best_overlap = k, overlap
        if best is not None and best_overlap >= min_overlap:
            best[:4] = min(best[0], q0), min(best[1], r0), max(best[2], q1), max(best[3], r1)
        else:
            kept.append([q0, r0, q1, r1, score])
    return np.array(kept, np.float32).reshape(-1, 5)


@pytest.mark.parametrize("count, dtype, transposed", [(0, np.float32, False), (1, np.float32, False),
                                                      (2, np.float16, True), (9, np.float32, True),
                                                      (40, np.float64, False)])
@pytest.mark.parametrize("min_overlap", [0.1, 0.3, 0.5, 1.0])
def test_merge_overlapping_matches_a_loop_reference(count, dtype, transposed, min_overlap):
    rng = np.random.default_rng(count)
    q0, r0 = rng.uniform(0, 30, count), rng.uniform(0, 30, count)
    detections = np.stack([q0, r0, q0 + rng.uniform(0.5, 15, count), r0 + rng.uniform(0.5, 15, count),
                           rng.permutation(count) / max(count, 1)], axis=1).astype(dtype)
    if transposed:  # non-contiguous rows
        detections = np.asfortranarray(detections)
    got = merge_overlapping(detections, min_overlap)
    np.testing.assert_allclose(got, _merge_loop(detections.astype(np.float32), min_overlap), rtol=0, atol=1e-5)
    assert got.dtype == np.float32 and got.shape[1] == 5 and len(got) <= count
    assert np.all(np.diff(got[:, 4]) <= 0)  # by decreasing score


def test_merge_overlapping_joins_one_copy_reported_twice():
    # a self-copy's diagonal found as two boxes overlapping by about half the smaller one
    halves = boxes([0, 0, 15, 17, 0.9], [6.5, 5.5, 19.3, 21, 0.8])
    np.testing.assert_array_equal(merge_overlapping(halves, 0.3), boxes([0, 0, 19.3, 21, 0.9]))
    np.testing.assert_array_equal(merge_overlapping(halves, 0.6), halves)
    # copies side by side (one query segment copied twice in the reference) never merge
    apart = boxes([0, 0, 10, 10, 0.9], [0, 30, 10, 40, 0.8], [10, 0, 20, 10, 0.7])
    np.testing.assert_array_equal(merge_overlapping(apart, 0.01), apart)
    sim = np.full((25, 25), 0.2, np.float32)
    settings = DetectionSettings(input_size=S, merge_overlap=0.3)
    np.testing.assert_array_equal(postprocess(halves, sim, settings), boxes([0, 0, 19.3, 21, 0.9]))
    with pytest.raises(ValueError, match="merge_overlap"):
        DetectionSettings(input_size=S, merge_overlap=0.0)


def diagonal_runner(images):
    """Fake detector that is not symmetric: one box around the bright pixels, shifted right by 8 pixels."""
    raw = np.full((len(images), len(ANCHORS), 6), -12.0, np.float32)
    for b, image in enumerate(images):
        ys, xs = np.nonzero(image[0] > 0.5)
        if len(ys):
            x1, x2, y1, y2 = xs.min() + 8, min(xs.max() + 9, S), ys.min(), ys.max() + 1
            index, values = encode((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1)
            raw[b, index] = values
    return raw


@pytest.mark.parametrize("shape", [(40, 40), (24, 56), (1, 9)])
def test_transposed_view_makes_detections_the_same_either_way_round(shape):
    sim = np.zeros(shape, np.float32)
    q, r = shape
    sim[q // 4:q // 4 + max(1, q // 2), r // 4:r // 4 + max(1, r // 2)] = 1.0
    one_view = DetectionSettings(input_size=S)
    both = DetectionSettings(input_size=S, transpose_fusion_iou=0.3)
    plain, flipped = localize_maps([sim, sim.T], diagonal_runner, one_view)
    assert not np.allclose(plain[:, :4], swap_axes(flipped)[:, :4])  # the fake detector is lopsided
    direct, transposed = localize_maps([sim, sim.T], diagonal_runner, both)
    np.testing.assert_allclose(direct, swap_axes(transposed), atol=1e-4)
    # the fused box lies between the two views' boxes
    assert len(direct) == 1 and direct[0, 4] == pytest.approx(plain[0, 4], rel=1e-5)
    lo = np.minimum(plain[0, :4], swap_axes(flipped)[0, :4]) - 1e-4
    hi = np.maximum(plain[0, :4], swap_axes(flipped)[0, :4]) + 1e-4
    assert np.all((lo <= direct[0, :4]) & (direct[0, :4] <= hi))
