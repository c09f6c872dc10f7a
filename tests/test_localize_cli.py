"""``vcl-fast localize`` (one pair, many pairs scored by ``vcl-fast eval``) and ``vcl-fast bench``."""
import json
import os
import sys

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("torch")

from localize_fixtures import PLANTED, micro_model_dir, planted_videos  # noqa: E402,F401 (fixtures)
from vcl_fast.cli import main  # noqa: E402
from vcl_fast.localize_commands import format_time  # noqa: E402

TN = ["--method", "tn", "--param", "top_k=1", "--param", "max_step=2", "--param", "min_sim=0.9", "--threads", "1"]


def test_format_time():
    assert format_time(0) == "00:00:00.0"
    assert format_time(3.04) == "00:00:03.0"
    assert format_time(59.96) == "00:01:00.0"
    assert format_time(3723.46) == "01:02:03.5"


def test_one_pair_json_table_and_plot(micro_model_dir, planted_videos, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    query, reference = planted_videos
    out, plot = tmp_path / "out.json", tmp_path / "map.png"
    assert main(["localize", str(query), str(reference), "--model", str(micro_model_dir), *TN, "--json", str(out),
                 "--plot", str(plot)]) == 0
    printed = capsys.readouterr().out
    assert "00:00:03.0" in printed and "00:00:10.0" in printed and "00:00:08.0" in printed
    assert "copied: yes" in printed and "timings:" in printed
    data = json.loads(out.read_text())
    assert list(data) == ["query", "reference", "copied", "score", "segments", "timings"]
    assert data["query"] == str(query) and data["reference"] == str(reference) and data["copied"] is True
    (segment,) = data["segments"]
    assert list(segment) == ["q_start", "q_end", "r_start", "r_end", "score"]
    assert [segment[k] for k in ("q_start", "q_end", "r_start", "r_end")] == pytest.approx(PLANTED)
    assert data["score"] == segment["score"]
    assert set(data["timings"]) == {"decode", "extract", "similarity", "localize", "total"}
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_stops_where_the_videos_end():
    """The last row and column of the map last until their videos end, not a whole sample period past it."""
    pytest.importorskip("matplotlib")
    from vcl_fast.api import LocalizationResult, Segment
    from vcl_fast.localize_commands import plot_figure

    result = LocalizationResult("q.mp4", "r.mp4", [Segment(1.0, 3.0, 0.0, 2.0, 0.9)], True, 0.9, {},
                                np.zeros((4, 3), np.float32), (np.array([0.0, 1, 2, 3, 3.3]), np.arange(4.0) * 0.95))
    axes = plot_figure(result, 1.0).axes[0]
    assert axes.get_xlim() == pytest.approx((0, 2.85)) and axes.get_ylim() == pytest.approx((3.3, 0))
    assert axes.images[0].get_extent() == [0, 3, 4, 0]  # cells of a whole sample period, clipped at the ends
    (box,) = axes.patches
    assert (box.get_x(), box.get_y(), box.get_width(), box.get_height()) == (0.0, 1.0, 2.0, 2.0)


def test_json_to_stdout_moves_the_table_to_stderr(micro_model_dir, planted_videos, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    query, reference = planted_videos
    assert main(["localize", str(query), str(reference), "--model", str(micro_model_dir), *TN, "--json", "-"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)  # stdout holds the JSON alone
    assert [data["segments"][0][k] for k in ("q_start", "q_end", "r_start", "r_end")] == pytest.approx(PLANTED)
    assert "copied: yes" in captured.err and "timings:" in captured.err
    assert not (tmp_path / "-").exists()


@pytest.mark.parametrize("flag,exact", [([], False), (["--exact-decoding"], True)])
def test_exact_decoding_option(micro_model_dir, flag, exact):
    from vcl_fast.cli import build_parser
    from vcl_fast.localize_commands import build_localizer

    args = build_parser().parse_args(["localize", "q.mp4", "r.mp4", "--model", str(micro_model_dir), *flag])
    assert build_localizer(args).exact_decoding is exact


@pytest.mark.parametrize("with_rich", [True, False])
def test_no_copy_verdict(micro_model_dir, planted_videos, capsys, monkeypatch, with_rich):
    if not with_rich:
        monkeypatch.setitem(sys.modules, "rich", None)  # the plain-text table
    query, _ = planted_videos
    assert main(["localize", str(query), str(query), "--model", str(micro_model_dir), *TN,
                 "--param", "min_sim=1.5"]) == 0
    assert "copied: no" in capsys.readouterr().out


@pytest.mark.parametrize("problem", ["missing", "corrupt", "empty", "bad_model", "both_modes", "pairs_only"])
def test_errors_are_one_line_and_write_nothing(micro_model_dir, planted_videos, tmp_path, capsys, problem):
    query, reference = planted_videos
    out = tmp_path / "out.json"
    bad = tmp_path / "bad.mp4"
    args = ["localize", str(query), str(reference), "--model", str(micro_model_dir), *TN, "--json", str(out)]
    if problem == "missing":
        args[2] = str(tmp_path / "missing.mp4")
        expected = "missing.mp4: no such file"
    elif problem == "corrupt":
        bad.write_bytes(np.random.default_rng(0).bytes(2048))
        args[2], expected = str(bad), "bad.mp4: cannot open"
    elif problem == "empty":
        bad.write_bytes(b"")
        args[2], expected = str(bad), "bad.mp4: empty file"
    elif problem == "bad_model":
        args[4], expected = str(tmp_path), "no manifest"
    elif problem == "both_modes":
        args += ["--pairs", "p.csv", "--videos", str(tmp_path)]
        expected = "not both"
    else:
        args = ["localize", "--pairs", "p.csv"]
        expected = "--pairs and --videos go together"
    assert main(args) == 2
    err = capsys.readouterr().err
    assert expected in err and err.startswith("vcl-fast localize: error:") and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_plot_without_matplotlib_fails_before_work(micro_model_dir, planted_videos, tmp_path, capsys, monkeypatch):
    import sys

    for module in ("matplotlib", "matplotlib.backend_bases"):  # as if never installed, though imported already
        monkeypatch.setitem(sys.modules, module, None)
    out = tmp_path / "out.json"
    assert main(["localize", *map(str, planted_videos), "--model", str(micro_model_dir), *TN, "--json", str(out),
                 "--plot", str(tmp_path / "p.png")]) == 2
    assert "--plot needs matplotlib" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("name, head", [("map.pdf", b"%PDF"), ("map.SVG", b"<?xml"), ("map.jpg", b"\xff\xd8")])
def test_plot_format_follows_the_suffix(micro_model_dir, planted_videos, tmp_path, name, head):
    pytest.importorskip("matplotlib")
    plot = tmp_path / name
    assert main(["localize", *map(str, planted_videos), "--model", str(micro_model_dir), *TN,
                 "--plot", str(plot)]) == 0
    assert plot.read_bytes().startswith(head)


@pytest.mark.parametrize("name", ["map.txt", "map"])
def test_plot_of_an_unknown_format_fails_before_work(micro_model_dir, planted_videos, tmp_path, capsys, monkeypatch,
                                                     name):
    pytest.importorskip("matplotlib")
    import vcl_fast.localize_commands as commands

    monkeypatch.setattr(commands, "build_localizer", lambda args: pytest.fail("work started"))
    assert main(["localize", *map(str, planted_videos), "--plot", str(tmp_path / name)]) == 2
    err = capsys.readouterr().err
    assert "the file name must end with an image format matplotlib writes" in err and ".pdf" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / name).exists()


@pytest.mark.parametrize("option", ["--json", "--plot", "-o", "--vsc"])
@pytest.mark.parametrize("where", ["folder", "under_a_file"])
def test_unwritable_output_fails_before_work(micro_model_dir, planted_videos, tmp_path, capsys, monkeypatch,
                                             option, where):
    import vcl_fast.localize_commands as commands

    monkeypatch.setattr(commands, "build_localizer", lambda args: pytest.fail("work started"))
    (tmp_path / "file").write_text("x")
    target = tmp_path if where == "folder" else tmp_path / "file" / "out"
    inputs = (["--pairs", str(tmp_path / "p.csv"), "--videos", str(tmp_path)] if option in ("-o", "--vsc")
              else [*map(str, planted_videos)])
    assert main(["localize", *inputs, "--model", str(micro_model_dir), *TN, option, str(target)]) == 2
    expected = "is a folder; give a file name" if where == "folder" else "is a file, not a folder"
    err = capsys.readouterr().err
    assert err.startswith(f"vcl-fast localize: error: {target}: ") and expected in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_pairs_scored_by_eval(micro_model_dir, planted_videos, tmp_path, capsys):
    from vcl_fast.data.formats import read_predictions, write_labels, write_pairs

    query, reference = planted_videos
    folder = query.parent
    pairs = [("query", "reference"), ("reference", "query"), ("query", "query")]
    write_pairs(tmp_path / "pairs.csv", pairs)
    q_s, q_e, r_s, r_e = PLANTED
    write_labels(tmp_path / "labels.json", {
        ("query", "reference"): np.array([[q_s, r_s, q_e, r_e]]),
        ("reference", "query"): np.array([[r_s, q_s, r_e, q_e]]),
        ("query", "query"): np.array([[0.0, 0.0, 12.0, 12.0]]),
    })
    preds, vsc = tmp_path / "preds.json", tmp_path / "matches.csv"
    assert main(["localize", "--pairs", str(tmp_path / "pairs.csv"), "--videos", str(folder), "--model",
                 str(micro_model_dir), *TN, "-o", str(preds), "--vsc", str(vsc)]) == 0
    assert "3 pairs, 3 with copied segments" in capsys.readouterr().out
    predicted = read_predictions(preds, pairs)
    assert predicted[("query", "reference")][:, :4].tolist() == [[q_s, r_s, q_e, r_e]]
    assert predicted[("reference", "query")][:, :4].tolist() == [[r_s, q_s, r_e, q_e]]
    for path in (preds, vsc):
        report = tmp_path / f"report_{path.suffix[1:]}.json"
        assert main(["eval", "--labels", str(tmp_path / "labels.json"), "--pairs", str(tmp_path / "pairs.csv"),
                     "--pred", str(path), "--json", str(report)]) == 0
        assert json.loads(report.read_text())["segment_f1"] == pytest.approx(1.0, abs=1e-5)


def test_fps_above_a_videos_frame_rate_is_warned_about(micro_model_dir, planted_videos, tmp_path, capsys):
    import dataclasses

    from vcl_fast.data.formats import write_pairs
    from vcl_fast.localize_commands import warn_fps_above_rates
    from vcl_fast.video import probe

    query, reference = planted_videos  # 4 frames per second
    assert main(["localize", str(query), str(reference), "--model", str(micro_model_dir), *TN, "--fps", "4"]) == 0
    assert "warning" not in capsys.readouterr().err
    assert main(["localize", str(query), str(reference), "--model", str(micro_model_dir), *TN, "--fps", "8"]) == 0
    err = capsys.readouterr().err
    assert "warning: --fps 8 is above the frame rate of" in err and "(4 fps) and 1 more" in err
    assert "--fps 4 or less" in err
    write_pairs(tmp_path / "pairs.csv", [("query", "reference")])
    assert main(["localize", "--pairs", str(tmp_path / "pairs.csv"), "--videos", str(query.parent), "--model",
                 str(micro_model_dir), *TN, "--fps", "8", "-o", str(tmp_path / "p.json")]) == 0
    assert capsys.readouterr().err.count("warning: --fps 8 is above the frame rate of") == 1
    # within 5% of the rate (variable rates average below their peaks), and image folders (no rate): no warning
    info = probe(query)
    warn_fps_above_rates(4.2, {"a": info, "folder": dataclasses.replace(info, fps=float("nan"))})
    assert capsys.readouterr().err == ""
    warn_fps_above_rates(4.3, {"a": info})
    assert "above the frame rate of a (4 fps): its samples repeat frames" in capsys.readouterr().err


def test_pairs_with_a_missing_video(micro_model_dir, planted_videos, tmp_path, capsys):
    from vcl_fast.data.formats import write_pairs

    write_pairs(tmp_path / "pairs.csv", [("query", "reference"), ("query", "ghost")])
    preds = tmp_path / "preds.json"
    assert main(["localize", "--pairs", str(tmp_path / "pairs.csv"), "--videos", str(planted_videos[0].parent),
                 "--model", str(micro_model_dir), *TN, "-o", str(preds)]) == 2
    assert "no video for id 'ghost'" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs.csv"]


def test_find_videos_any_suffix_case_and_folders(tmp_path):
    from vcl_fast.localize_commands import find_videos

    for name in ("IMG_0001.MOV", "clip.mp4", "phone.3GP", "old.3gp.txt", "twice.mp4", "twice.mkv", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "frames").mkdir()
    assert find_videos(tmp_path, ["IMG_0001", "clip", "phone", "frames"]) == {
        "IMG_0001": tmp_path / "IMG_0001.MOV", "clip": tmp_path / "clip.mp4", "phone": tmp_path / "phone.3GP",
        "frames": tmp_path / "frames"}
    with pytest.raises(ValueError, match="several videos for id 'twice': twice.mkv, twice.mp4"):
        find_videos(tmp_path, ["twice"])
    for missing in ("notes", "img_0001", "old"):  # not a video suffix; ids are case-sensitive
        with pytest.raises(ValueError, match=f"no video for id '{missing}'"):
            find_videos(tmp_path, [missing])


def test_pairs_with_unreadable_videos(micro_model_dir, planted_videos, tmp_path, capsys):
    import shutil

    from vcl_fast.data.formats import read_predictions, write_pairs

    folder = tmp_path / "videos"
    folder.mkdir()
    for video in planted_videos:
        shutil.copy(video, folder / video.name)
    (folder / "broken.mp4").write_text("not a video")
    pairs = [("query", "reference"), ("query", "broken"), ("broken", "reference"), ("reference", "query")]
    write_pairs(tmp_path / "pairs.csv", pairs)
    preds = tmp_path / "preds.json"
    args = ["localize", "--pairs", str(tmp_path / "pairs.csv"), "--videos", str(folder), "--model",
            str(micro_model_dir), *TN, "-o", str(preds)]
    assert main(args) == 2  # the broken file is found before any video is decoded
    err = capsys.readouterr().err
    assert err.strip() == f"vcl-fast localize: error: {folder / 'broken.mp4'}: cannot open (Invalid data found when " \
        "processing input): not a video or image, or truncated"
    assert not preds.exists()
    assert main([*args, "--skip-unreadable"]) == 0
    captured = capsys.readouterr()
    assert "warning: 1 videos cannot be read, 2 pairs left out of the predictions: " in captured.err
    assert "broken.mp4: cannot open" in captured.err and "2 pairs, 2 with copied segments" in captured.out
    assert set(read_predictions(preds)) == {("query", "reference"), ("reference", "query")}
    write_pairs(tmp_path / "broken_only.csv", [("query", "broken")])
    assert main([*args[:2], str(tmp_path / "broken_only.csv"), *args[3:], "--skip-unreadable"]) == 2
    assert "no pair could be localized: 1 videos cannot be read" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken_only.csv", "pairs.csv", "preds.json", "videos"]


def test_an_interrupted_pair_run_resumes(micro_model_dir, planted_videos, tmp_path, capsys, monkeypatch):
    from vcl_fast.api import Localizer
    from vcl_fast.data.formats import read_predictions, write_pairs

    pairs = [("query", "reference"), ("reference", "query"), ("query", "query")]  # two query groups
    write_pairs(tmp_path / "pairs.csv", pairs)
    common = ["localize", "--pairs", str(tmp_path / "pairs.csv"), "--videos", str(planted_videos[0].parent),
              "--model", str(micro_model_dir), *TN]
    assert main([*common, "-o", str(tmp_path / "whole.json")]) == 0
    whole = read_predictions(tmp_path / "whole.json")
    preds, journal = tmp_path / "preds.json", tmp_path / "preds.json.partial"
    assert not (tmp_path / "whole.json.partial").exists()
    real = Localizer.localize_many
    calls = []

    def interrupted(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Localizer, "localize_many", interrupted)
    capsys.readouterr()
    assert main([*common, "-o", str(preds)]) == 130
    assert "2 of 3 pairs are saved in" in capsys.readouterr().err  # the query group: 2 pairs
    assert journal.is_file() and not preds.exists()
    with open(journal, "a") as handle:
        handle.write('{"pair": ["reference", "qu')  # killed while writing a line: dropped on resuming
    assert main([*common, "--param", "min_sim=0.8", "-o", str(preds)]) == 2  # other settings: refused
    assert "a partial run with other settings (params differ)" in capsys.readouterr().err
    calls.clear()
    monkeypatch.setattr(Localizer, "localize_many", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    assert main([*common, "-o", str(preds)]) == 0
    assert "resuming: 2 pairs done" in capsys.readouterr().err and len(calls) == 1  # only the reference group
    resumed = read_predictions(preds)
    assert list(resumed) == list(whole) == pairs  # the pair file's order
    for pair in pairs:
        np.testing.assert_array_equal(resumed[pair], whole[pair])
    assert not journal.exists()


def test_localize_pairs_leaves_out_videos_that_fail_while_decoding():
    from vcl_fast.localize_commands import localize_pairs
    from vcl_fast.video.records import VideoDecodeError

    class FakeLocalizer:
        def __init__(self):
            self.decoded = []

        def features(self, path, video_id):
            self.decoded.append(video_id)
            if video_id.startswith("bad"):
                raise VideoDecodeError(path, "truncated")
            return video_id

        def localize_many(self, query, references):
            return [Result(query, r) for r in references]

    class Result:
        def __init__(self, query, reference):
            self.pair = (query, reference)

        def boxes(self):
            return self.pair

    pairs = [("q", "r1"), ("q", "bad1"), ("bad2", "r1"), ("r1", "q"), ("q", "bad1")]
    paths = {v: f"/videos/{v}.mp4" for pair in pairs for v in pair}
    loc = FakeLocalizer()
    unreadable = {}
    found = localize_pairs(loc, pairs, paths, unreadable=unreadable)
    assert found == {("q", "r1"): ("q", "r1"), ("r1", "q"): ("r1", "q")}
    assert unreadable == {"bad1": "/videos/bad1.mp4: truncated", "bad2": "/videos/bad2.mp4: truncated"}
    assert loc.decoded.count("bad1") == 1 and "bad2" in loc.decoded  # a failed video is not tried again
    with pytest.raises(VideoDecodeError, match="bad1.mp4: truncated"):
        localize_pairs(FakeLocalizer(), pairs, paths)


def test_bench_models_without_torch_are_the_embedded_model(tmp_path, monkeypatch):
    import vcl_fast.bench_commands as bench
    from vcl_fast.runtime.manifest import DEFAULT_MODEL_DIR

    real_optional = bench._optional
    monkeypatch.setattr(bench, "_optional", lambda name: None if name == "torch" else real_optional(name))
    embedded = str(DEFAULT_MODEL_DIR)
    assert bench.model_sources(None, "micro", tmp_path) == {"onnxruntime": (embedded, embedded)}
    assert bench.model_sources("other", "micro", tmp_path) == {"onnxruntime": ("other", "other")}
    assert not any(tmp_path.iterdir())  # nothing exported


@pytest.mark.parametrize("min_time", ["-1", "nan", "inf"])
def test_bench_needs_a_finite_min_time(capsys, min_time):
    assert main(["bench", "--suite", "ops", "--min-time", min_time]) == 2
    assert "--min-time must be a finite number of seconds >= 0" in capsys.readouterr().err


def test_bench_suites(micro_model_dir, tmp_path, capsys, monkeypatch):
    import vcl_fast.bench_commands as bench

    monkeypatch.setattr(bench, "SIM_SIZES", (8,))
    monkeypatch.setattr(bench, "NMS_SIZES", (20,))
    monkeypatch.setattr(bench, "EXTRACT_FRAMES", 2)
    monkeypatch.setattr(bench, "LOCALIZE_FRAMES", 6)
    monkeypatch.setattr(bench, "METHODS", ("yolox", "tn"))
    out = tmp_path / "bench.json"
    assert main(["bench", "--suite", "all", "--preset", "micro", "--min-time", "0", "--threads", "1",
                 "--json", str(out)]) == 0
    results = json.loads(out.read_text())["results"]
    impls = {(r["suite"], r["impl"]) for r in results}
    assert {("ops", "vcl_fast"), ("ops", "numpy reference"), ("ops", "torch reference"), ("ops", "torchvision"),
            ("ops", "sgemm same FLOPs"), ("extract", "onnxruntime"), ("extract", "torch"),
            ("localize", "onnxruntime"), ("localize", "torch")} <= impls
    assert {r["rate_unit"] for r in results} == {"FLOP/s", "boxes/s", "frames/s", "pairs/s"}
    assert all(r["median_s"] > 0 for r in results)
    assert "segment_nms N=20" in capsys.readouterr().out
    assert main(["bench", "--suite", "extract", "--model", str(micro_model_dir), "--min-time", "0",
                 "--threads", "1"]) == 0


def test_frame_progress_totals_the_frames_to_embed(planted_videos, tmp_path, monkeypatch):
    import vcl_fast.localize_commands as commands
    from vcl_fast.video import probe
    from vcl_fast.video.sampling import num_samples

    bars = []

    class Bar:
        def __init__(self, total, unit, desc, leave=True):
            bars.append(self)
            self.total, self.unit, self.done, self.closed = total, unit, 0, False

        def update(self, n):
            self.done += n

        def close(self):
            self.closed = True

    monkeypatch.setattr(commands, "_progress", Bar)
    with commands.frame_progress(2.0, planted_videos, commands.probe_readable(planted_videos)) as progress:
        progress(7)
    expected = sum(num_samples(probe(v).duration, 2.0) for v in planted_videos)
    assert (bars[0].total, bars[0].unit, bars[0].done, bars[0].closed) == (expected, "frame", 7, True)
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    videos = [planted_videos[0], tmp_path / "broken.mp4"]
    with commands.frame_progress(1.0, videos, commands.probe_readable(videos)):
        pass  # an unreadable video: a count without a total (localizing it will say what is wrong)
    assert bars[1].total is None and bars[1].closed
    twice = [planted_videos[0]] * 2  # a video against itself: its frames are embedded twice
    with commands.frame_progress(2.0, twice, commands.probe_readable(twice)):
        pass
    assert bars[2].total == 2 * num_samples(probe(planted_videos[0]).duration, 2.0)
    monkeypatch.setattr(commands, "_progress", lambda *args, **kwargs: None)  # no tqdm
    with commands.frame_progress(1.0, planted_videos, {}) as progress:
        assert progress is None


def test_pairs_keep_and_reuse_features(micro_model_dir, planted_videos, tmp_path, capsys, monkeypatch):
    from vcl_fast.api import Localizer
    from vcl_fast.data.formats import read_predictions, write_pairs

    write_pairs(tmp_path / "pairs.csv", [("query", "reference"), ("reference", "query")])
    features = tmp_path / "features"
    common = ["localize", "--pairs", str(tmp_path / "pairs.csv"), "--videos", str(planted_videos[0].parent),
              "--model", str(micro_model_dir), *TN]
    assert main([*common, "--features", str(features), "-o", str(tmp_path / "a.json")]) == 0
    assert sorted(p.name for p in features.iterdir()) == ["meta.json", "query.npy", "query.timestamps.npy",
                                                          "reference.npy", "reference.timestamps.npy"]  # + the ends
    assert json.loads((features / "meta.json").read_text())["source"].endswith(", draft decoding")
    real = Localizer.features
    computed = []
    monkeypatch.setattr(Localizer, "features", lambda self, v, *a, **k: computed.append(v) or real(self, v, *a, **k))
    other = ["--param", "min_sim=0.8"]
    assert main([*common, *other, "--features", str(features), "-o", str(tmp_path / "b.json")]) == 0
    assert computed == []  # both videos read back from the folder
    assert main([*common, *other, "-o", str(tmp_path / "c.json")]) == 0 and len(computed) == 2
    cached, fresh = read_predictions(tmp_path / "b.json"), read_predictions(tmp_path / "c.json")
    for pair in cached:
        np.testing.assert_array_equal(cached[pair], fresh[pair])
    for name in ("query", "reference"):  # as kept before the video's end was recorded: computed anew
        (features / f"{name}.timestamps.npy").unlink()
    assert main([*common, *other, "--features", str(features), "-o", str(tmp_path / "e.json")]) == 0
    assert len(computed) == 4 and (features / "query.timestamps.npy").is_file()
    for pair, boxes in read_predictions(tmp_path / "e.json").items():
        np.testing.assert_array_equal(boxes, fresh[pair])
    kept, before = (features / "reference.npy").stat().st_mtime, planted_videos[1].stat()
    os.utime(planted_videos[1], (kept + 10, kept + 10))  # the reference changed after its features were kept
    try:
        assert main([*common, *other, "--features", str(features), "-o", str(tmp_path / "f.json")]) == 0
    finally:  # the fixture's videos serve other tests
        os.utime(planted_videos[1], (before.st_atime, before.st_mtime))
    assert len(computed) == 5 and computed[-1] == planted_videos[1]
    capsys.readouterr()
    assert main([*common, "--fps", "2", "--features", str(features), "-o", str(tmp_path / "d.json")]) == 2
    assert "at 1 fps, not of " in capsys.readouterr().err and not (tmp_path / "d.json").exists()
    assert main(["localize", *map(str, planted_videos), "--features", str(features)]) == 2
    assert "--features are for --pairs" in capsys.readouterr().err


def test_kept_features_outlive_a_change_of_the_detector(micro_model_dir, planted_videos, tmp_path, capsys,
                                                       monkeypatch):
    """Features depend on the extractor alone: new detection settings in the manifest keep them usable, a new
    extractor entry does not."""
    import shutil

    from vcl_fast.api import Localizer
    from vcl_fast.data.formats import write_pairs

    model = tmp_path / "model"
    shutil.copytree(micro_model_dir, model)
    write_pairs(tmp_path / "pairs.csv", [("query", "reference")])
    run = ["localize", "--pairs", str(tmp_path / "pairs.csv"), "--videos", str(planted_videos[0].parent),
           "--model", str(model), *TN, "--features", str(tmp_path / "features")]
    assert main([*run, "-o", str(tmp_path / "a.json")]) == 0
    manifest = json.loads((model / "manifest.json").read_text())
    manifest["detector"]["merge_overlap"] = 0.5
    (model / "manifest.json").write_text(json.dumps(manifest))
    real = Localizer.features
    computed = []
    monkeypatch.setattr(Localizer, "features", lambda self, v, *a, **k: computed.append(v) or real(self, v, *a, **k))
    assert main([*run, "-o", str(tmp_path / "b.json")]) == 0 and computed == []
    manifest["extractor"]["mean"] = [0.4, 0.4, 0.4]
    (model / "manifest.json").write_text(json.dumps(manifest))
    capsys.readouterr()
    assert main([*run, "-o", str(tmp_path / "c.json")]) == 2
    assert "choose another folder" in capsys.readouterr().err


def test_last_modified_of_a_file_and_an_image_folder(tmp_path):
    from vcl_fast.localize_commands import last_modified

    video = tmp_path / "v.mp4"
    video.write_bytes(b"x")
    os.utime(video, (100.0, 100.0))
    assert last_modified(video) == 100.0
    folder = tmp_path / "frames"
    folder.mkdir()
    for name, when in (("1.png", 50.0), ("2.png", 300.0), ("notes.txt", 900.0)):
        (folder / name).write_bytes(b"x")
        os.utime(folder / name, (when, when))
    os.utime(folder, (200.0, 200.0))
    assert last_modified(folder) == 300.0  # the newest image; other files do not count
    os.utime(folder, (400.0, 400.0))  # an image added or removed
    assert last_modified(folder) == 400.0
