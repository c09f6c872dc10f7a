import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from vcl_fast.models.rtr import build_extractor
from vcl_fast.models.weights import load_extractor, save_extractor


@pytest.mark.parametrize("k", [0, 1, 3])
def test_round_trip_gives_identical_outputs(tmp_path, k):
    torch.manual_seed(k)
    model = build_extractor("micro", k, depth=2).eval()
    save_extractor(model, tmp_path / "w")
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == ["config.json", "model.safetensors"]
    loaded = load_extractor(tmp_path / "w")
    assert loaded.config == model.config and not loaded.training
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


def edit_config(directory, **changes):
    """Change fields of a saved extractor's config.json in place."""
    path = directory / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def test_shape_mismatch_is_named(tmp_path):
    save_extractor(build_extractor("micro", 1), tmp_path)
    edit_config(tmp_path, num_regional_tokens=2)
    with pytest.raises(ValueError, match=r"reg_token: \(1, 1, 32\) in .*model.safetensors, model expects \(1, 2, 32\)"):
        load_extractor(tmp_path)


def test_missing_and_unexpected_tensors_are_named(tmp_path):
    save_extractor(build_extractor("micro", 1), tmp_path)
    state = load_file(str(tmp_path / "model.safetensors"))
    state.pop("proj.weight")
    state["extra.bias"] = torch.zeros(3)
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError, match=r"1 missing \[proj.weight\]; 1 unexpected \[extra.bias\]"):
        load_extractor(tmp_path)


def test_bad_directories(tmp_path):
    with pytest.raises(FileNotFoundError, match="no extractor config"):
        load_extractor(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="not an RTR extractor config"):
        load_extractor(tmp_path)
    save_extractor(build_extractor("micro", 0), tmp_path)
    edit_config(tmp_path, colour=1)
    with pytest.raises(ValueError, match=r"config.json: unknown RTRConfig keys \['colour'\]"):
        load_extractor(tmp_path)
