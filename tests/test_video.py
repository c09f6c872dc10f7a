"""Video decoding: frames sampled by timestamp, checked against the frame index painted into each frame."""
import contextlib
import itertools
import pickle
from fractions import Fraction

import av
import numpy as np
import pytest

from vcl_fast.video import DecodedFrames, VideoDecodeError, iter_frames, probe, read_frames, write_video
from vcl_fast.video import decode
from vcl_fast.video.sampling import TimestampSampler, num_samples, sample_times, select_frames

FORMATS = [".mp4", ".mkv", ".webm", ".avi", ".gif"]
NUM_FRAMES = 120
WIDTH, HEIGHT = 96, 64


def painted(index: int, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """A frame showing ``index`` (< 256) as 8 black/white vertical bars, least significant bit on the left."""
    image = np.zeros((height, width, 3), np.uint8)
    for bit in range(8):
        if (index >> bit) & 1:
            image[:, bit * width // 8:(bit + 1) * width // 8] = 255
    return image


def read_index(image: np.ndarray) -> int:
    """Inverse of :func:`painted` (reads the middle of each bar, robust to compression and resizing)."""
    width = image.shape[1]
    bars = [image[:, (2 * bit + 1) * width // 16 - width // 64:(2 * bit + 1) * width // 16 + width // 64 + 1]
            for bit in range(8)]
    return sum(1 << bit for bit, bar in enumerate(bars) if bar.mean() > 128)


def shown_indices(decoded: DecodedFrames) -> np.ndarray:
    return np.array([read_index(frame) for frame in decoded.frames])


VFR_TIMES = np.cumsum(np.r_[0, np.random.default_rng(0).integers(20, 200, NUM_FRAMES - 1)]) / 1000


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """{(suffix, "cfr" | "vfr"): (path, intended frame times in seconds)}, GOP of 10 frames."""
    folder = tmp_path_factory.mktemp("clips")
    out = {}
    for suffix, rate in itertools.product(FORMATS, ["cfr", "vfr"]):
        path = folder / f"{rate}{suffix}"
        times = VFR_TIMES if rate == "vfr" else np.arange(NUM_FRAMES) / 25
        write_video(path, (painted(i) for i in range(NUM_FRAMES)), 25.0,
                    timestamps=times if rate == "vfr" else None, gop_size=10)
        if suffix == ".gif":  # GIF delays are whole centiseconds
            times = np.round(times * 100) / 100
        out[suffix, rate] = (path, times)
    return out


# --- the sampling rule ---------------------------------------------------------------------------------

@pytest.mark.parametrize("num_frames,fps,duplicates", list(itertools.product([1, 2, 17], [0.3, 1.0, 7.5, 60.0], [False, True])))
def test_sampler_matches_reference(num_frames, fps, duplicates):
    rng = np.random.default_rng(num_frames)
    times = np.sort(rng.uniform(0.0, 5.0, num_frames))
    times[0] = 0.0
    if duplicates and num_frames > 1:
        times[1] = times[0]
    end = times[-1] + 0.2
    sampler = TimestampSampler(fps)
    samples = [s for i, t in enumerate(times) for s in sampler.push(float(t), i)] + sampler.finish(end)
    expected_times = sample_times(end, fps)
    assert [t for t, _ in samples] == pytest.approx(expected_times.tolist())
    assert [i for _, i in samples] == select_frames(times, expected_times).tolist()


def test_sampling_edges():
    assert num_samples(2.0, 1.0) == 2  # t = 0, 1; t = 2 is the end
    assert num_samples(2.0 + 1e-9, 1.0) == 2
    assert num_samples(2.01, 1.0) == 3
    assert num_samples(1e-9, 1.0) == 1 and num_samples(0.0, 1.0) == 0
    # a frame exactly at a sample time is shown at that time; times before the first frame show it
    assert select_frames([0.5, 1.0, 2.0], [0.0, 0.999, 1.0, 3.0]).tolist() == [0, 0, 1, 2]
    with pytest.raises(ValueError, match="non-empty"):
        select_frames([], [0.0])
    sampler = TimestampSampler(1.0)
    assert sampler.finish(1.0) == []  # nothing pushed
    sampler.push(0.0, "only")
    assert sampler.finish(0.0) == [(0.0, "only")]  # a single frame of unknown length is one sample


# --- decoding by timestamp, every container, constant and variable frame rate ------------------------

@pytest.mark.parametrize("suffix,rate,fps,seek",
                         list(itertools.product(FORMATS, ["cfr", "vfr"], [0.7, 3.0, 30.0], [True, False])))
def test_samples_show_the_frame_on_screen(clips, suffix, rate, fps, seek):
    path, times = clips[suffix, rate]
    decoded = read_frames(path, fps, seek=seek)
    assert decoded.frames.dtype == np.uint8 and decoded.frames.shape[1:] == (HEIGHT, WIDTH, 3)
    assert decoded.timestamps.dtype == np.float64
    np.testing.assert_allclose(decoded.timestamps, np.arange(len(decoded)) / fps)
    # the samples cover the last frame and stop within a frame interval after it
    assert decoded.timestamps[-1] + 1 / fps > times[-1] - 1e-6
    assert decoded.timestamps[-1] < times[-1] + np.diff(times).max() + 1e-6
    np.testing.assert_array_equal(shown_indices(decoded), select_frames(times, decoded.timestamps))
    assert decoded.fps == fps and decoded.source.width == WIDTH and decoded.source.height == HEIGHT


def test_seek_skips_gops_and_gives_the_same_frames(tmp_path):
    path = tmp_path / "long.mp4"
    write_video(path, (painted(i % 256) for i in range(500)), 25.0, gop_size=12)  # 20 s
    with decode.count_decoded_frames() as in_order:
        sequential = read_frames(path, 0.5, seek=False)
    with decode.count_decoded_frames() as with_seeks:
        seeking = read_frames(path, 0.5, seek=True)
    assert in_order[0] == 500
    assert with_seeks[0] < 500 / 2
    np.testing.assert_array_equal(seeking.timestamps, sequential.timestamps)
    np.testing.assert_array_equal(shown_indices(seeking), shown_indices(sequential))
    np.testing.assert_array_equal(shown_indices(seeking) , (np.arange(10) * 50) % 256)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
@pytest.mark.parametrize("fps", [0.5, 1.0, 7.0])
def test_unshown_non_reference_frames_are_not_decoded(tmp_path, suffix, fps):
    """One GOP (no seek pays): the B-frames libx264 writes that no sample shows are skipped, samples equal."""
    path = tmp_path / f"one_gop{suffix}"
    write_video(path, (painted(i) for i in range(200)), 25.0, gop_size=250)
    with decode.count_decoded_frames() as in_order:
        sequential = read_frames(path, fps, seek=False)
    with decode.count_decoded_frames() as skipping:
        skipped = read_frames(path, fps, seek=True)
    assert in_order[0] == 200 and skipping[0] < 200 * 0.8
    np.testing.assert_array_equal(skipped.timestamps, sequential.timestamps)
    np.testing.assert_array_equal(skipped.frames, sequential.frames)


@pytest.mark.parametrize("suffix,listed", [(".mp4", True), (".mkv", True), (".webm", True), (".avi", False),
                                           (".gif", False)])
def test_packet_index_lists_frame_times_only_for_timestamped_containers(clips, suffix, listed):
    path, times = clips[suffix, "vfr"]
    index = decode._PacketIndex.read(path)
    assert (index.frame_times is not None) == listed
    if listed:
        np.testing.assert_allclose(index.frame_times, times, atol=1e-9)
        shown = index.shown_times(3.0)
        expected = np.union1d(times[select_frames(times, sample_times(times[-1] + 1e-6, 3.0))], times[-2:])
        np.testing.assert_allclose(sorted(shown), expected, atol=1e-9)


def test_frames_that_are_not_the_listed_packets_fall_back_to_decoding_everything(tmp_path, monkeypatch):
    """A packet index whose times do not match the decoded frames (as in a DivX AVI): no frame is skipped."""
    path = tmp_path / "one_gop.mp4"
    write_video(path, (painted(i) for i in range(100)), 25.0, gop_size=250)
    reference = read_frames(path, 1.0, seek=False)
    real_read = decode._PacketIndex.read

    def shifted_read(p):
        index = real_read(p)
        return decode._PacketIndex(index.keyframe_times, index.frame_times + 0.01)

    monkeypatch.setattr(decode._PacketIndex, "read", shifted_read)
    decoded = read_frames(path, 1.0, seek=True)
    np.testing.assert_array_equal(decoded.timestamps, reference.timestamps)
    np.testing.assert_array_equal(decoded.frames, reference.frames)


class _MisSeekingContainer:
    """A container whose seek fails (``mode="raise"``) or lands ``mode`` ticks later than asked."""

    def __init__(self, container, mode):
        self._container, self._mode = container, mode

    def __getattr__(self, name):
        return getattr(self._container, name)

    def seek(self, offset, **kwargs):
        if self._mode == "raise":
            raise av.FFmpegError(38, "Function not implemented")
        self._container.seek(offset + self._mode, **kwargs)


@pytest.mark.parametrize("mode", ["raise", 50, 10**9, -10**9])
def test_failed_seeks_fall_back_to_decoding_in_order(tmp_path, monkeypatch, mode):
    path = tmp_path / "long.mkv"  # time base 1/1000: 50 ticks lands late, 10**9 past the end, -10**9 at the start
    write_video(path, (painted(i) for i in range(200)), 25.0, gop_size=10)
    reference = read_frames(path, 0.5, seek=False)
    real_open = decode.open_input

    @contextlib.contextmanager
    def mis_seeking_open(p):
        with real_open(p) as container:
            yield _MisSeekingContainer(container, mode)

    monkeypatch.setattr(decode, "open_input", mis_seeking_open)
    decoded = read_frames(path, 0.5, seek=True)
    np.testing.assert_array_equal(shown_indices(decoded), shown_indices(reference))


@pytest.mark.parametrize("chunk_size", [1, 7, 1000])
def test_streaming_chunks_join_to_the_whole_video(clips, chunk_size):
    path, _ = clips[".mkv", "vfr"]
    whole = read_frames(path, 3.0)
    chunks = list(iter_frames(path, 3.0, chunk_size=chunk_size))
    assert all(len(c) <= chunk_size for c in chunks) and all(len(c) == chunk_size for c in chunks[:-1])
    np.testing.assert_array_equal(np.concatenate([c.timestamps for c in chunks]), whole.timestamps)
    np.testing.assert_array_equal(np.concatenate([c.frames for c in chunks]), whole.frames)


@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize("fps, chunk_size", [(2.5, 4), (2.5, 5), (1.0, 1000), (0.7, 2), (25.0, 1)])
def test_the_last_chunk_says_when_the_video_ends(clips, suffix, fps, chunk_size):
    for rate in ("cfr", "vfr"):
        path, times = clips[suffix, rate]
        chunks = list(iter_frames(path, fps, chunk_size=chunk_size))
        assert all(c.end is None for c in chunks[:-1])
        last = chunks[-1].timestamps[-1]
        assert last < chunks[-1].end <= last + 1 / fps
        if rate == "cfr":  # 120 frames at 25 fps, each shown 1/25 s: the video ends at 4.8 s, or with the last sample
            assert chunks[-1].end == pytest.approx(min(4.8, last + 1 / fps))
        else:  # the last frame is shown from its time on
            assert chunks[-1].end > times[-1] or chunks[-1].end == pytest.approx(last + 1 / fps)


@pytest.mark.parametrize("size,expected", [(None, (64, 96)), (32, (32, 48)), (48, (48, 72)), ((40, 30), (30, 40))])
def test_resize_on_the_fly(clips, size, expected):
    path, times = clips[".mp4", "cfr"]
    decoded = read_frames(path, 2.0, size=size)
    assert decoded.frames.shape[1:] == (*expected, 3)
    np.testing.assert_array_equal(shown_indices(decoded), select_frames(times, decoded.timestamps))


def test_stream_without_timestamps(tmp_path):
    """A raw H.264 stream has no timestamps: frames are spaced by the stream's frame rate."""
    path = tmp_path / "raw.h264"
    with av.open(str(path), "w", format="h264") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for i in range(100):
            frame = av.VideoFrame.from_ndarray(painted(i), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    decoded = read_frames(path, 1.0)
    assert shown_indices(decoded).tolist() == [0, 25, 50, 75]


def test_probe(clips):
    path, _ = clips[".mp4", "cfr"]
    info = probe(path)
    assert (info.width, info.height, info.codec) == (WIDTH, HEIGHT, "h264")
    assert info.fps == pytest.approx(25.0) and info.duration == pytest.approx(NUM_FRAMES / 25, abs=0.05)


# --- display matrix (phone videos, EXIF orientation) ------------------------------------------------------

def _blocks(height: int, width: int, block: int = 8, seed: int = 0) -> np.ndarray:
    """A picture of flat random blocks (survives compression), ``(height, width, 3)`` uint8."""
    rng = np.random.default_rng(seed)
    cells = rng.integers(0, 256, (height // block, width // block, 3), dtype=np.uint8)
    return np.kron(cells, np.ones((block, block, 1), np.uint8))


def _write_turned(path, shown: np.ndarray, degrees: int, hflip: bool, vflip: bool, frames: int = 3) -> None:
    """A lossless H.264 clip whose display matrix (PyAV: turn ``degrees`` counter-clockwise, then mirror) shows
    ``shown``: the stored picture is ``shown`` with those steps undone."""
    stored = shown[::-1] if vflip else shown
    stored = np.ascontiguousarray(np.rot90(stored[:, ::-1] if hflip else stored, -(degrees // 90)))
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=5)
        stream.width, stream.height, stream.pix_fmt = stored.shape[1], stored.shape[0], "yuv444p"
        stream.options = {"crf": "0"}
        stream.set_display_rotation(degrees, hflip=hflip, vflip=vflip)
        for _ in range(frames):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(stored, format="rgb24")))
        container.mux(stream.encode(None))


@pytest.mark.parametrize("hflip,vflip", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("degrees", [0, 90, 180, 270])
def test_frames_come_upright_as_the_display_matrix_says(tmp_path, degrees, hflip, vflip):
    shown = _blocks(48, 80)
    path = tmp_path / "turned.mp4"
    _write_turned(path, shown, degrees, hflip, vflip)
    for seek in (True, False):
        frames = read_frames(path, 5.0, seek=seek).frames
        assert frames.shape == (3, 48, 80, 3)
        assert np.abs(frames.astype(int) - shown).max() <= 8  # lossless but for the YUV round trip
    coded = (48, 80) if degrees in (0, 180) else (80, 48)
    assert (probe(path).height, probe(path).width) == coded  # the header's size is the coded picture's
    assert read_frames(path, 5.0, size=24).frames.shape[1:3] == (24, 40)  # the short side of the shown picture
    assert read_frames(path, 5.0, size=(40, 30)).frames.shape[1:3] == (30, 40)  # (w, h) as shown


def test_upright_turns_by_quarter_turns_and_leaves_other_angles():
    from vcl_fast.video._pyav import rotation_matrix, transposes, upright

    image = np.arange(2 * 3 * 1).reshape(2, 3, 1)
    assert upright(image, None) is image
    for degrees, turns in ((0, 0), (90, 1), (180, 2), (270, 3), (-90, 3), (-180, 2)):
        np.testing.assert_array_equal(upright(image, rotation_matrix(degrees)), np.rot90(image, turns))
        assert transposes(rotation_matrix(degrees)) == (turns % 2 == 1)
    for degrees in (45, 89, 135):  # not a quarter turn (FFmpeg would rotate with black corners): as decoded
        np.testing.assert_array_equal(upright(image, rotation_matrix(degrees)), image)
    assert upright(image, np.zeros(9, np.int32)) is image  # a singular matrix


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_image_folder_follows_the_exif_orientation(tmp_path, orientation, suffix):
    """Every EXIF orientation (the turns cameras write, and the mirrored ones), against Pillow's exif_transpose;
    also resized to a (w, h) as shown."""
    from PIL import Image, ImageOps

    photo = tmp_path / f"a{suffix}"
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(_blocks(48, 80, block=16)).save(photo, exif=exif, quality=100)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(photo)).convert("RGB"))
    for found in (read_frames(tmp_path).frames[0], read_frames(photo).frames[0]):  # a folder, or the file alone
        assert found.shape == expected.shape == ((48, 80, 3) if orientation <= 4 else (80, 48, 3))
        assert np.abs(found.astype(int) - expected).mean() < 4  # two JPEG decoders: chroma upsampling differs
        assert np.abs(found.astype(int) - expected[::-1]).mean() > 40  # a wrong mirroring is far off
    resized = read_frames(tmp_path, size=(expected.shape[1] // 2, expected.shape[0] // 2)).frames[0]
    assert np.abs(resized.astype(int) - expected[::2, ::2]).mean() < 12


def test_image_folder_of_mixed_sizes_comes_at_the_first_size(tmp_path):
    """As a video whose picture size changes: every image at the first one's size as shown (here a photo stored
    sideways with EXIF orientation 6 among plain ones)."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.ascontiguousarray(np.rot90(painted(1, width=64, height=96)))).save(tmp_path / "1.jpg",
                                                                                     exif=exif, quality=100)
    _save_png(tmp_path / "2.png", painted(2, width=48, height=32))
    _save_png(tmp_path / "3.png", painted(3, width=128, height=256))
    frames = read_frames(tmp_path).frames
    assert frames.shape == (3, 96, 64, 3)
    assert [read_index(frame) for frame in frames] == [1, 2, 3]


def test_exif_matrix_is_none_without_a_readable_orientation(tmp_path):
    from PIL import Image

    from vcl_fast.video.image_folder import exif_matrix

    Image.fromarray(_blocks(16, 16)).save(tmp_path / "plain.jpg")
    (tmp_path / "not_an_image.jpg").write_bytes(b"not an image")
    exif = Image.Exif()
    exif[0x0112] = 9  # not an orientation
    Image.fromarray(_blocks(16, 16)).save(tmp_path / "odd.jpg", exif=exif)
    assert all(exif_matrix(tmp_path / name) is None for name in ("plain.jpg", "not_an_image.jpg", "odd.jpg"))


def test_image_above_pillows_size_limit_is_read_by_ffmpeg(tmp_path, monkeypatch):
    """Pillow refuses an image of more than twice ``MAX_IMAGE_PIXELS`` (a decompression bomb to it); it only reads
    the orientation and checks the data, so FFmpeg still reads the image, by the angle FFmpeg gives (the
    refusal raised out of the CLI before)."""
    from PIL import Image

    from vcl_fast.video.image_folder import damaged_jpeg, exif_matrix

    exif = Image.Exif()
    exif[0x0112] = 3
    Image.fromarray(_blocks(48, 80, block=16)).save(tmp_path / "big.jpg", exif=exif, quality=100)
    upright = read_frames(tmp_path / "big.jpg").frames
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 48 * 80 // 3)
    with pytest.raises(Image.DecompressionBombError):
        Image.open(tmp_path / "big.jpg")
    assert exif_matrix(tmp_path / "big.jpg") is None and not damaged_jpeg(tmp_path / "big.jpg")
    for source in (tmp_path, tmp_path / "big.jpg"):
        np.testing.assert_array_equal(read_frames(source).frames, upright)  # by the frame's own angle (180)


def _truncated_jpeg(path, image) -> None:
    """``image`` saved as a JPEG cut after half its bytes: FFmpeg decodes it without a word."""
    from PIL import Image

    Image.fromarray(image).save(path, quality=95)
    path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])


def test_damaged_jpeg(tmp_path):
    from PIL import Image

    from vcl_fast.video.image_folder import damaged_jpeg

    _truncated_jpeg(tmp_path / "cut.jpg", _blocks(64, 96, seed=1))
    Image.fromarray(_blocks(64, 96, seed=2)).save(tmp_path / "whole.jpeg", quality=95)
    _save_png(tmp_path / "png.jpg", _blocks(64, 96, seed=2))  # a PNG under a .jpg name
    (tmp_path / "text.jpg").write_text("not an image")
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "appended.jpg").write_bytes((tmp_path / "whole.jpeg").read_bytes() + b"ftypmp42 a motion photo")
    assert damaged_jpeg(tmp_path / "cut.jpg")
    assert not any(damaged_jpeg(tmp_path / name) for name in ("whole.jpeg", "png.jpg", "text.jpg", "empty.jpg",
                                                              "appended.jpg"))


def test_truncated_jpeg_is_warned_about(tmp_path):
    """FFmpeg fills in what a cut JPEG lacks and flags nothing: the folder, or the file read alone, warns once,
    naming the images; whole images do not warn."""
    import warnings

    from vcl_fast.video import VideoDamageWarning

    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(5):
        _save_png(folder / f"{i}.png", _blocks(96, 160, seed=i))
    with warnings.catch_warnings():
        warnings.simplefilter("error", VideoDamageWarning)
        read_frames(folder)
    for i in (1, 3):
        (folder / f"{i}.png").unlink()
        _truncated_jpeg(folder / f"{i}.jpg", _blocks(96, 160, seed=i))
    with pytest.warns(VideoDamageWarning) as caught:
        assert len(read_frames(folder, 2.0, image_fps=1.0)) == 10  # each image shown twice, checked once
    assert len(caught) == 1 and str(caught[0].message) == (
        f"{folder}: damaged image data: 2 of 5 images read (1.jpg, 3.jpg) are cut short or corrupt, and FFmpeg made "
        "up the missing part: copies shown there may be missed")
    with pytest.warns(VideoDamageWarning) as caught:
        read_frames(folder / "3.jpg")
    assert len(caught) == 1 and str(caught[0].message) == (
        f"{folder / '3.jpg'}: damaged image data: the image is cut short or corrupt, and FFmpeg made up the "
        "missing part: copies shown there may be missed")
    with warnings.catch_warnings():
        warnings.simplefilter("error", VideoDamageWarning)
        read_frames(folder / "2.png")


# --- image folders -----------------------------------------------------------------------------------

def _save_png(path, image):
    from PIL import Image

    Image.fromarray(image).save(path)


def test_image_folder_in_natural_order(tmp_path):
    for i in range(12):
        _save_png(tmp_path / f"frame{i + 1}.png", painted(i))
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "sub").mkdir()
    decoded = read_frames(tmp_path, 1.0)  # one sample per image by default
    assert shown_indices(decoded).tolist() == list(range(12))
    assert decoded.source.codec == "images" and decoded.source.duration == 12.0
    assert decoded.end == 12.0
    decoded = read_frames(tmp_path, 1.0, image_fps=4.0, size=(48, 32))
    assert shown_indices(decoded).tolist() == [0, 4, 8] and decoded.frames.shape == (3, 32, 48, 3)
    assert decoded.end == 3.0  # 12 images at 4 per second
    assert [c.end for c in iter_frames(tmp_path, 2.0, image_fps=2.0, chunk_size=4)] == [None, None, 6.0]
    assert probe(tmp_path).width == WIDTH and np.isnan(probe(tmp_path).fps)


def test_image_folder_errors(tmp_path):
    with pytest.raises(VideoDecodeError, match="no image files"):
        read_frames(tmp_path)
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("clip10.mp4", "clip2.MOV", "clip1.mkv", "clip3.avi"):
        (videos / name).write_bytes(b"x")
    with pytest.raises(VideoDecodeError, match=r"holds videos \(clip1.mkv, clip2.MOV, clip3.avi and 1 more\): name "
                                               r"one video, or list pairs with --pairs CSV --videos DIR"):
        read_frames(videos)
    _save_png(tmp_path / "a.png", painted(1))
    _save_png(tmp_path / "b.png", painted(2, width=48, height=32))
    assert read_frames(tmp_path, size=(24, 16)).frames.shape == (2, 16, 24, 3)
    (tmp_path / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(VideoDecodeError, match=r"c\.png: "):
        read_frames(tmp_path, size=(24, 16))
    with pytest.raises(ValueError, match="image_fps"):
        read_frames(tmp_path, image_fps=-1.0)


# --- unreadable inputs -------------------------------------------------------------------------------

def _audio_only(path, cover: bool = False):
    """An MP4 of one second of sound; ``cover``: with album art (an ``attached_pic`` picture stream)."""
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=16000)
        if cover:
            art = container.add_stream("mjpeg", rate=1)
            art.width, art.height, art.pix_fmt = 32, 32, "yuvj420p"
            art.disposition = av.stream.Disposition.attached_pic
            picture = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 200, np.uint8), format="rgb24")
            picture.pts = 0
            container.mux(art.encode(picture))
            container.mux(art.encode(None))
        samples = (0.3 * np.sin(np.arange(16000) / 10)).astype(np.float32)[None]
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 16000, 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def _check_error(path, reason, **kwargs):
    with pytest.raises(VideoDecodeError) as info:
        read_frames(path, **kwargs)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert reason in message
    assert isinstance(info.value, ValueError)
    copy = pickle.loads(pickle.dumps(info.value))
    assert str(copy) == message and copy.path == str(path)


def test_unreadable_inputs(tmp_path, clips, monkeypatch):
    _check_error(tmp_path / "missing.mp4", "no such file")
    for url in ("https://example.com/a.mp4", "rtsp://camera.local/stream", "s3://bucket/key.mkv"):
        _check_error(url, "a URL: videos are read from local files only")  # named as given, both slashes kept
    monkeypatch.chdir(tmp_path)
    _check_error("-", "not read from standard input")
    (tmp_path / "-").write_bytes(b"")  # a file named "-" is a file
    _check_error("-", "empty file (0 bytes)")
    (tmp_path / "zero.mp4").write_bytes(b"")
    _check_error(tmp_path / "zero.mp4", "empty file (0 bytes)")
    (tmp_path / "text.mp4").write_text("this is a text file, not a video\n" * 40)
    _check_error(tmp_path / "text.mp4", "cannot open")
    _audio_only(tmp_path / "query.mp4")
    _check_error(tmp_path / "query.mp4", "no video stream (audio-only file)")
    _audio_only(tmp_path / "song.m4a", cover=True)
    with av.open(str(tmp_path / "song.m4a")) as container:  # the album art is a picture stream
        assert [s.disposition & av.stream.Disposition.attached_pic for s in container.streams.video]
    _check_error(tmp_path / "song.m4a", "no video stream (audio-only file with a cover picture)")
    data = clips[".mp4", "cfr"][0].read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])  # the index (moov) is at the end: lost
    _check_error(tmp_path / "cut.mp4", "cannot open")


@pytest.mark.parametrize("suffix", [".mkv", ".webm", ".avi"])
def test_truncated_files(tmp_path, suffix):
    full = tmp_path / f"full{suffix}"
    write_video(full, (painted(i) for i in range(250)), 25.0)  # 10 s
    data = full.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: len(data) // 2])
    _check_error(cut, "truncated: video frames end at")
    partial = read_frames(cut, 5.0, strict=False)
    whole = read_frames(full, 5.0)
    assert 0 < len(partial) < len(whole) * 0.7
    # the last sample may show a partly decoded frame
    np.testing.assert_array_equal(shown_indices(partial)[:-1], shown_indices(whole)[: len(partial) - 1])


def test_corrupt_data(tmp_path, clips):
    data = bytearray(clips[".mkv", "cfr"][0].read_bytes())
    for k in np.random.default_rng(0).integers(len(data) // 4, 3 * len(data) // 4, 300):
        data[k] = 0
    (tmp_path / "corrupt.mkv").write_bytes(bytes(data))
    _check_error(tmp_path / "corrupt.mkv", "corrupt video data")


def _damage_first_picture(source, path) -> None:
    """Copy ``source``'s video packets to ``path`` (mkv) with the second half of the first one's bytes garbled:
    FFmpeg decodes that picture with concealed errors (flagged corrupt) and the rest from it."""
    with av.open(str(source)) as inp, av.open(str(path), "w") as out:
        stream = inp.streams.video[0]
        copy = out.add_stream_from_template(stream)
        for number, packet in enumerate(p for p in inp.demux(stream) if p.dts is not None):
            if number == 0:
                data = bytearray(bytes(packet))
                data[len(data) // 2:] = bytes(b ^ 0xA5 for b in data[len(data) // 2:])
                garbled = av.Packet(bytes(data))
                garbled.pts, garbled.dts, garbled.time_base = packet.pts, packet.dts, packet.time_base
                garbled.is_keyframe = True
                packet = garbled
            packet.stream = copy
            out.mux(packet)


@pytest.mark.parametrize("seek", [True, False])
def test_concealed_damage_is_warned_about_once(tmp_path, seek):
    import warnings

    from vcl_fast.video import VideoDamageWarning

    write_video(tmp_path / "clean.mp4", np.stack([_blocks(96, 160, seed=i // 5) for i in range(60)]), 25.0)
    _damage_first_picture(tmp_path / "clean.mp4", tmp_path / "damaged.mkv")
    with pytest.warns(VideoDamageWarning) as caught:
        damaged = read_frames(tmp_path / "damaged.mkv", 5.0, seek=seek)
    assert len(caught) == 1 and str(caught[0].message) == (
        f"{tmp_path / 'damaged.mkv'}: damaged video data: FFmpeg concealed decoding errors in the frames of 1 of 12 "
        "samples, at 0.00 s, and frames predicted from them may be wrong too: copies shown there may be missed")
    assert len(damaged) == 12
    with warnings.catch_warnings():
        warnings.simplefilter("error", VideoDamageWarning)
        read_frames(tmp_path / "clean.mp4", 5.0, seek=seek)


@pytest.mark.parametrize("kwargs,error,match", [
    ({"fps": 0.0}, ValueError, "fps"), ({"fps": float("nan")}, ValueError, "fps"),
    ({"fps": "1"}, TypeError, "fps"), ({"size": 0}, ValueError, "short side"),
    ({"size": (0, 10)}, TypeError, "size"), ({"size": (1.5, 2)}, TypeError, "size"),
    ({"size": "big"}, TypeError, "size"), ({"chunk_size": 0}, ValueError, "chunk_size"),
    ({"draft": 0}, ValueError, "draft"), ({"draft": 1.5}, ValueError, "draft"), ({"draft": True}, ValueError, "draft"),
])
def test_bad_arguments(clips, kwargs, error, match):
    with pytest.raises(error, match=match):
        next(iter_frames(clips[".mp4", "cfr"][0], **kwargs))


def test_bad_source_type():
    with pytest.raises(TypeError, match="path"):
        read_frames(123)


# --- the encoder -------------------------------------------------------------------------------------

def test_write_video_rejects_bad_input(tmp_path):
    frames = np.zeros((3, 64, 96, 3), np.uint8)
    with pytest.raises(ValueError, match="suffix"):
        write_video(tmp_path / "a.xyz", frames)
    with pytest.raises(ValueError, match="even"):
        write_video(tmp_path / "a.mp4", np.zeros((2, 63, 96, 3), np.uint8))
    with pytest.raises(ValueError, match="increasing"):
        write_video(tmp_path / "a.mp4", frames, timestamps=[0.0, 0.5, 0.5])
    with pytest.raises(ValueError, match="3 frames but 4 timestamps"):
        write_video(tmp_path / "a.mp4", frames, timestamps=[0.0, 0.5, 1.0, 1.5])
    with pytest.raises(ValueError, match="uint8"):
        write_video(tmp_path / "a.mp4", frames.astype(np.float32))
    assert list(tmp_path.iterdir()) == []  # nothing partial left behind


def test_write_video_frame_rate(tmp_path):
    path = tmp_path / "a.mkv"
    write_video(path, np.stack([painted(i) for i in range(30)]), Fraction(30000, 1001))
    info = probe(path)
    assert info.fps == pytest.approx(30000 / 1001) and info.duration == pytest.approx(30 * 1001 / 30000, abs=2e-3)


def test_sample_videos_seek_and_sequential_agree():
    """Real codecs (MS-MPEG4, Cinepak, MPEG-4, H.264) from the evaluation videos when they are in the data
    cache (`vcl-fast data fetch`; $VCL_FAST_DATA_CACHE): seeking gives the frames decoding in order gives."""
    from vcl_fast.data.sources import find_reserved_videos

    videos = find_reserved_videos()
    if not videos:
        pytest.skip("no sample videos in the data cache (run `vcl-fast data fetch`)")
    for path in videos:
        seeking, in_order = read_frames(path, 1.0, size=48), read_frames(path, 1.0, size=48, seek=False)
        np.testing.assert_array_equal(seeking.frames, in_order.frames)
        assert abs(len(seeking) - probe(path).duration) <= 1  # one sample per second of the declared length


# --- draft decoding ----------------------------------------------------------------------------------
DRAFT_WIDTH, DRAFT_HEIGHT = 320, 240


def textured(index: int) -> np.ndarray:
    """A ``DRAFT_HEIGHT x DRAFT_WIDTH`` frame of smooth waves drifting with ``index``, ``index`` painted on top."""
    y, x = np.mgrid[:DRAFT_HEIGHT, :DRAFT_WIDTH] / 16.0
    waves = [np.sin(x + 0.3 * index) * np.cos(y - 0.2 * index), np.sin(0.7 * x - y + 0.1 * index),
             np.cos(0.5 * x + 0.9 * y - 0.25 * index)]
    image = ((np.stack(waves, -1) + 1) * 127.5).astype(np.uint8)
    image[:24] = painted(index, DRAFT_WIDTH, 24)
    return image


def _write_codec(path, codec: str, frames: int, fps: int = 25) -> None:
    """Encode ``textured`` frames with any FFmpeg encoder (write_video picks the encoder by suffix)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = DRAFT_WIDTH, DRAFT_HEIGHT
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        for i in range(frames):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(textured(i), format="rgb24")))
        container.mux(stream.encode(None))


# file name -> (FFmpeg encoder, factor the draft decoding at 64 px divides the size by: 1 = decoded whole)
DRAFT_CODECS = {"mpeg4.avi": ("mpeg4", 2), "msmpeg4.avi": ("msmpeg4", 2), "msmpeg4v2.avi": ("msmpeg4v2", 2),
                "wmv1.avi": ("wmv1", 2), "flv.flv": ("flv", 2), "mjpeg.avi": ("mjpeg", 2), "mpeg1.mpg": ("mpeg1video", 2),
                "mpeg2.mkv": ("mpeg2video", 2), "h264.mp4": ("libx264", 1), "vp9.webm": ("libvpx-vp9", 1),
                "wmv2.avi": ("wmv2", 1), "ffv1.mkv": ("ffv1", 1), "utvideo.avi": ("utvideo", 1)}


@pytest.fixture(scope="module")
def draft_clips(tmp_path_factory):
    """{name: path}: 50 frames at 25 fps of each codec of DRAFT_CODECS."""
    folder = tmp_path_factory.mktemp("draft")
    for name, (codec, _) in DRAFT_CODECS.items():
        _write_codec(folder / name, codec, 50)
    return {name: folder / name for name in DRAFT_CODECS}


@pytest.mark.parametrize("name", list(DRAFT_CODECS))
@pytest.mark.parametrize("seek", [True, False])
def test_draft_decoding_is_close_to_exact_decoding(draft_clips, name, seek):
    """Draft frames, resized to the draft size, are within a few grey levels of the exact ones (bit for bit for the
    decoders left whole: wmv2 and ffv1 say they can decode at a lower size but give garbage); same samples."""
    from vcl_fast.runtime.preprocess import preprocess_frames_numpy

    path, factor = draft_clips[name], DRAFT_CODECS[name][1]
    exact, draft = read_frames(path, 3.0, seek=seek), read_frames(path, 3.0, seek=seek, draft=64)
    assert draft.frames.shape[1:] == (DRAFT_HEIGHT // factor, DRAFT_WIDTH // factor, 3)
    assert (draft.source.width, draft.source.height) == (DRAFT_WIDTH, DRAFT_HEIGHT)
    np.testing.assert_array_equal(draft.timestamps, exact.timestamps)
    np.testing.assert_array_equal([read_index(f) for f in draft.frames], [read_index(f) for f in exact.frames])
    if factor == 1:
        np.testing.assert_array_equal(draft.frames, exact.frames)
    grey = [preprocess_frames_numpy(d.frames, 64, (0.0,) * 3, (1 / 255,) * 3) for d in (exact, draft)]
    assert np.abs(grey[0] - grey[1]).mean() < 3.0


def test_draft_decoding_keeps_the_asked_size(draft_clips):
    path = draft_clips["mpeg4.avi"]
    assert len(list(iter_frames(path, 3.0, chunk_size=2, draft=64))) == 3
    assert read_frames(path, 1.0, size=(50, 40), draft=64).frames.shape[1:] == (40, 50, 3)
    assert read_frames(path, 1.0, draft=DRAFT_HEIGHT).frames.shape[1:] == (DRAFT_HEIGHT, DRAFT_WIDTH, 3)
    chunks = list(iter_frames(path, 3.0, chunk_size=4, draft=30))  # k = 3: 40 x 30
    assert {c.frames.shape[1:] for c in chunks} == {(30, 40, 3)}


@pytest.mark.parametrize("width,height,draft,lowres", [
    (320, 240, 64, 1), (320, 240, 60, 2), (320, 240, 30, 3), (320, 240, 1, 3), (320, 240, 121, 0),
    (768, 576, 112, 2), (720, 528, 112, 2), (176, 144, 112, 0), (1280, 720, 112, 2), (101, 51, 26, 1), (0, 0, 16, 0),
])
def test_draft_options(width, height, draft, lowres):
    from vcl_fast.video._pyav import draft_options, draft_size

    assert draft_options("mpeg4", width, height, draft) == ({"lowres": str(lowres)} if lowres else {})
    assert draft_options("h264", width, height, draft) == {}
    assert draft_size("mpeg4", width, height, draft) == (-(-width // 2 ** lowres), -(-height // 2 ** lowres))
    assert draft_size("h264", width, height, draft) == (width, height)


@pytest.mark.parametrize("decoder,width,height,draft,expected", [
    ("h264", 1920, 1080, 112, (1920, 1080)), ("h264", 3840, 2160, 112, (1920, 1080)),
    ("hevc", 7680, 4320, 112, (1920, 1080)), ("h264", 2160, 3840, 112, (1080, 1920)),  # portrait
    ("h264", 3841, 2161, 112, (961, 541)), ("h264", 4000, 150, 112, (4000, 150)),  # halving would go under draft
    ("h264", 4096, 2160, 1200, (4096, 2160)), ("mpeg4", 3840, 2160, 112, (480, 270)),  # lowres does it
])
def test_draft_size_caps_the_pixels_of_large_pictures(decoder, width, height, draft, expected):
    from vcl_fast.video._pyav import draft_size

    assert draft_size(decoder, width, height, draft) == expected


def test_draft_decoding_of_a_large_h264_picture_is_close_to_exact(tmp_path, monkeypatch):
    """Above the pixel cap (made small here) the RGB conversion halves an H.264 picture; once resized to the
    extractor's input it is within a few grey levels of the whole picture."""
    from vcl_fast.runtime.preprocess import preprocess_frames_numpy
    from vcl_fast.video import _pyav

    monkeypatch.setattr(_pyav, "DRAFT_MAX_PIXELS", 200 * 120)
    path = tmp_path / "big.mp4"
    write_video(path, np.stack([textured(i) for i in range(12)]), 12.0)  # 320 x 240
    exact, draft = read_frames(path, 3.0), read_frames(path, 3.0, draft=64)
    assert draft.frames.shape[1:] == (120, 160, 3) and exact.frames.shape[1:] == (240, 320, 3)
    grey = [preprocess_frames_numpy(d.frames, 64, (0.0,) * 3, (1 / 255,) * 3) for d in (exact, draft)]
    assert np.abs(grey[0] - grey[1]).mean() < 3.0


@pytest.mark.parametrize("size", [None, (48, 32), (97, 65)], ids=["same-size", "down", "up"])
def test_rgb_converter_gives_the_pixels_of_to_ndarray(tmp_path, size):
    """One reused swscale context gives what PyAV's per-frame conversion gives, bit for bit (H.264 4:2:0)."""
    from vcl_fast.video._pyav import INTERPOLATION, RgbConverter

    path = tmp_path / "clip.mp4"
    rng = np.random.default_rng(0)
    write_video(path, rng.integers(0, 256, (12, HEIGHT, WIDTH, 3), dtype=np.uint8), 12.0)
    width, height = size or (WIDTH, HEIGHT)
    convert = RgbConverter(width, height)
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            expected = frame.to_ndarray(width=width, height=height, format="rgb24", interpolation=INTERPOLATION)
            found = convert(frame)
            assert found.shape == (height, width, 3) and found.dtype == np.uint8
            np.testing.assert_array_equal(found, expected)


@pytest.mark.parametrize("time_base", [Fraction(1, 90000), Fraction(1, 1000), Fraction(1001, 30000), Fraction(1, 25),
                                       Fraction(1, 12800), Fraction(7, 3)])
def test_stream_clock_equals_fraction_arithmetic(time_base):
    from types import SimpleNamespace

    rng = np.random.default_rng(time_base.denominator)
    for origin in (None, 0, 1234, -5000):
        clock = decode._StreamClock(SimpleNamespace(start_time=origin, time_base=time_base))
        for ticks in [0, 1, 2**40 + 3, *rng.integers(-10**6, 10**12, 200).tolist()]:
            assert clock.seconds(ticks) == float((ticks - (origin or 0)) * time_base)
            assert clock.length(ticks) == float(ticks * time_base)
        for seconds in [0.0, 0.5, 1 / 3, 123.456, *rng.uniform(0, 10**4, 50).tolist()]:
            assert clock.ticks(seconds) == (origin or 0) + int(seconds / time_base)

