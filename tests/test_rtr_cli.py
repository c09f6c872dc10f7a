import json

import numpy as np
import pytest
from rtr_fixtures import SKIMAGE_PHOTOS, skimage_photo, write_photos

from vcl_fast.cli import main
from vcl_fast.data.features import load_video_features
from vcl_fast.models.rtr import build_extractor
from vcl_fast.models.weights import save_extractor


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    write_photos(folder, count=8, side=48)
    return folder


def _error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--preset", "huge"], "unknown preset 'huge'"),
        (["--preset", "micro", "colour=red"], "unknown TrainConfig key 'colour'"),
        (["--preset", "micro", "steps=many"], "steps must be int"),
        (["--preset", "micro", "model.depth=1.5"], "depth must be int"),
        (["--preset", "micro", "amp=maybe"], "amp must be bool"),
        (["--preset", "micro", "steps"], "not of the form key=value"),
    ],
)
def test_train_bad_arguments_exit_2_with_one_line(photos, tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    assert main(["train", "extractor", "--data", str(photos), "--out", str(out), *extra]) == 2
    line = _error_line(capsys)
    assert line.startswith("vcl-fast train: error:") and message in line
    assert not out.exists()


def test_train_bad_data_dirs(tmp_path, capsys):
    assert main(["train", "extractor", "--preset", "micro", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in _error_line(capsys)
    (tmp_path / "empty").mkdir()
    assert main(["train", "extractor", "--preset", "micro", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    assert "no images" in _error_line(capsys)


def test_train_then_resume_then_extract(photos, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "extractor", "--preset", "micro", "--data", str(photos), "--out", str(out), "steps=2"]
    assert main(args) == 0
    assert (out / "model.safetensors").is_file() and (out / "checkpoint.pt").is_file()
    assert main(args[:-1] + ["steps=3"]) == 0
    assert "resuming" in capsys.readouterr().err
    assert json.loads((out / "train_log.json").read_text())[-1]["step"] == 3

    features = tmp_path / "f" / "frames.npy"
    assert main(["extract", str(photos), "-o", str(features), "--model", str(out), "--fps", "2"]) == 0
    video = load_video_features(features.parent, "frames")
    assert video.features.shape == (8, 2, 16) and video.features.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(video.features, axis=-1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(video.timestamps, np.arange(8) / 2)
    assert video.fps == 2.0


@pytest.mark.parametrize("suffix,flag", [(".mp4", []), (".avi", []), (".avi", ["--exact-decoding"])])
def test_extract_video_file(tmp_path, capsys, suffix, flag):
    from vcl_fast.video import write_video

    frames = np.stack([np.asarray(skimage_photo(name, 256).resize((256, 192))) for name in SKIMAGE_PHOTOS[:3]])
    clip = tmp_path / f"clip{suffix}"
    write_video(clip, np.repeat(frames, 10, axis=0), fps=10.0)  # 3 s: one photo per second
    save_extractor(build_extractor("micro", 1), tmp_path / "w")
    out = tmp_path / "features" / "clip.npy"
    assert main(["extract", str(clip), "-o", str(out), "--model", str(tmp_path / "w"), *flag]) == 0
    video = load_video_features(out.parent, "clip")
    assert video.features.shape == (3, 2, 16)
    np.testing.assert_array_equal(video.timestamps, [0.0, 1.0, 2.0])
    assert video.end == pytest.approx(3.0) and "warning" not in capsys.readouterr().err
    fast = tmp_path / "at20" / "clip.npy"  # (a feature folder holds one rate)
    assert main(["extract", str(clip), "-o", str(fast), "--model", str(tmp_path / "w"), "--fps", "20", *flag]) == 0
    assert "warning: --fps 20 is above the frame rate of" in capsys.readouterr().err  # 10 fps


def test_extract_defaults_to_the_embedded_model(tmp_path, monkeypatch):
    from PIL import Image

    from vcl_fast.api import Localizer
    from vcl_fast.video import write_video

    monkeypatch.delenv("VCL_FAST_RTR_MODEL", raising=False)
    frames = np.stack([np.asarray(skimage_photo(name, 256).resize((256, 192))) for name in SKIMAGE_PHOTOS[:3]])
    clip, folder = tmp_path / "clip.mp4", tmp_path / "frames"
    write_video(clip, np.repeat(frames, 10, axis=0), fps=10.0)
    folder.mkdir()
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{i}.png")
    for source, expected in ((clip, Localizer().features(clip)), (folder, Localizer().features(folder))):
        out = tmp_path / "features" / f"{source.stem}.npy"
        assert main(["extract", str(source), "-o", str(out)]) == 0
        video = load_video_features(out.parent, source.stem)
        assert video.features.shape == (3, 2, 256)
        np.testing.assert_array_equal(video.features, expected.features)


def test_extract_errors(photos, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("VCL_FAST_RTR_MODEL", raising=False)
    out = tmp_path / "f.npy"
    assert main(["extract", str(tmp_path / "nope"), "-o", str(out), "--model", str(tmp_path)]) == 2
    assert "does not exist" in _error_line(capsys)
    assert main(["extract", str(photos), "-o", str(out), "--model", str(tmp_path / "w")]) == 2
    assert "no extractor config" in _error_line(capsys)
    assert main(["extract", str(photos), "-o", str(tmp_path / "f.json"), "--model", str(tmp_path / "w")]) == 2
    assert "must name a .npy file" in _error_line(capsys)
    save_extractor(build_extractor("micro", 0), tmp_path / "w")
    assert main(["extract", str(photos), "-o", str(out), "--model", str(tmp_path / "w"), "--fps", "0"]) == 2
    assert "--fps must be > 0" in _error_line(capsys)
    (tmp_path / "folder.npy").mkdir()
    assert main(["extract", str(photos), "-o", str(tmp_path / "folder.npy"), "--model", str(tmp_path / "w")]) == 2
    assert _error_line(capsys) == f"vcl-fast extract: error: {tmp_path / 'folder.npy'}: is a folder; give a file name"
    assert not out.exists()


def test_icd_build_and_eval(photos, tmp_path, capsys):
    icd = tmp_path / "icd"
    assert main(["icd", "build", "--images", str(photos), "--out", str(icd), "--positives", "3",
                 "--negatives", "2", "--distractors", "2", "--max-side", "48"]) == 0
    save_extractor(build_extractor("micro", 1), tmp_path / "w")
    capsys.readouterr()
    report = tmp_path / "eval.json"
    assert main(["icd", "eval", "--data", str(icd), "--model", str(tmp_path / "w"), "--json", str(report)]) == 0
    result = json.loads(report.read_text())
    assert set(result) >= {"overall", "cls_only", "per_edit", "hit_rate"}
    assert main(["icd", "build", "--images", str(photos), "--out", str(icd), "--positives", "30"]) == 2
    assert "need 30 distinct images" in _error_line(capsys)

