"""Classical localizers (HV, TN, DP, DTW): compiled path searches against their numpy references, the output
contract, planted copies scored with the VCSL per-pair metric, the real VCSL map, bad input, the CLI."""
import itertools
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from vcl_fast import _ext
from vcl_fast.cli import main
from vcl_fast.eval.localizers import (
    LOCALIZERS,
    DPParams,
    DTWParams,
    HVParams,
    TNParams,
    align,
    localizer_params,
)
from vcl_fast.eval.localizers.hv import diagonal_sums, diagonal_sums_reference
from vcl_fast.eval.localizers.paths import diagonal_segments
from vcl_fast.eval.localizers.tn import top_k_columns
from vcl_fast.eval.vcsl_metrics import pair_precision_recall
from vcl_fast.ops import alignment_paths as ap

METHODS = sorted(LOCALIZERS)
SHAPES = [(0, 0), (0, 6), (6, 0), (1, 1), (1, 9), (9, 1), (2, 3), (13, 29), (31, 17), (40, 40)]


def random_map(rng, shape, kind):
    """Similarity-like values: continuous, or rounded to 0.1 so that ties are everywhere."""
    values = rng.uniform(-0.2, 1.0, shape)
    return np.round(values, 1) if kind == "ties" else values


def planted_map(rng, shape, copies, background=(0.0, 0.3), noise=0.05, copy_level=(0.6, 0.9)):
    """A (Q, R) float32 map: uniform background plus Gaussian noise, and for each copy
    ``(q0, r0, q_len, r_len)`` a line of high similarities (plus the same noise) from (q0, r0) to
    (q0 + q_len, r0 + r_len). Returns the map and the ground-truth boxes (exclusive ends)."""
    sim = rng.uniform(*background, shape) + rng.normal(0.0, noise, shape)
    for q0, r0, q_len, r_len in copies:
        steps = 4 * max(q_len, r_len)
        t = np.arange(steps) / steps
        q, r = q0 + (t * q_len).astype(int), r0 + (t * r_len).astype(int)
        sim[q, r] = rng.uniform(*copy_level, steps) + rng.normal(0.0, noise, steps)
    gt = np.array([[q0, r0, q0 + q_len, r0 + r_len] for q0, r0, q_len, r_len in copies], dtype=np.float64)
    return sim.astype(np.float32), gt


def random_slope(rng):
    return float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))


def segment_f(boxes, gt):
    precision, recall = pair_precision_recall(boxes, gt)
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def same_paths(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


# ------------------------------------------------------------------------- kernels against references


@pytest.mark.parametrize("shape, kind", list(itertools.product(SHAPES, ["continuous", "ties"])))
def test_dtw_path_matches_reference(shape, kind):
    cost = 1.0 - random_map(np.random.default_rng(sum(shape)), shape, kind)
    path = ap.dtw_path(cost)
    np.testing.assert_array_equal(path, ap.dtw_path_reference(cost))
    if cost.size:
        np.testing.assert_array_equal(path[0], [0, 0])
        np.testing.assert_array_equal(path[-1], [shape[0] - 1, shape[1] - 1])
        assert set(map(tuple, np.diff(path, axis=0))) <= {(0, 1), (1, 0), (1, 1)}
    else:
        assert path.shape == (0, 2)


@pytest.mark.parametrize(
    "shape, kind, discontinue, min_score",
    list(itertools.product(SHAPES, ["continuous", "ties"], [0, 3], [0.9, 1.4])),
)
def test_mpdp_paths_match_reference(shape, kind, discontinue, min_score):
    score = 1.0 + random_map(np.random.default_rng(7 + sum(shape)), shape, kind)
    paths = ap.mpdp_paths(score, discontinue, min_score, 100)
    assert same_paths(paths, ap.mpdp_paths_reference(score, discontinue, min_score, 100))
    for path in paths:
        assert np.all(np.diff(path, axis=0) >= 0) and np.all(np.diff(path, axis=0).sum(axis=1) >= 1)
    assert ap.mpdp_paths(score, discontinue, min_score, 0) == []


@pytest.mark.parametrize(
    "shape, kind, max_step, min_sim",
    list(itertools.product([s for s in SHAPES if s[1] > 0], ["continuous", "ties"], [2, 10], [0.2, -1.0])),
)
def test_tn_paths_match_reference(shape, kind, max_step, min_sim):
    sim = random_map(np.random.default_rng(11 + sum(shape)), shape, kind)
    top_cols, top_sims = top_k_columns(sim, min(5, shape[1])) if sim.size else (np.zeros((0, 1), int),) * 2
    paths = ap.tn_paths(top_cols, top_sims, max_step, min_sim, 11)
    assert same_paths(paths, ap.tn_paths_reference(top_cols, top_sims, max_step, min_sim, 11))
    for path in paths:
        steps = np.diff(path, axis=0)
        assert np.all((steps > 0) & (steps < max_step))


def test_kernel_input_checks():
    with pytest.raises(ValueError, match="2-D"):
        ap.dtw_path(np.zeros(5))
    with pytest.raises(TypeError, match="floats"):
        ap.mpdp_paths(np.zeros((3, 3), dtype=np.int32), 3, 0.9, 10)
    with pytest.raises(ValueError, match="same shape"):
        ap.tn_paths(np.zeros((3, 2), dtype=np.int64), np.zeros((3, 3)), 10, 0.2, 5)
    ext = _ext.extension()
    with pytest.raises(ValueError, match="discontinue"):
        ext.mpdp_paths(np.zeros((3, 3)), -1, 0.9, 10)
    with pytest.raises(ValueError, match="2-D"):
        ext.dtw_path(np.zeros((2, 2, 2)))


def test_reference_fallback_without_extension(monkeypatch):
    sim, _ = planted_map(np.random.default_rng(3), (60, 70), [(5, 10, 40, 50)])
    expected = {method: align(sim, method) for method in METHODS}
    monkeypatch.setattr(ap, "extension", lambda: None)
    monkeypatch.setattr(_ext, "_warned", set())
    with pytest.warns(RuntimeWarning, match="slower reference"):
        fallback = {method: align(sim, method) for method in METHODS}
    for method in METHODS:
        np.testing.assert_array_equal(fallback[method], expected[method])


def test_top_k_columns_orders_by_value_then_column():
    rng = np.random.default_rng(5)
    for shape, kind in itertools.product([(1, 1), (4, 9), (12, 30)], ["continuous", "ties"]):
        sim = random_map(rng, shape, kind)
        for k in range(1, shape[1] + 1):
            cols, sims = top_k_columns(sim, k)
            expected = np.argsort(-sim, axis=1, kind="stable")[:, :k]
            np.testing.assert_array_equal(cols, expected)
            np.testing.assert_array_equal(sims, np.take_along_axis(sim, expected, axis=1))


@pytest.mark.parametrize("shape", [(1, 1), (1, 8), (8, 1), (5, 12), (12, 5)])
def test_diagonal_sums_match_trace(shape):
    values = np.random.default_rng(2).random(shape)
    np.testing.assert_allclose(diagonal_sums(values), diagonal_sums_reference(values), rtol=1e-12)


def test_diagonal_segments_cut_long_straight_runs():
    horizontal = [(0, j) for j in range(12)]  # 12 points on query frame 0: cut (> 10)
    diagonal = [(i, 11 + i) for i in range(1, 21)]  # 20 diagonal points
    vertical = [(20 + i, 31) for i in range(1, 4)]  # short vertical run: kept
    tail = [(23 + i, 31 + i) for i in range(1, 9)]
    path = np.array(horizontal + diagonal + vertical + tail)
    # the run's last point (0, 11) is cut with it; the short run stays inside the segment
    assert diagonal_segments(path, 10) == [(12, len(path))]
    # with a threshold of 2 the 4-point vertical run (including its corner (20, 31)) goes too
    assert diagonal_segments(path, 2) == [(12, 31), (35, len(path))]
    assert diagonal_segments(np.array([[0, 0]]), 3) == [(0, 1)]


# ------------------------------------------------------------------------------------ output contract


@pytest.mark.parametrize("method", METHODS)
def test_output_contract_and_input_kinds(method):
    rng = np.random.default_rng(9)
    sim, _ = planted_map(rng, (70, 90), [(0, 20, 70, 60)])
    expected = align(sim.astype(np.float64), method)
    assert expected.dtype == np.float32 and expected.ndim == 2 and expected.shape[1] == 5 and len(expected)
    q_s, r_s, q_e, r_e, score = expected.T
    assert np.all((0 <= q_s) & (q_s < q_e) & (q_e <= 70) & (0 <= r_s) & (r_s < r_e) & (r_e <= 90))
    assert np.all((score >= sim.min() - 1e-6) & (score <= sim.max() + 1e-6))
    np.testing.assert_array_equal(align(sim, method), expected)
    np.testing.assert_array_equal(align(np.asfortranarray(sim), method), expected)
    wide = np.zeros((70, 180), dtype=np.float32)
    wide[:, ::2] = sim
    np.testing.assert_array_equal(align(wide[:, ::2], method), expected)  # non-contiguous view
    half = sim.astype(np.float16)
    np.testing.assert_array_equal(align(half, method), align(half.astype(np.float64), method))


@pytest.mark.parametrize("method, shape", list(itertools.product(METHODS, [(0, 0), (0, 7), (7, 0)])))
def test_empty_map_gives_no_boxes(method, shape):
    boxes = align(np.zeros(shape, dtype=np.float32), method)
    assert boxes.shape == (0, 5) and boxes.dtype == np.float32


@pytest.mark.parametrize("method, shape", list(itertools.product(METHODS, [(1, 1), (1, 40), (40, 1), (2, 2)])))
def test_degenerate_maps_run(method, shape):
    boxes = align(np.full(shape, 0.8, dtype=np.float32), method)
    assert boxes.dtype == np.float32 and boxes.shape[1] == 5


# -------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "sim, error, match",
    [
        ([[0.1, 0.2]], TypeError, "numpy array"),
        (np.zeros((2, 3, 4)), ValueError, "2-D"),
        (np.zeros(5), ValueError, "2-D"),
        (np.zeros((4, 4), dtype=np.int64), TypeError, "floating"),
        (np.array([[0.1, np.nan]]), ValueError, "NaN"),
        (np.array([[0.1, np.inf]]), ValueError, "NaN or infinite"),
    ],
)
@pytest.mark.parametrize("method", METHODS)
def test_bad_maps(method, sim, error, match):
    with pytest.raises(error, match=match):
        align(sim, method)


def test_bad_method_and_overrides():
    sim = np.zeros((5, 5), dtype=np.float32)
    with pytest.raises(ValueError, match="unknown localizer 'yolo'.*hv, tn, dp, dtw"):
        align(sim, "yolo")
    with pytest.raises(ValueError, match="unknown TNParams key 'top_K'.*top_k"):
        align(sim, "tn", top_K=5)
    with pytest.raises(TypeError, match=r"TNParams.top_k must be int, got float"):
        align(sim, "tn", top_k=2.5)
    with pytest.raises(TypeError, match="DPParams.min_length must be int, got bool"):
        align(sim, "dp", min_length=True)
    with pytest.raises(ValueError, match="HVParams.min_sim must be float, got 'high'"):
        align(sim, "hv", min_sim="high")
    with pytest.raises(ValueError, match="DTWParams.min_sim must be finite"):
        align(sim, "dtw", min_sim=float("nan"))
    with pytest.raises(ValueError, match=r"HVParams.iou_thresh must be >= 0.0 and <= 1.0, got 1.5"):
        align(sim, "hv", iou_thresh=1.5)
    with pytest.raises(ValueError, match="TNParams.max_step must be >= 1"):
        TNParams(max_step=0)


def test_presets_are_the_vcsl_tuned_values_and_override_by_keyword_or_text():
    assert (HVParams().min_sim, HVParams().iou_thresh) == (0.7, 0.9)
    assert TNParams() == TNParams(max_step=10, top_k=10, min_sim=0.2, max_path=10, max_iou=0.3)
    assert DPParams() == DPParams(discontinue=3, min_sim=0.9, ave_sim=1.3, min_length=5, diagonal_thres=10)
    assert DTWParams() == DTWParams(discontinue=9, min_sim=0.3, min_length=5)
    params = localizer_params("TN", {"top_k": np.int64(5), "min_sim": 1})
    assert params.top_k == 5 and isinstance(params.min_sim, float) and params.min_sim == 1.0
    assert localizer_params("tn", ["top_k=5", " min_sim = 0.25"]) == TNParams(top_k=5, min_sim=0.25)
    with pytest.raises(ValueError, match="key=value"):
        localizer_params("tn", ["top_k"])
    with pytest.raises(ValueError, match="TNParams.top_k must be int, got '2.5'"):
        localizer_params("tn", ["top_k=2.5"])
    with pytest.raises(ValueError, match="unknown DPParams key 'foo'"):
        localizer_params("dp", ["foo=1"])


# ----------------------------------------------------------------------------------- planted copies


def whole_axis_cases(rng, count):
    """One copy spanning the whole query (even cases) or the whole reference (odd cases), slope 0.5..2,
    with 12..60 background frames before and after it on the other axis."""
    cases = []
    for i in range(count):
        q_len = int(rng.integers(40, 120))
        r_len = int(round(q_len * random_slope(rng)))
        before, after = (int(v) for v in rng.integers(12, 60, 2))
        if i % 2 == 0:
            cases.append(((q_len, r_len + before + after), [(0, before, q_len, r_len)]))
        else:
            cases.append(((q_len + before + after, r_len), [(before, 0, q_len, r_len)]))
    return cases


def partial_cases(rng, count):
    """One or two partial copies (20..50 query frames, slope 0.5..2), each inside its own block of both axes
    (copies follow each other in time), at random offsets in 80..200-frame videos."""
    cases = []
    for _ in range(count):
        rows, cols = (int(v) for v in rng.integers(80, 200, 2))
        n = int(rng.integers(1, 3))
        copies = []
        for k in range(n):
            slope = random_slope(rng)
            q_len = min(int(rng.integers(20, 50)), int((cols // n - 5) / slope), rows // n - 2)
            r_len = int(round(q_len * slope))
            q0 = k * (rows // n) + int(rng.integers(0, rows // n - q_len))
            r0 = k * (cols // n) + int(rng.integers(0, cols // n - r_len))
            copies.append((q0, r0, q_len, r_len))
        cases.append(((rows, cols), copies))
    return cases


# mean and worst segment F over the cases, measured (see bench/README.md "Classical localizers")
WHOLE_AXIS_F = {"hv": (0.85, 0.65), "tn": (0.85, 0.7), "dp": (0.9, 0.8), "dtw": (0.9, 0.8)}


@pytest.mark.parametrize("method", METHODS)
def test_whole_axis_copies_in_noisy_background(method):
    """Background uniform 0..0.3 plus N(0, 0.05), copy 0.6..0.9 plus the same noise."""
    rng = np.random.default_rng(2024)
    scores = []
    for shape, copies in whole_axis_cases(rng, 12):
        sim, gt = planted_map(rng, shape, copies)
        scores.append(segment_f(align(sim, method), gt))
    mean_f, worst_f = WHOLE_AXIS_F[method]
    assert np.mean(scores) >= mean_f and min(scores) >= worst_f, np.round(scores, 2)


# TN finds partial copies in a clean background. DP and DTW extend their boxes into the background: the
# benchmark's DP keeps every cell with similarity > -0.1 matched and its longest path crosses the whole
# map; DTW's one global path joins the copies through the background. HV boxes span whole diagonals.
PARTIAL_F = {"hv": 0.35, "tn": 0.8, "dp": 0.4, "dtw": 0.3}


@pytest.mark.parametrize("method", METHODS)
def test_partial_copies_in_clean_background(method):
    """Background uniform 0..0.1 plus N(0, 0.03), copy 0.6..0.9 plus the same noise."""
    rng = np.random.default_rng(7)
    scores = []
    for shape, copies in partial_cases(rng, 12):
        sim, gt = planted_map(rng, shape, copies, background=(0.0, 0.1), noise=0.03)
        scores.append(segment_f(align(sim, method), gt))
    assert np.mean(scores) >= PARTIAL_F[method], np.round(scores, 2)
    if method == "tn":
        assert min(scores) >= 0.65, np.round(scores, 2)


def test_hv_boxes_follow_the_diagonals_of_same_speed_copies():
    rng = np.random.default_rng(4)
    copies = [(10, 60, 40, 40), (90, 20, 30, 30)]
    sim, gt = planted_map(rng, (150, 130), copies)
    boxes = align(sim, "hv")
    for q0, r0, _, _ in copies:  # the two best diagonals are the copies' whole diagonals
        offset = r0 - q0
        assert any(b[1] - b[0] == offset and b[3] - b[2] == offset for b in boxes[:2]), boxes
    _, recall = pair_precision_recall(boxes, gt)
    assert recall > 0.99


# ------------------------------------------------------------------------------- the real VCSL map


@pytest.fixture(scope="module")
def real_map(shared_data):
    files = sorted((shared_data / "vcsl").glob("*.npy"))
    if not files:
        pytest.skip("no VCSL similarity map in the shared data")
    return np.load(files[0])


def locate_copy_diagonal(sim, level=0.5):
    """The diagonal (offset r - q) with the most cells above ``level``, and the first and last query frame
    of those cells on it."""
    rows, cols = sim.shape
    offsets = np.arange(-(rows - 1), cols)
    counts = [np.count_nonzero(np.diagonal(sim, o) > level) for o in offsets]
    offset = int(offsets[int(np.argmax(counts))])
    high = np.flatnonzero(np.diagonal(sim, offset) > level) + max(0, -offset)
    return offset, int(high[0]), int(high[-1])


def assert_box_on_diagonal(boxes, offset, q_first, q_last, shift=(0, 0)):
    """Some box has both corners within 3 frames of the diagonal and covers >= 80% of its copied part."""
    for q_s, r_s, q_e, r_e, _ in boxes:
        q_s, q_e, r_s, r_e = q_s + shift[0], q_e + shift[0], r_s + shift[1], r_e + shift[1]
        on_diagonal = abs(r_s - q_s - offset) <= 3 and abs(r_e - q_e - offset) <= 3
        overlap = min(q_e, q_last + 1) - max(q_s, q_first)
        union = max(q_e, q_last + 1) - min(q_s, q_first)
        if on_diagonal and overlap / union >= 0.8:
            return
    raise AssertionError(f"no box on diagonal r - q = {offset}, q {q_first}..{q_last}: {boxes}")


def test_real_map_diagonal_is_where_we_expect(real_map):
    assert real_map.shape == (160, 241)
    assert locate_copy_diagonal(real_map) == (187, 0, 53)


@pytest.mark.parametrize("method", ["hv", "tn", "dp"])
def test_real_map_box_on_the_copy_diagonal(real_map, method):
    offset, q_first, q_last = locate_copy_diagonal(real_map)
    boxes = align(real_map, method)
    assert_box_on_diagonal(boxes, offset, q_first, q_last)
    if method != "hv":
        assert len(boxes) == 1


def test_real_map_dtw(real_map):
    """DTW's single global path runs from the first to the last frame pair: reaching the copy (query frames
    0..53 at reference frames 187..240) costs 187 horizontal steps, so it crosses the background instead
    and finds nothing. Cut to query frames 0..79 and reference frames 140..240, where the copy dominates the
    map, it follows the copy."""
    offset, q_first, q_last = locate_copy_diagonal(real_map)
    assert len(align(real_map, "dtw")) == 0
    assert_box_on_diagonal(align(real_map[:80, 140:], "dtw"), offset, q_first, q_last, shift=(0, 140))


# ------------------------------------------------------------------------------------------------ CLI


def test_cli_align_table_and_json(real_map, tmp_path, capsys):
    path = tmp_path / "sim.npy"
    np.save(path, real_map)
    out = tmp_path / "boxes.json"
    assert main(["align", str(path), "--method", "tn", "--param", "top_k=5", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "q_start" in printed and "score" in printed
    boxes = json.loads(out.read_text())
    np.testing.assert_allclose(boxes, align(real_map, "tn", top_k=5), rtol=1e-6)
    assert isinstance(boxes, list) and all(len(b) == 5 for b in boxes)


def test_cli_align_no_boxes(tmp_path, capsys):
    path = tmp_path / "flat.npy"
    np.save(path, np.zeros((30, 30), dtype=np.float32))
    out = tmp_path / "boxes.json"
    assert main(["align", str(path), "--method", "hv", "--json", str(out)]) == 0
    assert "no boxes" in capsys.readouterr().out
    assert json.loads(out.read_text()) == []


@pytest.mark.parametrize(
    "content, args, match",
    [
        (None, [], "no such file"),
        ("text", [], "not a .npy file"),
        (np.zeros((2, 3, 4), dtype=np.float32), [], "2-D"),
        (np.array([[0.5, np.nan]], dtype=np.float32), [], "NaN"),
        (np.zeros((4, 4), dtype=np.float32), ["--param", "top_k=x"], "must be int"),
        (np.zeros((4, 4), dtype=np.float32), ["--param", "nope=1"], "unknown TNParams key"),
        (np.array([{"a": 1}], dtype=object), [], "not a .npy array file"),
        (b"garbage", [], "not a .npy array file (save the (Q, R) map with numpy.save)"),
    ],
)
def test_cli_align_bad_input(tmp_path, capsys, content, args, match):
    path = tmp_path / ("map.txt" if isinstance(content, str) else "map.npy")
    if isinstance(content, str):
        path.write_text(content)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        np.save(path, content, allow_pickle=True)
    out = tmp_path / "boxes.json"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["align", str(path), "--json", str(out)] + args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vcl-fast align: error:") and match in err and "\n" not in err
    assert not out.exists()


def test_localizers_do_not_import_torch():
    code = (
        "import sys, vcl_fast.eval.localizers.commands, numpy as np; "
        "from vcl_fast.eval.localizers import align; "
        "[align(np.eye(20, dtype=np.float32), m) for m in ('hv', 'tn', 'dp', 'dtw')]; "
        "assert 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])
