"""vcl-fast generate-pairs: clip-consistent copy edits, video loading, the on-disk format, determinism,
ground truth placed on real extracted features, and CLI errors."""
import colorsys
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vcl_fast.cli import main  # noqa: E402
from vcl_fast.data.copy_timeline import diagonal_cells  # noqa: E402
from vcl_fast.data.map_dataset import MapDataset  # noqa: E402
from vcl_fast.data.pair_commands import (  # noqa: E402
    PseudoVideoSettings, extractor_embedder, load_videos, read_pair_index)
from vcl_fast.data.pair_generation import PairGenerationConfig, generate_copy_pairs  # noqa: E402
from vcl_fast.data.video_edits import clip_augmenter, copy_edit_clip, image_edit_clip  # noqa: E402
from vcl_fast.ops import similarity_map  # noqa: E402

SETTINGS = PseudoVideoSettings(frames=16, photos_per_video=2, shot_frames=(3, 6), short_side=24)
CLI_SIZE = ["--video-frames", "16", "--short-side", "24", "--num-copies", "8"]


def grating_photo(i: int, count: int, size=(160, 120)) -> np.ndarray:
    """A photo-sized uint8 (H, W, 3) image of its own hue, orientation and frequency."""
    w, h = size
    y, x = np.mgrid[0:h, 0:w] / h
    angle, frequency = np.pi * i / count, 3 + 2 * i
    g = (0.5 + 0.5 * np.sin(2 * np.pi * frequency * (x * np.cos(angle) + y * np.sin(angle))))[..., None]
    light = np.array(colorsys.hsv_to_rgb(i / count, 0.9, 0.9))
    dark = np.array(colorsys.hsv_to_rgb((i / count + 0.5) % 1, 0.6, 0.3))
    return ((g * light + (1 - g) * dark) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    from PIL import Image

    folder = tmp_path_factory.mktemp("photos")
    for i in range(12):
        Image.fromarray(grating_photo(i, 12)).save(folder / f"photo{i:02d}.png")
    return folder


@pytest.fixture(scope="module")
def micro_extractor(tmp_path_factory):
    """A random-weight micro extractor: real extracted features, no discriminative training."""
    from vcl_fast.models.rtr import build_extractor
    from vcl_fast.models.weights import save_extractor

    torch.manual_seed(0)
    return save_extractor(build_extractor("micro"), tmp_path_factory.mktemp("extractor"))


@pytest.fixture(scope="module")
def generated(photos, micro_extractor, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "pairs"
    assert main(["generate-pairs", "--videos", str(photos), "--model", str(micro_extractor), "-o", str(out),
                 "--seed", "3", *CLI_SIZE]) == 0
    return out


def test_copy_edit_clip_draws_once_per_clip():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 256, size=(2, 36, 48, 3), dtype=np.uint8)
    for seed in range(12):
        same = copy_edit_clip(np.random.default_rng(seed), np.stack([a, a, a]))
        assert same.shape == (3, 36, 48, 3) and same.dtype == np.uint8
        assert (same[1] == same[0]).all() and (same[2] == same[0]).all()
        mixed = copy_edit_clip(np.random.default_rng(seed), np.stack([a, b]))
        assert (mixed[0] == same[0]).all()  # a frame's edit depends on the clip's draw, not on its neighbours
        assert (mixed[1] == copy_edit_clip(np.random.default_rng(seed), np.stack([b]))[0]).all()
    for name in ("crop", "text", "emoji", "color", "rotate", "pad"):
        edited = image_edit_clip(np.random.default_rng(7), np.stack([a, a, b]), name)
        assert edited.shape == (3, 36, 48, 3) and (edited[1] == edited[0]).all() and not (edited[0] == a).all()
    with pytest.raises(ValueError, match="unknown edit"):
        image_edit_clip(rng, np.stack([a]), "smudge")
    assert copy_edit_clip(rng, np.zeros((0, 8, 8, 3), np.uint8)).shape == (0, 8, 8, 3)
    with pytest.raises(ValueError, match="uint8"):
        copy_edit_clip(rng, np.zeros((2, 8, 8, 3), np.float32))


def test_clip_augmenter_keeps_the_clip_shape():
    rng = np.random.default_rng(1)
    clip = rng.integers(0, 256, size=(4, 30, 40, 3), dtype=np.uint8)
    host = rng.integers(0, 256, size=(3, 50, 70, 3), dtype=np.uint8)
    augment = clip_augmenter([host])
    shapes = {augment(np.random.default_rng(seed), clip).shape for seed in range(16)}
    assert shapes == {clip.shape}
    assert (augment(np.random.default_rng(5), clip) == augment(np.random.default_rng(5), clip)).all()


def test_photo_folder_gives_disjoint_pseudo_videos(photos):
    videos, origins = load_videos(photos, SETTINGS, seed=0)
    assert sorted(videos) == [f"pv{i:03d}" for i in range(6)]
    assert all(v.shape == (16, 24, 43, 3) and v.dtype == np.uint8 for v in videos.values())
    used = [name for text in origins.values() for name in text.split(" of ")[1].split(", ")]
    assert sorted(used) == sorted(f"photo{i:02d}.png" for i in range(12))  # each photo in exactly one video
    again, _ = load_videos(photos, SETTINGS, seed=0)
    assert all((again[k] == videos[k]).all() for k in videos)
    with pytest.raises(ValueError, match="fewer than 2 pseudo-videos"):
        load_videos(photos, PseudoVideoSettings(photos_per_video=7), seed=0)


def test_video_files_and_frame_folders(tmp_path):
    from PIL import Image

    from vcl_fast.video import write_video

    rng = np.random.default_rng(2)
    write_video(tmp_path / "clip.mp4", rng.integers(0, 256, size=(10, 32, 48, 3), dtype=np.uint8), fps=2.0)
    (tmp_path / "frames").mkdir()
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, size=(24, 24, 3), dtype=np.uint8)).save(tmp_path / "frames" / f"{i}.png")
    videos, origins = load_videos(tmp_path, PseudoVideoSettings(short_side=16), seed=0)
    assert origins == {"clip": "clip.mp4", "frames": "frames"}
    assert videos["clip"].shape == (5, 16, 24, 3)  # 5 s at 1 fps, short side 16
    assert videos["frames"].shape == (3, 16, 16, 3)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no videos"):
        load_videos(tmp_path / "empty")


def test_output_is_a_map_dataset_with_an_index(generated):
    index = read_pair_index(generated)
    dataset = MapDataset(generated)
    assert len(dataset) == len(index["pairs"]) > 0
    assert {p["kind"] for p in index["pairs"]} == {"vanilla", "transitivity", "negative"}
    lengths = {vid: v["frames"] for vid, v in index["videos"].items()}
    lengths.update({c["copy_id"]: c["background_length"] for c in index["copies"]})
    for sample, pair in zip(dataset, index["pairs"]):
        np.testing.assert_allclose(sample.boxes, np.asarray(pair["boxes"], np.float32).reshape(-1, 4))
        assert (len(sample.boxes) == 0) == (pair["kind"] == "negative")
        if pair["kind"] != "transitivity":
            assert sample.sim.shape[1] == lengths[pair["reference"]]
        assert sample.sim.shape[0] > lengths[pair["query"]]  # a copy is its background plus inserted frames
    assert not [p for p in generated.parent.iterdir() if p.name.startswith(".")]  # no staging left behind


def test_same_seed_same_files_other_seed_other_pairs(generated, photos, micro_extractor, tmp_path):
    args = ["generate-pairs", "--videos", str(photos), "--model", str(micro_extractor), *CLI_SIZE]
    assert main([*args, "-o", str(tmp_path / "again"), "--seed", "3"]) == 0
    assert read_pair_index(tmp_path / "again") == read_pair_index(generated)
    for a, b in zip(MapDataset(generated), MapDataset(tmp_path / "again")):
        assert (a.sim == b.sim).all() and (a.boxes == b.boxes).all()
    assert main([*args, "-o", str(tmp_path / "other"), "--seed", "4", "--no-transitivity"]) == 0
    other = read_pair_index(tmp_path / "other")
    assert {p["kind"] for p in other["pairs"]} == {"vanilla", "negative"}
    assert other["copies"] != read_pair_index(generated)["copies"]


def shown_frames(video_id, generated):
    """``(source video, frame)`` shown at each frame of a base or copy video of a ``GeneratedSet``."""
    copy = next((c for c in generated.copies if c.copy_id == video_id), None)
    if copy is None:
        return [(video_id, i) for i in range(len(generated.features[video_id]))]
    segment, frame = copy.frame_sources()
    return [(copy.background_id if s < 0 else copy.segments[s].source_id, int(f)) for s, f in zip(segment, frame)]


def test_ground_truth_is_exactly_where_frames_match_on_real_features(photos, micro_extractor):
    """With identity edits a copy shows its sources' frames as they are. On real extracted features every
    cell where query and reference show the same frame has cosine 1 and lies in a ground-truth box (up to
    the one-frame rounding of resampling), every box holds such cells, and no pair shows shared frames
    that its ground truth does not cover."""
    videos, _ = load_videos(photos, SETTINGS, seed=0)
    config = PairGenerationConfig(num_copies=8, segment_length=(3, 8), sources_per_copy=(1, 2))
    generated = generate_copy_pairs(videos, extractor_embedder(micro_extractor), lambda rng, clip: clip, config,
                                    seed=5)
    kinds = set()
    for pair in generated.pairs:
        query, reference = shown_frames(pair.query_id, generated), shown_frames(pair.reference_id, generated)
        where = {}
        for col, shown in enumerate(reference):
            where.setdefault(shown, []).append(col)
        cells = np.array([(row, col) for row, shown in enumerate(query) for col in where.get(shown, [])]).reshape(-1, 2)
        if pair.kind == "negative":
            assert len(cells) == 0
            continue
        kinds.add(pair.kind)
        sim = similarity_map(generated.features[pair.query_id], generated.features[pair.reference_id])
        np.testing.assert_allclose(sim[cells[:, 0], cells[:, 1]], 1.0, atol=1e-4)
        inside = np.zeros((len(cells), len(pair.boxes)), dtype=bool)
        for b, (q_s, r_s, q_e, r_e) in enumerate(pair.boxes):
            inside[:, b] = ((cells[:, 0] >= np.floor(q_s) - 1) & (cells[:, 0] < np.ceil(q_e) + 1)
                            & (cells[:, 1] >= np.floor(r_s) - 1) & (cells[:, 1] < np.ceil(r_e) + 1))
        assert inside.any(axis=1).all(), f"{pair.kind} pair has matching frames outside its boxes"
        assert inside.any(axis=0).all(), f"{pair.kind} pair has a box without matching frames"
    assert kinds == {"vanilla", "transitivity"}


@pytest.fixture(scope="module")
def skimage_photos(tmp_path_factory):
    """Eight real colour photographs bundled with scikit-image."""
    data = pytest.importorskip("skimage.data")
    from PIL import Image

    folder = tmp_path_factory.mktemp("skimage_photos")
    names = ["astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina"]
    for name in names:
        Image.fromarray(getattr(data, name)()).save(folder / f"{name}.png")
    Image.fromarray(data.stereo_motorcycle()[0]).save(folder / "motorcycle.png")
    return folder


def test_ground_truth_is_where_the_map_is_high_with_the_trained_extractor(skimage_photos):
    """Real photos, the real clip edits and the shipped trained extractor: along every copy's ground-truth
    diagonal the map is higher than elsewhere in the map, for most pairs and by a clear margin on average."""
    from vcl_fast.runtime.manifest import DEFAULT_MODEL_DIR

    videos, _ = load_videos(skimage_photos, PseudoVideoSettings(frames=24, photos_per_video=2, short_side=72), seed=0)
    config = PairGenerationConfig(num_copies=8, segment_length=(4, 10))
    generated = generate_copy_pairs(videos, extractor_embedder(DEFAULT_MODEL_DIR / "extractor"),
                                    clip_augmenter(list(videos.values())), config, seed=2)
    margins = []
    for pair in generated.pairs:
        if pair.kind == "negative":
            continue
        sim = similarity_map(generated.features[pair.query_id], generated.features[pair.reference_id])
        on_diagonal = diagonal_cells(pair.boxes, sim.shape)
        margins.append(sim[on_diagonal].mean() - sim[~on_diagonal].mean())
    margins = np.array(margins)
    assert len(margins) >= 10
    assert (margins > 0).mean() >= 0.8 and margins.mean() > 0.08, margins


def test_cli_errors_write_nothing(photos, micro_extractor, tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("x")
    base = ["generate-pairs", "--videos", str(photos), "--model", str(micro_extractor), *CLI_SIZE]
    assert main([*base, "-o", str(taken)]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    assert sorted(p.name for p in taken.iterdir()) == ["keep.txt"]
    assert main([*base, "-o", str(tmp_path / "a"), "--photos-per-video", "7"]) == 2
    assert "fewer than 2 pseudo-videos" in capsys.readouterr().err
    assert main(["generate-pairs", "--videos", str(photos), "--model", str(tmp_path / "none"),
                 "-o", str(tmp_path / "b"), *CLI_SIZE]) == 2
    assert "no extractor config" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]
