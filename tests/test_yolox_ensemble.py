"""Detector ensembles: the mean of the members' raw outputs, saved and loaded as one detector folder, run by the
torch backend, exported to ONNX, made by `vcl-fast train ensemble`."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from localize_fixtures import micro_detector  # noqa: E402
from vcl_fast.cli import main  # noqa: E402
from vcl_fast.models.detector_io import combine_detectors, load_detector, save_detector  # noqa: E402
from vcl_fast.models.yolox import YOLOXEnsemble, build_detector  # noqa: E402


def reference_mean(members, images):
    """The plain ensemble: each member run on its own, raw outputs averaged in float64."""
    with torch.inference_mode():
        return np.mean([m(images).double().numpy() for m in members], axis=0)


@pytest.fixture(scope="module")
def members():
    return [micro_detector(seed) for seed in range(3)]


@pytest.fixture(scope="module")
def member_dirs(members, tmp_path_factory):
    root = tmp_path_factory.mktemp("members")
    return [save_detector(m, root / f"m{i}") for i, m in enumerate(members)]


@pytest.mark.parametrize("count", [2, 3])
@pytest.mark.parametrize("batch", [1, 4])
def test_forward_is_the_mean_of_the_members(members, count, batch):
    images = torch.rand(batch, 3, 64, 64, generator=torch.Generator().manual_seed(batch)) * 2 - 1
    ensemble = YOLOXEnsemble(members[:count]).eval()
    with torch.inference_mode():
        found = ensemble(images).numpy()
    assert found.shape == (batch, 84, 6) and found.dtype == np.float32
    np.testing.assert_allclose(found, reference_mean(members[:count], images), atol=1e-5, rtol=0)
    assert ensemble.config == members[0].config and ensemble.head.strides == members[0].head.strides


def test_non_contiguous_input(members):
    images = (torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(5)) * 2 - 1).transpose(2, 3)
    assert not images.is_contiguous()
    with torch.inference_mode():
        found = YOLOXEnsemble(members).eval()(images).numpy()
    np.testing.assert_allclose(found, reference_mean(members, images.contiguous()), atol=1e-5, rtol=0)


def test_bad_members_are_refused(members):
    with pytest.raises(ValueError, match="at least 2 detectors, got 1"):
        YOLOXEnsemble(members[:1])
    with pytest.raises(ValueError, match="member 1 is .*width=0.125.*one architecture"):
        YOLOXEnsemble([members[0], build_detector("micro", width=0.125)])
    with pytest.raises(ValueError, match="member 1 must be a raw-output YOLOX"):
        YOLOXEnsemble([members[0], build_detector("micro", decode_in_inference=True)])


def test_save_and_load_round_trip(members, tmp_path):
    save_detector(YOLOXEnsemble(members), tmp_path / "ens")
    assert json.loads((tmp_path / "ens" / "config.json").read_text())["members"] == 3
    loaded = load_detector(tmp_path / "ens")
    assert isinstance(loaded, YOLOXEnsemble) and not loaded.training and len(loaded.members) == 3
    for member, saved in zip(loaded.members, members):
        for (name, a), b in zip(member.state_dict().items(), saved.state_dict().values()):
            assert torch.equal(a, b), name


@pytest.mark.parametrize("members_value", [0, -2, "3", True])
def test_bad_member_count_in_config(members, tmp_path, members_value):
    save_detector(YOLOXEnsemble(members[:2]), tmp_path / "ens")
    config = json.loads((tmp_path / "ens" / "config.json").read_text())
    (tmp_path / "ens" / "config.json").write_text(json.dumps({**config, "members": members_value}))
    with pytest.raises(ValueError, match="members must be a positive int"):
        load_detector(tmp_path / "ens")


def test_member_count_must_match_the_weights(members, tmp_path):
    save_detector(YOLOXEnsemble(members[:2]), tmp_path / "ens")
    config = json.loads((tmp_path / "ens" / "config.json").read_text())
    (tmp_path / "ens" / "config.json").write_text(json.dumps({**config, "members": 3}))
    with pytest.raises(ValueError, match="missing"):
        load_detector(tmp_path / "ens")


def test_combine_detectors(member_dirs, members, tmp_path):
    out = combine_detectors(member_dirs[:2], tmp_path / "ens")
    config = json.loads((out / "config.json").read_text())
    assert config["members"] == 2 and config["combined"] == [str(p) for p in member_dirs[:2]]
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(7)) * 2 - 1
    with torch.inference_mode():
        found = load_detector(out)(images).numpy()
    np.testing.assert_allclose(found, reference_mean(members[:2], images), atol=1e-5, rtol=0)


def test_combine_refuses_ensembles_and_used_folders(member_dirs, tmp_path):
    combine_detectors(member_dirs[:2], tmp_path / "ens")
    with pytest.raises(ValueError, match="already an ensemble of 2 detectors"):
        combine_detectors([member_dirs[2], tmp_path / "ens"], tmp_path / "again")
    assert not (tmp_path / "again").exists()
    with pytest.raises(FileExistsError, match="not an empty folder"):
        combine_detectors(member_dirs[1:], member_dirs[0])
    assert sorted(p.name for p in member_dirs[0].iterdir()) == ["config.json", "model.safetensors"]


def test_torch_backend_runs_an_ensemble_folder(member_dirs, members, tmp_path):
    from vcl_fast.runtime import torch_backend

    detector = torch_backend.load_detector(combine_detectors(member_dirs, tmp_path / "ens"), "cpu", 1)
    images = np.random.default_rng(0).uniform(-1, 1, (3, 3, 64, 64)).astype(np.float32)
    assert detector.spec.num_anchors == 84
    np.testing.assert_allclose(detector.run(images), reference_mean(members, torch.from_numpy(images)),
                               atol=1e-5, rtol=0)


def test_onnx_export_of_an_ensemble_matches_torch(member_dirs, members, tmp_path):
    pytest.importorskip("onnxruntime")
    from vcl_fast.export.onnx import export_onnx
    from vcl_fast.runtime import ort_backend
    from vcl_fast.runtime.manifest import read_manifest

    ensemble = combine_detectors(member_dirs, tmp_path / "ens")
    export_onnx(tmp_path / "export", detector=ensemble)
    entry = read_manifest(tmp_path / "export")["detector"]
    assert entry["input_size"] == 64 and entry["strides"] == [8, 16, 32] and entry["max_abs_diff"] < 1e-4
    images = np.random.default_rng(1).uniform(-1, 1, (2, 3, 64, 64)).astype(np.float32)
    found = ort_backend.load_detector(tmp_path / "export", "cpu", 1).run(images)
    np.testing.assert_allclose(found, reference_mean(members, torch.from_numpy(images)), atol=1e-4, rtol=0)


def test_cli_combines_and_says_what_is_wrong(member_dirs, tmp_path, capsys):
    assert main(["train", "ensemble", *map(str, member_dirs), "--out", str(tmp_path / "ens")]) == 0
    assert "detector ensemble of 3" in capsys.readouterr().err
    assert isinstance(load_detector(tmp_path / "ens"), YOLOXEnsemble)
    for args, message in [([str(member_dirs[0])], "at least 2 detectors, got 1"),
                          ([str(member_dirs[0]), str(tmp_path / "nope")], "nope: no such detector"),
                          ([str(member_dirs[0]), str(tmp_path / "ens")], "already an ensemble")]:
        assert main(["train", "ensemble", *args, "--out", str(tmp_path / "other")]) != 0
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
        assert not (tmp_path / "other").exists()


def test_an_ensemble_cannot_be_fine_tuned_as_one(member_dirs, tmp_path):
    from vcl_fast.data.map_dataset import MapDataset, write_map_sample
    from vcl_fast.train.detector import train_detector
    from vcl_fast.train.detector_config import train_config

    maps = tmp_path / "maps"
    maps.mkdir()
    write_map_sample(maps / "0.npz", np.eye(12, 16, dtype=np.float32), np.array([[0.0, 0.0, 12.0, 12.0]]))
    ensemble = combine_detectors(member_dirs[:2], tmp_path / "ens")
    with pytest.raises(ValueError, match="ensemble of 2 detectors cannot be fine-tuned"):
        train_detector(train_config("micro", ["epochs=1"]), MapDataset(maps), tmp_path / "out", init=ensemble,
                       progress=False)
    assert not (tmp_path / "out" / "model.safetensors").exists()
