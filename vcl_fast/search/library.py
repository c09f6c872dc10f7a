"""A reference library on disk: features in shards, a manifest, and the faiss index over the frame tokens.

Layout of an index directory ``INDEX/``:

- ``manifest.json``: what the library holds (format in :class:`Manifest`): the embedder description, the
  feature layout (tokens T, dim D, dtype), the shards in library order with their video ids and frame
  counts, the videos that could not be read and why, and the frame index's description;
- ``shards/shard-NNNNN.feat``: one :class:`~vcl_fast.data.features.FeatureStore` per shard (``shard_size``
  videos, in video-id order within a build);
- ``frames.trained.faiss``: the trained, empty faiss index (what new shards are encoded with);
- ``frames.faiss``: the faiss index over every token of every frame (:mod:`vcl_fast.search.frame_index`).

Crash safety: every file is written atomically, a shard's store before the manifest that lists it, the index
before the manifest entry that describes it. A crash loses at most the shard being extracted; a re-run
(same command) skips every video already in a shard, retries the unreadable ones, and finishes the index:
it appends the new shards' vectors to the existing index when the preset is unchanged (``retrain`` trains
anew). Videos are only ever added; library order = shard order, then store order.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from vcl_fast.atomic import atomic_save, atomic_write
from vcl_fast.data.features import FeatureStore, VideoFeatures
from vcl_fast.search import frame_index
from vcl_fast.search.frame_index import IndexConfig

MANIFEST = "manifest.json"
INDEX_FILE = "frames.faiss"
TRAINED_FILE = "frames.trained.faiss"
FORMAT = "vcl_fast reference index"
VERSION = 1

# One unit of work for a pool of workers: ``map(method, calls)`` -> the results of
# ``worker.method(*call)`` in call order (see vcl_fast.search.workers).
MapCalls = Callable[[str, Iterable[tuple]], Iterator[Any]]


@dataclasses.dataclass(frozen=True)
class VideoSource:
    """A video to add: its id in the library and the path its embedder reads (video file or feature file)."""

    video_id: str
    path: str


@dataclasses.dataclass
class Manifest:
    """Contents of ``manifest.json``.

    embedder: the embedder's ``describe()`` dict (all shards come from one embedder);
    layout: ``{"num_tokens", "dim", "dtype"}`` of the features, None before the first shard;
    shards: ``[{"file": "shards/shard-00000.feat", "video_ids": [...], "frames": [...]}, ...]`` in library
    order (``frames``: each video's number of frames);
    skipped: ``{video_id: reason}`` of the last build's videos that could not be read (retried by the next build
    that lists them);
    index: ``{"file", "config", "factory", "shards", "num_vectors", "file_bytes", "training_vectors"}`` of
    the frame index (``shards``: the shard files it covers), or None.
    """

    embedder: dict
    layout: dict | None = None
    shards: list[dict] = dataclasses.field(default_factory=list)
    skipped: dict[str, str] = dataclasses.field(default_factory=dict)
    index: dict | None = None

    @property
    def video_ids(self) -> list[str]:
        return [video_id for shard in self.shards for video_id in shard["video_ids"]]

    def to_dict(self) -> dict:
        return {"format": FORMAT, "version": VERSION, **dataclasses.asdict(self)}


def read_manifest(root: str | os.PathLike) -> Manifest:
    """The manifest of index directory ``root``; OSError when there is none, ValueError when it is not ours."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{root}: not an index directory (no {MANIFEST}); build one with vcl-fast index build")
    try:
        raw = json.loads(path.read_text())
    except ValueError as exc:
        raise ValueError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT or raw.get("version") != VERSION:
        raise ValueError(f"{path}: not a {FORMAT} manifest of version {VERSION}")
    names = {field.name for field in dataclasses.fields(Manifest)}
    return Manifest(**{key: value for key, value in raw.items() if key in names})


def write_manifest(root: str | os.PathLike, manifest: Manifest) -> None:
    with atomic_write(Path(root) / MANIFEST) as handle:
        json.dump(manifest.to_dict(), handle, indent=1)
        handle.write("\n")


def _layout(video: VideoFeatures) -> dict:
    return {"num_tokens": video.num_tokens, "dim": video.dim, "dtype": video.features.dtype.str}


def _shard_file(number: int) -> str:
    return f"shards/shard-{number:05d}.feat"


def _next_shard_number(manifest: Manifest) -> int:
    numbers = [int(Path(shard["file"]).stem.rpartition("-")[2]) for shard in manifest.shards]
    return max(numbers, default=-1) + 1


def write_shards(root: str | os.PathLike, sources: Sequence[VideoSource], embedder: dict, map_calls: MapCalls,
                 shard_size: int = 64, log: Callable[[str], None] = lambda message: None) -> Manifest:
    """Embed the ``sources`` not yet in the library at ``root`` into new shards (resumable; see module doc).

    embedder: the description of the embedder the workers use (must match the library's). ``map_calls``
    runs ``embed_shard(sources)`` on the workers. Returns the updated manifest.
    """
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    root = Path(root)
    seen: dict[str, str] = {}
    for source in sources:
        if source.video_id in seen:
            raise ValueError(f"video id {source.video_id!r} names two inputs: {seen[source.video_id]} and {source.path}")
        seen[source.video_id] = source.path
    manifest = read_manifest(root) if (root / MANIFEST).exists() else Manifest(embedder=embedder)
    if manifest.embedder != embedder:
        raise ValueError(
            f"{root} holds features from {manifest.embedder}, this build makes {embedder}; "
            "use another index directory (features of different embedders cannot be searched together)"
        )
    listed = {video_id: reason for video_id, reason in manifest.skipped.items() if video_id in seen}
    if listed != manifest.skipped:  # unreadable in an earlier build and not given to this one: not this build's
        manifest.skipped = listed
        write_manifest(root, manifest)
    done = set(manifest.video_ids)
    pending = sorted((s for s in sources if s.video_id not in done), key=lambda s: s.video_id)
    first = _next_shard_number(manifest)
    jobs = [tuple(pending[start:start + shard_size]) for start in range(0, len(pending), shard_size)]
    log(f"{len(done)} videos already in {root}, {len(pending)} to add in {len(jobs)} shards")
    results = map_calls("embed_shard", ((job,) for job in jobs))
    for number, job, (videos, failures) in zip(range(first, first + len(jobs)), jobs, results):
        for video in videos:
            manifest.layout = manifest.layout or _layout(video)
            if _layout(video) != manifest.layout:
                raise ValueError(f"video {video.video_id}: features {_layout(video)} differ from the library's "
                                 f"{manifest.layout}")
        if videos:
            FeatureStore.write(root / _shard_file(number), videos)
            manifest.shards.append({"file": _shard_file(number), "video_ids": [v.video_id for v in videos],
                                    "frames": [v.num_frames for v in videos]})
        for source in job:
            manifest.skipped.pop(source.video_id, None)
        manifest.skipped.update(failures)
        write_manifest(root, manifest)
        log(f"shard {number}: {len(videos)} videos" + (f", {len(failures)} unreadable" if failures else ""))
    return manifest


class ReferenceLibrary:
    """An index directory opened for reading: the videos' features (memory-mapped) and the frame index.

    ``library[video_id]`` -> :class:`VideoFeatures`; ``video_ids`` in library order; ``frame_offsets``
    ``(V + 1,)`` int64: video ``v`` owns library frames ``frame_offsets[v]:frame_offsets[v + 1]`` and
    frame ``f``'s tokens are vectors ``f * num_tokens ... (f + 1) * num_tokens - 1`` of the index.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.manifest = read_manifest(self.root)
        if not self.manifest.shards:
            raise ValueError(f"{self.root}: the library holds no videos yet")
        self._stores = [FeatureStore(self.root / shard["file"]) for shard in self.manifest.shards]
        self.video_ids: tuple[str, ...] = tuple(self.manifest.video_ids)
        self._store_of = {video_id: store for store in self._stores for video_id in store.video_ids}
        if any(list(store.video_ids) != shard["video_ids"] for store, shard in zip(self._stores, self.manifest.shards)):
            raise ValueError(f"{self.root}: the shard files do not hold the videos {MANIFEST} lists")
        lengths = [n for shard in self.manifest.shards for n in shard["frames"]]
        self.frame_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        layout = self.manifest.layout
        if layout is None:  # written with the first shard
            raise ValueError(f"{self.root}: {MANIFEST} lists shards but no feature layout; build the index again")
        self.num_tokens, self.dim, self.dtype = layout["num_tokens"], layout["dim"], np.dtype(layout["dtype"])

    def __len__(self) -> int:
        return len(self.video_ids)

    def __contains__(self, video_id: object) -> bool:
        return video_id in self._store_of

    def __getitem__(self, video_id: str) -> VideoFeatures:
        store = self._store_of.get(video_id)
        if store is None:
            raise KeyError(f"reference {video_id!r} is not in the library {self.root} ({len(self)} videos)")
        return store[video_id]

    @property
    def num_vectors(self) -> int:
        return int(self.frame_offsets[-1]) * self.num_tokens

    def videos_of_vectors(self, ids: np.ndarray) -> np.ndarray:
        """Library video index of each vector id (ids must be valid, i.e. >= 0)."""
        return np.searchsorted(self.frame_offsets, ids // self.num_tokens, side="right") - 1

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """Unit float32 rows ``(N, D)`` of the sorted vector ids ``ids`` (what the index holds for them)."""
        frames, tokens = np.divmod(ids, self.num_tokens)
        videos = self.videos_of_vectors(ids)
        rows = np.empty((len(ids), self.dim), dtype=np.float32)
        bounds = np.searchsorted(videos, np.arange(len(self) + 1))
        for v in np.unique(videos):
            part = slice(bounds[v], bounds[v + 1])
            local = frames[part] - self.frame_offsets[v]
            rows[part] = self[self.video_ids[v]].features[local, tokens[part]]
        return frame_index.unit_rows(rows[:, None, :])

    def load_index(self, mmap: bool = True):
        """The faiss frame index (memory-mapped by default, so workers on one machine share its pages)."""
        entry = self.manifest.index
        shards = [shard["file"] for shard in self.manifest.shards]
        if entry is None or entry["shards"] != shards:
            covered = 0 if entry is None else len(entry["shards"])
            raise ValueError(f"{self.root}: the frame index covers {covered} of {len(shards)} shards; "
                             "run the same vcl-fast index build command again to finish it")
        return frame_index.read_index(self.root / entry["file"], mmap)


def _training_sample(library: ReferenceLibrary, size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ids = np.sort(rng.choice(library.num_vectors, size=size, replace=False))
    return library.vectors(ids)


def update_index(root: str | os.PathLike, config: IndexConfig | None, map_calls: MapCalls, retrain: bool = False,
                 log: Callable[[str], None] = lambda message: None) -> Manifest:
    """Bring the frame index of ``root`` up to date with its shards (see module doc).

    config: the index to build; None keeps the existing index's config (exact for a new one). ``map_calls``
    runs ``encode_shard(empty_index, shard_path)`` on the workers; shard indexes are merged in library order.
    """
    root = Path(root)
    library = ReferenceLibrary(root)
    manifest, entry = library.manifest, library.manifest.index
    if config is None:
        config = IndexConfig(**entry["config"]) if entry else frame_index.PRESETS["exact"]
    shards = [shard["file"] for shard in manifest.shards]
    if entry and not retrain and entry["config"] == dataclasses.asdict(config):
        factory, training_vectors = entry["factory"], entry["training_vectors"]
        empty = np.fromfile(root / TRAINED_FILE, dtype=np.uint8)
        index = frame_index.read_index(root / INDEX_FILE)
        if index.ntotal != entry["num_vectors"] or entry["shards"] != shards[:len(entry["shards"])]:
            index, done = frame_index.deserialize(empty), 0  # the index file and the manifest disagree: redo
        else:
            done = len(entry["shards"])
    else:
        factory = frame_index.factory_string(config, library.dim, library.num_vectors)
        training_vectors = frame_index.training_size(config, library.num_vectors)
        index = frame_index.new_index(config, library.dim, library.num_vectors)
        if training_vectors:
            log(f"training {factory} on {training_vectors} of {library.num_vectors} vectors")
            frame_index.train(index, _training_sample(library, training_vectors, config.seed))
        empty = frame_index.serialize(index)
        atomic_save(root / TRAINED_FILE, empty.tofile)
        index, done = frame_index.deserialize(empty), 0  # the class faiss reads back (IndexFlat -> IndexFlatIP)
    if done == len(shards):
        log(f"frame index up to date ({index.ntotal} vectors)")
        return manifest
    log(f"encoding {len(shards) - done} shards into {factory}")
    for encoded in map_calls("encode_shard", ((empty, str(root / file)) for file in shards[done:])):
        frame_index.merge_encoded(index, encoded)
    frame_index.write_index(index, root / INDEX_FILE)
    manifest.index = {
        "file": INDEX_FILE, "config": dataclasses.asdict(config), "factory": factory, "shards": shards,
        "num_vectors": int(index.ntotal), "file_bytes": (root / INDEX_FILE).stat().st_size,
        "training_vectors": training_vectors,
    }
    write_manifest(root, manifest)
    log(f"frame index: {index.ntotal} vectors, {manifest.index['file_bytes'] / max(1, index.ntotal):.1f} "
        "bytes per vector on disk")
    return manifest
