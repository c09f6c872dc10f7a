"""``vcl-fast generate-pairs``: self-supervised copied video pairs written as detector training data.

Pipeline: videos sampled at 1 fps (video files and frame folders, or pseudo-videos made from a photo
folder) -> features from a trained extractor (torch runtime backend, preprocessed as at inference) ->
``vcl_fast.data.pair_generation.generate_copy_pairs`` (vanilla, Transitivity Propagation and negative
pairs; inserted clips get the extractor's copy edits with one parameter draw per clip, then a video-style
edit: ``vcl_fast.data.video_edits.clip_augmenter``) -> one similarity map per pair
(``vcl_fast.ops.similarity_map``, max cosine over token pairs).

On-disk format of the output directory (written to a hidden staging directory beside it and renamed into
place only when complete, so a failed run leaves nothing). It is a map dataset
(``vcl_fast.data.map_dataset``: ``vcl-fast train detector --data OUT`` reads it) plus an index:

- ``NNNNNN.npz``, one per pair, numbered in pair order: ``sim`` float32 (Q, R) similarity map, rows = query
  frames, columns = reference frames, raw cosine values; ``boxes`` float32 (N, 4) ground truth
  ``[q_start, r_start, q_end, r_end]`` in frames at 1 fps (= seconds), end exclusive; N = 0 for negatives.
- ``pairs.json``: ``{"format": "vcl_fast.generated_pairs", "format_version": 1, "seed", "extractor"
  (the weights directory used), "config" (the PairGenerationConfig), "videos": {id: {"frames", "source"}},
  "copies": [{"copy_id", "background_id", "background_length", "segments": [{"source_id", "source_start",
  "source_end", "speed", "copy_start"}]}], "pairs": [{"file", "query", "reference", "kind", "boxes"}]}``
  where ``kind`` is ``vanilla`` (copy video vs its source), ``transitivity`` (two copy videos sharing a
  source interval) or ``negative`` (no copy), and ``boxes`` repeats the sample's boxes.

Same inputs, extractor and seed give the same files.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

import numpy as np

from vcl_fast.atomic import atomic_directory, check_new_directory
from vcl_fast.video.records import VIDEO_SUFFIXES

FORMAT = "vcl_fast.generated_pairs"
FORMAT_VERSION = 1
INDEX_FILE = "pairs.json"


@dataclasses.dataclass(frozen=True)
class PseudoVideoSettings:
    """Pseudo-videos from a photo folder, ``frames`` long and ``short_side`` pixels high (16:9). Each video
    shows its own ``photos_per_video`` photos, each in ONE scene (a run of shots of ``shot_frames`` frames
    over that photo; scene lengths split ``frames`` at random). No photo is in two videos, so videos share no
    content the ground truth does not know of, and no scene comes back within a video: a copied segment is
    then the only place of its source video that matches it (a photo shown again and again would make every
    return of it match as well as the ground truth does)."""

    frames: int = 60
    photos_per_video: int = 4
    shot_frames: tuple[int, int] = (3, 12)
    short_side: int = 144


def load_videos(source: str | os.PathLike, settings: PseudoVideoSettings = PseudoVideoSettings(), seed: int = 0
                ) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Videos of ``source`` sampled at 1 fps: ``({id: uint8 (L, H, W, 3)}, {id: what it was made from})``.

    A folder holding video files and/or frame folders gives one video per file or folder (id = its name
    without suffix, frames scaled to ``settings.short_side``); a folder holding only images is a photo
    folder and gives pseudo-videos (``vcl_fast.data.pseudo_video``) whose photos are assigned by ``seed``.
    """
    from vcl_fast.data.images import IMAGE_SUFFIXES

    root = Path(source)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder of videos or photos")
    entries = sorted(p for p in root.iterdir() if not p.name.startswith("."))
    videos = [p for p in entries if p.is_dir() or p.suffix.lower() in VIDEO_SUFFIXES]
    if videos:
        from vcl_fast.video import read_frames

        return ({p.stem: read_frames(p, 1.0, settings.short_side).frames for p in videos},
                {p.stem: p.name for p in videos})
    photos = [p for p in entries if p.suffix.lower() in IMAGE_SUFFIXES]
    if not photos:
        raise ValueError(f"{root} holds no videos ({', '.join(VIDEO_SUFFIXES)}), frame folders or photos")
    return pseudo_videos(photos, settings, seed)


def pseudo_videos(photos: list[Path], settings: PseudoVideoSettings, seed: int
                  ) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Pseudo-videos ``pv000, pv001, ...`` from disjoint groups of ``photos`` (see :func:`load_videos`)."""
    from vcl_fast.data.images import load_image
    from vcl_fast.data.pseudo_video import PseudoVideoConfig, make_pseudo_video

    count = len(photos) // settings.photos_per_video
    if settings.frames < settings.photos_per_video:
        raise ValueError(f"{settings.frames} frames cannot show {settings.photos_per_video} photos; "
                         "lower --photos-per-video or raise --video-frames")
    if count < 2:
        raise ValueError(f"{len(photos)} photos make fewer than 2 pseudo-videos of {settings.photos_per_video} "
                         "photos each; add photos or lower --photos-per-video")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(photos))
    size = (round(settings.short_side * 16 / 9), settings.short_side)
    config = PseudoVideoConfig(shot_frames=settings.shot_frames)
    videos, origins = {}, {}
    for index in range(count):
        group = [photos[i] for i in order[index * settings.photos_per_video:(index + 1) * settings.photos_per_video]]
        cuts = np.sort(rng.choice(np.arange(1, settings.frames), size=len(group) - 1, replace=False))
        lengths = np.diff(np.concatenate([[0], cuts, [settings.frames]]))
        scenes = [make_pseudo_video([np.asarray(load_image(p, 4 * size[0]))], int(n), size,
                                    seed=int(rng.integers(2**31)), config=config).frames
                  for p, n in zip(group, lengths)]
        video_id = f"pv{index:03d}"
        videos[video_id] = np.concatenate(scenes)
        origins[video_id] = "pseudo-video of " + ", ".join(p.name for p in group)
    return videos, origins


def extractor_embedder(model_dir: str | os.PathLike, batch_size: int = 64):
    """``Embedder`` (uint8 (N, H, W, 3) frames -> float32 (N, T, D) features) of an extractor weight directory,
    run by the torch runtime backend with the same preprocessing as ``vcl_fast.Localizer``."""
    from vcl_fast.runtime import get_backend

    return get_backend("torch").load_extractor(model_dir, batch_size=batch_size).embed


def write_generated_pairs(out_dir: str | os.PathLike, generated, origins: dict[str, str], config, seed: int,
                          extractor: str) -> Path:
    """Write a ``GeneratedSet`` as the on-disk format of the module docstring, atomically; returns the
    directory. ``out_dir`` must not exist or be empty."""
    from vcl_fast.data.map_dataset import write_map_sample
    from vcl_fast.ops import similarity_map

    with atomic_directory(out_dir) as staging:
        entries = []
        for index, pair in enumerate(generated.pairs):
            name = f"{index:06d}.npz"
            sim = similarity_map(generated.features[pair.query_id], generated.features[pair.reference_id])
            write_map_sample(staging / name, sim, pair.boxes)
            entries.append({"file": name, "query": pair.query_id, "reference": pair.reference_id,
                            "kind": pair.kind, "boxes": pair.boxes.tolist()})
        index = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "seed": seed, "extractor": extractor,
            "config": dataclasses.asdict(config),
            "videos": {vid: {"frames": int(len(generated.features[vid])), "source": origins[vid]} for vid in origins},
            "copies": [dataclasses.asdict(copy) for copy in generated.copies],
            "pairs": entries,
        }
        with open(staging / INDEX_FILE, "w") as handle:
            json.dump(index, handle, indent=1)
    return Path(out_dir)


def read_pair_index(directory: str | os.PathLike) -> dict:
    """The ``pairs.json`` of a generated-pair directory, checked for its format."""
    path = Path(directory) / INDEX_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no pair index; {directory} was not written by vcl-fast generate-pairs")
    index = json.loads(path.read_text())
    if index.get("format") != FORMAT or index.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: not a {FORMAT} version {FORMAT_VERSION} index")
    return index


def _cmd_generate_pairs(args: argparse.Namespace) -> int:
    from vcl_fast.data.pair_generation import PairGenerationConfig, generate_copy_pairs
    from vcl_fast.data.video_edits import clip_augmenter

    if args.num_copies < 1:
        raise ValueError(f"--num-copies must be >= 1, got {args.num_copies}")
    out = check_new_directory(args.output)
    settings = PseudoVideoSettings(frames=args.video_frames, photos_per_video=args.photos_per_video,
                                   short_side=args.short_side)
    videos, origins = load_videos(args.videos, settings, args.seed)
    embed = extractor_embedder(args.model, args.batch_size)
    config = PairGenerationConfig(
        num_copies=args.num_copies, negatives_per_copy=args.negatives_per_copy, transitivity=not args.no_transitivity,
        max_transitivity_pairs=args.num_copies if args.max_transitivity_pairs is None else args.max_transitivity_pairs)
    print(f"{len(videos)} videos ({sum(map(len, videos.values()))} frames); making {config.num_copies} copies",
          file=sys.stderr)
    generated = generate_copy_pairs(videos, embed, clip_augmenter(list(videos.values())), config, args.seed)
    write_generated_pairs(out, generated, origins, config, args.seed, str(args.model))
    kinds = {kind: sum(p.kind == kind for p in generated.pairs) for kind in ("vanilla", "transitivity", "negative")}
    print(f"{out}: {len(generated.pairs)} pairs (" + ", ".join(f"{n} {k}" for k, n in kinds.items()) + ")")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate-pairs", help="self-supervised copied video pairs -> similarity-map training data",
        description="Make copy videos from VIDEOS (video files / frame folders, or pseudo-videos from a photo "
        "folder), embed them with an extractor and write one similarity map + ground-truth boxes per pair "
        "(vanilla, transitivity and negative pairs) for `vcl-fast train detector --data OUT`.")
    p.add_argument("--videos", required=True, metavar="DIR", help="folder of videos / frame folders, or of photos")
    p.add_argument("--model", required=True, metavar="EXTRACTOR_DIR", help="extractor weights (train extractor)")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="new output folder")
    p.add_argument("--num-copies", type=int, default=200, help="copy videos to make (default 200)")
    p.add_argument("--no-transitivity", action="store_true", help="vanilla and negative pairs only")
    p.add_argument("--max-transitivity-pairs", type=int,
                   help="keep at most this many transitivity pairs, drawn by the seed (default: --num-copies)")
    p.add_argument("--negatives-per-copy", type=int, default=1, help="pairs without a copy per copy video (default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--video-frames", type=int, default=60, help="pseudo-video length in frames at 1 fps (default 60)")
    p.add_argument("--photos-per-video", type=int, default=4,
                   help="photos per pseudo-video, one scene each (default 4)")
    p.add_argument("--short-side", type=int, default=144, help="frame height in pixels (default 144)")
    p.add_argument("--batch-size", type=int, default=64, help="frames embedded per step (default 64)")
    p.set_defaults(func=_cmd_generate_pairs)
