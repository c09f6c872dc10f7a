"""YOLOX detector: reference state-dict layout, presets, raw/decoded outputs, weight files."""
import json

import numpy as np
import pytest
import torch

from vcl_fast.detect.decode import decode_raw_outputs as decode_numpy
from vcl_fast.models import build_detector
from vcl_fast.models.detector_io import load_detector, save_detector
from vcl_fast.models.yolox import MODEL_PRESETS, YOLOXConfig, decode_raw_outputs, model_config

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def reference_layout(shared_data):
    return json.loads((shared_data / "yolox_s_1class_state_dict_layout.json").read_text())


def random_state(layout):
    return {k: torch.randn(shape) if shape else torch.tensor(7) for k, shape in layout.items()}


def test_paper_model_has_the_reference_layout(reference_layout):
    state = build_detector("paper").state_dict()
    assert len(state) == len(reference_layout) == 462
    assert list(state) == list(reference_layout)  # same names in the same order
    assert {k: list(v.shape) for k, v in state.items()} == reference_layout


def test_reference_state_dict_loads_strictly(reference_layout):
    model = build_detector("paper")
    state = random_state(reference_layout)
    model.load_state_dict(state, strict=True)
    key = "head.stems.2.conv.weight"
    assert torch.equal(model.state_dict()[key], state[key])


def test_batchnorm_settings_and_prior_biases():
    model = build_detector("micro")
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(m.eps == 1e-3 and m.momentum == 0.03 for m in norms)
    for conv in (*model.head.obj_preds, *model.head.cls_preds):
        assert torch.allclose(conv.bias.sigmoid(), torch.tensor(0.01))


@pytest.mark.parametrize("preset", ["micro", "tiny_cpu"])
def test_raw_output_shape(preset):
    config = MODEL_PRESETS[preset]
    model = build_detector(preset).eval()
    s = config.input_size
    raw = model(torch.zeros(2, 3, s, s))
    anchors = sum((s // stride) ** 2 for stride in (8, 16, 32))
    assert raw.shape == (2, anchors, 6)


def test_decode_in_inference_matches_separate_decode():
    torch.manual_seed(0)
    raw_model = build_detector("micro").eval()
    decoding = build_detector("micro", decode_in_inference=True).eval()
    decoding.load_state_dict(raw_model.state_dict())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        raw = raw_model(x)
        boxes, obj, cls = decode_raw_outputs(raw, 64)
        torch.testing.assert_close(decoding(x), torch.cat([boxes, obj[..., None], cls], -1))
    decoding.train()
    assert decoding(x).shape == raw.shape  # training always sees raw outputs


def test_torch_and_numpy_decode_agree():
    raw = torch.randn(3, 84, 6) * 2
    for a, b in zip(decode_raw_outputs(raw, 64), decode_numpy(raw.numpy(), 64)):
        np.testing.assert_allclose(a.numpy(), b, rtol=1e-5, atol=1e-5)


def test_decode_hand_made_anchor():
    raw = np.zeros((1, 84, 6), np.float32)
    # anchor 9 of stride 8 at 64 px is grid (1, 1); stride-16 anchors start at 64, stride-32 at 80
    raw[0, 9] = [0.5, 0.25, np.log(2.0), 0.0, 0.0, 2.0]
    raw[0, 80] = [0.0, 0.0, 0.0, np.log(0.5), -1.0, 0.0]
    boxes, obj, cls = decode_numpy(raw, 64)
    np.testing.assert_allclose(boxes[0, 9], [12.0, 10.0, 16.0, 8.0])
    np.testing.assert_allclose(boxes[0, 80], [0.0, 0.0, 32.0, 16.0])
    np.testing.assert_allclose([obj[0, 9], cls[0, 9, 0], obj[0, 80]], [0.5, 1 / (1 + np.exp(-2)), 1 / (1 + np.e)],
                               rtol=1e-6)


def test_numpy_decode_rejects_wrong_anchor_count():
    with pytest.raises(ValueError, match="raw outputs must have shape"):
        decode_numpy(np.zeros((1, 80, 6), np.float32), 64)


@pytest.mark.parametrize("overrides, message", [
    ({"input_size": 100}, "multiple of 32"),
    ({"width": 0.01}, "stem channels"),
    ({"act": "gelu"}, "act must be one of"),
])
def test_bad_configs(overrides, message):
    with pytest.raises(ValueError, match=message):
        model_config("micro", **overrides)


def test_unknown_preset_and_key():
    with pytest.raises(ValueError, match="unknown preset"):
        build_detector("huge")
    with pytest.raises(ValueError, match="unknown YOLOXConfig key"):
        build_detector("micro", depthh=1.0)


def test_save_and_load_model_directory(tmp_path):
    model = build_detector("micro", width=0.125)
    save_detector(model, tmp_path / "det", extra={"note": "x"})
    loaded = load_detector(tmp_path / "det")
    assert loaded.config == model.config and not loaded.training
    for (k, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), k
    with pytest.raises(ValueError, match="not the requested"):
        load_detector(tmp_path / "det", model_config("micro"))


def test_load_reference_pth_formats(tmp_path, reference_layout):
    state = random_state(reference_layout)
    for name, payload in [("plain.pth", state), ("wrapped.pth", {"model": state, "start_epoch": 3}),
                          ("ddp.pt", {f"module.{k}": v for k, v in state.items()})]:
        torch.save(payload, tmp_path / name)
        model = load_detector(tmp_path / name)
        assert torch.equal(model.state_dict()["head.obj_preds.0.bias"], state["head.obj_preds.0.bias"])


def test_mismatched_checkpoint_lists_every_problem(tmp_path, reference_layout):
    state = random_state(reference_layout)
    del state["head.stems.0.conv.weight"]
    state["head.extra.weight"] = torch.zeros(1)
    state["head.cls_preds.0.weight"] = torch.zeros(80, 128, 1, 1)  # an 80-class COCO head
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(ValueError) as info:
        load_detector(tmp_path / "bad.pth")
    text = str(info.value)
    assert "1 missing [head.stems.0.conv.weight]" in text
    assert "1 unexpected [head.extra.weight]" in text
    assert "head.cls_preds.0.weight: (80, 128, 1, 1) in " in text and "model expects (1, 128, 1, 1)" in text


def test_unreadable_and_missing_weights(tmp_path):
    """Each says so in one line (torch's own text for a pickle it refuses runs over several)."""
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    torch.save({"weights": torch.zeros(2), "optimizer": torch.optim.SGD}, tmp_path / "objects.pth")
    torch.save({"weights": torch.zeros(1000)}, tmp_path / "whole.pth")
    (tmp_path / "cut.pth").write_bytes((tmp_path / "whole.pth").read_bytes()[:600])
    for name, said in (("junk.pth", "not a PyTorch weights file"), ("objects.pth", "not a PyTorch weights file"),
                       ("cut.pth", "not a readable PyTorch weights file")):
        with pytest.raises(ValueError, match=f"{name}: {said}") as info:
            load_detector(tmp_path / name)
        assert "\n" not in str(info.value)
    with pytest.raises(FileNotFoundError):
        load_detector(tmp_path / "nothing")
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(FileNotFoundError, match="needs config.json"):
        load_detector(tmp_path / "empty_dir")


def test_config_round_trip():
    config = YOLOXConfig(depth=0.67, width=0.25, input_size=320)
    assert YOLOXConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
