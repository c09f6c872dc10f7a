"""segment_nms: the compiled kernels (every SIMD level this CPU runs, CUDA when present) against the numpy
reference and torchvision.ops.nms, hand-made edge cases, and input checks."""
import itertools

import numpy as np
import pytest
import torch
import torchvision

import vcl_fast._ext
import vcl_fast.ops.nms as nms_module
from vcl_fast._ext import cuda_available, extension
from vcl_fast.ops import segment_nms, segment_nms_reference

SIMD_LEVELS = ("scalar", "avx2", "avx512")
SIZES = (0, 1, 2, 7, 100, 1000, 8400)
THRESHOLDS = (0.0, 0.3, 0.5, 0.9, 1.0)


def random_boxes(n, rng, extent=None, max_length=60.0):
    """(n, 4) float32 boxes [q_s, r_s, q_e, r_e] (some of zero length) and (n,) float32 scores in [0, 1).

    The map side grows with n so the boxes stay about equally crowded."""
    extent = extent if extent is not None else 20.0 * np.sqrt(max(n, 1))
    start = rng.uniform(0, extent, (n, 2))
    length = rng.uniform(0, max_length, (n, 2)) * (rng.random((n, 2)) > 0.05)
    boxes = np.concatenate([start, start + length], axis=1).astype(np.float32)
    return boxes, rng.random(n).astype(np.float32)


def supported_simd_levels():
    ext = extension()
    best = SIMD_LEVELS.index(ext.cpu_simd_level())
    return SIMD_LEVELS[: best + 1]


def run_at_each_simd_level(fn):
    """{level: fn()} for every SIMD level this CPU supports, restoring the level in use afterwards."""
    ext = extension()
    before = ext.simd_level()
    results = {}
    try:
        for level in supported_simd_levels():
            assert ext.set_simd_level(level) == level
            results[level] = fn()
    finally:
        ext.set_simd_level(before)
    return results


@pytest.mark.parametrize("n,threshold,grouped", list(itertools.product(SIZES, THRESHOLDS, (False, True))))
def test_kernel_matches_reference(n, threshold, grouped):
    rng = np.random.default_rng(1000 * n + int(threshold * 10) + grouped)
    boxes, scores = random_boxes(n, rng)
    groups = rng.integers(-3, 5, n) if grouped else None
    expected = segment_nms_reference(boxes, scores, threshold, groups)
    for level, keep in run_at_each_simd_level(lambda: segment_nms(boxes, scores, threshold, groups)).items():
        assert keep.dtype == np.int64
        np.testing.assert_array_equal(keep, expected, err_msg=f"SIMD level {level}")


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_reduced_and_double_precision_inputs_are_converted(dtype):
    rng = np.random.default_rng(7)
    boxes, scores = random_boxes(500, rng, extent=200.0, max_length=40.0)
    boxes, scores = boxes.astype(dtype), scores.astype(dtype)
    expected = segment_nms_reference(boxes.astype(np.float32), scores.astype(np.float32), 0.4)
    np.testing.assert_array_equal(segment_nms(boxes, scores, 0.4), expected)
    np.testing.assert_array_equal(segment_nms_reference(boxes, scores, 0.4), expected)


def test_non_contiguous_inputs():
    rng = np.random.default_rng(3)
    boxes, scores = random_boxes(600, rng)
    groups = rng.integers(0, 4, 600)
    wide = np.zeros((600, 8), np.float32)
    wide[:, ::2] = boxes  # rows of stride 32 bytes, columns of stride 8
    strided_scores = np.repeat(scores, 3)[::3]
    strided_groups = np.repeat(groups, 2)[::2]
    assert not wide[:, ::2].flags.c_contiguous and not strided_scores.flags.c_contiguous
    expected = segment_nms_reference(boxes, scores, 0.5, groups)
    np.testing.assert_array_equal(segment_nms(wide[:, ::2], strided_scores, 0.5, strided_groups), expected)
    fortran = np.asfortranarray(boxes)
    np.testing.assert_array_equal(segment_nms(fortran, scores, 0.5, groups), expected)


def test_torch_in_torch_out():
    rng = np.random.default_rng(4)
    boxes, scores = random_boxes(300, rng)
    groups = rng.integers(0, 3, 300)
    keep = segment_nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.5, torch.from_numpy(groups))
    assert isinstance(keep, torch.Tensor) and keep.dtype == torch.int64 and keep.device.type == "cpu"
    np.testing.assert_array_equal(keep.numpy(), segment_nms_reference(boxes, scores, 0.5, groups))
    half = segment_nms(torch.from_numpy(boxes).half().t().contiguous().t(), torch.from_numpy(scores).double(), 0.5)
    expected = segment_nms_reference(boxes.astype(np.float16).astype(np.float32), scores, 0.5)
    np.testing.assert_array_equal(half.numpy(), expected)


def test_agrees_with_torchvision_nms():
    rng = np.random.default_rng(5)
    for n, threshold in itertools.product((10, 400, 3000), (0.0, 0.3, 0.7)):
        boxes, scores = random_boxes(n, rng)
        # [q_s, r_s, q_e, r_e] is [x1, y1, x2, y2]; both use areas without +1.
        expected = torchvision.ops.nms(torch.from_numpy(boxes), torch.from_numpy(scores), threshold).numpy()
        for keep in run_at_each_simd_level(lambda: segment_nms(boxes, scores, threshold)).values():
            np.testing.assert_array_equal(scores[keep], scores[expected])


def test_groups_agree_with_torchvision_batched_nms():
    rng = np.random.default_rng(6)
    boxes, scores = random_boxes(2000, rng, extent=300.0)
    groups = rng.integers(0, 40, 2000)
    expected = torchvision.ops.batched_nms(
        torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(groups), 0.5
    ).numpy()
    for keep in run_at_each_simd_level(lambda: segment_nms(boxes, scores, 0.5, groups)).values():
        np.testing.assert_array_equal(scores[keep], scores[expected])


def both_implementations(boxes, scores, threshold, groups=None):
    """(kernel result at every SIMD level..., reference result), as numpy arrays."""
    boxes, scores = np.asarray(boxes, np.float32), np.asarray(scores, np.float32)
    if groups is not None:
        groups = np.asarray(groups)
    kernels = run_at_each_simd_level(lambda: segment_nms(boxes, scores, threshold, groups))
    return [*kernels.values(), segment_nms_reference(boxes, scores, threshold, groups)]


def test_box_exactly_at_the_threshold_is_kept():
    # The small box lies inside the big one: IoU = 2 / 4 = 0.5 exactly (and 1 / 4 = 0.25 for the third).
    boxes = [[0, 0, 4, 1], [0, 0, 2, 1], [0, 0, 1, 1]]
    scores = [0.9, 0.8, 0.7]
    for keep in both_implementations(boxes, scores, 0.5):
        np.testing.assert_array_equal(keep, [0, 1, 2])
    for keep in both_implementations(boxes, scores, np.nextafter(0.5, 0)):
        np.testing.assert_array_equal(keep, [0, 2])
    for keep in both_implementations(boxes, scores, 0.25):
        np.testing.assert_array_equal(keep, [0, 2])
    for keep in both_implementations(boxes, scores, 0.2):
        np.testing.assert_array_equal(keep, [0])


def test_threshold_compared_in_double_precision():
    # IoU = 1/3 in float32 is 0.3333333432674408, above the double 1/3: suppressed at threshold 1/3
    # (torchvision compares the same way), kept at the float32 value itself.
    boxes = [[0, 0, 3, 1], [0, 0, 1, 1]]
    scores = [0.9, 0.8]
    for keep in both_implementations(boxes, scores, 1 / 3):
        np.testing.assert_array_equal(keep, [0])
    for keep in both_implementations(boxes, scores, float(np.float32(1 / 3))):
        np.testing.assert_array_equal(keep, [0, 1])
    tv = torchvision.ops.nms(torch.tensor(boxes, dtype=torch.float32), torch.tensor(scores), 1 / 3)
    np.testing.assert_array_equal(tv.numpy(), [0])


def test_equal_scores_keep_index_order():
    boxes = [[0, 0, 1, 1], [10, 10, 11, 11], [0, 0, 1, 1], [20, 20, 21, 21], [5, 5, 6, 6]]
    scores = [0.5, 0.5, 0.5, 0.0, -0.0]
    for keep in both_implementations(boxes, scores, 0.5):
        np.testing.assert_array_equal(keep, [0, 1, 3, 4])  # box 2 duplicates box 0; -0.0 ties 0.0


def test_identical_boxes_all_but_best_suppressed():
    boxes = np.tile([[2.0, 3.0, 7.0, 9.0]], (50, 1))
    scores = np.linspace(0.1, 0.9, 50)
    for threshold in (0.0, 0.5, 0.99):
        for keep in both_implementations(boxes, scores, threshold):
            np.testing.assert_array_equal(keep, [49])
    for keep in both_implementations(boxes, scores, 1.0):  # IoU 1 is not above 1
        np.testing.assert_array_equal(keep, np.arange(50)[::-1])


def test_zero_area_boxes_have_iou_zero():
    # Identical zero-area boxes (0/0), a zero-area box inside a box, touching boxes: never suppressed.
    boxes = [[1, 1, 1, 5], [1, 1, 1, 5], [0, 2, 4, 2], [0, 0, 4, 4], [4, 0, 8, 4]]
    scores = [0.9, 0.8, 0.7, 0.6, 0.5]
    for keep in both_implementations(boxes, scores, 0.0):
        np.testing.assert_array_equal(keep, [0, 1, 2, 3, 4])


def sparse_with_edge_cases(rng, n):
    """n sparse boxes (most are kept, so groups of >= 1024 boxes finish in the kernels' q-windowed pass) plus
    boxes that touch along q or r, zero-area boxes, exact duplicates, one box spanning everything (the
    window's reach), negative and -0.0 coordinates; scores in random order."""
    boxes, _ = random_boxes(n, rng, extent=40.0 * np.sqrt(n), max_length=30.0)
    base = boxes[: n // 20]
    touching_q = base.copy()
    touching_q[:, 0], touching_q[:, 2] = base[:, 2], base[:, 2] + 5.0  # starts where the box ends along q
    touching_r = base.copy()
    touching_r[:, 1], touching_r[:, 3] = base[:, 3], base[:, 3] + 5.0
    zero_q, zero_r = base.copy(), base.copy()
    zero_q[:, 2] = zero_q[:, 0]  # zero length along q, inside the base box along r
    zero_r[:, 3] = zero_r[:, 1]
    near = base + np.float32(0.5)  # overlaps its base box: IoU high enough to suppress at low thresholds
    special = np.array([[-5.0, -5.0, 1e5, 1e5], [-0.0, 0.0, 3.0, 3.0], [0.0, -0.0, 3.0, 3.0],
                        [-20.0, -20.0, -10.0, -10.0]], np.float32)
    boxes = np.concatenate([boxes, touching_q, touching_r, zero_q, zero_r, base, near, special])
    return boxes, rng.random(len(boxes)).astype(np.float32)


@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.7])
def test_windowed_pass_matches_reference(threshold):
    rng = np.random.default_rng(40 + int(10 * threshold))
    boxes, scores = sparse_with_edge_cases(rng, 3000)
    kernels_and_reference = both_implementations(boxes, scores, threshold)
    for keep in kernels_and_reference[:-1]:
        np.testing.assert_array_equal(keep, kernels_and_reference[-1])
    assert len(kernels_and_reference[-1]) > len(boxes) // 2  # the mostly-kept regime the windows serve


def test_windowed_pass_with_groups():
    rng = np.random.default_rng(50)
    parts = [sparse_with_edge_cases(rng, n) for n in (1500, 1200, 30)]
    boxes = np.concatenate([b for b, _ in parts])
    scores = np.concatenate([s for _, s in parts])
    groups = np.concatenate([np.full(len(b), g) for g, (b, _) in zip((7, -2, 7), parts)])  # group 7 in two parts
    boxes[groups == -2] += np.float32(1000.0)  # a group elsewhere on the map, same pattern
    kernels_and_reference = both_implementations(boxes, scores, 0.3, groups)
    for keep in kernels_and_reference[:-1]:
        np.testing.assert_array_equal(keep, kernels_and_reference[-1])


def test_groups_never_interact():
    boxes = np.tile([[0.0, 0.0, 10.0, 10.0]], (6, 1))
    scores = [0.1, 0.9, 0.5, 0.7, 0.3, 0.8]
    groups = [2, 0, 1, 0, 2, 1]
    for keep in both_implementations(boxes, scores, 0.5, groups):
        np.testing.assert_array_equal(keep, [1, 5, 4])  # best of each group, by decreasing score
    huge = [-(2**62), 2**62, 7, 2**62, -(2**62), 7]  # ids spanning more than 2^32
    for keep in both_implementations(boxes, scores, 0.5, huge):
        np.testing.assert_array_equal(keep, [1, 5, 4])


def test_many_groups_match_per_group_loop():
    rng = np.random.default_rng(8)
    sizes = rng.integers(1, 120, 300)  # ragged groups
    groups = np.repeat(np.arange(300), sizes)
    rng.shuffle(groups)
    boxes, scores = random_boxes(len(groups), rng, extent=150.0)
    keep = segment_nms(boxes, scores, 0.3, groups)
    per_group = []
    for g in range(300):
        members = np.flatnonzero(groups == g)
        per_group.append(members[segment_nms_reference(boxes[members], scores[members], 0.3)])
    expected = np.concatenate(per_group)
    expected = expected[np.argsort(-scores[expected], kind="stable")]
    np.testing.assert_array_equal(np.sort(keep), np.sort(expected))
    np.testing.assert_array_equal(scores[keep], scores[expected])


def test_falls_back_to_reference_without_extension(monkeypatch):
    rng = np.random.default_rng(9)
    boxes, scores = random_boxes(100, rng)
    monkeypatch.setattr(nms_module, "extension", lambda: None)
    monkeypatch.setattr(nms_module, "extension_error", lambda: "test")
    monkeypatch.setattr(vcl_fast._ext, "_warned", set())
    with pytest.warns(RuntimeWarning, match="segment_nms"):
        keep = segment_nms(boxes, scores, 0.5)
    np.testing.assert_array_equal(keep, segment_nms_reference(boxes, scores, 0.5))


@pytest.mark.parametrize("with_groups", [False, True])
def test_gpu_inputs_without_cuda_fall_back_to_the_reference(monkeypatch, with_groups):
    """GPU arrays where the extension has no CUDA: the host copies go through the reference with the threshold
    and groups in their places (they were swapped). The GPU array helpers are stood in for by numpy ones."""
    rng = np.random.default_rng(10)
    boxes, scores = random_boxes(200, rng)
    groups = rng.integers(0, 3, 200) if with_groups else None
    monkeypatch.setattr(nms_module, "cuda_available", lambda: False)
    monkeypatch.setattr(nms_module, "extension_error", lambda: "test")
    monkeypatch.setattr(nms_module, "gpu_as_contiguous", lambda x, dtype, kind: np.ascontiguousarray(x, dtype))
    monkeypatch.setattr(nms_module, "gpu_to_host", lambda x, kind: np.array(x))
    monkeypatch.setattr(nms_module, "gpu_from_host", lambda host, like, kind: host)
    monkeypatch.setattr(vcl_fast._ext, "_warned", set())
    with pytest.warns(RuntimeWarning, match="segment_nms"):
        keep = nms_module._segment_nms_gpu(boxes, scores, groups, 0.3, "stand-in GPU", 200)
    np.testing.assert_array_equal(keep, segment_nms_reference(boxes, scores, 0.3, groups))


BAD_INPUTS = [
    (np.zeros((3, 5), np.float32), np.zeros(3, np.float32), 0.5, None, ValueError, r"shape \(N, 4\)"),
    (np.zeros((3, 4, 1), np.float32), np.zeros(3, np.float32), 0.5, None, ValueError, r"shape \(N, 4\)"),
    (np.zeros((3, 4), np.float32), np.zeros(2, np.float32), 0.5, None, ValueError, r"scores must have shape"),
    (np.zeros((3, 4), np.float32), np.zeros((3, 1), np.float32), 0.5, None, ValueError, r"scores must have shape"),
    (np.zeros((3, 4), np.float32), np.zeros(3, np.float32), 0.5, np.zeros(4, np.int64), ValueError, r"groups must"),
    (np.zeros((3, 4), np.int64), np.zeros(3, np.float32), 0.5, None, TypeError, r"boxes must be float16"),
    (np.zeros((3, 4), np.float32), np.zeros(3, bool), 0.5, None, TypeError, r"scores must be float16"),
    (np.zeros((3, 4), np.float32), np.zeros(3, np.float32), 0.5, np.zeros(3), TypeError, r"groups must be an integer"),
    (np.zeros((3, 4), np.float32), np.zeros(3, np.float32), -0.1, None, ValueError, r"iou_threshold must be >= 0"),
    (np.zeros((3, 4), np.float32), np.zeros(3, np.float32), float("nan"), None, ValueError, r"iou_threshold"),
    (np.zeros((3, 4), np.float32), np.zeros(3, np.float32), "0.5", None, TypeError, r"iou_threshold must be a real"),
    (np.zeros((3, 4), np.float32), torch.zeros(3), 0.5, None, TypeError, r"same kind of array"),
    ([[0, 0, 1, 1]], np.zeros(1, np.float32), 0.5, None, TypeError, r"boxes must be a numpy array"),
]


@pytest.mark.parametrize("boxes,scores,threshold,groups,error,message", BAD_INPUTS)
def test_bad_inputs_raise(boxes, scores, threshold, groups, error, message):
    with pytest.raises(error, match=message):
        segment_nms(boxes, scores, threshold, groups)
    with pytest.raises(error, match=message):
        segment_nms_reference(boxes, scores, threshold, groups)


BAD_VALUES = [
    ([[0, 0, 1, np.nan]], [0.5], r"boxes must be finite .* box 0"),
    ([[0, 0, 1, 1], [0, -np.inf, 1, 1]], [0.5, 0.5], r"boxes must be finite .* box 1"),
    ([[0, 0, 1, 1], [0, 0, 1e39, 1]], [0.5, 0.5], r"boxes must be finite \(after conversion to float32\); box 1"),
    ([[0, 0, 1, 1]], [np.nan], r"scores must be finite .* score 0"),
    ([[0, 0, 1, 1], [0, 0, 2, 2]], [0.1, np.inf], r"scores must be finite .* score 1"),
    ([[0, 0, 1, 1], [3, 0, 2, 1]], [0.5, 0.5], r"q_end >= q_start and r_end >= r_start.*box 1 is \[3.0, 0.0, 2.0, 1.0\]"),
    ([[0, 5, 1, 4]], [0.5], r"q_end >= q_start and r_end >= r_start.*box 0"),
]


@pytest.mark.parametrize("boxes,scores,message", BAD_VALUES)
def test_bad_values_raise_the_same_message_everywhere(boxes, scores, message):
    boxes, scores = np.asarray(boxes, np.float64), np.asarray(scores, np.float64)

    def kernel_error():
        with pytest.raises(ValueError, match=message) as info:
            segment_nms(boxes, scores, 0.5)
        return str(info.value)

    with pytest.raises(ValueError, match=message) as reference:
        segment_nms_reference(boxes, scores, 0.5)
    for text in run_at_each_simd_level(kernel_error).values():
        assert text == str(reference.value)
    with pytest.raises(ValueError, match=message):
        segment_nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.5, torch.zeros(len(scores), dtype=torch.int32))


def test_empty_input_returns_empty_of_the_same_kind():
    keep = segment_nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.5)
    assert keep.shape == (0,) and keep.dtype == np.int64
    keep = segment_nms(torch.zeros(0, 4), torch.zeros(0), 0.5, torch.zeros(0, dtype=torch.int64))
    assert isinstance(keep, torch.Tensor) and keep.shape == (0,) and keep.dtype == torch.int64


needs_cuda = pytest.mark.skipif(not cuda_available(), reason="needs a CUDA GPU and the CUDA build of vcl_fast._C")


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("n,threshold,grouped", list(itertools.product((1, 7, 100, 1000, 8400), (0.0, 0.5, 1.0), (False, True))))
def test_cuda_matches_reference(n, threshold, grouped):
    rng = np.random.default_rng(n + int(10 * threshold) + grouped)
    boxes, scores = random_boxes(n, rng)
    groups = rng.integers(0, 5, n) if grouped else None
    expected = segment_nms_reference(boxes, scores, threshold, groups)
    device_groups = None if groups is None else torch.from_numpy(groups).cuda()
    keep = segment_nms(torch.from_numpy(boxes).cuda(), torch.from_numpy(scores).cuda(), threshold, device_groups)
    assert keep.is_cuda and keep.dtype == torch.int64
    np.testing.assert_array_equal(scores[keep.cpu().numpy()], scores[expected])


@pytest.mark.cuda
@needs_cuda
def test_cuda_agrees_with_torchvision_and_handles_edge_cases():
    rng = np.random.default_rng(11)
    boxes, scores = random_boxes(5000, rng)
    b, s = torch.from_numpy(boxes).cuda(), torch.from_numpy(scores).cuda()
    keep = segment_nms(b.double()[:, [0, 1, 2, 3]], s.half().float(), 0.5)  # converted and non-trivial layouts
    expected = torchvision.ops.nms(b, s.half().float(), 0.5)
    torch.testing.assert_close(s[keep], s[expected])
    assert segment_nms(b[:0], s[:0], 0.5).shape == (0,)
    at_threshold = segment_nms(torch.tensor([[0.0, 0, 4, 1], [0, 0, 2, 1]]).cuda(), torch.tensor([0.9, 0.8]).cuda(), 0.5)
    assert at_threshold.tolist() == [0, 1]
    with pytest.raises(ValueError, match=r"boxes must be finite .* box 1"):
        segment_nms(torch.tensor([[0.0, 0, 1, 1], [0, 0, float("nan"), 1]]).cuda(), torch.ones(2).cuda(), 0.5)
    with pytest.raises(ValueError, match=r"q_end >= q_start"):
        segment_nms(torch.tensor([[2.0, 0, 1, 1]]).cuda(), torch.ones(1).cuda(), 0.5)
