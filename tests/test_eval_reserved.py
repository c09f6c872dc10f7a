"""bench/eval_reserved.py: a validation set from pseudo-videos of photos, and the calibration of the cosines."""
import argparse
import csv
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("skimage")

from bench_scripts import load_bench_script  # noqa: E402
from localize_fixtures import micro_model_dir  # noqa: E402,F401
from rtr_fixtures import SKIMAGE_PHOTOS, skimage_photo  # noqa: E402



def _bench_module():
    return load_bench_script("eval_reserved")


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
    from vcl_fast.localize_commands import find_videos, localize_pairs

    module = _bench_module()
    args = argparse.Namespace(data=[str(validation_set)], model=str(micro_model_dir), floors=[-1.0, 0.5],
                              extents=[-1.0, 0.3], confident_floors=[-1.0, 0.2], confident_scores=[0.3, 0.6],
                              transpose_fusion_ious=[-1.0, 0.55], query_margins=[0.0, 0.5],
                              reference_margins=[0.0, -0.5], merge_overlaps=[-1.0, 0.3], threads=1)
    grid = module.calibrate(args)
    confident = [(-1.0, 1.0), (0.2, 0.3), (0.2, 0.6)]
    assert list(grid) == [(f, e, c, s, u, qm, rm, mo) for u in (-1.0, 0.55) for f in (-1.0, 0.5)
                          for e in (-1.0, 0.3) for c, s in confident for qm in (0.0, 0.5) for rm in (0.0, -0.5)
                          for mo in (-1.0, 0.3)]
    assert "fewest false alarms" in capsys.readouterr().out
    # two sets are scored as one: the same set twice has the same F and twice the negatives and false alarms
    doubled = module.calibrate(argparse.Namespace(**{**vars(args), "data": [str(validation_set)] * 2}))
    for key, metrics in grid.items():
        assert doubled[key].segment_f1 == pytest.approx(metrics.segment_f1)
        assert (doubled[key].false_alarms, doubled[key].num_negative) == (2 * metrics.false_alarms, 2 * metrics.num_negative)
    pairs = read_pairs(validation_set / "pairs.csv")
    labels = read_labels(validation_set / "labels.json")
    paths = find_videos(validation_set / "videos", {v for pair in pairs for v in pair})
    for key in [(-1.0, -1.0, -1.0, 1.0, -1.0, 0.0, 0.0, -1.0), (0.5, 0.3, -1.0, 1.0, -1.0, 0.0, 0.0, 0.3),
                (0.5, -1.0, 0.2, 0.6, -1.0, 0.5, -0.5, -1.0), (-1.0, -1.0, -1.0, 1.0, 0.55, 0.0, -0.5, 0.3),
                (0.5, -1.0, 0.2, 0.3, 0.55, 0.5, 0.0, 0.3)]:
        settings = dict(zip(module.GRID_FIELDS, key))
        loc = Localizer(micro_model_dir, micro_model_dir, threads=1, method_params=settings)
        direct = evaluate_vcsl(labels, localize_pairs(loc, pairs, paths), pairs, conf=None)
        np.testing.assert_allclose([grid[key].segment_f1, grid[key].video_f1, grid[key].false_alarms],
                                   [direct.segment_f1, direct.video_f1, direct.false_alarms], atol=1e-9)
    with pytest.raises(SystemExit):
        module.main(["calibrate", "--data", str(validation_set), "--floors", "0.5,high"])
    with pytest.raises(SystemExit):
        module.main(["calibrate", "--data", str(validation_set), "--confident-scores", "-0.5"])
    with pytest.raises(SystemExit):
        module.main(["calibrate", "--data", str(validation_set), "--transpose-fusion-ious", "0"])
    with pytest.raises(SystemExit):
        module.main(["calibrate", "--data", str(validation_set), "--query-margins", "0,11"])
    with pytest.raises(SystemExit):
        module.main(["calibrate", "--data", str(validation_set), "--merge-overlaps", "-1,0"])


def test_best_setting_has_the_fewest_false_alarms_then_the_best_segment_f():
    from types import SimpleNamespace

    grid = {(0.8, -1.0): SimpleNamespace(false_alarms=2, segment_f1=0.9),
            (0.85, -1.0): SimpleNamespace(false_alarms=0, segment_f1=0.7),
            (0.85, 0.75): SimpleNamespace(false_alarms=0, segment_f1=0.75),
            (0.9, 0.75): SimpleNamespace(false_alarms=0, segment_f1=0.75)}
    assert _bench_module().best_setting(grid) == (0.85, 0.75)  # ties: the first in grid order


@pytest.mark.parametrize("num_sources,rounds", [(8, 3), (4, 6), (7, 2), (1, 2)])
def test_each_edit_kind_meets_different_references(num_sources, rounds):
    module = _bench_module()
    kinds = len(module.EDIT_KINDS)
    sources = [f"s{i}" for i in range(num_sources)]
    references = [module.pair_reference(n, sources) for n in range(rounds * kinds)]
    for kind in range(kinds):
        assert len(set(references[kind::kinds])) == min(rounds, num_sources)
    if kinds % num_sources == 0:  # every round uses every source equally often
        for r in range(rounds):
            assert len(set(references[r * kinds:(r + 1) * kinds])) == num_sources


def test_validation_set_from_a_video_folder(tmp_path):
    from vcl_fast.video import write_video

    videos = tmp_path / "videos"
    videos.mkdir()
    rng = np.random.default_rng(0)
    for name in ("alpha_one.mp4", "alpha_two.mkv", "beta_clip.avi", "gamma_clip.mp4"):
        write_video(videos / name, rng.integers(0, 255, (24, 48, 64, 3), np.uint8), 4.0)
    (videos / "manifest.json").write_text("{}")
    out = tmp_path / "set"
    module = _bench_module()
    assert module.main(["build", "--videos", str(videos), "--out", str(out), "--pairs-per-edit", "1",
                        "--query-seconds", "10", "--seed", "0"]) == 0
    labels = json.loads((out / "labels.json").read_text())
    assert len(labels) == 8
    with open(out / "pairs.csv") as handle:
        pairs = [row for row in csv.reader(handle)][1:]
    for query, reference in pairs:
        assert reference in {"alpha_one", "alpha_two", "beta_clip", "gamma_clip"}
    assert {v.name for v in (out / "videos").iterdir() if v.is_symlink()} == {
        "alpha_one.mp4", "alpha_two.mkv", "beta_clip.avi", "gamma_clip.mp4"}  # references are the files themselves
    (videos / "gamma_clip.mp4").unlink()
    with pytest.raises(SystemExit, match="fewer than 3 families"):
        module.main(["build", "--videos", str(videos), "--out", str(tmp_path / "other")])
    with pytest.raises(SystemExit):
        module.main(["build", "--videos", str(videos), "--photos", str(videos), "--out", str(tmp_path / "x")])


def test_features_of_a_set_feed_detector_fine_tuning(validation_set, micro_model_dir, tmp_path):
    from vcl_fast.data.features import list_video_ids, load_video_features
    from vcl_fast.data.formats import read_labels, read_pairs
    from vcl_fast.data.labelled_pairs import LabelledPairMaps

    out = tmp_path / "features"
    assert _bench_module().main(["features", "--data", str(validation_set), "--model", str(micro_model_dir),
                                 "--out", str(out), "--threads", "1"]) == 0
    pairs = read_pairs(validation_set / "pairs.csv")
    videos = {v for pair in pairs for v in pair}
    assert set(list_video_ids(out)) == videos  # (their ends are in the timestamp sidecars)
    from vcl_fast.video import read_frames

    query = load_video_features(out, pairs[0][0])
    frames = read_frames(validation_set / "videos" / f"{pairs[0][0]}.mp4", 1.0).frames
    assert query.features.ndim == 3 and query.fps == 1.0 and query.num_frames == len(frames) >= 10
    maps = LabelledPairMaps(pairs, read_labels(validation_set / "labels.json"), out)
    assert len(maps) == len(pairs) and sum(len(maps[i].boxes) > 0 for i in range(len(maps))) == 8


@pytest.mark.parametrize("exact", [False, True])
def test_evaluated_localizers_decode_as_asked(exact):
    args = argparse.Namespace(threads=1, exact_decoding=exact, k0_extractor=None, k0_detector=None)
    runs = _bench_module()._localizers(args)
    assert len(runs) == 2 and all(loc.exact_decoding is exact for loc in runs.values())
