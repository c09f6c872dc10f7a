"""Speed of the YOLOX path: map rendering (numpy matrices vs torch F.interpolate), the whole detection
pipeline with the tiny model, model forward passes and one training step.

Run: ``nice -n 10 python -m pytest bench/bench_yolox.py --benchmark-enable`` (torch with one thread).
"""
import numpy as np
import pytest
import torch

from vcl_fast.data.synthetic_maps import planted_copy_map
from vcl_fast.detect.localizer import DetectionSettings, localize_maps
from vcl_fast.detect.render import render_maps, render_maps_reference
from vcl_fast.detect.torch_runner import TorchRunner
from vcl_fast.models import build_detector
from vcl_fast.train.yolox_loss import YOLOXLoss

RENDER_CASES = {"16 x 1200x1200": (16, 1200, 1200), "64 x 240x320": (64, 240, 320)}


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("case", list(RENDER_CASES))
@pytest.mark.parametrize("implementation", ["numpy", "torch"])
def test_render_640(benchmark, implementation, case):
    count, q, r = RENDER_CASES[case]
    maps = list(np.random.default_rng(0).uniform(-1, 1, (count, q, r)).astype(np.float32))
    render = render_maps if implementation == "numpy" else render_maps_reference
    benchmark.group = f"render {case} -> 640"
    benchmark.pedantic(render, args=(maps, 640), rounds=3, warmup_rounds=1)


def test_localize_tiny_2500x1300(benchmark):
    """6 tiles (1,200-frame chunks) of one long pair through render + tiny_cpu model + decode + NMS."""
    torch.manual_seed(0)
    runner = TorchRunner(build_detector("tiny_cpu"))
    sim = planted_copy_map(np.random.default_rng(0), 2500, 1300, 5).sim
    settings = DetectionSettings(input_size=runner.input_size, conf_threshold=0.0)
    benchmark.pedantic(localize_maps, args=([sim], runner, settings), rounds=3, warmup_rounds=1)


@pytest.mark.parametrize("preset, batch", [("paper", 1), ("tiny_cpu", 16)])
def test_forward(benchmark, preset, batch):
    model = build_detector(preset).eval()
    s = model.config.input_size
    x = torch.zeros(batch, 3, s, s)
    benchmark.group = "forward"
    with torch.inference_mode():
        benchmark.pedantic(model, args=(x,), rounds=3, warmup_rounds=1)


def test_train_step_tiny_batch16(benchmark):
    torch.manual_seed(0)
    model = build_detector("tiny_cpu").train()
    s = model.config.input_size
    loss_fn = YOLOXLoss(s)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, nesterov=True)
    images = torch.randn(16, 3, s, s)
    boxes = [torch.tensor([[s / 2, s / 2, s / 4, s / 3]])] * 16

    def step():
        loss = loss_fn(model(images), boxes)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    benchmark.pedantic(step, rounds=3, warmup_rounds=1)
