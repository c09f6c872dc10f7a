"""``vcl-fast localize``: copied segments between two videos, or over a list of pairs.

One pair: ``vcl-fast localize QUERY REFERENCE [--json OUT] [--plot OUT.png|.pdf|.svg]`` prints the segments
(hh:mm:ss.s), the verdict and the seconds spent per stage. Many pairs: ``vcl-fast localize --pairs
pairs.csv --videos DIR -o preds.json`` (VCSL prediction JSON) or ``--vsc matches.csv`` (VSC22 match CSV),
files that ``vcl-fast eval`` scores; every video's features are computed once and kept only while a pair
still needs them. Every video is opened once before any work, so a file that cannot be read stops the run at
once (``--skip-unreadable``: its pairs are left out and named on stderr), and an ``--fps`` above a video's frame
rate (samples that repeat frames) is warned about. Outputs are written atomically, only when everything
succeeded; until then the finished pairs are journaled in ``OUT.partial`` (:mod:`vcl_fast.data.pair_journal`),
so that an interrupted run, started again with the same settings, resumes.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import math
import os
import sys
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from vcl_fast.api import METHODS
from vcl_fast.atomic import atomic_write, check_output_file
from vcl_fast.cli import CliError
from vcl_fast.config import parse_overrides
from vcl_fast.data.pair_journal import PairJournal
from vcl_fast.runtime import BACKENDS
from vcl_fast.video.records import VIDEO_SUFFIXES, VideoInfo

# --fps above a video's frame rate by more than this factor is warned about (a variable rate averages below its peaks).
FPS_WARNING_SLACK = 1.05


def format_time(seconds: float) -> str:
    """``hh:mm:ss.s``."""
    tenths = round(seconds * 10)
    hours, rest = divmod(tenths, 36000)
    minutes, rest = divmod(rest, 600)
    return f"{hours:02d}:{minutes:02d}:{rest / 10:04.1f}"


def build_localizer(args: argparse.Namespace):
    """The :class:`~vcl_fast.api.Localizer` the command-line options describe."""
    from vcl_fast.api import Localizer

    extractor = args.extractor or args.model
    detector = args.detector or args.model
    try:
        return Localizer(extractor, detector, backend=args.backend, device=args.device, fps=args.fps,
                         method=args.method, method_params=parse_overrides(args.param), batch_size=args.batch_size,
                         threads=args.threads, exact_decoding=args.exact_decoding)
    except ImportError as exc:
        raise CliError(str(exc)) from None


# ---------------------------------------------------------------------------------------------- one pair


def _print_result(result, stream) -> None:
    """Segments table, verdict and timings on ``stream`` (rich when installed, plain text otherwise)."""
    rows = [(str(i + 1), format_time(s.q_start), format_time(s.q_end), format_time(s.r_start), format_time(s.r_end),
             f"{s.score:.3f}") for i, s in enumerate(result.segments)]
    header = ("#", "query start", "query end", "reference start", "reference end", "score")
    verdict = (f"copied: yes ({len(result.segments)} segment{'s' * (len(result.segments) != 1)}, "
               f"score {result.score:.3f})" if result.copied else "copied: no (no copied segment found)")
    timings = "  ".join(f"{stage} {seconds:.3f}s" for stage, seconds in result.timings.items())
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
        for row in [header, *rows]:
            print("  ".join(cell.rjust(w) for cell, w in zip(row, widths)), file=stream)
        print(verdict, file=stream)
        print(f"timings: {timings}", file=stream)
        return
    console = Console(file=stream)
    table = Table(title=f"{result.query} vs {result.reference}")
    for name in header:
        table.add_column(name, justify="right")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    console.print(verdict)
    console.print(f"timings: {timings}")


def plot_format(path: str) -> str:
    """The image format ``--plot path`` asks for by its suffix (png, pdf, svg, ... as matplotlib writes them);
    CliError, before any work, without matplotlib or for a suffix it cannot write."""
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        raise CliError("--plot needs matplotlib: pip install 'vcl_fast[plot]'") from None
    formats = FigureCanvasBase.get_supported_filetypes()
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in formats:
        raise CliError(f"--plot {path}: the file name must end with an image format matplotlib writes "
                       f"(.{', .'.join(sorted(formats))}); .png is the usual one")
    return suffix


def plot_figure(result, fps: float):
    """A matplotlib Figure of the similarity map (query down, reference across, seconds) with the segments drawn
    on it. Cell (i, j) is drawn over the times it spans (``result.map_edges``, frames sampled at ``fps`` from
    0 s): the last row and column stop where their videos end."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    sim = result.similarity
    query_edges, reference_edges = result.map_edges
    figure = Figure(figsize=(7, 6), dpi=100)
    axes = figure.add_subplot()
    extent = (0, sim.shape[1] / fps, sim.shape[0] / fps, 0)
    image = axes.imshow(sim, cmap="viridis", vmin=-1, vmax=1, extent=extent, aspect="auto", interpolation="nearest")
    axes.set_xlim(0, reference_edges[-1])
    axes.set_ylim(query_edges[-1], 0)
    figure.colorbar(image, ax=axes, label="similarity")
    for s in result.segments:
        axes.add_patch(Rectangle((s.r_start, s.q_start), s.r_end - s.r_start, s.q_end - s.q_start, fill=False,
                                 edgecolor="red", linewidth=1.5))
        axes.annotate(f"{s.score:.2f}", (s.r_start, s.q_start), color="red", fontsize=8,
                      xytext=(2, -2), textcoords="offset points")
    axes.set_xlabel(f"reference: {Path(result.reference).name} (s)")
    axes.set_ylabel(f"query: {Path(result.query).name} (s)")
    return figure


def render_plot(result, fps: float, image_format: str) -> bytes:
    """:func:`plot_figure` as an ``image_format`` file (:func:`plot_format`)."""
    buffer = io.BytesIO()
    plot_figure(result, fps).savefig(buffer, format=image_format, bbox_inches="tight")
    return buffer.getvalue()


def _localize_pair(args: argparse.Namespace) -> int:
    to_stdout = args.json == "-"  # the JSON on stdout (for a pipe), the table on stderr
    for output in (None if to_stdout else args.json, args.plot):
        if output:
            check_output_file(output)
    image_format = plot_format(args.plot) if args.plot else None
    loc = build_localizer(args)
    videos = [args.query, args.reference]
    infos = probe_readable(videos)
    warn_fps_above_rates(loc.fps, infos)
    with frame_progress(loc.fps, videos, infos) as progress:
        result = loc.localize(args.query, args.reference, return_map=bool(args.plot), progress=progress)
    plot = render_plot(result, loc.fps, image_format) if image_format else None
    if to_stdout:
        json.dump(result.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif args.json:
        with atomic_write(args.json) as handle:
            json.dump(result.to_dict(), handle, indent=2)
            handle.write("\n")
    if plot is not None:
        with atomic_write(args.plot, "wb") as handle:
            handle.write(plot)
    _print_result(result, sys.stderr if to_stdout else sys.stdout)
    return 0


# -------------------------------------------------------------------------------------------- many pairs


def find_videos(directory: Path, video_ids: Iterable[str]) -> dict[str, Path]:
    """``{id: path}``: the video of each id in ``directory``, a file ``<id>.<video suffix>`` (any letter case:
    ``IMG_0001.MOV``) or an image folder ``<id>/``. The folder is listed once. ValueError for an id with no
    video or with several."""
    found: dict[str, list[Path]] = {}
    for entry in directory.iterdir():
        if entry.is_dir():
            found.setdefault(entry.name, []).append(entry)
        elif entry.suffix.lower() in VIDEO_SUFFIXES and entry.is_file():
            found.setdefault(entry.stem, []).append(entry)
    paths = {}
    for video_id in video_ids:
        candidates = found.get(video_id, [])
        if not candidates:
            raise ValueError(f"{directory}: no video for id {video_id!r} (expected {video_id}.mp4 or another video "
                             f"suffix, or a folder of images named {video_id})")
        if len(candidates) > 1:
            raise ValueError(f"{directory}: several videos for id {video_id!r}: "
                             + ", ".join(sorted(p.name for p in candidates)))
        paths[video_id] = candidates[0]
    return paths


def _progress(total: int | None, unit: str, desc: str, leave: bool = True):
    """A tqdm bar on stderr, shown on a terminal only and only once the work has lasted 2 s; None without tqdm."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit=unit, desc=desc, disable=None, delay=2.0, leave=leave)


def probe_readable(videos: Sequence[str | os.PathLike]) -> dict[str, VideoInfo]:
    """The header facts of each of ``videos`` (files or image folders, by ``str(video)``) that can be opened;
    reading the others will say what is wrong with them."""
    from vcl_fast.video import VideoDecodeError, probe

    infos = {}
    for video in videos:
        with contextlib.suppress(VideoDecodeError):
            infos[str(video)] = probe(video)
    return infos


def warn_fps_above_rates(fps: float, infos: dict[str, VideoInfo]) -> None:
    """One line on stderr when ``fps`` is above the frame rate of some of the videos (name -> VideoInfo): their
    samples repeat frames, which costs time and shows nothing new (image folders have no rate of their own)."""
    slow = {name: info.fps for name, info in infos.items()
            if math.isfinite(info.fps) and fps > FPS_WARNING_SLACK * info.fps}
    if slow:
        name, rate = min(slow.items(), key=lambda item: item[1])
        more = f" and {len(slow) - 1} more" if len(slow) > 1 else ""
        print(f"warning: --fps {fps:g} is above the frame rate of {name} ({rate:g} fps){more}: its samples repeat "
              f"frames, which costs time and shows nothing new; --fps {rate:g} or less reads each frame at most once",
              file=sys.stderr)


@contextlib.contextmanager
def frame_progress(fps: float, videos: Sequence[object], infos: dict[str, VideoInfo]
                   ) -> Iterator[Callable[[int], None] | None]:
    """A ``progress`` callback for :meth:`vcl_fast.Localizer.localize` / ``features``: a bar of the frames to embed,
    ``videos``' declared lengths (``infos``: :func:`probe_readable`) at ``fps`` (a count without a total when one
    is unknown; None without tqdm)."""
    from vcl_fast.video.sampling import num_samples

    durations = [infos[str(video)].duration for video in videos if str(video) in infos]
    total = None
    if len(durations) == len(videos) and all(math.isfinite(d) for d in durations):
        total = sum(num_samples(d, fps) for d in durations)
    bar = _progress(total, "frame", "extract", leave=False)
    try:
        yield None if bar is None else bar.update
    finally:
        if bar is not None:
            bar.close()


def probe_videos(paths: dict[str, Path], unreadable: dict[str, str] | None = None) -> dict[str, VideoInfo]:
    """Open every video of ``paths`` (id -> file or image folder) once, so that one that cannot be read fails
    before any work (its VideoDecodeError), or, with ``unreadable``, is recorded there (id -> message). Returns
    the header facts of the others (id -> VideoInfo)."""
    from vcl_fast.video import probe
    from vcl_fast.video.records import VideoDecodeError

    infos = {}
    for video_id, path in paths.items():
        try:
            infos[video_id] = probe(path)
        except VideoDecodeError as exc:
            if unreadable is None:
                raise
            unreadable[video_id] = str(exc)
    return infos


def localize_pairs(loc, pairs: list[tuple[str, str]], paths: dict[str, Path], progress=None,
                   unreadable: dict[str, str] | None = None, on_group: Callable[[dict], None] | None = None,
                   load: Callable[[str], object] | None = None) -> dict:
    """``{(query_id, reference_id): (N, 5) float64 boxes in seconds}`` for every pair. Pairs are grouped by
    query (one ``localize_many`` call each; ``on_group`` gets each group's predictions when it is done); a video's
    features are had once (``load`` of its id, default ``loc.features`` of its path) and dropped when no
    remaining pair needs them. A video that cannot be decoded raises its VideoDecodeError, or, with
    ``unreadable`` (id -> message; the ids in it already are not read), is recorded there and the pairs that
    need it are left out."""
    from collections import Counter

    from vcl_fast.video.records import VideoDecodeError

    by_query: dict[str, list[str]] = {}
    for query_id, reference_id in pairs:
        by_query.setdefault(query_id, []).append(reference_id)
    remaining = Counter(video for pair in pairs for video in pair)
    cache = {}

    def features(video_id: str):
        """The video's features, or None when it cannot be read (recorded in ``unreadable``)."""
        if unreadable is not None and video_id in unreadable:
            return None
        if video_id not in cache:
            try:
                cache[video_id] = load(video_id) if load else loc.features(paths[video_id], video_id)
            except VideoDecodeError as exc:
                if unreadable is None:
                    raise
                unreadable[video_id] = str(exc)
                return None
        return cache[video_id]

    predictions = {}
    for query_id, reference_ids in by_query.items():
        query = features(query_id)
        references = [] if query is None else [(r, features(r)) for r in reference_ids]
        readable = [(r, video) for r, video in references if video is not None]
        group = {}
        if readable:
            results = loc.localize_many(query, [video for _, video in readable])
            group = {(query_id, reference_id): result.boxes() for (reference_id, _), result in zip(readable, results)}
            predictions.update(group)
        if on_group is not None:
            on_group(group)
        for video_id in [query_id, *reference_ids]:
            remaining[video_id] -= 1
            if not remaining[video_id]:
                cache.pop(video_id, None)
        if progress is not None:
            progress.update(len(reference_ids))
    return {pair: predictions[pair] for pair in pairs if pair in predictions}


def model_identity(path: str | None) -> str:
    """A model's path (None: the embedded model's) with its manifest's or config's SHA-256 when it is a folder, so
    that the embedded model of another release, or a folder exported anew, differs."""
    from vcl_fast.runtime.manifest import default_model_dir

    folder = Path(path) if path else default_model_dir()
    described = [folder / name for name in ("manifest.json", "config.json") if (folder / name).is_file()]
    if not described:
        return str(folder.resolve())
    return f"{folder.resolve()} sha256:{hashlib.sha256(described[0].read_bytes()).hexdigest()}"


def extractor_identity(path: str | None) -> str:
    """What kept features depend on: for an exported model directory (None: the embedded model) its path with the
    SHA-256 of its manifest's extractor entry (the ONNX file's hash, input size, normalisation), so that a change to
    its detector or its detection settings leaves the features of its extractor usable; else
    :func:`model_identity`."""
    from vcl_fast.runtime.manifest import MANIFEST_FILE, default_model_dir, read_manifest

    folder = Path(path) if path else default_model_dir()
    entry = read_manifest(folder).get("extractor") if (folder / MANIFEST_FILE).is_file() else None
    if not isinstance(entry, dict):
        return model_identity(path)
    described = json.dumps(entry, sort_keys=True).encode()
    return f"{folder.resolve()} extractor sha256:{hashlib.sha256(described).hexdigest()}"


def run_settings(args: argparse.Namespace, loc) -> dict:
    """What the results of ``vcl-fast localize --pairs`` depend on, for its journal: the models, the method and
    its resolved parameters, the sampling, the backend, the videos folder and vcl_fast's version."""
    from vcl_fast import __version__

    return {"extractor": model_identity(args.extractor or args.model),
            "detector": model_identity(args.detector or args.model), "method": loc.method, "params": repr(loc.params),
            "fps": loc.fps, "exact_decoding": loc.exact_decoding, "backend": args.backend, "device": args.device,
            "videos": str(Path(args.videos).resolve()), "vcl_fast": __version__}


def last_modified(path: Path) -> float:
    """When a video last changed (POSIX seconds): its file's modification time, or for an image folder the latest
    of the folder's (images added or removed) and its images'."""
    from vcl_fast.video.image_folder import list_images

    if not path.is_dir():
        return path.stat().st_mtime
    return max([path.stat().st_mtime, *(image.stat().st_mtime for image in list_images(path))])


def feature_cache(loc, paths: dict[str, Path], directory: Path, extractor: str) -> Callable[[str], object]:
    """A ``load`` for :func:`localize_pairs`: a video's features read from ``directory`` when an earlier run left
    them there, else computed and kept there. ``directory`` is claimed for ``extractor`` (its identity) at the
    Localizer's fps and decoding (:func:`~vcl_fast.data.features.claim_feature_dir`). Kept features are computed
    anew and replaced when their video changed after them (:func:`last_modified`), or when they lack the video's
    end (kept by vcl_fast before ends were recorded), so that a cached run gives a fresh run's segments."""
    from vcl_fast.data.features import claim_feature_dir, load_video_features, save_video_features

    decoding = "exact" if loc.exact_decoding else "draft"
    claim_feature_dir(directory, loc.fps, f"{extractor}, {decoding} decoding")

    def load(video_id: str):
        kept_file = directory / f"{video_id}.npy"
        if kept_file.is_file() and kept_file.stat().st_mtime >= last_modified(paths[video_id]):
            kept = load_video_features(directory, video_id)
            if kept.end is not None:
                return kept
        video = loc.features(paths[video_id], video_id)
        save_video_features(directory, video)
        return video

    return load


def _localize_pairs(args: argparse.Namespace) -> int:
    from vcl_fast.data.formats import read_pairs, write_predictions, write_vsc_matches

    if not (args.output or args.vsc):
        raise CliError("--pairs needs an output: -o preds.json (VCSL JSON) and/or --vsc matches.csv (VSC22 CSV)")
    if args.plot or args.json:
        raise CliError("--plot and --json are for one pair; with --pairs use -o / --vsc")
    for output in (args.output, args.vsc):
        if output:
            check_output_file(output)
    videos = Path(args.videos)
    if not videos.is_dir():
        raise ValueError(f"{videos}: --videos must be a directory of videos named <id>.<suffix>")
    pairs = read_pairs(args.pairs)
    if not pairs:
        raise ValueError(f"{args.pairs}: no pairs listed")
    paths = find_videos(videos, dict.fromkeys(video for pair in pairs for video in pair))
    loc = build_localizer(args)
    settings = run_settings(args, loc)
    extractor = extractor_identity(args.extractor or args.model)
    load = feature_cache(loc, paths, Path(args.features), extractor) if args.features else None
    journal = PairJournal(f"{args.output or args.vsc}.partial", settings)
    try:
        if journal.done or journal.unreadable:
            print(f"resuming: {len(journal.done)} pairs done in {journal.path}", file=sys.stderr)
        unreadable: dict[str, str] | None = dict(journal.unreadable) if args.skip_unreadable else None
        todo = [pair for pair in pairs if pair not in journal.done]
        infos = probe_videos({video: paths[video] for pair in todo for video in pair}, unreadable)
        warn_fps_above_rates(loc.fps, infos)
        progress = _progress(len(pairs), "pair", "localize")
        if progress is not None:
            progress.update(len(pairs) - len(todo))
        try:
            localize_pairs(loc, todo, paths, progress, unreadable,
                           on_group=lambda group: journal.record(group, unreadable or {}), load=load)
        finally:
            if progress is not None:
                progress.close()
    except BaseException:  # interrupted, or a video failed: what is done stays for the next run
        journal.close()
        if journal.done:
            print(f"{len(journal.done)} of {len(pairs)} pairs are saved in {journal.path}: the same command "
                  "resumes", file=sys.stderr)
        raise
    predictions = {pair: journal.done[pair] for pair in pairs if pair in journal.done}
    if unreadable:
        if not predictions:
            journal.remove()
            raise ValueError(f"no pair could be localized: {len(unreadable)} videos cannot be read, first "
                             f"{next(iter(unreadable.values()))}")
        reasons = list(unreadable.values())
        more = f"; and {len(reasons) - 3} more" if len(reasons) > 3 else ""
        print(f"warning: {len(unreadable)} videos cannot be read, {len(pairs) - len(predictions)} pairs left out "
              "of the predictions: " + "; ".join(reasons[:3]) + more, file=sys.stderr)
    if args.output:
        write_predictions(args.output, predictions)
    if args.vsc:
        write_vsc_matches(args.vsc, predictions)
    journal.remove()
    copied = sum(1 for boxes in predictions.values() if len(boxes))
    written = " and ".join(str(p) for p in (args.output, args.vsc) if p)
    print(f"{len(predictions)} pairs, {copied} with copied segments -> {written}")
    return 0


# ----------------------------------------------------------------------------------------------- parser


def _cmd_localize(args: argparse.Namespace) -> int:
    if args.pairs or args.videos:
        if args.query or args.reference:
            raise CliError("give either QUERY REFERENCE or --pairs CSV --videos DIR, not both")
        if not (args.pairs and args.videos):
            raise CliError("--pairs and --videos go together")
        return _localize_pairs(args)
    if not (args.query and args.reference):
        raise CliError("give QUERY and REFERENCE videos (or --pairs CSV --videos DIR)")
    if args.output or args.vsc or args.features:
        raise CliError("-o / --vsc / --features are for --pairs; for one pair use --json")
    return _localize_pair(args)


def add_detection_arguments(p: argparse.ArgumentParser) -> None:
    """--method, --param and the options choosing the detector and how it runs: what builds a Localizer of
    features (`vcl-fast localize-features`)."""
    p.add_argument("--method", default="yolox", choices=METHODS,
                   help="yolox (detector) or a classical localizer (default: yolox)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting of the method (yolox: conf_threshold, nms_threshold, chunk_length and "
                   "chunk_overlap in frames, batch_size, and the model's calibrated min_similarity, extent_similarity, "
                   "confident_similarity, transpose_fusion_iou and merge_overlap, -1 = off, with confident_score, and "
                   "query_margin and reference_margin in frames, 0 = off; "
                   "classical: its VCSL-tuned parameters), repeatable")
    p.add_argument("--model", metavar="DIR", help="exported model directory (`vcl-fast export`); default: the "
                   "embedded model")
    p.add_argument("--detector", metavar="PATH", help="detector only (torch backend: a directory or checkpoint)")
    p.add_argument("--backend", default="onnxruntime", choices=list(BACKENDS), help="default: onnxruntime")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default: cpu)")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads (default: the backend's)")


def add_localizer_arguments(p: argparse.ArgumentParser) -> None:
    """The detection options and the extractor's: what builds a Localizer of videos (also used by `vcl-fast
    search`)."""
    add_detection_arguments(p)
    p.add_argument("--extractor", metavar="PATH", help="extractor only (torch backend: a weight directory); "
                   "without --detector, an exported directory's own detector, else the embedded one")
    p.add_argument("--batch-size", type=int, default=None,
                   help="frames decoded and embedded per step (default 4 with --device cpu, else 16)")


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "localize", help="find copied segments between videos (one pair, or a pair list)",
        description="Copied segments of QUERY in REFERENCE (video files or image folders), in seconds. With "
        "--pairs CSV --videos DIR: every listed pair, written as VCSL prediction JSON (-o) and/or VSC22 match "
        "CSV (--vsc) for `vcl-fast eval`.",
    )
    p.add_argument("query", nargs="?", metavar="QUERY", help="query video")
    p.add_argument("reference", nargs="?", metavar="REFERENCE", help="reference video")
    p.add_argument("--json", metavar="OUT.json", help="write the result as JSON (- : to stdout, the table then goes "
                   "to stderr)")
    p.add_argument("--plot", metavar="OUT.png", help="draw the similarity map with the segments (matplotlib; the "
                   "suffix picks the format: .png, .pdf, .svg, ...)")
    p.add_argument("--fps", type=float, default=1.0, help="frames sampled per second (default 1)")
    add_localizer_arguments(p)
    p.add_argument("--exact-decoding", action="store_true",
                   help="decode videos at full size (default: MPEG-1/2/4, MJPEG and the like decode at a reduced "
                   "size no smaller than the extractor's input: faster, a few grey levels off)")
    p.add_argument("--pairs", metavar="CSV", help="pair list (query_id,reference_id)")
    p.add_argument("--videos", metavar="DIR", help="directory holding <id>.<suffix> videos for --pairs")
    p.add_argument("-o", "--output", metavar="PREDS.json", help="--pairs: VCSL prediction JSON")
    p.add_argument("--vsc", metavar="MATCHES.csv", help="--pairs: VSC22 match CSV")
    p.add_argument("--features", metavar="DIR", help="--pairs: keep each video's features in DIR (<id>.npy) and "
                   "reuse them in later runs of the same extractor, fps and decoding (to try other --param or "
                   "--method settings without extracting again; a video changed since is computed again)")
    p.add_argument("--skip-unreadable", action="store_true",
                   help="--pairs: leave out the pairs of videos that cannot be read (named on stderr) instead of "
                   "stopping at the first; every video is opened once before any work either way")
    p.set_defaults(func=_cmd_localize)
