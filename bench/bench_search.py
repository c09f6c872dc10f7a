"""Reference-library search: retrieval (frame kNN + voting) and full search per query, 100 and 1,000 videos.

Run: ``OMP_NUM_THREADS=1 nice -n 10 python -m pytest bench/bench_search.py --benchmark-enable`` from the
repository root (about 2-3 minutes here). Library and queries as in bench/search_scaling.py (synthetic
random-walk features, 30-300 frames, T=2, D=256, float16; planted copies); each of 3 rounds searches the
same 3 queries, so queries/s = 3 / round time. bench/search_scaling.py adds build times, memory, recall and
the 10,000-video and Ray figures.
"""
import shutil

import pytest

from vcl_fast.search import Searcher, SearchSettings, build_index
from vcl_fast.search.synthetic import SyntheticEmbedder, planted_queries

pytest.importorskip("faiss")
QUERIES, ROUNDS = 3, 3


@pytest.fixture(scope="module")
def libraries(tmp_path_factory):
    """Index directories by (size, preset); the features of a size are extracted once, then copied."""
    built = {}

    def library(size: int, preset: str):
        if (size, preset) not in built:
            embedder = SyntheticEmbedder()
            root = tmp_path_factory.mktemp("search") / f"{size}-{preset}"
            features = next((path for (n, _), path in built.items() if n == size), None)
            if features is not None:
                shutil.copytree(features, root)
            build_index(root, embedder.sources(size), embedder, preset=preset)
            built[size, preset] = root
        return built[size, preset]

    return library


@pytest.fixture(scope="module", params=[(100, "exact"), (1000, "exact"), (1000, "ivf")],
                ids=lambda p: f"{p[0]}-{p[1]}")
def searcher(request, libraries):
    size, preset = request.param
    searcher = Searcher(libraries(size, preset), settings=SearchSettings(top_k=10))
    queries = [p.query for p in planted_queries(QUERIES, searcher.library, size, seed=1)]
    searcher.search(queries[0])
    return searcher, queries


def test_retrieval(benchmark, searcher):
    searcher, queries = searcher
    candidates = benchmark.pedantic(lambda: [searcher.retrieve(q) for q in queries], rounds=ROUNDS)
    assert all(candidates)
    benchmark.extra_info.update(videos=len(searcher.library), vectors=searcher.index.ntotal, queries=QUERIES)


def test_search(benchmark, searcher):
    searcher, queries = searcher
    results = benchmark.pedantic(lambda: [searcher.search(q) for q in queries], rounds=ROUNDS)
    assert all(r.matches for r in results)
    benchmark.extra_info.update(videos=len(searcher.library), vectors=searcher.index.ntotal, queries=QUERIES)
