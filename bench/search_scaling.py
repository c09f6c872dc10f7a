"""Search throughput against synthetic reference libraries of growing size, and on 1 vs 2 Ray workers.

Run from the repository root (defaults take ~2-3 minutes on the 2-core build machine):

    nice -n 10 python bench/search_scaling.py                       # 100 and 1,000 videos, exact + ivf
    nice -n 10 python bench/search_scaling.py --sizes 10000 --presets ivf,ivfpq --queries 20
    nice -n 10 python bench/search_scaling.py --ray-workers 1,2 --sizes 1000 --presets ivf
    nice -n 10 python bench/search_scaling.py --extract 8 --ray-workers 0,1,2   # extraction stage, 0 = no Ray

Library: ``vcl_fast.search.synthetic`` random-walk features, 30-300 frames (uniform) at 1 fps, T=2 tokens,
D=256, float16 (video ``i`` is the same in every library). Queries: 30-300-frame random walks holding one
noisy copy (cosine ~0.8) of a random segment (>= 10 frames) of a random library video. Each (size, preset)
runs in a fresh subprocess, so ``ru_maxrss`` (peak resident memory of the process: features, index, numpy,
faiss) is its own; ``tracemalloc`` gives the peak of Python-tracked allocations (numpy included, faiss's
C++ heap not) while searching. Reported: build time (shards + training + encoding), index bytes per vector
on disk, queries/s, the retrieval (frame kNN + voting) / localization (similarity maps + TN) time split,
candidate recall (planted reference ranked first / within top-k) and segment hit rate (the top match of the
planted reference has IoU >= 0.5 with the planted box on both axes). One OpenMP thread per process
(``OMP_NUM_THREADS=1``): the machine is shared, and OpenMP threads spin-waiting under contention made
2-thread runs several times slower than 1-thread runs here.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOP_K = 10


def _iou(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0)) / max(1e-9, max(a1, b1) - min(a0, b0))


def _quality(planted, results) -> dict:
    top1 = topk = hits = 0
    for p, result in zip(planted, results):
        ids = [c.reference_id for c in result.candidates]
        top1 += bool(ids) and ids[0] == p.reference_id
        topk += p.reference_id in ids
        mine = [m for m in result.matches if m.reference_id == p.reference_id]
        hits += bool(mine) and min(_iou(p.box[0], p.box[2], mine[0].query_start, mine[0].query_end),
                                   _iou(p.box[1], p.box[3], mine[0].reference_start, mine[0].reference_end)) >= 0.5
    n = len(planted)
    return {"recall_at_1": top1 / n, f"recall_at_{TOP_K}": topk / n, "segment_hit_rate": hits / n}


def run_one(size: int, preset: str, num_queries: int, ray_workers: int) -> dict:
    """Build a library of ``size`` videos, search ``num_queries`` planted queries; figures as a dict."""
    from vcl_fast.search import RayOptions, Searcher, SearchSettings, build_index
    from vcl_fast.search.distributed import RayWorkers
    from vcl_fast.search.library import ReferenceLibrary
    from vcl_fast.search.synthetic import SyntheticEmbedder, planted_queries

    embedder = SyntheticEmbedder()
    settings = SearchSettings(top_k=TOP_K)
    with tempfile.TemporaryDirectory(prefix="vcl_search_bench_") as tmp:
        root = Path(tmp) / "index"
        ray = RayOptions(num_workers=ray_workers) if ray_workers else None
        start = time.perf_counter()
        manifest = build_index(root, embedder.sources(size), embedder, preset=preset, ray=ray)
        build_s = time.perf_counter() - start
        rss_after_build = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        library = ReferenceLibrary(root)
        planted = planted_queries(num_queries, library, size, seed=1)
        queries = [p.query for p in planted]
        row = {
            "videos": size, "preset": preset, "factory": manifest.index["factory"], "queries": num_queries,
            "frames": int(library.frame_offsets[-1]), "vectors": manifest.index["num_vectors"],
            "training_vectors": manifest.index["training_vectors"], "build_s": build_s,
            "index_bytes_per_vector": manifest.index["file_bytes"] / manifest.index["num_vectors"],
            "index_file_mb": manifest.index["file_bytes"] / 2**20,
        }
        if ray_workers:
            with RayWorkers(ray, index_root=str(root), settings=settings) as workers:
                list(workers.map("search", [(queries[:1],)] * ray_workers))  # open the index on every actor
                start = time.perf_counter()
                results = [r for part in workers.map("search", [([q],) for q in queries]) for r in part]
                search_s = time.perf_counter() - start
            row.update(ray_workers=ray_workers, search_s=search_s, queries_per_s=num_queries / search_s)
        else:
            searcher = Searcher(library, settings=settings)
            searcher.search(queries[0])  # warm-up: page in the index
            retrieval_s = localization_s = 0.0
            results = []
            for query in queries:
                t0 = time.perf_counter()
                candidates = searcher.retrieve(query)
                t1 = time.perf_counter()
                results.append(searcher.localize_candidates(query, candidates))
                localization_s += time.perf_counter() - t1
                retrieval_s += t1 - t0
            tracemalloc.start()
            for query in queries[:10]:
                searcher.search(query)
            python_peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            search_s = retrieval_s + localization_s
            row.update(search_s=search_s, queries_per_s=num_queries / search_s, retrieval_s=retrieval_s,
                       localization_s=localization_s, retrieval_share=retrieval_s / search_s,
                       tracemalloc_peak_mb=python_peak / 2**20)
        row.update(_quality(planted, results), rss_after_build_mb=rss_after_build / 1024,
                   peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        return row


def run_extract(num_videos: int, seconds: int, ray_workers: int) -> dict:
    """Time extracting and indexing ``num_videos`` generated clips of ``seconds`` s (160x120, 5 fps source,
    sampled at 1 fps) with an RTR extractor (tiny_cpu preset, random weights) through the Localizer's torch
    backend, one thread per worker. ``startup_s``: starting Ray
    and the workers and loading the model on each; ``build_s``: the stages themselves on warm workers."""
    import numpy as np

    from vcl_fast.models import build_extractor
    from vcl_fast.models.weights import save_extractor
    from vcl_fast.search import LocalizerEmbedder, LocalizerSpec, RayOptions, list_videos
    from vcl_fast.search.library import update_index, write_shards
    from vcl_fast.search.stages import open_workers
    from vcl_fast.video import write_video

    with tempfile.TemporaryDirectory(prefix="vcl_extract_bench_") as tmp:
        weights = save_extractor(build_extractor("tiny_cpu"), Path(tmp) / "rtr")
        rng = np.random.default_rng(0)
        for i in range(num_videos):
            base = rng.integers(0, 256, size=(120, 320, 3), dtype=np.uint8)
            frames = np.stack([np.roll(base, 3 * t, axis=1)[:, :160] for t in range(5 * seconds)])
            write_video(Path(tmp) / "videos" / f"clip{i:03d}.mp4", frames, fps=5.0)
        sources = list_videos(Path(tmp) / "videos")
        embedder = LocalizerEmbedder(LocalizerSpec(str(weights), backend="torch", threads=1))
        start = time.perf_counter()
        with open_workers(RayOptions(num_workers=ray_workers) if ray_workers else None, embedder=embedder) as pool:
            list(pool.map("embed_shard", [(sources[:1],)] * max(1, ray_workers)))  # load the model everywhere
            startup_s = time.perf_counter() - start
            start = time.perf_counter()
            manifest = write_shards(Path(tmp) / "index", sources, embedder.describe(), pool.map, shard_size=2)
            update_index(Path(tmp) / "index", None, pool.map)
            build_s = time.perf_counter() - start
        frames = sum(n for shard in manifest.shards for n in shard["frames"])
        return {"videos": num_videos, "preset": "exact (extract)", "ray_workers": ray_workers, "frames": frames,
                "startup_s": startup_s, "build_s": build_s, "frames_per_s": frames / build_s}


def _table(rows: list[dict]) -> str:
    columns = [("videos", "{}"), ("preset", "{}"), ("ray_workers", "{}"), ("frames", "{}"), ("vectors", "{}"),
               ("startup_s", "{:.1f}"), ("build_s", "{:.1f}"), ("frames_per_s", "{:.1f}"), ("index_bytes_per_vector", "{:.0f}"), ("queries_per_s", "{:.2f}"),
               ("retrieval_share", "{:.0%}"), ("recall_at_1", "{:.0%}"), (f"recall_at_{TOP_K}", "{:.0%}"),
               ("segment_hit_rate", "{:.0%}"), ("tracemalloc_peak_mb", "{:.0f}"), ("peak_rss_mb", "{:.0f}")]
    columns = [(name, fmt) for name, fmt in columns if any(name in row for row in rows)]
    lines = ["| " + " | ".join(name for name, _ in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(fmt.format(row[name]) if name in row else "" for name, fmt in columns) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000", help="library sizes (videos), comma-separated")
    parser.add_argument("--presets", default="exact,ivf", help="index presets, comma-separated")
    parser.add_argument("--queries", type=int, default=20, help="planted queries per run (default 20)")
    parser.add_argument("--ray-workers", default="", help="e.g. 1,2: search on that many local Ray actors instead")
    parser.add_argument("--extract", type=int, default=0, metavar="N",
                        help="instead: time extraction + indexing of N generated 60 s clips (tiny_cpu RTR)")
    parser.add_argument("--json", help="also write the rows as JSON")
    parser.add_argument("--one", nargs=4, metavar=("SIZE", "PRESET", "QUERIES", "WORKERS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        size, preset, queries, workers = args.one
        row = run_extract(int(size), 60, int(workers)) if preset == "extract" else run_one(
            int(size), preset, int(queries), int(workers))
        print(json.dumps(row))
        return 0
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    workers = [int(w) for w in args.ray_workers.split(",") if w] or [0]
    rows = []
    sizes = [args.extract] if args.extract else [int(s) for s in args.sizes.split(",")]
    for size in sizes:
        for preset in ["extract"] if args.extract else args.presets.split(","):
            for count in workers:
                command = [sys.executable, __file__, "--one", str(size), preset, str(args.queries), str(count)]
                done = subprocess.run(command, env=env, capture_output=True, text=True)
                if done.returncode:
                    print(done.stderr, file=sys.stderr)
                    return done.returncode
                rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(json.dumps(rows[-1]), file=sys.stderr)
    load = Path("/proc/loadavg").read_text().split()[:3]
    print(f"load average (1/5/15 min) at the end: {' '.join(load)} on {os.cpu_count()} cores")
    print(_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
