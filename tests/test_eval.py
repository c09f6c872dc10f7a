"""Evaluation: dataset formats, VCSL/VCDB segment metrics, VSC22 micro-AP, the ``vcl-fast eval`` command."""
import itertools
import json
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vcl_fast.cli import main
from vcl_fast.data.formats import (
    read_labels, read_pairs, read_predictions, write_labels, write_pairs, write_predictions, write_vsc_matches,
)
from vcl_fast.eval.commands import REPORT_KEYS
from vcl_fast.eval.intervals import (
    elementary_segments, grouped_union_length, min_over_covering, union_length_reference,
)
from vcl_fast.eval.vcsl_metrics import (
    EPS, aggregate, evaluate_vcsl, pack_boxes, pair_precision_recall, pair_precision_recall_reference, precision_recall_packed,
    precision_recall_packed_reference,
)
from vcl_fast.eval.vsc_metrics import segment_micro_ap, segment_micro_ap_reference



@pytest.fixture(scope="module")
def vcsl(shared_data):
    """Real VCSL test pair list (55,530 pairs) and labels (the one reversed box kept, its warning silenced)."""
    pairs = read_pairs(shared_data / "vcsl/pair_file_test.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pairs, read_labels(shared_data / "vcsl/label_file_test.json", pairs)


def full(length_q, length_r):
    """P or R of a prediction that covers its target exactly (the 1e-6 denominators keep it below 1)."""
    return length_q / (length_q + EPS) * (length_r / (length_r + EPS))


def random_boxes(rng, n, integer, scored=False):
    start = rng.integers(0, 30, (n, 2)).astype(float) if integer else rng.uniform(0, 30, (n, 2))
    length = rng.integers(0, 12, (n, 2)).astype(float) if integer else rng.uniform(0, 12, (n, 2))
    boxes = np.concatenate([start, start + length], axis=1)
    return np.concatenate([boxes, rng.integers(0, 4, (n, 1)) / 4], axis=1) if scored else boxes


# ------------------------------------------------------------------------------------------- intervals


@pytest.mark.parametrize("intervals, length", [
    ([], 0.0), ([(2, 5)], 3.0), ([(0, 10), (2, 3), (4, 5)], 10.0), ([(2, 3), (0, 2), (2, 4)], 4.0),
    ([(2, 3), (0, 1.5), (2.5, 4)], 3.5), ([(0, 1), (3, 4)], 2.0), ([(1, 1), (1, 1)], 0.0),
])
def test_union_length_reference_hand_cases(intervals, length):
    assert union_length_reference(intervals) == length


@pytest.mark.parametrize("n, num_groups, integer", list(itertools.product([0, 1, 2, 7, 40], [1, 3, 9], [True, False])))
def test_grouped_union_length_matches_reference(n, num_groups, integer):
    rng = np.random.default_rng(n * 31 + num_groups)
    for _ in range(20):
        groups = rng.integers(0, num_groups, n)
        boxes = random_boxes(rng, n, integer)
        starts, ends = boxes[:, 0], boxes[:, 2]
        got = grouped_union_length(groups, starts, ends, num_groups)
        want = [union_length_reference((s, e) for s, e, g in zip(starts, ends, groups) if g == k)
                for k in range(num_groups)]
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)


@pytest.mark.parametrize("n, num_groups, integer", list(itertools.product([0, 1, 2, 7, 40], [1, 3], [True, False])))
def test_elementary_segments_and_min_over_covering(n, num_groups, integer):
    rng = np.random.default_rng(n * 13 + num_groups)
    for _ in range(20):
        groups = rng.integers(0, num_groups, n)
        boxes = random_boxes(rng, n, integer)
        values = rng.integers(0, 10, n)
        lo, hi, length = elementary_segments(groups, boxes[:, 0], boxes[:, 2])
        want = np.full(len(length), np.iinfo(np.int64).max)
        for i in range(n):
            want[lo[i]:hi[i]] = np.minimum(want[lo[i]:hi[i]], values[i])
        np.testing.assert_array_equal(min_over_covering(len(length), lo, hi, values), want)
        for k in range(num_groups):  # the segments a group's intervals cover sum to its union length
            covered = np.zeros(len(length), dtype=bool)
            for i in np.flatnonzero(groups == k):
                covered[lo[i]:hi[i]] = True
            union = union_length_reference(zip(boxes[groups == k, 0], boxes[groups == k, 2]))
            assert length[covered].sum() == pytest.approx(union, abs=1e-9)


# --------------------------------------------------------------------------------- VCSL per-pair metric


@pytest.mark.parametrize("pred, gt, precision, recall", [
    # exact match
    ([[0, 0, 10, 10]], [[0, 0, 10, 10]], full(10, 10), full(10, 10)),
    # nested: prediction inside the ground truth and vice versa
    ([[2, 2, 6, 6]], [[0, 0, 10, 10]], full(4, 4), 4 / (10 + EPS) * 4 / (10 + EPS)),
    ([[0, 0, 10, 10]], [[2, 2, 6, 6]], 4 / (10 + EPS) * 4 / (10 + EPS), full(4, 4)),
    # overlapping predictions: the plain sum of prediction lengths penalises the overlap
    ([[0, 0, 10, 10], [5, 5, 15, 15]], [[0, 0, 10, 10]], (15 / (20 + EPS)) ** 2, full(10, 10)),
    # touching predictions covering one ground truth
    ([[0, 0, 5, 5], [5, 5, 10, 10]], [[0, 0, 10, 10]], full(10, 10), full(10, 10)),
    # multiple ground truth inside one prediction
    ([[0, 0, 30, 30]], [[0, 0, 10, 10], [20, 20, 30, 30]], (20 / (30 + EPS)) ** 2, full(20, 20)),
    # two ground truths overlapping one prediction on the query axis: their union counts once
    ([[0, 0, 10, 20]], [[0, 0, 10, 10], [5, 10, 10, 20]], 10 / (10 + EPS) * 20 / (20 + EPS),
     15 / (15 + EPS) * 20 / (20 + EPS)),
    # right query interval, wrong reference interval: no intersection area
    ([[0, 50, 10, 60]], [[0, 0, 10, 10]], 0.0, 0.0),
    # touching boxes have zero intersection area
    ([[10, 10, 20, 20]], [[0, 0, 10, 10]], 0.0, 0.0),
    # degenerate zero-length boxes never intersect with positive area
    ([[5, 0, 5, 10]], [[0, 0, 10, 10]], 0.0, 0.0),
    ([[1, 1, 1, 34]], [[1, 1, 1, 34]], 0.0, 0.0),
    # empty cases
    ([[0, 0, 1, 1]], [], 0.0, 1.0),
    ([], [[0, 0, 1, 1]], 1.0, 0.0),
    ([], [], 1.0, 1.0),
])
@pytest.mark.parametrize("function", [pair_precision_recall, pair_precision_recall_reference])
def test_pair_precision_recall_hand_cases(function, pred, gt, precision, recall):
    got = function(np.array(pred, dtype=float).reshape(-1, 4), np.array(gt, dtype=float).reshape(-1, 4))
    assert got == pytest.approx((precision, recall), abs=1e-12)


def test_pair_metric_ignores_score_column_and_keeps_reversed_ground_truth():
    gt = np.array([[0, 0, 10, 10], [19, 126, 34, 121]], dtype=float)  # the real VCSL reversed box
    pred = np.array([[0, 0, 10, 10, 0.3]])
    expected = (full(10, 10), 10 / (10 + 15 + EPS) * 10 / (10 - 5 + EPS))
    assert pair_precision_recall(pred, gt) == pytest.approx(expected, abs=1e-12)
    assert pair_precision_recall_reference(pred, gt) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("bad, message", [
    ([[0, 0, 1]], "shaped"), ([[5, 0, 1, 1]], "ends before it starts"), ([[0, 0, np.nan, 1]], "non-finite"),
])
def test_pair_metric_rejects_bad_predictions(bad, message):
    with pytest.raises(ValueError, match=message):
        pair_precision_recall(np.array(bad), np.zeros((0, 4)))


def packed_case(rng, num_pairs, max_boxes, integer, dtype, contiguous):
    num_pred = rng.integers(0, max_boxes + 1, num_pairs)
    num_gt = rng.integers(0, max_boxes + 1, num_pairs)
    pred = random_boxes(rng, int(num_pred.sum()), integer, scored=True).astype(dtype)
    gt = random_boxes(rng, int(num_gt.sum()), integer).astype(dtype)
    if not contiguous:  # strided views of larger arrays
        pred = np.repeat(pred, 2, axis=0)[::2]
        gt = np.asfortranarray(gt)
    return pred, np.r_[0, np.cumsum(num_pred)], gt, np.r_[0, np.cumsum(num_gt)]


@pytest.mark.parametrize("num_pairs, max_boxes, integer, dtype, contiguous", list(itertools.product(
    [0, 1, 6, 40], [0, 1, 5], [True, False], [np.float64, np.float32], [True, False])))
def test_packed_fast_path_matches_reference(num_pairs, max_boxes, integer, dtype, contiguous):
    rng = np.random.default_rng(num_pairs * 7 + max_boxes)
    case = packed_case(rng, num_pairs, max_boxes, integer, dtype, contiguous)
    fast = precision_recall_packed(*case)
    slow = precision_recall_packed_reference(*case)
    for got, want in zip(fast, slow):
        assert got.shape == want.shape == (num_pairs,)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)


def test_packed_rejects_inconsistent_offsets():
    with pytest.raises(ValueError, match="offsets"):
        precision_recall_packed(np.zeros((2, 4)), [0, 1], np.zeros((0, 4)), [0, 0])
    with pytest.raises(ValueError, match="describe"):
        precision_recall_packed(np.zeros((0, 4)), [0, 0], np.zeros((0, 4)), [0, 0, 0])


gt_box = st.tuples(st.integers(0, 200), st.integers(0, 200), st.integers(1, 60), st.integers(1, 60)).map(
    lambda t: [t[0], t[1], t[0] + t[2], t[1] + t[3]])


@settings(max_examples=60, deadline=None)
@given(st.lists(gt_box, min_size=1, max_size=5))
def test_perfect_predictions_score_one(boxes):
    gt = np.array(boxes, dtype=float)
    precision, recall = pair_precision_recall(np.c_[gt, np.ones(len(gt))], gt)
    expected = full(np.sum(gt[:, 2] - gt[:, 0]), np.sum(gt[:, 3] - gt[:, 1]))
    assert precision == pytest.approx(expected, abs=1e-12) and recall == pytest.approx(expected, abs=1e-12)
    assert precision > 1 - 1e-5
    labels, preds = {("q", "r"): gt}, {("q", "r"): np.c_[gt, np.ones(len(gt))]}
    assert segment_micro_ap(labels, preds) == pytest.approx(1.0, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(gt_box, st.lists(st.floats(0, 80), min_size=2, max_size=6))
def test_shifting_predictions_lowers_scores(box, shifts):
    gt = np.array([box], dtype=float)
    scores = []
    for shift in sorted(shifts):
        pred = gt + shift
        precision, recall = pair_precision_recall(pred, gt)
        ap = segment_micro_ap({("q", "r"): gt}, {("q", "r"): np.c_[pred, [1.0]]})
        scores.append((precision, recall, ap))
    for before, after in zip(scores, scores[1:]):
        assert all(a <= b + 1e-12 for a, b in zip(after, before))


# --------------------------------------------------------------------------------------- aggregation


def test_aggregate_hand_case():
    # pairs: hit, partial, missed positive (FR), false alarm negative (FA), quiet negative
    precision = np.array([0.9, 0.5, 1.0, 0.0, 1.0])
    recall = np.array([0.8, 0.4, 0.0, 1.0, 1.0])
    has_gt = np.array([True, True, True, False, False])
    m = aggregate(precision, recall, has_gt)
    r, p = (0.8 + 0.4 + 0.0) / 3, (0.9 + 0.5 + 0.0) / 3
    assert m.segment_recall == pytest.approx(r) and m.segment_precision == pytest.approx(p)
    assert m.segment_f1 == pytest.approx(2 * r * p / (r + p))
    assert (m.false_rejections, m.false_alarms, m.num_positive, m.num_negative) == (1, 1, 3, 2)
    assert m.video_recall == pytest.approx(2 / 3) and m.video_precision == pytest.approx(2 / 3)
    assert m.frr == pytest.approx(1 / 3) and m.far == pytest.approx(1 / 2)
    assert not m.all_pairs_positive


def test_duplicate_boxes_inside_a_copy_raise_recall_at_no_precision_cost_and_are_counted():
    """The VCSL metric's blind spot (docs/model_card.md): boxes that overlap inside one copy each keep their own
    precision, while recall takes their union; only the box counts show them."""
    pairs = [("a", "b")]
    labels = {("a", "b"): np.array([[0.0, 0.0, 10.0, 10.0]])}
    one = {("a", "b"): np.array([[0.0, 0.0, 6.0, 6.0, 0.9]])}
    three = {("a", "b"): np.array([[0.0, 0.0, 6.0, 6.0, 0.9], [2.0, 2.0, 8.0, 8.0, 0.8], [4.0, 4.0, 10.0, 10.0, 0.7]])}
    single, duplicated = evaluate_vcsl(labels, one, pairs), evaluate_vcsl(labels, three, pairs)
    assert duplicated.segment_precision == pytest.approx(single.segment_precision)
    assert duplicated.segment_recall > single.segment_recall
    assert (single.predicted_boxes, duplicated.predicted_boxes, duplicated.ground_truth_boxes) == (1, 3, 1)


def test_aggregate_all_positive_and_degenerate():
    m = aggregate(np.array([0.5, 1.0]), np.array([0.5, 0.0]), np.array([True, True]))
    assert m.all_pairs_positive and m.far == 0.0 and m.video_precision == 1.0
    with pytest.raises(ValueError, match="no evaluated pair has ground truth"):
        aggregate(np.array([1.0]), np.array([1.0]), np.array([False]))
    with pytest.raises(ValueError, match="1-D of one length"):
        aggregate(np.ones(2), np.ones(3), np.ones(2, bool))


def test_evaluate_confidence_threshold_and_integer_boxes():
    labels = {("a", "b"): np.array([[0.0, 0.0, 10.0, 10.0]])}
    pairs = [("a", "b"), ("c", "d")]
    preds = {("a", "b"): np.array([[0.0, 0.0, 10.0, 10.0, 0.1]]), ("c", "d"): np.array([[0.0, 0.0, 5.0, 5.0, 0.2]])}
    m = evaluate_vcsl(labels, preds, pairs, conf=0.1)  # score == conf is dropped, the false alarm stays
    assert (m.false_rejections, m.false_alarms) == (1, 1)
    m = evaluate_vcsl(labels, preds, pairs, conf=None)
    assert (m.false_rejections, m.false_alarms) == (0, 1)
    fractional = {("a", "b"): np.array([[0.9, 0.9, 10.9, 10.9, 1.0]])}
    exact = evaluate_vcsl(labels, fractional, pairs, integer_boxes=True)
    assert exact.segment_recall == pytest.approx(full(10, 10) - 0, abs=1e-12)
    assert evaluate_vcsl(labels, fractional, pairs).segment_recall < exact.segment_recall


# ---------------------------------------------------------------------------------------------- VSC22


def test_vsc_micro_ap_hand_cases():
    labels = {("q", "r"): np.array([[0.0, 0.0, 10.0, 10.0]])}
    cases = [
        ({("q", "r"): [[0, 0, 10, 10, 1.0]]}, 1.0),
        ({("q", "r"): [[0, 0, 20, 20, 1.0]]}, 0.5),
        # first half correct (P=1, R=0.5), then a wrong box: recall stays, AP = 0.5
        ({("q", "r"): [[0, 0, 5, 5, 0.9], [20, 20, 30, 30, 0.5]]}, 0.5),
        # a wrong box ranked first: P = sqrt(5/15 * 5/15) when recall reaches 0.5
        ({("q", "r"): [[0, 0, 5, 5, 0.5], [20, 20, 30, 30, 0.9]]}, 0.5 / 3),
        # tied scores form one step: P = 1/3, R = 0.5
        ({("q", "r"): [[0, 0, 5, 5, 0.5], [20, 20, 30, 30, 0.5]]}, 0.5 / 3),
        # a false positive in another pair, ranked first
        ({("q", "r"): [[0, 0, 10, 10, 0.5]], ("x", "y"): [[0, 0, 10, 10, 0.9]]}, 0.5),
        # zero-length prediction first: precision axis with T = 0 counts as 0, no crash
        ({("q", "r"): [[3, 0, 3, 10, 0.9], [0, 0, 10, 10, 0.5]]}, 1.0),
        ({}, 0.0),
    ]
    for preds, expected in cases:
        preds = {k: np.array(v, dtype=float) for k, v in preds.items()}
        assert segment_micro_ap_reference(labels, preds) == pytest.approx(expected, abs=1e-12)
        assert segment_micro_ap(labels, preds) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("num_pairs, max_boxes, integer", [
    *list(itertools.product([1, 4, 15], [1, 4], [True, False])), (2, 60, True), (2, 60, False)])
def test_vsc_fast_path_matches_reference(num_pairs, max_boxes, integer):
    rng = np.random.default_rng(num_pairs * 11 + max_boxes)
    for _ in range(15 if max_boxes < 10 else 2):
        labels, preds = {}, {}
        for k in range(num_pairs):
            if rng.random() < 0.7:
                labels[(f"q{k}", "r")] = random_boxes(rng, int(rng.integers(1, max_boxes + 1)), integer)
            if rng.random() < 0.8:
                preds[(f"q{k}", "r")] = random_boxes(rng, int(rng.integers(0, max_boxes + 1)), integer, scored=True)
        labels[("q0", "r")] = np.array([[0.0, 0.0, 5.0, 5.0]])
        assert segment_micro_ap(labels, preds) == pytest.approx(segment_micro_ap_reference(labels, preds), abs=1e-9)


def test_vsc_needs_ground_truth():
    with pytest.raises(ValueError, match="ground truth"):
        segment_micro_ap({}, {("q", "r"): np.array([[0, 0, 1, 1, 1.0]])})


# -------------------------------------------------------------------------------------------- formats


def test_format_round_trips(tmp_path):
    pairs = [("a", "b"), ("a", "c"), ("d", "b")]
    labels = {("a", "b"): np.array([[1.0, 2.0, 3.0, 4.0], [5.0, 5.0, 5.0, 9.0]]), ("d", "b"): np.zeros((1, 4))}
    preds = {("a", "b"): np.array([[1.5, 2.0, 3.25, 4.0, 0.75]]), ("a", "c"): np.zeros((0, 5))}
    write_pairs(tmp_path / "p.csv", pairs)
    write_labels(tmp_path / "l.json", labels)
    write_predictions(tmp_path / "p.json", preds)
    write_vsc_matches(tmp_path / "m.csv", preds)
    assert read_pairs(tmp_path / "p.csv") == pairs
    for got, want in ((read_labels(tmp_path / "l.json", pairs), labels),
                      (read_predictions(tmp_path / "p.json", pairs), preds),
                      (read_predictions(tmp_path / "m.csv", pairs), {("a", "b"): preds[("a", "b")]})):
        assert got.keys() == want.keys()
        for key in want:
            assert got[key].dtype == np.float64
            np.testing.assert_array_equal(got[key], want[key])


def test_ids_with_dashes_need_the_pair_list(tmp_path):
    path = tmp_path / "l.json"
    write_labels(path, {("q-1", "r"): np.array([[0.0, 0.0, 1.0, 1.0]])})
    with pytest.raises(ValueError, match="exactly one '-'"):
        read_labels(path)
    assert list(read_labels(path, [("q-1", "r")])) == [("q-1", "r")]


def test_unlisted_entries(tmp_path):
    path = tmp_path / "l.json"
    path.write_text('{"a-b": [[0, 0, 1, 1]], "x-y": [[0, 0, 2, 2]]}')
    with pytest.raises(ValueError, match=r"l\.json: entry 'x-y' is not in the pair list"):
        read_labels(path, [("a", "b")])
    assert list(read_labels(path, [("a", "b")], ignore_unlisted=True)) == [("a", "b")]


@pytest.mark.parametrize("name, text, message", [
    ("p.json", '{"a-b": [[0, 0, 1, 1, 0.5]', "not valid JSON"),
    ("p.json", "[1, 2]", "expected an object"),
    ("p.json", '{"a-b": [[0, 0, 1]]}', r"entry 'a-b': expected a list of \[q_start, r_start, q_end, r_end, score\]"),
    ("p.json", '{"a-b": [[0, 0, 1, 1], [0, 0, 1, 1, 1]]}', "entry 'a-b': expected a list"),  # mixed forms
    ("p.json", '{"a-b": [[0, 0, 1, 1, 1], [0, 0]]}', "entry 'a-b': expected a list"),
    ("p.json", '{"a-b": [[0, 0, "x", 1, 1]]}', "entry 'a-b': expected a list"),
    ("p.json", '{"a-b": [[5, 0, 1, 1, 1]]}', "entry 'a-b': box 0 ends before it starts"),
    ("p.json", '{"a-b": [[0, 0, 1, NaN, 1]]}', "entry 'a-b': box 0 has a non-finite value"),
    ("p.json", '{"a-b": [], "a-b": []}', "entry 'a-b' appears twice"),
    ("p.json", '{"ab": []}', "entry 'ab': cannot split"),
    ("p.txt", "{}", "unknown box file type"),
    ("m.csv", "query_id,ref_id,query_start\n", "lacks the VSC22 columns"),
    ("m.csv", ",".join(["query_id", "ref_id", "query_start", "query_end", "ref_start", "ref_end", "score"])
     + "\na,b,0,x,0,1,1\n", "line 2: non-numeric"),
    ("m.csv", ",".join(["query_id", "ref_id", "query_start", "query_end", "ref_start", "ref_end", "score"])
     + "\na,b,3,1,0,1,1\n", "entry 'a-b': box 0 ends before it starts"),
])
def test_malformed_prediction_files(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as info:
        read_predictions(path)
    assert name in str(info.value)


def test_unscored_predictions_read_with_score_one_and_a_warning(tmp_path, capsys):
    """VCSL writes predictions as 4 numbers, without a score: they read as score 1, and `vcl-fast eval` says so."""
    common = write_case(tmp_path)
    (tmp_path / "unscored.json").write_text('{"a-b": [[0, 0, 8, 8], [20, 20, 25, 25]], "a-c": []}')
    with pytest.warns(UserWarning, match="unscored.json: 2 boxes have no score"):
        found = read_predictions(tmp_path / "unscored.json", [("a", "b"), ("a", "c")])
    np.testing.assert_array_equal(found[("a", "b")], [[0, 0, 8, 8, 1], [20, 20, 25, 25, 1]])
    assert found[("a", "c")].shape == (0, 5)
    assert main(["eval", *common, f"--pred={tmp_path / 'unscored.json'}", f"--json={tmp_path / 'out.json'}"]) == 0
    report = json.loads((tmp_path / "out.json").read_text())
    assert report["predicted_boxes"] == 2  # score 1 passes --conf 0.1: both boxes count
    assert "2 boxes have no score" in capsys.readouterr().out and len(report["notes"]) == 1


def test_reversed_label_boxes_warn_or_fail(tmp_path):
    path = tmp_path / "l.json"
    path.write_text('{"a-b": [[0, 5, 1, 1]]}')
    with pytest.warns(UserWarning, match="1 ground-truth box"):
        assert read_labels(path)[("a", "b")].tolist() == [[0, 5, 1, 1]]
    with pytest.raises(ValueError, match="entry 'a-b': box 0 ends before it starts"):
        read_labels(path, reversed_boxes="error")


def test_files_with_a_byte_order_mark_and_windows_line_ends_read_alike(tmp_path):
    """Spreadsheets save UTF-8 with a byte-order mark and CRLF line ends."""
    vsc = ",".join(["query_id", "ref_id", "query_start", "query_end", "ref_start", "ref_end", "score"])
    files = {"pairs.csv": "query_id,reference_id\r\na,b\r\n", "p.json": '{"a-b": [[0, 0, 1, 1, 0.5]]}',
             "m.csv": f"{vsc}\r\na,b,0,1,0,1,0.5\r\n"}
    for name, text in files.items():
        (tmp_path / name).write_bytes(text.encode("utf-8"))
        (tmp_path / f"bom_{name}").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert read_pairs(tmp_path / "pairs.csv") == read_pairs(tmp_path / "bom_pairs.csv") == [("a", "b")]
    for name in ("p.json", "m.csv"):
        plain, marked = read_predictions(tmp_path / name), read_predictions(tmp_path / f"bom_{name}")
        assert plain.keys() == marked.keys() == {("a", "b")}
        np.testing.assert_array_equal(plain[("a", "b")], marked[("a", "b")])
    (tmp_path / "latin.csv").write_bytes("query_id,reference_id\nq\xe9,r\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin.csv: not UTF-8 text \(byte 23"):
        read_pairs(tmp_path / "latin.csv")


@pytest.mark.parametrize("text, message", [
    ("", "empty file"), ("query,ref\na,b\n", "lacks 'query_id'"),
    ("query_id,reference_id\na,b\na,b\n", "line 3: pair a-b is listed twice"),
    ("query_id,reference_id\na\n", "line 2: expected 2"),
])
def test_malformed_pair_files(tmp_path, text, message):
    path = tmp_path / "pairs.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_pairs(path)


def test_failed_write_leaves_nothing(tmp_path):
    path = tmp_path / "p.json"
    with pytest.raises(ValueError, match="non-finite"):
        write_predictions(path, {("a", "b"): np.array([[0, 0, 1, np.inf, 1.0]])})
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------ real data


def test_real_label_files_load(shared_data):
    vcsl_pairs = read_pairs(shared_data / "vcsl/pair_file_test.csv")
    with pytest.warns(UserWarning, match="1 ground-truth box"):
        vcsl = read_labels(shared_data / "vcsl/label_file_test.json", vcsl_pairs)
    assert (len(vcsl_pairs), len(vcsl), sum(map(len, vcsl.values()))) == (55_530, 27_765, 39_185)
    vcdb_pairs = read_pairs(shared_data / "vcdb/pair_file.csv")
    vcdb = read_labels(shared_data / "vcdb/label_file.json", vcdb_pairs)
    assert (len(vcdb_pairs), len(vcdb), sum(map(len, vcdb.values()))) == (6_140, 6_140, 9_236)
    assert sum(q == r for q, r in vcdb) == 528


def test_perfect_predictions_on_vcsl_test(vcsl):
    pairs, labels = vcsl
    valid = {k: v for k, v in labels.items() if np.all(v[:, 2:] >= v[:, :2])}  # drop the one reversed box's pair
    preds = {k: np.c_[v, np.ones(len(v))] for k, v in valid.items()}
    m = evaluate_vcsl(valid, preds, pairs)
    assert (m.num_pairs, m.num_positive, m.false_rejections, m.false_alarms) == (55_530, 27_764, 0, 0)
    assert (m.video_recall, m.video_precision, m.video_f1, m.frr, m.far) == (1.0, 1.0, 1.0, 0.0, 0.0)
    # Per pair: exactly full() unless a ground-truth box has zero length (45 such boxes: they never intersect,
    # yet their length on the other axis counts in the recall denominator).
    keys = list(valid)
    precision, recall = precision_recall_packed(*pack_boxes(preds, keys, 5), *pack_boxes(valid, keys, 4))
    degenerate = np.array([np.any(valid[k][:, 2:] == valid[k][:, :2]) for k in keys])
    expected = np.array([full(np.sum(v[:, 2] - v[:, 0]), np.sum(v[:, 3] - v[:, 1])) for v in map(valid.get, keys)])
    np.testing.assert_allclose(precision[~degenerate], expected[~degenerate], rtol=0, atol=1e-12)
    np.testing.assert_allclose(recall[~degenerate], expected[~degenerate], rtol=0, atol=1e-12)
    assert np.all(recall[degenerate] <= expected[degenerate]) and np.sum(recall[degenerate] < 0.99) > 30
    assert m.segment_f1 > 0.9997


def test_real_vcsl_subset_fast_matches_reference(vcsl):
    pairs, labels = vcsl
    rng = np.random.default_rng(0)
    subset = [pairs[i] for i in rng.choice(len(pairs), 600, replace=False)]
    preds = {}
    for key in subset:
        gt = labels.get(key, np.array([[0.0, 0.0, 30.0, 30.0]]))
        noisy = np.sort((gt + rng.normal(0, 3, gt.shape)).reshape(-1, 2, 2), axis=1).reshape(-1, 4)
        preds[key] = np.c_[noisy, rng.random(len(gt))]
    assert evaluate_vcsl(labels, preds, subset) == evaluate_vcsl(labels, preds, subset, reference=True)


# ------------------------------------------------------------------------------------------------ CLI


def write_case(tmp_path, all_positive=False):
    pairs = [("a", "b"), ("a", "c")] if not all_positive else [("a", "b")]
    labels = {("a", "b"): np.array([[0.0, 0.0, 10.0, 10.0]])}
    preds = {("a", "b"): np.array([[0.0, 0.0, 8.0, 8.0, 0.9], [20.0, 20.0, 25.0, 25.0, 0.05]])}
    write_pairs(tmp_path / "pairs.csv", pairs)
    write_labels(tmp_path / "labels.json", labels)
    write_predictions(tmp_path / "pred.json", preds)
    write_vsc_matches(tmp_path / "pred.csv", preds)
    return [f"--labels={tmp_path / 'labels.json'}", f"--pairs={tmp_path / 'pairs.csv'}"]


def test_cli_eval_json_report(tmp_path, capsys):
    common = write_case(tmp_path)
    assert main(["eval", *common, f"--pred={tmp_path / 'pred.json'}", f"--json={tmp_path / 'out.json'}"]) == 0
    report = json.loads((tmp_path / "out.json").read_text())
    assert set(REPORT_KEYS) <= report.keys()
    assert all(0 <= report[key] <= 1 for key in REPORT_KEYS if key != "num_pairs")
    assert report["num_pairs"] == 2
    assert report["segment_recall"] == pytest.approx(8 / (10 + EPS) * 8 / (10 + EPS))
    assert report["vsc_micro_ap"] == pytest.approx(0.8)  # 8x8 inside 10x10 first, then a wrong box
    out = capsys.readouterr().out
    assert "VSC22 segment micro-AP" in out
    # the 0.05-scored box is below --conf 0.1: one predicted and one ground-truth box over two pairs
    assert (report["predicted_boxes"], report["ground_truth_boxes"]) == (1, 1)
    assert "0.50 / 0.50" in out.split("boxes per pair (predicted / ground truth)")[1].splitlines()[0]
    assert main(["eval", *common, f"--pred={tmp_path / 'pred.csv'}", f"--json={tmp_path / 'csv.json'}"]) == 0
    from_csv = json.loads((tmp_path / "csv.json").read_text())
    assert all(from_csv[key] == report[key] for key in REPORT_KEYS)


def test_cli_eval_all_positive_note_and_plain_table(tmp_path, capsys, monkeypatch):
    import sys
    for name in ("rich", "rich.console", "rich.table"):  # rich "not installed": plain table
        monkeypatch.setitem(sys.modules, name, None)
    common = write_case(tmp_path, all_positive=True)
    assert main(["eval", *common, f"--pred={tmp_path / 'pred.json'}"]) == 0
    out = capsys.readouterr().out
    assert "video precision is 1 by construction" in out
    assert out.splitlines()[0].startswith("segment recall / precision / F1")


@pytest.mark.parametrize("content", ['{"a-b": [[0, 0, 1]]}', "not json", '{"x-y": [[0, 0, 1, 1, 1]]}', None])
def test_cli_eval_bad_file_exit_2(tmp_path, capsys, content):
    common = write_case(tmp_path)
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content)
    code = main(["eval", *common, f"--pred={bad}", f"--json={tmp_path / 'out.json'}"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("vcl-fast eval: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out.json").exists()


def test_cli_names_a_missing_file_plainly(tmp_path, capsys):
    common = write_case(tmp_path)
    code = main(["eval", *common, f"--pred={tmp_path / 'missing.json'}"])
    assert code == 2
    assert capsys.readouterr().err == f"vcl-fast eval: error: {tmp_path / 'missing.json'}: No such file or directory\n"

