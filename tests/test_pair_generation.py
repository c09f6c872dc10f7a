"""Generated copy pairs: GT sits where the similarity map is high; determinism; pair kinds."""
import numpy as np
import pytest

from vcl_fast.data.copy_timeline import diagonal_cells
from vcl_fast.data.pair_generation import PairGenerationConfig, generate_copy_pairs
from vcl_fast.data.video_edits import blurred_background, moving_text, overlay_on_video, random_video_edit
from vcl_fast.ops.similarity import similarity_map


def smooth_video(rng, length, size=16):
    """Frames that drift slowly (like a real shot): neighbouring frames are similar, far ones are not."""
    walk = np.cumsum(rng.normal(0, 25, size=(length, size, size, 3)), axis=0)
    return np.clip(128 + walk, 0, 255).astype(np.uint8)


def pixel_embed(frames):
    """(N, H, W, 3) uint8 -> (N, 1, D) zero-mean unit-norm pixels: a stand-in extractor for planted tests."""
    x = frames.reshape(len(frames), -1).astype(np.float32)
    x -= x.mean(axis=1, keepdims=True)
    return (x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-6))[:, None, :]


def brightness(rng, clip):
    return np.clip(clip.astype(np.int16) + int(rng.integers(-20, 21)), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def generated():
    rng = np.random.default_rng(0)
    videos = {f"v{i}": smooth_video(rng, int(rng.integers(40, 80))) for i in range(6)}
    config = PairGenerationConfig(num_copies=12, sources_per_copy=(1, 2), segment_length=(8, 20))
    return generate_copy_pairs(videos, pixel_embed, brightness, config, seed=1)


def test_pair_kinds_and_boxes(generated):
    kinds = {p.kind for p in generated.pairs}
    assert kinds == {"vanilla", "negative", "transitivity"}
    for pair in generated.pairs:
        q, r = generated.features[pair.query_id], generated.features[pair.reference_id]
        assert (len(pair.boxes) == 0) == (pair.kind == "negative")
        if len(pair.boxes):
            assert (pair.boxes[:, [0, 2]] <= len(q)).all() and (pair.boxes[:, [1, 3]] <= len(r)).all()


def test_ground_truth_is_where_the_map_is_high(generated):
    inside, outside = [], []
    for pair in generated.pairs:
        if pair.kind == "negative":
            continue
        sim = similarity_map(generated.features[pair.query_id], generated.features[pair.reference_id])
        mask = diagonal_cells(pair.boxes, sim.shape)
        inside.append(sim[mask].mean())
        outside.append(sim[~mask].mean())
    assert np.mean(inside) > 0.9 and np.mean(outside) < 0.5


def test_generation_is_deterministic(generated):
    rng = np.random.default_rng(0)
    videos = {f"v{i}": smooth_video(rng, int(rng.integers(40, 80))) for i in range(6)}
    config = PairGenerationConfig(num_copies=12, sources_per_copy=(1, 2), segment_length=(8, 20))
    again = generate_copy_pairs(videos, pixel_embed, brightness, config, seed=1)
    assert [(p.query_id, p.reference_id, p.kind) for p in again.pairs] == \
           [(p.query_id, p.reference_id, p.kind) for p in generated.pairs]
    for key, value in generated.features.items():
        np.testing.assert_array_equal(again.features[key], value)


def test_needs_two_videos():
    with pytest.raises(ValueError, match="at least 2 videos"):
        generate_copy_pairs({"only": np.zeros((5, 8, 8, 3), np.uint8)}, pixel_embed, brightness)


def test_video_edits_keep_shape_and_change_pixels():
    rng = np.random.default_rng(0)
    clip, host = smooth_video(rng, 4, 32), smooth_video(rng, 2, 32)
    for edited in (overlay_on_video(clip, host, 0.5, 0.2, 0.7), blurred_background(clip, 0.6),
                   moving_text(clip, "copy", (0.1, 0.5), (0.1, 0.0), font_size=10)):
        assert edited.shape == clip.shape and edited.dtype == np.uint8
        assert not np.array_equal(edited, clip)
    text = moving_text(clip, "copy", (0.1, 0.5), (0.2, 0.0), font_size=10)
    assert not np.array_equal(text[0] != clip[0], text[1] != clip[1])  # the text moved
    assert all(random_video_edit(np.random.default_rng(s), clip, [host]).shape == clip.shape for s in range(6))
    with pytest.raises(ValueError, match="uint8"):
        blurred_background(clip.astype(np.float32), 0.5)
