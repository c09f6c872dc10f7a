"""RTR extractor inference speed (frames/s = batch / mean time): tiny_cpu and paper presets, k = 1.

Run: ``python -m pytest bench/bench_rtr.py --benchmark-enable`` (set OMP_NUM_THREADS / torch threads to the
cores you want to measure). Figures are recorded in bench/README.md.
"""
import pytest
import torch

from vcl_fast.models.rtr import build_extractor


@pytest.mark.parametrize("preset,batch", [("tiny_cpu", 32), ("paper", 8)])
@pytest.mark.parametrize("fused", [True, False], ids=["fused_attn", "plain_attn"])
def test_extractor_forward(benchmark, preset, batch, fused):
    torch.manual_seed(0)
    model = build_extractor(preset, 1).eval()
    model.set_fused_attn(fused)
    x = torch.randn(batch, 3, model.config.img_size, model.config.img_size)

    def run():
        with torch.inference_mode():
            return model(x)

    out = benchmark.pedantic(run, rounds=5, warmup_rounds=1)
    assert out.shape == (batch, 2, model.config.out_dim)
    benchmark.extra_info["frames_per_s"] = batch / benchmark.stats.stats.mean
