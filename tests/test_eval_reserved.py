"""bench/eval_reserved.py: a validation set from pseudo-videos of photos, and the calibration of the cosines."""
import argparse
import csv
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("skimage")

from localize_fixtures import micro_model_dir  # noqa: E402,F401
from rtr_fixtures import SKIMAGE_PHOTOS, skimage_photo  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _bench_module():
    spec = importlib.util.spec_from_file_location("eval_reserved", REPO / "bench" / "eval_reserved.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def validation_set(tmp_path_factory) -> Path:
    photos = tmp_path_factory.mktemp("photos")
    for name in SKIMAGE_PHOTOS[:8]:
        skimage_photo(name, 256).save(photos / f"{name}.png")
    out = tmp_path_factory.mktemp("val") / "set"
    assert _bench_module().main(["build", "--photos", str(photos), "--out", str(out), "--pairs-per-edit", "1",
                                 "--query-seconds", "10", "--video-seconds", "6", "--seed", "0"]) == 0
    return out


def test_validation_set_from_photos(validation_set):
    sources = sorted(p.stem for p in (validation_set / "sources").iterdir())
    assert sources == [f"pv{i:03d}" for i in range(4)]  # 8 photos, two per pseudo-video
    with open(validation_set / "pairs.csv") as handle:
        pairs = [row for row in csv.reader(handle)][1:]
    labels = json.loads((validation_set / "labels.json").read_text())
    assert len(pairs) == 16 and len(labels) == 8  # one positive per edit kind, one negative each
    for key, boxes in labels.items():
        query, reference = key.split("-")
        assert reference in sources and query.startswith("q")
        (q_start, r_start, q_end, r_end), = boxes
        assert 0 <= q_start < q_end and 0 <= r_start < r_end <= 6.0 + 1e-6
    for query, reference in pairs:  # every video of a pair is there; negatives have no label
        assert (validation_set / "videos" / f"{query}.mp4").is_file()
        assert any((validation_set / "videos").glob(f"{reference}.*"))
        assert (f"{query}-{reference}" in labels) == query.startswith("q")


def test_calibrate_matches_the_localizer_with_each_setting(validation_set, micro_model_dir, capsys):
    from vcl_fast.api import Localizer
    from vcl_fast.data.formats import read_labels, read_pairs
    from vcl_fast.eval.vcsl_metrics import evaluate_vcsl
    from vcl_fast.localize_commands import find_video, localize_pairs

    module = _bench_module()
    args = argparse.Namespace(data=str(validation_set), model=str(micro_model_dir), floors=[-1.0, 0.5],
                              extents=[-1.0, 0.3], threads=1)
    grid = module.calibrate(args)
    assert set(grid) == {(-1.0, -1.0), (-1.0, 0.3), (0.5, -1.0), (0.5, 0.3)}
    assert "best segment F" in capsys.readouterr().out
    pairs = read_pairs(validation_set / "pairs.csv")
    labels = read_labels(validation_set / "labels.json")
    paths = {v: find_video(validation_set / "videos", v) for pair in pairs for v in pair}
    for floor, extent in [(-1.0, -1.0), (0.5, 0.3)]:
        loc = Localizer(micro_model_dir, micro_model_dir, threads=1,
                        method_params={"min_similarity": floor, "extent_similarity": extent})
        direct = evaluate_vcsl(labels, localize_pairs(loc, pairs, paths), pairs, conf=None)
        np.testing.assert_allclose([grid[floor, extent].segment_f1, grid[floor, extent].video_f1],
                                   [direct.segment_f1, direct.video_f1], atol=1e-9)
    with pytest.raises(SystemExit):
        module.main(["calibrate", "--data", str(validation_set), "--floors", "0.5,high"])


def test_features_of_a_set_feed_detector_fine_tuning(validation_set, micro_model_dir, tmp_path):
    from vcl_fast.data.features import load_video_features
    from vcl_fast.data.formats import read_labels, read_pairs
    from vcl_fast.data.labelled_pairs import LabelledPairMaps

    out = tmp_path / "features"
    assert _bench_module().main(["features", "--data", str(validation_set), "--model", str(micro_model_dir),
                                 "--out", str(out), "--threads", "1"]) == 0
    pairs = read_pairs(validation_set / "pairs.csv")
    videos = {v for pair in pairs for v in pair}
    assert {p.stem for p in out.glob("*.npy")} == videos
    from vcl_fast.video import read_frames

    query = load_video_features(out, pairs[0][0])
    frames = read_frames(validation_set / "videos" / f"{pairs[0][0]}.mp4", 1.0).frames
    assert query.features.ndim == 3 and query.fps == 1.0 and query.num_frames == len(frames) >= 10
    maps = LabelledPairMaps(pairs, read_labels(validation_set / "labels.json"), out)
    assert len(maps) == len(pairs) and sum(len(maps[i].boxes) > 0 for i in range(len(maps))) == 8
