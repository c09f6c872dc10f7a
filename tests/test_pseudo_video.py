"""Pseudo-videos from photos: deterministic by seed, with pans, zooms, shake and cuts actually present."""
import numpy as np
import pytest

from vcl_fast.data.pseudo_video import PseudoVideoConfig, make_pseudo_video, plan_shots
from vcl_fast.video import read_frames


@pytest.fixture(scope="module")
def photos():
    import skimage.data

    return [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea()]


def test_deterministic_by_seed(photos):
    a = make_pseudo_video(photos, 40, (96, 64), seed=3)
    b = make_pseudo_video(photos, 40, (96, 64), seed=3)
    c = make_pseudo_video(photos, 40, (96, 64), seed=4)
    assert a.frames.shape == (40, 64, 96, 3) and a.frames.dtype == np.uint8
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.photo_index, b.photo_index)
    assert not np.array_equal(a.frames, c.frames)


def test_shots_cover_the_video_with_cuts_between_photos(photos):
    video = make_pseudo_video(photos, 120, (96, 64), seed=0, config=PseudoVideoConfig(shot_frames=(5, 20)))
    starts = [s.start for s in video.shots]
    assert starts[0] == 0 and sum(s.length for s in video.shots) == 120
    assert all(5 <= s.length <= 20 for s in video.shots[:-1])
    assert [b - a for a, b in zip(starts, starts[1:])] == [s.length for s in video.shots[:-1]]
    for previous, shot in zip(video.shots, video.shots[1:]):
        assert shot.photo != previous.photo
        assert (video.photo_index[shot.start - 1], video.photo_index[shot.start]) == (previous.photo, shot.photo)


def test_motion_is_present(photos):
    config = PseudoVideoConfig(shot_frames=(30, 30), zoom=(0.3, 1.0), pan=1.0, shake=0.0)
    video = make_pseudo_video(photos, 60, (96, 64), seed=1, config=config)
    for shot in video.shots:
        widths = shot.windows[:, 2] - shot.windows[:, 0]
        centres = (shot.windows[:, :2] + shot.windows[:, 2:]) / 2
        assert np.ptp(widths) > 1 or np.ptp(centres, axis=0).max() > 1  # zooms or pans
        assert np.all(np.diff(widths) >= -1e-9) or np.all(np.diff(widths) <= 1e-9)  # zoom in one direction
        frames = video.frames[shot.start:shot.start + shot.length].astype(np.int16)
        assert np.abs(np.diff(frames, axis=0)).mean() > 1.0  # the picture moves from frame to frame
        height, width = photos[shot.photo].shape[:2]  # windows stay inside the photo, aspect of the output
        assert shot.windows[:, :2].min() >= -1e-6 and shot.windows[:, 2].max() <= width + 1e-6
        assert shot.windows[:, 3].max() <= height + 1e-6
        np.testing.assert_allclose(widths / (shot.windows[:, 3] - shot.windows[:, 1]), 96 / 64)


def test_shake_jitters_the_camera(photos):
    still = PseudoVideoConfig(shot_frames=(40, 40), zoom=(0.5, 0.5), pan=0.0, shake=0.0)
    shaky = PseudoVideoConfig(shot_frames=(40, 40), zoom=(0.5, 0.5), pan=0.0, shake=0.02)
    sizes = [(p.shape[1], p.shape[0]) for p in photos]
    (steady,) = plan_shots(sizes, 40, (96, 64), seed=2, config=still)
    (jittered,) = plan_shots(sizes, 40, (96, 64), seed=2, config=shaky)
    assert np.ptp(steady.windows, axis=0).max() < 1e-9  # no pan, no zoom, no shake: a still camera
    offsets = np.diff(jittered.windows[:, 0])
    assert np.abs(offsets).mean() > 0.5 and (offsets > 0).any() and (offsets < 0).any()


def test_bad_arguments(photos):
    with pytest.raises(ValueError, match="uint8"):
        make_pseudo_video([photos[0].astype(np.float32)], 5)
    with pytest.raises(ValueError, match="at least one photo"):
        make_pseudo_video([], 5)
    with pytest.raises(ValueError, match="num_frames"):
        make_pseudo_video(photos, 0)
    with pytest.raises(ValueError, match="size"):
        make_pseudo_video(photos, 5, (0, 10))
    with pytest.raises(ValueError, match="zoom"):
        PseudoVideoConfig(zoom=(0.0, 1.0))
    with pytest.raises(ValueError, match="shot_frames"):
        PseudoVideoConfig(shot_frames=(10, 5))


def test_single_photo_and_writing(photos, tmp_path):
    video = make_pseudo_video(photos[:1], 12, (96, 64), seed=0, config=PseudoVideoConfig(shot_frames=(4, 6)))
    assert set(video.photo_index.tolist()) == {0}
    video.write(tmp_path / "pseudo.mp4", fps=4.0)
    decoded = read_frames(tmp_path / "pseudo.mp4", fps=4.0)
    assert decoded.frames.shape == video.frames.shape
    assert np.abs(decoded.frames.astype(np.int16) - video.frames).mean() < 12  # lossy, but the same pictures
