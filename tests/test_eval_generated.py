"""bench/eval_generated.py: an exported detector is also scored with its own calibrated settings."""
from types import SimpleNamespace

from bench_scripts import load_bench_script

from vcl_fast.runtime.specs import DetectorSpec


def test_calibrated_settings_are_the_manifests_and_none_when_off():
    module = load_bench_script("eval_generated")
    off = SimpleNamespace(spec=DetectorSpec(64, (8, 16, 32), 1))
    assert module.calibrated_settings(off) is None
    on = SimpleNamespace(spec=DetectorSpec(64, (8, 16, 32), 1, min_similarity=0.9, confident_similarity=0.85,
                                           confident_score=0.5))
    settings = module.calibrated_settings(on, conf=0.2)
    assert (settings.input_size, settings.conf_threshold, settings.min_similarity, settings.extent_similarity,
            settings.confident_similarity, settings.confident_score) == (64, 0.2, 0.9, -1.0, 0.85, 0.5)
