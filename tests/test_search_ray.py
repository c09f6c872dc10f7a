"""The Ray path of the search stages gives exactly the single-machine results (local Ray, 2 CPUs)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from localize_fixtures import micro_model_dir, write_planted_pair  # noqa: F401 (micro_model_dir: fixture)
from vcl_fast.cli import main
from vcl_fast.data.features import save_video_features
from vcl_fast.search import (
    FeatureFileLoader, LocalizerEmbedder, LocalizerSpec, RayOptions, SearchSettings, build_index, embed_queries,
    list_feature_files, list_videos, localize_pairs, read_manifest, search_queries,
)
from vcl_fast.search.synthetic import library_videos, planted_queries

ray = pytest.importorskip("ray")
pytest.importorskip("faiss")

NUM_REFERENCES = 24
TWO_WORKERS = RayOptions(num_workers=2)


@pytest.fixture(scope="module")
def local_ray():
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)  # never a running cluster
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def features(tmp_path_factory):
    root = tmp_path_factory.mktemp("ray")
    references = {v.video_id: v for v in library_videos(NUM_REFERENCES, seed=11, max_frames=100)}
    for video in references.values():
        save_video_features(root / "refs", video)
    planted = planted_queries(5, references, NUM_REFERENCES, seed=12, max_frames=100)
    for p in planted:
        save_video_features(root / "queries", p.query)
    return root, planted


def index_files(root) -> dict[str, bytes]:
    manifest = read_manifest(root)
    names = ["manifest.json", "frames.faiss", "frames.trained.faiss", *(s["file"] for s in manifest.shards)]
    return {name: (root / name).read_bytes() for name in names}


def test_ray_build_search_and_pairs_are_identical_to_one_machine(local_ray, features, tmp_path):
    root, planted = features
    # 5 shards encoded by 2 actors and merged, through the command line
    build_index(tmp_path / "local", list_feature_files(root / "refs"), FeatureFileLoader(), preset="ivf",
                overrides={"nlist": 8}, shard_size=5)
    assert main(["index", "build", "--features", str(root / "refs"), "-o", str(tmp_path / "ray"), "--preset", "ivf",
                 "--param", "nlist=8", "--shard-size", "5", "--ray", "--workers", "2"]) == 0
    assert index_files(tmp_path / "ray") == index_files(tmp_path / "local")

    query_sources = list_feature_files(root / "queries")
    queries = embed_queries(query_sources, FeatureFileLoader())
    ray_queries = embed_queries(query_sources, FeatureFileLoader(), ray=TWO_WORKERS)
    assert [q.features.tobytes() for q in ray_queries] == [q.features.tobytes() for q in queries]

    settings = SearchSettings(top_k=4)
    local = search_queries(tmp_path / "local", queries, settings=settings)
    assert [r.candidates[0].reference_id for r in local] == [p.reference_id for p in planted]
    out = tmp_path / "ray.json"
    assert main(["search", "--index", str(tmp_path / "ray"), "--query-features", str(root / "queries"), "--top-k", "4",
                 "--method", "tn", "--json", str(out), "--ray", "--workers", "2"]) == 0
    assert json.loads(out.read_text()) == json.loads(json.dumps([r.to_dict() for r in local]))

    pairs = [(p.query.video_id, p.reference_id) for p in planted] + [(planted[0].query.video_id, "ref000000")]
    local_boxes = localize_pairs(tmp_path / "local", queries, pairs)
    ray_boxes = localize_pairs(tmp_path / "ray", queries, pairs, ray=TWO_WORKERS)
    assert list(ray_boxes) == pairs
    for pair in pairs:
        np.testing.assert_array_equal(ray_boxes[pair], local_boxes[pair])


def test_extraction_from_videos_on_ray_is_identical(local_ray, micro_model_dir, tmp_path):
    write_planted_pair(tmp_path / "videos")  # two videos, one per shard: each actor embeds one
    embedder = LocalizerEmbedder(LocalizerSpec(str(micro_model_dir), threads=1))
    sources = list_videos(tmp_path / "videos")
    build_index(tmp_path / "local", sources, embedder, shard_size=1)
    build_index(tmp_path / "ray", sources, embedder, shard_size=1, ray=TWO_WORKERS)
    assert index_files(tmp_path / "ray") == index_files(tmp_path / "local")
    queries = embed_queries(sources, embedder)
    assert search_queries(tmp_path / "ray", queries, ray=TWO_WORKERS) == search_queries(tmp_path / "local", queries)
