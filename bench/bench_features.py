"""Single-file feature store: build and open a 10,000-video store, read one video.

Run: ``python -m pytest bench/bench_features.py --benchmark-enable`` from the repository root.
Videos: 10,000 x 10 frames x 2 tokens x 256 dims float16 (~100 MB file).
"""
import numpy as np
import pytest

from vcl_fast.data.features import FeatureStore, VideoFeatures

NUM_VIDEOS, NUM_FRAMES, TOKENS, DIM = 10_000, 10, 2, 256


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("store") / "features.vclf"
    block = np.random.default_rng(0).standard_normal((NUM_FRAMES, TOKENS, DIM)).astype(np.float16)
    FeatureStore.write(path, (VideoFeatures.from_fps(f"video{i:05d}", block) for i in range(NUM_VIDEOS)))
    return path


def test_store_open(benchmark, store_path):
    store = benchmark(FeatureStore, store_path)
    assert len(store) == NUM_VIDEOS
    benchmark.extra_info.update(file_bytes=store_path.stat().st_size)


def test_store_read_one_video(benchmark, store_path):
    store = FeatureStore(store_path)
    video = benchmark(lambda: np.array(store["video05000"].features))
    assert video.shape == (NUM_FRAMES, TOKENS, DIM)
