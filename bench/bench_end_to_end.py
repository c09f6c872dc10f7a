"""End to end ``Localizer().localize(query_path, reference_path)`` with the embedded default model (ONNX
Runtime; decode, extract, similarity, detect; nothing cached), and the pieces that changed its speed.

Pairs: the two example videos of the repository, and the first ``VCL_FAST_BENCH_PAIRS`` (default 16) pairs of
a set built by ``bench/eval_reserved.py build`` when ``VCL_FAST_RESERVED_PAIRS`` names its directory (the
reserved sample videos are never written into the repository). Run from the repository root:

    VCL_FAST_RESERVED_PAIRS=/tmp/reserved_pairs nice -n 10 python -m pytest bench/bench_end_to_end.py \\
        --benchmark-enable --benchmark-columns=min,median,rounds

``test_localize_variants_interleaved`` compares, round by round, the default (decoding up to 16 frames ahead
in chunks of 4; extractor on the cores but one) with decoding and embedding in turn, with the extractor on all
cores, with chunks of 16 frames (the default before 2026-12-01), with one chunk decoded ahead (the default
before 2026-12-01, second change) and with exact decoding (every video at full size: the default before
2026-12-01, third change); ``extra_info`` holds seconds per
pair (wall and process CPU, warm-up round dropped) and the load average before and after, so runs on the
shared machine can be read in context.
"""
import csv
import functools
import os
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from vcl_fast import api  # noqa: E402
from vcl_fast.api import Localizer  # noqa: E402
from vcl_fast.data.features import VideoFeatures  # noqa: E402
from vcl_fast.runtime import ort_backend  # noqa: E402
from vcl_fast.runtime.preprocess import blank_images, preprocess_frames, preprocess_frames_numpy  # noqa: E402
from vcl_fast.video import iter_frames  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ROUNDS = 3  # timed rounds (after one warm-up round)


def _pair_sets() -> dict[str, list[tuple[Path, Path]]]:
    from vcl_fast.localize_commands import find_videos

    sets = {"examples": [(REPO / "examples" / "query.mp4", REPO / "examples" / "reference.mp4")]}
    reserved = os.environ.get("VCL_FAST_RESERVED_PAIRS")
    if reserved:
        with open(Path(reserved) / "pairs.csv", newline="") as handle:
            rows = list(csv.reader(handle))[1:int(os.environ.get("VCL_FAST_BENCH_PAIRS", "16")) + 1]
        paths = find_videos(Path(reserved) / "videos", {v for row in rows for v in row})
        sets["reserved"] = [(paths[q], paths[r]) for q, r in rows]
    return sets


PAIR_SETS = _pair_sets()


def sequential_localize(loc: Localizer, query: Path, reference: Path):
    """The path before decoding moved to a background thread: decode a chunk, embed it, in turn."""
    videos = []
    for path in (query, reference):
        parts = [(loc.extractor.embed(c.frames), c.timestamps)
                 for c in iter_frames(path, loc.fps, chunk_size=loc.extractor.batch_size)]
        videos.append(VideoFeatures(path.stem, np.concatenate([f for f, _ in parts]),
                                    np.concatenate([t for _, t in parts]), loc.fps))
    return loc.localize(*videos)


def one_chunk_ahead_localize(loc: Localizer, query: Path, reference: Path):
    """``loc.localize`` with the decoder at most one chunk ahead of the extractor."""
    saved, api.DECODE_AHEAD_FRAMES = api.DECODE_AHEAD_FRAMES, loc.extractor.batch_size
    try:
        return loc.localize(query, reference)
    finally:
        api.DECODE_AHEAD_FRAMES = saved


def _time_pairs(benchmark, loc: Localizer, pairs) -> None:
    """Benchmark ``loc.localize`` over ``pairs`` (one call = the whole set); seconds per pair and load in
    ``extra_info``."""
    load_before = os.getloadavg()
    benchmark.pedantic(lambda: [loc.localize(q, r) for q, r in pairs], rounds=ROUNDS, iterations=1, warmup_rounds=1)
    benchmark.extra_info.update({"pairs": len(pairs), "s_per_pair_min": benchmark.stats.stats.min / len(pairs),
                                 "load_before": load_before, "load_after": os.getloadavg()})


def _localizers() -> dict:
    """Variant name -> localize(query, reference); sessions are created here (extractor loaded up front)."""
    default, all_cores = Localizer(), Localizer(threads=len(os.sched_getaffinity(0)))
    chunks_16, exact = Localizer(batch_size=16), Localizer(exact_decoding=True)
    for loc in (default, all_cores, chunks_16, exact):
        loc.extractor
    return {"decode-ahead": default.localize,
            "decode-ahead exact-decoding": exact.localize,
            "sequential": lambda q, r: sequential_localize(default, q, r),
            "decode-ahead all-cores": all_cores.localize,
            "decode-ahead chunks-16": chunks_16.localize,
            "decode-ahead one-chunk": functools.partial(one_chunk_ahead_localize, default)}


@pytest.mark.parametrize("pair_set", list(PAIR_SETS))
def test_localize_pairs(benchmark, pair_set):
    """The default ``Localizer().localize`` over the set (seconds per call = per set)."""
    _time_pairs(benchmark, Localizer(), PAIR_SETS[pair_set])


@pytest.mark.parametrize("pair_set", list(PAIR_SETS))
def test_localize_variants_interleaved(benchmark, pair_set):
    """Each round runs every variant over the set in turn, so load changes hit them alike; ``extra_info``
    holds each variant's wall and process-CPU seconds per pair, per round."""
    variants = _localizers()
    pairs = PAIR_SETS[pair_set]
    wall = {name: [] for name in variants}
    cpu = {name: [] for name in variants}

    def one_round():
        for name, localize in variants.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            for query, reference in pairs:
                localize(query, reference)
            wall[name].append((time.perf_counter() - start) / len(pairs))
            cpu[name].append((time.process_time() - start_cpu) / len(pairs))

    load_before = os.getloadavg()
    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    benchmark.extra_info.update({
        "pairs": len(pairs), "load_before": load_before, "load_after": os.getloadavg(),
        "wall_s_per_pair": {n: v[1:] for n, v in wall.items()}, "cpu_s_per_pair": {n: v[1:] for n, v in cpu.items()}})


@pytest.mark.parametrize("spinning", [False, True], ids=["no-spin", "spin"])
def test_localize_ort_spinning(benchmark, monkeypatch, spinning):
    """Extractor and detector on all cores, with intra-op threads that sleep (vcl_fast's setting) or spin
    (onnxruntime's default). Not interleaved: spinning threads of one session burn CPU after its runs."""
    if spinning:
        monkeypatch.setattr(ort_backend, "SPINNING", ("session.intra_op.allow_spinning", "1"))
    loc = Localizer(threads=len(os.sched_getaffinity(0)))
    _time_pairs(benchmark, loc, PAIR_SETS["reserved" if "reserved" in PAIR_SETS else "examples"])


@pytest.mark.parametrize("impl", ["compiled", "numpy"])
def test_preprocess_chunk(benchmark, impl):
    """16 frames of 720x528 (the Megamind references) -> 112 px extractor input."""
    pytest.importorskip("vcl_fast._C")
    frames = np.random.default_rng(0).integers(0, 256, (16, 528, 720, 3), dtype=np.uint8)
    preprocess = preprocess_frames if impl == "compiled" else preprocess_frames_numpy
    benchmark(preprocess, frames, 112, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def test_blank_frame_check(benchmark):
    """The blank-frame check Extractor.embed runs on every chunk: 16 preprocessed 112 px frames (compare with
    test_preprocess_chunk and the extractor's ~5.5 ms per frame)."""
    images = np.random.default_rng(0).standard_normal((16, 3, 112, 112)).astype(np.float32)
    benchmark(blank_images, images, (0.5, 0.5, 0.5))


@pytest.fixture(scope="module")
def clip_720(tmp_path_factory):
    """4 s of 720x528 25 fps H.264 (the size of the Megamind references): a texture panning."""
    from vcl_fast.video import write_video

    texture = np.random.default_rng(0).integers(0, 256, (33, 90, 3), dtype=np.uint8).repeat(16, 0).repeat(16, 1)
    frames = np.stack([texture[:528, 4 * i:4 * i + 720] for i in range(100)])
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    write_video(path, frames, 25.0)
    return path


@pytest.mark.parametrize("impl", ["reused-context", "per-frame-to_ndarray"])
def test_decode_and_convert_every_frame(benchmark, clip_720, impl):
    """Decode 100 frames and convert each to RGB: one reused swscale context (``RgbConverter``, what the
    readers do) against ``frame.to_ndarray`` (a new context, with its threads, for every frame)."""
    import av

    from vcl_fast.video._pyav import RgbConverter

    def run():
        convert = RgbConverter(720, 528)
        with av.open(str(clip_720)) as container:
            for frame in container.decode(video=0):
                convert(frame) if impl == "reused-context" else frame.to_ndarray(format="rgb24")

    benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)
