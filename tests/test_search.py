"""Reference-library search: frame index, voting, library building (resumable), search, CLI."""
from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from vcl_fast.cli import main
from vcl_fast.config import ConfigError
from vcl_fast.data.features import VideoFeatures, save_video_features
from vcl_fast.data.formats import read_predictions, write_pairs
from vcl_fast.eval.localizers import align
from vcl_fast.ops import similarity_map_reference
from localize_fixtures import PLANTED, micro_model_dir, write_planted_pair  # noqa: F401 (micro_model_dir: fixture)
from vcl_fast.api import Localizer, frames_to_seconds
from vcl_fast.search import (
    ClassicalAligner, FeatureFileLoader, LocalizerEmbedder, LocalizerPairs, LocalizerSpec, MapLocalizer,
    ReferenceLibrary, Searcher, SearchSettings, VideoSource, build_index, index_config, list_feature_files,
    list_videos, localize_pairs, read_manifest, search_queries,
)
from vcl_fast.search import frame_index
from vcl_fast.search.retrieval import vote, vote_reference
from vcl_fast.search.synthetic import library_video, library_videos, planted_queries

faiss = pytest.importorskip("faiss")

NUM_REFERENCES = 40


def small_video(video_id: str, frames: int, seed: int, tokens: int = 2, dim: int = 16) -> VideoFeatures:
    rng = np.random.default_rng(seed)
    return VideoFeatures.from_fps(video_id, rng.standard_normal((frames, tokens, dim)).astype(np.float32))


@pytest.fixture(scope="module")
def references() -> dict[str, VideoFeatures]:
    return {video.video_id: video for video in library_videos(NUM_REFERENCES, seed=3, max_frames=150)}


@pytest.fixture(scope="module")
def feature_dir(tmp_path_factory, references) -> Path:
    directory = tmp_path_factory.mktemp("features") / "refs"
    for video in references.values():
        save_video_features(directory, video)
    return directory


@pytest.fixture(scope="module")
def exact_index(tmp_path_factory, feature_dir) -> Path:
    root = tmp_path_factory.mktemp("index") / "exact"
    build_index(root, list_feature_files(feature_dir), FeatureFileLoader(), preset="exact", shard_size=16)
    return root


@pytest.fixture(scope="module")
def planted(references):
    return planted_queries(6, references, NUM_REFERENCES, seed=5, max_frames=150)


def overlaps(box, match, min_iou: float = 0.3) -> bool:
    """IoU of the query intervals and of the reference intervals both at least ``min_iou`` (TN stretches
    the boxes of short copies along the reference axis, where the random walks are autocorrelated)."""
    def iou(a0, a1, b0, b1):
        return max(0.0, min(a1, b1) - max(a0, b0)) / (max(a1, b1) - min(a0, b0))
    return (iou(box[0], box[2], match.query_start, match.query_end) >= min_iou
            and iou(box[1], box[3], match.reference_start, match.reference_end) >= min_iou)


# ------------------------------------------------------------------------------------------ voting


@pytest.mark.parametrize(
    "frames, query_tokens, k, lengths, min_similarity",
    list(list(itertools.product([0, 1, 7], [1, 2], [1, 5], [(1,), (3, 1, 4), (2, 6, 1, 1, 5)], [0.0, 0.3]))),
)
def test_vote_matches_reference(frames, query_tokens, k, lengths, min_similarity):
    rng = np.random.default_rng(frames * 100 + k)
    library_tokens = 2
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    num_vectors = int(offsets[-1]) * library_tokens
    rows = frames * query_tokens
    ids = rng.integers(-1, num_vectors, size=(rows, k))  # -1: slot faiss could not fill
    sims = rng.uniform(-0.5, 1.0, size=(rows, k)).astype(np.float32)
    ids_view, sims_view = ids[:, ::-1], sims[:, ::-1]  # non-contiguous inputs
    got = vote(sims_view, ids_view, query_tokens, offsets, library_tokens, min_similarity)
    want = vote_reference(sims_view, ids_view, query_tokens, offsets, library_tokens, min_similarity)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_vote_counts_one_best_neighbour_per_query_frame_and_video():
    offsets = np.array([0, 2, 4])  # video 0: frames 0-1, video 1: frames 2-3; one token per frame
    ids = np.array([[0, 1, 2], [1, 3, -1]])
    sims = np.array([[0.9, 0.8, 0.5], [0.7, 0.6, 0.0]], dtype=np.float32)
    videos, votes, frames = vote(sims, ids, 1, offsets, 1)
    np.testing.assert_array_equal(videos, [0, 1])
    np.testing.assert_allclose(votes, [0.9 + 0.7, 0.5 + 0.6], rtol=1e-6)
    np.testing.assert_array_equal(frames, [2, 2])


def test_vote_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="one shape"):
        vote(np.zeros((2, 3)), np.zeros((2, 2), dtype=np.int64), 1, np.array([0, 1]), 1)


# ------------------------------------------------------------------------------------- frame index


@pytest.mark.parametrize("num_vectors, num_rows, k", [(1, 1, 1), (1, 3, 4), (50, 1, 5), (200, 25, 10), (200, 7, 3)])
def test_exact_search_matches_reference(num_vectors, num_rows, k):
    rng = np.random.default_rng(num_vectors + k)
    vectors = frame_index.unit_rows(rng.standard_normal((num_vectors, 1, 32)))
    rows = frame_index.unit_rows(rng.standard_normal((num_rows, 1, 32)))
    index = frame_index.new_index(index_config("exact"), 32, num_vectors)
    index.add(vectors)
    sims, ids = frame_index.search(index, rows, k)
    want_sims, want_ids = frame_index.search_reference(vectors, rows, k)
    np.testing.assert_allclose(sims, want_sims, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(ids, want_ids)  # random data: no ties


def test_ivf_scanning_every_list_is_exact():
    rng = np.random.default_rng(0)
    vectors = frame_index.unit_rows(rng.standard_normal((2000, 1, 32)))
    rows = vectors[:20] + 0.01
    exact = frame_index.new_index(index_config("exact"), 32, len(vectors))
    ivf = frame_index.new_index(index_config("ivf", {"nlist": 16}), 32, len(vectors))
    frame_index.train(ivf, vectors)
    for index in (exact, ivf):
        index.add(vectors)
    np.testing.assert_array_equal(frame_index.search(ivf, rows, 5, nprobe=16)[1], frame_index.search(exact, rows, 5)[1])


@pytest.mark.parametrize("name, overrides", [("exact", {}), ("ivf", {"nlist": 8}), ("ivfpq", {"nlist": 8, "pq_bytes": 2})])
def test_shard_encoding_merges_to_the_single_index(name, overrides):
    videos = [small_video(f"v{i}", 320 + 17 * i, seed=i, dim=8) for i in range(20)]  # 10,000+ vectors for PQ
    num_vectors = sum(v.num_frames * v.num_tokens for v in videos)
    config = index_config(name, overrides)
    trained = frame_index.new_index(config, 8, num_vectors)
    frame_index.train(trained, np.concatenate([frame_index.unit_rows(v.features) for v in videos]))
    empty = frame_index.serialize(trained)
    merged = frame_index.deserialize(empty)
    for part in (videos[:7], videos[7:8], videos[8:]):
        frame_index.merge_encoded(merged, frame_index.encode_shard(empty, part))
    whole = frame_index.deserialize(frame_index.encode_shard(empty, videos))
    assert merged.ntotal == num_vectors
    np.testing.assert_array_equal(frame_index.serialize(merged), frame_index.serialize(whole))


def test_index_config_presets_and_errors():
    assert index_config("ivf", ["nlist=64", "nprobe=4"]) == frame_index.IndexConfig("ivf", nlist=64, nprobe=4)
    assert frame_index.resolved_lists(index_config("ivf"), 3_300_000) == 2048
    assert frame_index.training_size(index_config("ivfpq"), 20_000) == 9984
    assert frame_index.training_size(index_config("ivf"), 1000) == 1000
    assert frame_index.bytes_per_vector(index_config("ivfpq"), 256) == 40
    with pytest.raises(ConfigError, match="unknown preset"):
        index_config("hnsw")
    with pytest.raises(ConfigError, match="nlist"):
        index_config("ivf", ["nlist=many"])
    with pytest.raises(ValueError, match="kind"):
        frame_index.IndexConfig("lsh")
    with pytest.raises(ValueError, match="at least 9984 vectors"):
        frame_index.factory_string(index_config("ivfpq", {"nlist": 4}), 256, 5000)
    with pytest.raises(ValueError, match="must divide"):
        frame_index.factory_string(index_config("ivfpq", {"pq_bytes": 24}), 256, 50_000)
    with pytest.raises(ValueError, match="nlist=64"):
        frame_index.factory_string(index_config("ivf", {"nlist": 64}), 256, 10)


# ------------------------------------------------------------------------------------------ library


def test_library_holds_the_features_and_indexes_every_token(exact_index, references):
    library = ReferenceLibrary(exact_index)
    assert library.video_ids == tuple(sorted(references))
    assert [len(shard["video_ids"]) for shard in library.manifest.shards] == [16, 16, 8]
    for video_id, video in references.items():
        np.testing.assert_array_equal(library[video_id].features, video.features)
        np.testing.assert_array_equal(library[video_id].timestamps, video.timestamps)
    index = library.load_index()
    assert index.ntotal == library.num_vectors == sum(v.num_frames * 2 for v in references.values())
    ids = np.array([0, 1, 5, library.num_vectors - 1])
    np.testing.assert_array_equal(index.reconstruct_batch(ids), library.vectors(ids))
    last = library.video_ids[-1]
    assert library.video_ids[library.videos_of_vectors(ids)[-1]] == last
    with pytest.raises(KeyError, match="not in the library"):
        library["nope"]


class CrashingLoader(FeatureFileLoader):
    """Loads features but raises RuntimeError (a crash, not an unreadable input) on call ``crash_at``."""

    def __init__(self, crash_at: int | None = None, unreadable: tuple[str, ...] = ()):
        self.calls, self.crash_at, self.unreadable = 0, crash_at, unreadable

    def __call__(self, path):
        self.calls += 1
        if self.calls == self.crash_at:
            raise RuntimeError("worker died")
        if Path(path).stem in self.unreadable:
            raise ValueError(f"{path}: corrupt file")
        return super().__call__(path)


def test_build_resumes_after_a_crash_and_matches_a_clean_build(tmp_path, feature_dir, exact_index):
    sources = list_feature_files(feature_dir)
    root = tmp_path / "resumed"
    crashing = CrashingLoader(crash_at=20)
    with pytest.raises(RuntimeError, match="worker died"):
        build_index(root, sources, crashing, preset="exact", shard_size=16)
    assert len(read_manifest(root).video_ids) == 16  # the finished shard survived, nothing else was written
    assert read_manifest(root).index is None
    resumed = CrashingLoader()
    build_index(root, sources, resumed, shard_size=16)
    assert resumed.calls == NUM_REFERENCES - 16
    assert read_manifest(root) == read_manifest(exact_index)
    for name in ["frames.faiss", *(s["file"] for s in read_manifest(root).shards)]:
        assert (root / name).read_bytes() == (exact_index / name).read_bytes()
    again = CrashingLoader()
    build_index(root, sources, again)
    assert again.calls == 0


def test_unreadable_videos_are_skipped_then_retried(tmp_path, feature_dir):
    sources = list_feature_files(feature_dir)
    root = tmp_path / "skips"
    manifest = build_index(root, sources, CrashingLoader(unreadable=("ref000003",)), shard_size=16)
    assert list(manifest.skipped) == ["ref000003"] and "corrupt" in manifest.skipped["ref000003"]
    assert "ref000003" not in manifest.video_ids and len(manifest.video_ids) == NUM_REFERENCES - 1
    retry = CrashingLoader()
    manifest = build_index(root, sources, retry, shard_size=16)
    assert retry.calls == 1 and manifest.skipped == {} and "ref000003" in manifest.video_ids
    assert manifest.index["num_vectors"] == ReferenceLibrary(root).num_vectors


def test_a_skipped_video_left_out_of_the_next_build_is_no_longer_reported(tmp_path, feature_dir):
    sources = list_feature_files(feature_dir)
    root = tmp_path / "skips"
    build_index(root, sources, CrashingLoader(unreadable=("ref000003", "ref000005")), shard_size=16)
    listed = [source for source in sources if source.video_id != "ref000003"]
    manifest = build_index(root, listed, CrashingLoader(unreadable=("ref000005",)), shard_size=16)
    assert manifest.skipped.keys() == {"ref000005"} and read_manifest(root).skipped.keys() == {"ref000005"}
    manifest = build_index(root, listed[:4], CrashingLoader(), shard_size=16)  # nothing to add
    assert manifest.skipped == {} and read_manifest(root).skipped == {}


def test_adding_videos_appends_to_the_trained_index(tmp_path, feature_dir, references, planted):
    sources = list_feature_files(feature_dir)
    root = tmp_path / "grow"
    build_index(root, sources[:30], FeatureFileLoader(), preset="ivf", overrides={"nlist": 16}, shard_size=16)
    trained = (root / "frames.trained.faiss").read_bytes()
    manifest = build_index(root, sources, FeatureFileLoader(), shard_size=16)
    assert (root / "frames.trained.faiss").read_bytes() == trained  # appended, not retrained
    assert manifest.index["config"]["kind"] == "ivf" and len(manifest.video_ids) == NUM_REFERENCES
    assert manifest.index["num_vectors"] == sum(v.num_frames * 2 for v in references.values())
    late = [p for p in planted if p.reference_id in {s.video_id for s in sources[30:]}]
    searcher = Searcher(root, settings=SearchSettings(top_k=3, nprobe=16))
    for p in late:
        assert searcher.search(p.query).candidates[0].reference_id == p.reference_id
    build_index(root, sources, FeatureFileLoader(), retrain=True)
    assert read_manifest(root).index["num_vectors"] == manifest.index["num_vectors"]


def test_build_rejects_bad_input(tmp_path, feature_dir):
    sources = list_feature_files(feature_dir)
    with pytest.raises(ValueError, match="names two inputs"):
        build_index(tmp_path / "dup", [sources[0], VideoSource(sources[0].video_id, "other.npy")], FeatureFileLoader())
    with pytest.raises(ValueError, match="shard_size"):
        build_index(tmp_path / "zero", sources, FeatureFileLoader(), shard_size=0)
    root = tmp_path / "mixed"
    build_index(root, sources[:2], FeatureFileLoader())
    other = tmp_path / "other"
    save_video_features(other, small_video("wide", 5, seed=0, dim=32))
    with pytest.raises(ValueError, match="differ from the library"):
        build_index(root, list_feature_files(other), FeatureFileLoader())

    class OtherModel(FeatureFileLoader):
        def describe(self):
            return {"kind": "rtr", "weights": "/elsewhere", "fps": 1.0}

    with pytest.raises(ValueError, match="another index directory"):
        build_index(root, sources, OtherModel())
    with pytest.raises(FileNotFoundError, match="not an index directory"):
        ReferenceLibrary(tmp_path / "missing")


def test_list_videos_from_a_directory_and_a_list_file(tmp_path):
    (tmp_path / "videos").mkdir()
    for name in ("b.mp4", "a.MKV", "notes.txt"):
        (tmp_path / "videos" / name).write_bytes(b"")
    assert [s.video_id for s in list_videos(tmp_path / "videos")] == ["a", "b"]
    listing = tmp_path / "list.txt"
    listing.write_text("# library\nvideos/b.mp4\n\nvideos/a.MKV\n")
    assert list_videos(listing) == [VideoSource("b", str(tmp_path / "videos/b.mp4")),
                                    VideoSource("a", str(tmp_path / "videos/a.MKV"))]
    listing.write_text("videos/c.mp4\n")
    with pytest.raises(FileNotFoundError, match="missing videos"):
        list_videos(listing)
    with pytest.raises(ValueError, match="no video files"):
        list_videos(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"nowhere.mp4: no such file or directory \(a video, a folder"):
        list_videos(tmp_path / "nowhere.mp4")


# ------------------------------------------------------------------------------------- localization


@pytest.mark.parametrize("method", ["tn", "dp"])
def test_map_localizer_matches_the_per_pair_reference(method, references, planted):
    query = planted[0].query
    refs = [references[r] for r in ("ref000000", planted[0].reference_id, "ref000007")]
    got = MapLocalizer(ClassicalAligner(method))(query, refs)
    for boxes, ref in zip(got, refs):
        sim = similarity_map_reference(query.features, ref.features)
        want = align(sim, method).astype(np.float64)
        want[:, [0, 2]] = frames_to_seconds(want[:, [0, 2]], query)
        want[:, [1, 3]] = frames_to_seconds(want[:, [1, 3]], ref)
        np.testing.assert_allclose(boxes, want, rtol=1e-4, atol=1e-3)
    assert MapLocalizer()(query, []) == []
    with pytest.raises(TypeError, match="TNParams"):
        ClassicalAligner("dp", ClassicalAligner("tn").params)


# ------------------------------------------------------------------------------------------ search


def check_results(planted, results):
    for p, result in zip(planted, results):
        assert result.query_id == p.query.video_id
        assert result.candidates[0].reference_id == p.reference_id
        assert [c.votes for c in result.candidates] == sorted((c.votes for c in result.candidates), reverse=True)
        assert overlaps(p.box, result.matches[0]) and result.matches[0].reference_id == p.reference_id
        assert [m.score for m in result.matches] == sorted((m.score for m in result.matches), reverse=True)


@pytest.mark.parametrize("name, overrides", [("exact", {}), ("ivf", {"nlist": 32})])
def test_search_finds_planted_copies(tmp_path, feature_dir, planted, exact_index, name, overrides):
    root = exact_index
    if name != "exact":
        root = tmp_path / name
        build_index(root, list_feature_files(feature_dir), FeatureFileLoader(), preset=name, overrides=overrides)
    check_results(planted, search_queries(root, [p.query for p in planted], settings=SearchSettings(top_k=3)))


def test_ivfpq_search_finds_planted_copies(tmp_path):
    # 64-d features keep PQ training quick; 80 videos of 30-150 frames, 2 tokens: > 9,984 training vectors
    videos = {v.video_id: v for v in library_videos(80, seed=4, dim=64, max_frames=150)}
    for video in videos.values():
        save_video_features(tmp_path / "refs", video)
    manifest = build_index(tmp_path / "pq", list_feature_files(tmp_path / "refs"), FeatureFileLoader(),
                           preset="ivfpq", overrides={"nlist": 16, "pq_bytes": 4})
    assert manifest.index["factory"] == "IVF16,PQ4" and manifest.index["training_vectors"] == 9984
    planted = planted_queries(6, videos, 80, seed=6, max_frames=150)
    check_results(planted, search_queries(tmp_path / "pq", [p.query for p in planted], settings=SearchSettings(top_k=3)))


def test_searcher_edge_cases(exact_index, references):
    searcher = Searcher(exact_index, settings=SearchSettings(top_k=2))
    empty = VideoFeatures.from_fps("empty", np.zeros((0, 2, 256), np.float16))
    assert searcher.search(empty).candidates == () and searcher.search(empty).matches == ()
    single = VideoFeatures.from_fps("one", references["ref000004"].features[10:11], fps=1.0)
    assert searcher.retrieve(single)[0].reference_id == "ref000004"
    assert len(searcher.retrieve(single)) <= 2
    one_token = VideoFeatures.from_fps("cls", references["ref000004"].features[:20, 1:].astype(np.float32))
    assert searcher.search(one_token).candidates[0].reference_id == "ref000004"
    with pytest.raises(ValueError, match="128-d"):
        searcher.search(small_video("narrow", 4, seed=0, dim=128))
    with pytest.raises(TypeError, match="VideoFeatures"):
        searcher.search(np.zeros((3, 2, 256)))
    with pytest.raises(ValueError, match="top_k"):
        SearchSettings(top_k=0)


def test_localize_pairs_returns_every_listed_pair(exact_index, planted):
    pairs = [(p.query.video_id, p.reference_id) for p in planted[:3]] + [(planted[0].query.video_id, "ref000001")]
    found = localize_pairs(exact_index, [p.query for p in planted], pairs)
    assert list(found) == pairs
    for p in planted[:3]:
        box = found[(p.query.video_id, p.reference_id)][0]
        assert overlaps(p.box, type("M", (), dict(zip(
            ["query_start", "reference_start", "query_end", "reference_end"], box[:4])))())
    with pytest.raises(ValueError, match="have no features"):
        localize_pairs(exact_index, [], pairs)
    with pytest.raises(KeyError, match="not in the library"):
        localize_pairs(exact_index, [planted[0].query], [(planted[0].query.video_id, "nope")])


# --------------------------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def query_dir(tmp_path_factory, planted) -> Path:
    directory = tmp_path_factory.mktemp("queries") / "q"
    for p in planted:
        save_video_features(directory, p.query)
    return directory


def test_cli_build_info_search(tmp_path, feature_dir, query_dir, planted, capsys):
    index = tmp_path / "cli.index"
    assert main(["index", "build", "--features", str(feature_dir), "-o", str(index), "--preset", "ivf",
                 "--param", "nlist=8", "--shard-size", "10"]) == 0
    assert main(["index", "info", str(index)]) == 0
    out = capsys.readouterr().out
    assert f"videos: {NUM_REFERENCES}" in out and "IVF8,Flat" in out and "covers 4 of 4 shards" in out
    json_out, vsc_out = tmp_path / "results.json", tmp_path / "matches.csv"
    assert main(["search", "--index", str(index), "--query-features", str(query_dir), "--top-k", "2",
                 "--method", "tn", "--json", str(json_out), "--vsc", str(vsc_out)]) == 0
    results = json.loads(json_out.read_text())
    assert [r["query_id"] for r in results] == sorted(p.query.video_id for p in planted)
    by_query = {p.query.video_id: p for p in planted}
    for r in results:
        assert r["candidates"][0]["reference_id"] == by_query[r["query_id"]].reference_id
    predictions = read_predictions(vsc_out)
    for query_id, p in by_query.items():
        assert (query_id, p.reference_id) in predictions


def test_cli_pairs_mode_writes_vcsl_predictions(tmp_path, exact_index, query_dir, planted):
    pairs = tmp_path / "pairs.csv"
    write_pairs(pairs, [(p.query.video_id, p.reference_id) for p in planted])
    out = tmp_path / "pred.json"
    assert main(["search", "--index", str(exact_index), "--query-features", str(query_dir), "--pairs", str(pairs),
                 "--json", str(out), "--method", "tn", "--param", "min_sim=0.3"]) == 0
    predictions = read_predictions(out)
    assert set(predictions) == {(p.query.video_id, p.reference_id) for p in planted}


@pytest.mark.parametrize("argv, message", [
    (["search", "--index", "{tmp}/none", "--query-features", "{queries}", "--json", "{tmp}/out.json"], "not an index"),
    (["search", "--index", "{index}", "--method", "tn", "--json", "{tmp}/out.json"], "no queries"),
    (["search", "--index", "{index}", "{tmp}/video.mp4", "--method", "tn", "--json", "{tmp}/out.json"],
     "precomputed features"),
    (["search", "--index", "{index}", "--query-features", "{queries}", "--method", "tn", "--pairs", "{tmp}/pairs.csv"],
     "--json"),
    (["search", "--index", "{index}", "--query-features", "{queries}", "--method", "tn", "--param", "nope=1",
      "--json", "{tmp}/out.json"], "unknown TNParams"),
    (["search", "--index", "{index}", "--query-features", "{queries}", "--model", "{tmp}/nowhere",
      "--json", "{tmp}/out.json"], "nowhere"),
    (["index", "build", "--videos", "{tmp}", "--model", "{tmp}/nowhere", "-o", "{tmp}/out.json"], "nowhere"),
])
def test_cli_errors_are_one_line_and_write_nothing(tmp_path, exact_index, query_dir, capsys, argv, message):
    (tmp_path / "video.mp4").write_bytes(b"")
    write_pairs(tmp_path / "pairs.csv", [("query000000", "ref000000")])
    argv = [a.format(tmp=tmp_path, index=exact_index, queries=query_dir) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out.json").exists()


def test_cli_ray_without_ray_says_what_to_install(tmp_path, feature_dir, monkeypatch, capsys):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else find_spec(name, *a))
    assert main(["index", "build", "--features", str(feature_dir), "-o", str(tmp_path / "idx"), "--ray"]) == 2
    assert 'pip install "vcl_fast[ray]"' in capsys.readouterr().err
    assert not (tmp_path / "idx").exists()


def test_cli_build_too_small_for_ivfpq_keeps_the_shards(tmp_path, query_dir, capsys):
    argv = ["index", "build", "--features", str(query_dir), "-o", str(tmp_path / "idx"), "--preset", "ivfpq"]
    assert main(argv) == 2
    assert "the ivfpq index needs at least 9984 vectors" in capsys.readouterr().err.strip().splitlines()[-1]
    manifest = read_manifest(tmp_path / "idx")
    assert len(manifest.video_ids) == 6 and manifest.index is None  # resumable with another preset
    assert main([*argv[:-1], "exact"]) == 0 and read_manifest(tmp_path / "idx").index["factory"] == "Flat"


# -------------------------------------------------------------------------------------- embedders


TN_PARAMS = ["--param", "top_k=1", "--param", "max_step=2", "--param", "min_sim=0.9"]  # micro features


def test_index_and_search_videos_with_the_localizer(tmp_path, micro_model_dir):
    query, reference = write_planted_pair(tmp_path / "pair")
    (tmp_path / "refs").mkdir()
    reference.rename(tmp_path / "refs" / "reference.mp4")
    index = tmp_path / "lib.index"
    assert main(["index", "build", "--videos", str(tmp_path / "refs"), "--model", str(micro_model_dir),
                 "--threads", "1", "-o", str(index)]) == 0
    library = ReferenceLibrary(index)
    assert library.video_ids == ("reference",) and library.manifest.embedder == {
        "kind": "localizer", "backend": "onnxruntime", "extractor": str(micro_model_dir.resolve()), "fps": 1.0,
        "exact_decoding": False}
    want = Localizer(micro_model_dir, method="tn", threads=1).features(tmp_path / "refs" / "reference.mp4")
    np.testing.assert_array_equal(library["reference"].features, want.features)
    np.testing.assert_array_equal(library["reference"].timestamps, want.timestamps)

    out = tmp_path / "found.json"
    assert main(["search", str(query), "--index", str(index), "--method", "tn", *TN_PARAMS, "--json", str(out)]) == 0
    found = json.loads(out.read_text())[0]
    assert found["candidates"][0]["reference_id"] == "reference"
    m = found["matches"][0]
    np.testing.assert_allclose([m["query_start"], m["query_end"], m["reference_start"], m["reference_end"]], PLANTED,
                               atol=1.0)
    assert main(["search", str(query), "--index", str(index), "--model", str(micro_model_dir), "--threads", "1",
                 "--param", "conf_threshold=0.0", "--json", str(out)]) == 0  # yolox through the Localizer
    assert json.loads(out.read_text())[0]["candidates"][0]["reference_id"] == "reference"


def test_library_embedder_keeps_the_decoding_of_the_library():
    """Queries are embedded as the library was: a library described before draft decoding decodes exactly."""
    from vcl_fast.search.embed import embedder_from_description

    old = {"kind": "localizer", "backend": "onnxruntime", "extractor": None, "fps": 1.0}
    assert embedder_from_description(old, threads=1).spec.exact_decoding is True
    for exact in (False, True):
        described = LocalizerEmbedder(LocalizerSpec(exact_decoding=exact)).describe()
        assert embedder_from_description(described).spec.exact_decoding is exact


def test_localizer_pairs_are_the_localizers_boxes(micro_model_dir, references, planted):
    spec = LocalizerSpec(str(micro_model_dir), str(micro_model_dir), method_params=(("conf_threshold", 0.0),),
                         threads=1)
    query = VideoFeatures.from_fps("q", planted[0].query.features[:, :, :16].astype(np.float32))
    refs = [VideoFeatures.from_fps(r, references[r].features[:, :, :16].astype(np.float32))
            for r in ("ref000000", planted[0].reference_id)]
    got = LocalizerPairs(spec)(query, refs)
    want = [r.boxes() for r in spec.build().localize_many(query, refs)]
    assert len(got) == 2 and any(len(b) for b in got)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    assert LocalizerPairs(spec)(query, []) == []
    embedder = LocalizerEmbedder(spec)
    assert embedder.spec.detector is None and embedder.spec.method == "tn"  # embedding loads no detector


def test_synthetic_library_is_nested_and_planted_boxes_hold_the_copy(references):
    assert library_video(7, seed=3, max_frames=150).features.tobytes() == references["ref000007"].features.tobytes()
    p = planted_queries(1, references, NUM_REFERENCES, seed=9, max_frames=150)[0]
    q0, r0, q1, r1 = map(int, p.box)
    sim = similarity_map_reference(p.query.features, references[p.reference_id].features)
    diagonal = sim[np.arange(q0, q1), np.arange(r0, r1)]
    assert diagonal.mean() > 0.7 and sim.mean() < 0.3
    assert dataclasses.asdict(p.query)["video_id"] == "query000000"
