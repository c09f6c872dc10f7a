"""vcl_fast.ops.LazySimilarityMap: blocks equal to the whole map bit for bit; the localizer reads it by tiles."""
import tracemalloc

import numpy as np
import pytest

from vcl_fast.detect.localizer import DetectionSettings, localize_maps
from vcl_fast.ops import LazySimilarityMap, similarity_map


def features(rng, frames, tokens, dim, dtype=np.float32):
    return rng.standard_normal((frames, tokens, dim)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("q_len, r_len, tokens", [(0, 7, 2), (1, 1, 1), (1, 40, 2), (53, 29, 3), (130, 257, 2)])
def test_blocks_equal_the_whole_map(dtype, q_len, r_len, tokens):
    rng = np.random.default_rng(q_len * 1000 + r_len)
    q, r = features(rng, q_len, tokens, 24, dtype), features(rng, r_len, tokens, 24, dtype)
    lazy, whole = LazySimilarityMap(q, r), similarity_map(q, r)
    assert lazy.shape == whole.shape and lazy.ndim == 2
    np.testing.assert_array_equal(np.asarray(lazy), whole)
    for rows, cols in [(slice(None), slice(None)), (slice(0, 1), slice(3, 20)), (slice(5, 50), slice(-9, None)),
                       (slice(10, 5), slice(0, 4)), (slice(0, 1000), slice(2, 2))]:
        block = lazy[rows, cols]
        assert block.dtype == np.float32
        np.testing.assert_array_equal(block, whole[rows, cols])
    np.testing.assert_array_equal(np.asarray(lazy.T), whole.T)


def test_non_contiguous_features_and_bad_input():
    rng = np.random.default_rng(1)
    q = features(rng, 30, 4, 16)[:, ::2]  # every other token: a non-contiguous view
    r = features(rng, 20, 2, 32)[:, :, ::2]
    np.testing.assert_array_equal(LazySimilarityMap(q, r)[3:9, 0:20], similarity_map(q, r)[3:9])
    with pytest.raises(TypeError, match="numpy array"):
        LazySimilarityMap(q[0], r)
    with pytest.raises(ValueError, match="dims differ"):
        LazySimilarityMap(q, features(rng, 5, 2, 8))
    lazy = LazySimilarityMap(q, r)
    with pytest.raises(TypeError, match="two slices"):
        lazy[3]
    with pytest.raises(ValueError, match="step 1"):
        lazy[::2, :]
    with pytest.raises(ValueError, match="NaN"):
        LazySimilarityMap(np.full((2, 1, 16), np.nan, np.float32), r)[0:2, 0:2]


def planted_features(rng, length, copy, dim=64):
    """(query, reference) features (length, 1, dim): random frames, and one copied stretch of a static scene
    (one frame plus noise), which makes a bright block in the map."""
    q, r = features(rng, length, 1, dim), features(rng, length, 1, dim)
    start_q, start_r, n = copy
    scene = features(rng, 1, 1, dim)
    q[start_q:start_q + n] = scene + 0.1 * features(rng, n, 1, dim)
    r[start_r:start_r + n] = scene + 0.1 * features(rng, n, 1, dim)
    return q, r


def diagonal_runner(images):
    """Fake detector: a box around the pixels above 0.8 of each rendered tile (see test_yolox_localize)."""
    from test_yolox_localize import ANCHORS, encode

    size = images.shape[-1]
    raw = np.full((len(images), len(ANCHORS), 6), -12.0, np.float32)
    for b, image in enumerate(images):
        ys, xs = np.nonzero(image[0] > 0.8)
        if len(ys):
            x1, x2, y1, y2 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
            index, values = encode((x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, 2), max(y2 - y1, 2))
            raw[b, index] = values
    assert size == 64
    return raw


@pytest.mark.parametrize("fusion", [-1.0, 0.5])
def test_localize_maps_on_a_lazy_map_equals_the_whole_map(fusion):
    rng = np.random.default_rng(3)
    q, r = planted_features(rng, 700, (120, 400, 90))
    settings = DetectionSettings(input_size=64, chunk_length=150, batch_size=3, min_similarity=0.9,
                                 extent_similarity=0.9, transpose_fusion_iou=fusion)
    expected = localize_maps([similarity_map(q, r)], diagonal_runner, settings)
    found = localize_maps([LazySimilarityMap(q, r)], diagonal_runner, settings)
    assert len(expected[0]) >= 1
    np.testing.assert_array_equal(found[0], expected[0])


def test_a_lazy_map_is_read_in_bounded_memory():
    rng = np.random.default_rng(4)
    q, r = planted_features(rng, 3000, (100, 2000, 60))  # the whole map: 36 MB of float32
    settings = DetectionSettings(input_size=64, chunk_length=200, batch_size=4, min_similarity=0.9)
    tracemalloc.start()
    try:
        found = localize_maps([LazySimilarityMap(q, r)], diagonal_runner, settings)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(found[0]) >= 1
    assert peak < 8 * 2**20, f"peak {peak / 2**20:.1f} MiB"  # 4 tiles of 200 x 200 and their renders, not 36 MB
