"""Segment NMS speed: vcl_fast.ops.segment_nms vs torchvision.ops.nms (CPU) vs the numpy reference.

Run: python -m pytest bench/bench_nms.py --benchmark-enable
Cases: 100, 1,000 and 8,400 boxes (YOLOX-s has 8,400 anchors at 640 px) in two layouts, IoU 0.3:
  dense  - a raw detector output before NMS: clusters of jittered boxes around 40 segments;
  sparse - short scattered segments that rarely overlap, so nearly every box is kept.
Batched: 1,000 query-reference pairs x 50 boxes in one call with groups, vs a Python loop of
torchvision.ops.nms over the pairs and vs torchvision.ops.batched_nms.
CUDA (skipped without a GPU): 8,400 boxes, ours vs torchvision.ops.nms on the device.
"""
import numpy as np
import pytest
import torch
import torchvision

from vcl_fast._ext import cuda_available
from vcl_fast.ops import segment_nms, segment_nms_reference

IOU = 0.3
SIZES = (100, 1000, 8400)
PAIRS, BOXES_PER_PAIR = 1000, 50


def dense_boxes(n, rng, segments=40, side=640.0):
    """Boxes jittered around `segments` true segments (x/y = reference/query frames of a 640 px map)."""
    start = rng.uniform(0, side - 80, (segments, 2))
    centres = np.concatenate([start, np.minimum(start + rng.uniform(20, 200, (segments, 2)), side)], axis=1)
    pick = rng.integers(0, segments, n)
    size = np.tile(centres[pick, 2:] - centres[pick, :2], 2)
    boxes = centres[pick] + rng.normal(0, 0.15, (n, 4)) * size
    boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2])
    return boxes.astype(np.float32), rng.random(n).astype(np.float32)


def sparse_boxes(n, rng, side=3600.0):
    """Segments of 2-40 frames scattered over an hour-long pair."""
    start = rng.uniform(0, side, (n, 2))
    return np.concatenate([start, start + rng.uniform(2, 40, (n, 2))], axis=1).astype(np.float32), rng.random(n).astype(np.float32)


LAYOUTS = {"dense": dense_boxes, "sparse": sparse_boxes}


def _torchvision(boxes, scores):
    return torchvision.ops.nms(torch.from_numpy(boxes), torch.from_numpy(scores), IOU)


@pytest.fixture(autouse=True)
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # torchvision's CPU nms is single-threaded; keep the comparison fair
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("impl", ["vcl_fast", "torchvision", "reference"])
def test_segment_nms(benchmark, impl, n, layout):
    boxes, scores = LAYOUTS[layout](n, np.random.default_rng(n))
    benchmark.group = f"segment_nms {layout} {n}"
    expected = _torchvision(boxes, scores).numpy()
    if impl == "vcl_fast":
        keep = benchmark(segment_nms, boxes, scores, IOU)
    elif impl == "torchvision":
        keep = benchmark(_torchvision, boxes, scores).numpy()
    else:  # the numpy reference is slow: a few rounds only
        keep = benchmark.pedantic(segment_nms_reference, (boxes, scores, IOU), rounds=1 if n > 1000 else 3)
    np.testing.assert_array_equal(scores[keep], scores[expected])


def _batched_inputs():
    rng = np.random.default_rng(0)
    parts = [dense_boxes(BOXES_PER_PAIR, rng, segments=3) for _ in range(PAIRS)]
    boxes = np.concatenate([b for b, _ in parts])
    scores = np.concatenate([s for _, s in parts])
    groups = np.repeat(np.arange(PAIRS), BOXES_PER_PAIR)
    return boxes, scores, groups


@pytest.mark.parametrize("impl", ["vcl_fast", "torchvision_loop", "torchvision_batched"])
def test_segment_nms_batched(benchmark, impl):
    boxes, scores, groups = _batched_inputs()
    benchmark.group = f"segment_nms batched {PAIRS} pairs x {BOXES_PER_PAIR} boxes"
    tb, ts, tg = torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(groups)
    if impl == "vcl_fast":
        keep = benchmark(segment_nms, boxes, scores, IOU, groups)
    elif impl == "torchvision_loop":
        pair_boxes, pair_scores = tb.view(PAIRS, BOXES_PER_PAIR, 4), ts.view(PAIRS, BOXES_PER_PAIR)

        def loop():
            return [torchvision.ops.nms(pair_boxes[p], pair_scores[p], IOU) for p in range(PAIRS)]

        per_pair = benchmark(loop)
        keep = np.concatenate([k.numpy() + p * BOXES_PER_PAIR for p, k in enumerate(per_pair)])
    else:
        keep = benchmark(torchvision.ops.batched_nms, tb, ts, tg, IOU).numpy()
    expected = torchvision.ops.batched_nms(tb, ts, tg, IOU).numpy()
    np.testing.assert_array_equal(np.sort(scores[keep]), np.sort(scores[expected]))


@pytest.mark.cuda
@pytest.mark.skipif(not cuda_available(), reason="needs a CUDA GPU and the CUDA build of vcl_fast._C")
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("impl", ["vcl_fast", "torchvision"])
def test_segment_nms_cuda(benchmark, impl, layout):
    boxes, scores = LAYOUTS[layout](8400, np.random.default_rng(8400))
    benchmark.group = f"segment_nms cuda {layout} 8400"
    b, s = torch.from_numpy(boxes).cuda(), torch.from_numpy(scores).cuda()
    nms = segment_nms if impl == "vcl_fast" else torchvision.ops.nms

    def run():
        keep = nms(b, s, IOU)
        torch.cuda.synchronize()
        return keep

    keep = benchmark(run)
    expected = torchvision.ops.nms(b, s, IOU)
    torch.testing.assert_close(s[keep], s[expected])
