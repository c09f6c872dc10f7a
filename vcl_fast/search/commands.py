"""``vcl-fast index build|info`` and ``vcl-fast search``: a reference library's index, and searching it."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vcl_fast.atomic import atomic_write, check_output_file


def _log(message: str) -> None:
    print(message, file=sys.stderr)


def _require(module: str, extra: str, what: str) -> None:
    """CliError naming the extra to install unless ``module`` can be imported."""
    import importlib.util

    from vcl_fast.cli import CliError

    if importlib.util.find_spec(module) is None:
        raise CliError(f'{what} needs {module}: pip install "vcl_fast[{extra}]"')


def _ray_options(args: argparse.Namespace):
    if args.ray is False:
        return None
    from vcl_fast.search.distributed import RayOptions

    _require("ray", "ray", "--ray")

    return RayOptions(address=args.ray, num_workers=args.workers)


def _add_ray_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ray", nargs="?", const=None, default=False, metavar="ADDRESS",
                   help="run on Ray actors: alone, join the cluster of this machine or start a local one; "
                        "with ADDRESS, join that cluster (see docs/distributed.md)")
    p.add_argument("--workers", type=int, default=0, metavar="N",
                   help="Ray actors (default: one per GPU of the cluster, else one per CPU)")


# ------------------------------------------------------------------------------------------- index


def _model_path(path: str | None) -> str | None:
    """An absolute path (workers on other nodes read the same path), or None for the embedded default."""
    return None if path is None else str(Path(path).resolve())


def _cmd_index_build(args: argparse.Namespace) -> int:
    from vcl_fast.search.embed import (
        FeatureFileLoader, LocalizerEmbedder, LocalizerSpec, list_feature_files, list_videos,
    )
    from vcl_fast.search.stages import build_index

    _require("faiss", "search", "the search index")
    if args.videos is not None:
        spec = LocalizerSpec(_model_path(args.extractor or args.model), backend=args.backend, device=args.device,
                             fps=args.fps, batch_size=args.batch_size, threads=args.threads,
                             exact_decoding=args.exact_decoding)
        sources, embedder = list_videos(args.videos), LocalizerEmbedder(spec)
        embedder.load()  # a bad model fails here, before any work
    else:
        sources, embedder = list_feature_files(args.features), FeatureFileLoader()
    manifest = build_index(args.output, sources, embedder, preset=args.preset, overrides=args.param,
                           retrain=args.retrain, shard_size=args.shard_size, ray=_ray_options(args), log=_log)
    print(f"{args.output}: {len(manifest.video_ids)} videos in {len(manifest.shards)} shards, "
          f"{manifest.index['factory']} index of {manifest.index['num_vectors']} vectors")
    if manifest.skipped:
        video_id, reason = next(iter(manifest.skipped.items()))
        print(f"warning: {len(manifest.skipped)} videos could not be read and are not in the library "
              f"(listed in {args.output}/manifest.json), first {video_id}: {reason}", file=sys.stderr)
    return 0


def _cmd_index_info(args: argparse.Namespace) -> int:
    from vcl_fast.search.library import read_manifest

    manifest = read_manifest(args.index)
    frames = sum(n for shard in manifest.shards for n in shard["frames"])
    print(f"videos: {len(manifest.video_ids)} ({frames} frames) in {len(manifest.shards)} shards")
    print(f"features: {manifest.layout} from {manifest.embedder}")
    print(f"skipped: {len(manifest.skipped)} unreadable videos")
    entry = manifest.index
    if entry is None:
        print("frame index: not built")
    else:
        print(f"frame index: {entry['factory']}, {entry['num_vectors']} vectors, {entry['file_bytes']} bytes on "
              f"disk, covers {len(entry['shards'])} of {len(manifest.shards)} shards")
    return 0


# ------------------------------------------------------------------------------------------ search


def _queries(args: argparse.Namespace, library_embedder: dict) -> list:
    from vcl_fast.search.embed import FeatureFileLoader, embedder_from_description, list_feature_files, list_videos
    from vcl_fast.search.stages import embed_queries

    if args.query_features is not None:
        if args.queries:
            raise ValueError("give query videos or --query-features, not both")
        return embed_queries(list_feature_files(args.query_features), FeatureFileLoader())
    if not args.queries:
        raise ValueError("no queries: give query videos (files, directories or list files) or --query-features DIR")
    if library_embedder["kind"] != "localizer":
        raise ValueError(f"{args.index} was built from precomputed features: pass the queries' features "
                         "with --query-features DIR")
    embedder = embedder_from_description(library_embedder, device=args.device, batch_size=args.batch_size,
                                         threads=args.threads)
    sources = [source for spec in args.queries for source in list_videos(spec)]
    return embed_queries(sources, embedder, ray=_ray_options(args), log=_log)


def _localizer(args: argparse.Namespace, library_embedder: dict):
    """Classical methods: MapLocalizer (no model needed); yolox: the Localizer API with its detector (and the
    library's extractor, which the Localizer loads)."""
    from vcl_fast.config import parse_overrides
    from vcl_fast.eval.localizers import localizer_params
    from vcl_fast.search.embed import LocalizerSpec
    from vcl_fast.search.localize import ClassicalAligner, LocalizerPairs, MapLocalizer

    if args.method != "yolox":
        return MapLocalizer(ClassicalAligner(args.method, localizer_params(args.method, args.param)))
    extractor = args.extractor or args.model or library_embedder.get("extractor")
    spec = LocalizerSpec(_model_path(extractor), _model_path(args.detector or args.model), backend=args.backend,
                         device=args.device, method="yolox", method_params=tuple(parse_overrides(args.param).items()),
                         batch_size=args.batch_size, threads=args.threads)
    pairs = LocalizerPairs(spec)
    pairs.load()  # a bad model or setting fails here, before any work
    return pairs


def _print_results(results) -> None:
    for result in results:
        print(f"{result.query_id}: {len(result.candidates)} candidates, {len(result.matches)} matches")
        for m in result.matches[:10]:
            print(f"  {m.reference_id:<24} query {m.query_start:8.2f}-{m.query_end:8.2f} s  "
                  f"reference {m.reference_start:8.2f}-{m.reference_end:8.2f} s  score {m.score:.4f}")


def _cmd_search(args: argparse.Namespace) -> int:
    from vcl_fast.data.formats import read_pairs, write_predictions, write_vsc_matches
    from vcl_fast.search.searcher import SearchSettings, pair_boxes
    from vcl_fast.search.stages import localize_pairs, search_queries

    from vcl_fast.search.library import read_manifest

    _require("faiss", "search", "the search index")
    settings = SearchSettings(args.top_k, args.neighbours, args.min_similarity, args.nprobe)
    library_embedder = read_manifest(args.index).embedder
    localizer = _localizer(args, library_embedder)
    pairs = read_pairs(args.pairs) if args.pairs else None
    if pairs is not None and (args.json is None or args.vsc is not None):
        raise ValueError("--pairs writes VCSL prediction JSON: give --json OUT.json (and no --vsc)")
    for output in (args.json, args.vsc):
        if output:
            check_output_file(output)
    queries = _queries(args, library_embedder)
    if pairs is not None:
        predictions = localize_pairs(args.index, queries, pairs, localizer=localizer, ray=_ray_options(args))
        write_predictions(args.json, predictions)
        print(f"{args.json}: {sum(len(b) for b in predictions.values())} segments in {len(pairs)} pairs")
        return 0
    results = search_queries(args.index, queries, localizer=localizer, settings=settings, ray=_ray_options(args))
    if args.json:
        with atomic_write(args.json) as handle:
            json.dump([result.to_dict() for result in results], handle, indent=1)
            handle.write("\n")
    if args.vsc:
        write_vsc_matches(args.vsc, pair_boxes(results))
    _print_results(results)
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    from vcl_fast.localize_commands import add_localizer_arguments
    from vcl_fast.runtime import BACKENDS
    from vcl_fast.search.frame_index import PRESETS

    index = sub.add_parser("index", help="build or inspect a reference library's search index")
    index_sub = index.add_subparsers(dest="index_command", required=True, metavar="SUBCOMMAND")
    build = index_sub.add_parser(
        "build", help="extract and store a reference library's features and index its frames (resumable)",
        description="Store the features of a reference library in INDEX (shards + manifest) and build a faiss "
        "index over all frame tokens. Re-running the same command resumes an interrupted build; running it with "
        "more videos adds them.",
    )
    source = build.add_mutually_exclusive_group(required=True)
    source.add_argument("--videos", metavar="DIR_OR_LIST", help="directory of videos, or a file listing video "
                        "paths (embedded with the Localizer's extractor)")
    source.add_argument("--features", metavar="DIR", help="directory of precomputed <video_id>.npy features")
    build.add_argument("-o", "--output", required=True, metavar="INDEX", help="index directory (created or resumed)")
    build.add_argument("--model", metavar="DIR", help="exported model directory for --videos (`vcl-fast export`); "
                       "default: the embedded model")
    build.add_argument("--extractor", metavar="PATH", help="extractor only (torch backend: a weight directory)")
    build.add_argument("--backend", default="onnxruntime", choices=list(BACKENDS), help="default: onnxruntime")
    build.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default: cpu)")
    build.add_argument("--threads", type=int, default=None, help="intra-op threads (default: the backend's)")
    build.add_argument("--batch-size", type=int, default=16, help="frames decoded and embedded per step (default 16)")
    build.add_argument("--fps", type=float, default=1.0, help="frames sampled per second (with --videos; default 1)")
    build.add_argument("--exact-decoding", action="store_true", help="with --videos: decode videos at full size "
                       "(default: draft decoding, as `vcl-fast localize`; queries follow the library)")
    build.add_argument("--preset", choices=list(PRESETS), default=None,
                       help="frame index: exact (flat), ivf or ivfpq (default: keep the index's, exact for a new one)")
    build.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                       help="override an index preset field: nlist, nprobe, pq_bytes, train_size, seed (repeatable)")
    build.add_argument("--retrain", action="store_true", help="train the index anew (e.g. after the library grew a lot)")
    build.add_argument("--shard-size", type=int, default=64, help="videos per feature shard (default 64)")
    _add_ray_arguments(build)
    build.set_defaults(func=_cmd_index_build)
    info = index_sub.add_parser("info", help="summarise an index directory")
    info.add_argument("index", metavar="INDEX")
    info.set_defaults(func=_cmd_index_info)

    p = sub.add_parser(
        "search", help="find copies of query videos in an indexed reference library",
        description="Frame-level kNN of every query frame token, candidate references by voting, then batched "
        "localization of the top candidates. Times are in seconds.",
    )
    p.add_argument("queries", nargs="*", metavar="QUERY", help="query video, directory of videos, or list file")
    p.add_argument("--index", required=True, metavar="INDEX", help="index directory (vcl-fast index build)")
    p.add_argument("--query-features", metavar="DIR", help="precomputed query features (<video_id>.npy)")
    p.add_argument("--top-k", type=int, default=10, help="candidate references localized per query (default 10)")
    p.add_argument("--neighbours", type=int, default=10, help="nearest library vectors per query token (default 10)")
    p.add_argument("--min-similarity", type=float, default=0.0, help="neighbours at or below it do not vote (default 0)")
    p.add_argument("--nprobe", type=int, default=0, help="IVF lists scanned per query token (default: the index's)")
    add_localizer_arguments(p)
    p.add_argument("--json", metavar="OUT.json", help="write the results as JSON (with --pairs: VCSL prediction JSON)")
    p.add_argument("--vsc", metavar="OUT.csv", help="write the matches as a VSC22 match CSV")
    p.add_argument("--pairs", metavar="PAIRS.csv", help="localize these query_id,reference_id pairs instead of searching")
    _add_ray_arguments(p)
    p.set_defaults(func=_cmd_search)
