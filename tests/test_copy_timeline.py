"""Copy-video timelines: frame composition, vanilla GT and Transitivity Propagation on hand-made cases."""
import itertools

import numpy as np
import pytest

from vcl_fast.data.copy_timeline import (
    CopyVideo,
    diagonal_cells,
    InsertedSegment,
    plan_copy_video,
    transitivity_boxes,
    transitivity_pairs,
    vanilla_boxes,
)


def copy_of(copy_id, *segments, background_length=20):
    return CopyVideo(copy_id, "bg", background_length, tuple(segments))


def test_speed_up_and_slow_down_lengths_and_frames():
    fast = InsertedSegment("s", 10, 30, 2.0, 5)  # 20 source frames in 10 copy frames
    slow = InsertedSegment("s", 10, 20, 0.5, 5)  # 10 source frames in 20 copy frames
    assert fast.length == 10 and slow.length == 20
    np.testing.assert_array_equal(fast.source_frames(), np.arange(10, 30, 2) + 1)
    np.testing.assert_array_equal(slow.source_frames(), np.repeat(np.arange(10, 20), 2))
    assert fast.source_to_copy(30) == 15 and slow.source_to_copy(15) == 15


def test_frame_sources_splice_background_and_segments():
    seg = InsertedSegment("s", 0, 4, 1.0, 3)
    copy = copy_of("c", seg, background_length=6)
    segment, frame = copy.frame_sources()
    np.testing.assert_array_equal(segment, [-1, -1, -1, 0, 0, 0, 0, -1, -1, -1])
    np.testing.assert_array_equal(frame, [0, 1, 2, 0, 1, 2, 3, 3, 4, 5])


def test_vanilla_boxes_only_for_that_source():
    copy = copy_of("c", InsertedSegment("a", 2, 12, 2.0, 0), InsertedSegment("b", 0, 5, 1.0, 9))
    np.testing.assert_array_equal(vanilla_boxes(copy, "a"), [[0, 2, 5, 12]])
    np.testing.assert_array_equal(vanilla_boxes(copy, "b"), [[9, 0, 14, 5]])
    assert vanilla_boxes(copy, "z").shape == (0, 4)


def test_transitivity_partial_overlap_with_different_speeds():
    # source frames [10, 30) at 2x in copy 1 from t=0; source [20, 40) at 0.5x in copy 2 from t=100
    c1 = copy_of("c1", InsertedSegment("s", 10, 30, 2.0, 0))
    c2 = copy_of("c2", InsertedSegment("s", 20, 40, 0.5, 100))
    # intersection [20, 30): copy 1 frames 5..10, copy 2 frames 100..120
    np.testing.assert_allclose(transitivity_boxes(c1, c2), [[5, 100, 10, 120]])
    np.testing.assert_allclose(transitivity_boxes(c2, c1), [[100, 5, 120, 10]])


def test_transitivity_nested_and_disjoint():
    outer = copy_of("o", InsertedSegment("s", 0, 40, 1.0, 7))
    inner = copy_of("i", InsertedSegment("s", 10, 20, 1.0, 0))
    disjoint = copy_of("d", InsertedSegment("s", 40, 50, 1.0, 0))
    other_source = copy_of("x", InsertedSegment("t", 0, 40, 1.0, 0))
    np.testing.assert_allclose(transitivity_boxes(outer, inner), [[17, 0, 27, 10]])
    assert transitivity_boxes(outer, disjoint).shape == (0, 4)  # touching intervals share no frame
    assert transitivity_boxes(outer, other_source).shape == (0, 4)


def test_transitivity_pairs_scan_matches_brute_force():
    rng = np.random.default_rng(0)
    sources = {f"s{i}": int(rng.integers(20, 60)) for i in range(6)}
    pool = []
    for n in range(40):
        chosen = rng.choice(list(sources), size=int(rng.integers(1, 4)), replace=False)
        pool.append(plan_copy_video(rng, f"c{n}", "bg", 30, {s: sources[s] for s in chosen}))
    brute = [(i, j) for i, j in itertools.combinations(range(len(pool)), 2)
             if len(transitivity_boxes(pool[i], pool[j]))]
    assert transitivity_pairs(pool) == brute
    assert len(brute) > 0


def test_planned_copy_ground_truth_matches_frame_sources():
    rng = np.random.default_rng(3)
    for n in range(20):
        copy = plan_copy_video(rng, f"c{n}", "bg", 50, {"a": 40, "b": 25, "c": 60})
        segment, frame = copy.frame_sources()
        assert len(segment) == copy.length == 50 + sum(s.length for s in copy.segments)
        assert (segment == -1).sum() == 50
        for index, seg in enumerate(copy.segments):
            assert 0.5 <= seg.speed <= 2.0
            (q_s, r_s, q_e, r_e), = vanilla_boxes(copy, seg.source_id)
            rows = np.flatnonzero(segment == index)
            assert (rows.min(), rows.max() + 1) == (q_s, q_e)
            assert frame[rows].min() >= r_s and frame[rows].max() < r_e


def test_plan_is_deterministic_by_seed():
    a = plan_copy_video(np.random.default_rng(7), "c", "bg", 30, {"a": 40, "b": 40})
    b = plan_copy_video(np.random.default_rng(7), "c", "bg", 30, {"a": 40, "b": 40})
    assert a == b


def test_bad_segments_raise():
    with pytest.raises(ValueError, match="source_start < source_end"):
        InsertedSegment("s", 5, 5, 1.0, 0)
    with pytest.raises(ValueError, match="speed"):
        InsertedSegment("s", 0, 5, 0.0, 0)


def test_diagonal_cells_follow_each_box():
    mask = diagonal_cells(np.array([[1, 0, 5, 8], [0, 2, 2, 3]]), (6, 9))
    assert mask.sum() == 4 + 2
    assert [int(np.flatnonzero(mask[row])[0]) for row in range(2, 5)] == [3, 5, 7]  # 2 reference frames per row
    assert mask[0, 2] and mask[1, 2] and mask[1, 1]
    assert not diagonal_cells(np.zeros((0, 4)), (3, 3)).any()
