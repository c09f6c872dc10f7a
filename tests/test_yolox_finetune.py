"""Fine-tuning data from human labels, and ``vcl-fast localize-features``."""
import json

import numpy as np
import pytest

from vcl_fast.cli import main
from vcl_fast.data.features import VideoFeatures, save_video_features
from vcl_fast.data.formats import write_labels, write_pairs
from vcl_fast.data.labelled_pairs import LabelledPairMaps, choose_fraction, seconds_to_frames

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture
def videos(tmp_path):
    """Features of 4 videos at 2 fps (2 tokens, 256 dims); "q1" frames 4..12 copy "r1" frames 10..18."""
    rng = np.random.default_rng(0)
    feats = {name: rng.normal(size=(n, 2, 256)).astype(np.float32)
             for name, n in [("q1", 30), ("r1", 40), ("q2", 20), ("r2", 25)]}
    feats["q1"][4:12] = feats["r1"][10:18]
    directory = tmp_path / "features"
    for name, array in feats.items():
        save_video_features(directory, VideoFeatures.from_fps(name, array, fps=2.0))
    labels = tmp_path / "labels.json"
    write_labels(labels, {("q1", "r1"): np.array([[2.0, 5.0, 6.0, 9.0]]),
                          ("q2", "r2"): np.array([[1.0, 1.0, 30.0, 2.0]])})  # runs past both videos' ends
    return directory, labels


def test_choose_fraction_is_deterministic_and_at_least_one():
    pairs = [(f"q{i}", f"r{i}") for i in range(100)]
    assert choose_fraction(pairs, 0.05, 1) == choose_fraction(pairs, 0.05, 1)
    assert len(choose_fraction(pairs, 0.05, 1)) == 5
    assert choose_fraction(pairs, 0.05, 1) != choose_fraction(pairs, 0.05, 2)
    assert len(choose_fraction(pairs, 0.001, 0)) == 1 and choose_fraction(pairs, 1.0, 0) == pairs
    with pytest.raises(ValueError):
        choose_fraction(pairs, 0.0, 0)


def test_seconds_to_frames_clips_and_drops():
    boxes = np.array([[1, 2, 3, 4], [5, 5, 9, 9], [3, 1, 2, 2]], np.float64)
    np.testing.assert_allclose(seconds_to_frames(boxes, 2.0, 1.0, (8, 6)), [[2, 2, 6, 4], [8, 5, 8, 6]][:1])


def test_labelled_pairs_give_maps_and_frame_boxes(videos):
    directory, labels = videos
    data = LabelledPairMaps.from_files(labels, directory)
    assert data.pairs == [("q1", "r1"), ("q2", "r2")]
    sim, boxes = data[0]
    assert sim.shape == (30, 40) and sim.dtype == np.float32
    np.testing.assert_allclose(boxes, [[4, 10, 12, 18]])  # seconds x 2 fps
    np.testing.assert_allclose(np.diag(sim[4:12, 10:18]), 1.0, atol=1e-5)  # the copy is a diagonal of 1s
    np.testing.assert_allclose(data[1].boxes, [[2, 2, 20, 4]])  # clipped to the 20 x 25 map


def test_pair_list_adds_negatives_and_fraction(videos, tmp_path):
    directory, labels = videos
    write_pairs(tmp_path / "pairs.csv", [("q1", "r1"), ("q2", "r2"), ("q1", "r2"), ("q2", "r1")])
    data = LabelledPairMaps.from_files(labels, directory, pairs_path=tmp_path / "pairs.csv")
    assert len(data) == 4 and data[2].boxes.shape == (0, 4) and data[2].sim.shape == (30, 25)
    half = LabelledPairMaps.from_files(labels, directory, pairs_path=tmp_path / "pairs.csv", fraction=0.5, seed=3)
    assert len(half) == 2 and set(half.pairs) <= set(data.pairs)


def test_missing_features_are_listed(videos, tmp_path):
    directory, _ = videos
    write_labels(tmp_path / "more.json", {("q1", "r1"): np.zeros((0, 4)), ("q9", "r8"): np.zeros((0, 4))})
    with pytest.raises(ValueError, match="no features for 2 videos .*q9, r8"):
        LabelledPairMaps.from_files(tmp_path / "more.json", directory)


def test_cli_fine_tunes_from_labels(videos, tmp_path):
    directory, labels = videos
    args = ["train", "detector", "--preset", "micro", "--labels", str(labels), "--features", str(directory),
            "--quiet", "epochs=1", "no_aug_epochs=0", "batch_size=2"]
    assert main([*args, "--out", str(tmp_path / "first")]) == 0
    assert main([*args, "--fraction", "0.5", "--init", str(tmp_path / "first"), "--out", str(tmp_path / "ft")]) == 0
    assert (tmp_path / "ft" / "model.safetensors").is_file()


def test_cli_trains_on_maps_and_labels_together(videos, tmp_path, capsys):
    from vcl_fast.data.map_dataset import write_map_sample

    directory, labels = videos
    maps = tmp_path / "maps"
    maps.mkdir()
    for i in range(3):
        write_map_sample(maps / f"{i}.npz", np.eye(12, 16, dtype=np.float32), np.array([[0.0, 0.0, 12.0, 12.0]]))
    code = main(["train", "detector", "--preset", "micro", "--data", str(maps), "--labels", str(labels),
                 "--features", str(directory), "--out", str(tmp_path / "both"), "--quiet", "epochs=1",
                 "no_aug_epochs=0", "batch_size=2"])
    assert code == 0 and "training on 5 maps" in capsys.readouterr().err  # 3 map samples + 2 labelled pairs
    assert json.loads((tmp_path / "both" / "config.json").read_text())["history"]


def test_localize_features_classical_and_yolox(videos, tmp_path, capsys):
    directory, labels = videos
    q, r = str(directory / "q1.npy"), str(directory / "r1.npy")
    out = tmp_path / "tn.json"
    assert main(["localize-features", q, r, "--method", "tn", "--json", str(out)]) == 0
    boxes = np.array(json.loads(out.read_text()))
    assert boxes.shape[1] == 5
    best = boxes[np.argmax(boxes[:, 4])]
    # the copy is q 2..6 s, r 5..9 s at 2 fps; TN may extend a path backwards through noise
    np.testing.assert_allclose(best[2:4], [6.0, 9.0], atol=0.5)
    assert best[0] <= 2.0 and best[1] <= 5.0

    from vcl_fast.models import build_detector
    from vcl_fast.models.detector_io import save_detector

    save_detector(build_detector("micro"), tmp_path / "det")
    out = tmp_path / "yolox.json"
    assert main(["localize-features", q, r, "--backend", "torch", "--detector", str(tmp_path / "det"),
                 "--param", "conf_threshold=0", "--json", str(out)]) == 0
    boxes = np.array(json.loads(out.read_text()))
    assert boxes.shape[1] == 5 and (boxes[:, 2] <= 15.0 + 1e-6).all() and (boxes[:, 3] <= 20.0 + 1e-6).all()
    assert "copied segment(s), seconds (yolox" in capsys.readouterr().out


def test_localize_features_defaults_to_the_embedded_model(videos, tmp_path):
    from vcl_fast.api import Localizer
    from vcl_fast.data.features import load_video_features

    directory, _ = videos
    out = tmp_path / "default.json"
    assert main(["localize-features", str(directory / "q1.npy"), str(directory / "r1.npy"), "--json", str(out)]) == 0
    expected = Localizer().localize(load_video_features(directory, "q1"), load_video_features(directory, "r1"))
    assert len(expected.segments) and np.allclose(json.loads(out.read_text()), expected.boxes(), atol=1e-9)


@pytest.mark.parametrize("args, message", [
    (["{d}/q1.npy", "{d}/none.npy"], "no such .npy feature file"),
    (["{d}/q1.npy", "{d}/text.npy"], "text.npy: not a .npy array file"),
    (["{d}/q1.npy", "{d}/nan.npy"], "nan.npy: its features contain NaN or infinite values"),
    (["{d}/q1.npy", "{d}/r1.npy", "--backend", "torch"], "the torch backend needs detector="),
    (["{d}/q1.npy", "{d}/r1.npy", "--model", "{d}/missing"], "no such"),
    (["{d}/q1.npy", "{d}/r1.npy", "--param", "conf_threshold=2"], "must lie in [0, 1]"),
    (["{d}/q1.npy", "{d}/r1.npy", "--method", "tn", "--param", "conf_threshold=0.1"], "unknown TNParams key"),
])
def test_localize_features_errors(videos, capsys, args, message):
    directory, _ = videos
    (directory / "text.npy").write_text("not an array")
    nan = np.load(directory / "r1.npy")
    nan[3, 0, 7] = np.nan
    np.save(directory / "nan.npy", nan)
    code = main(["localize-features", *[a.format(d=directory) for a in args]])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0] and err[0].startswith("vcl-fast localize-features:")
