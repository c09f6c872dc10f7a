"""Reading videos as frames sampled at a fixed rate by timestamp (PyAV).

Sample ``i`` is the frame on screen at ``i / fps`` seconds from the start of the video stream (see
:mod:`vcl_fast.video.sampling`), so variable frame rates, duplicated and dropped frames are handled through
the presentation timestamps. Audio is ignored. Directories are read as image sequences
(:mod:`vcl_fast.video.image_folder`).

With ``seek=True`` a first pass reads the packet headers (no decoding) to find the keyframes and the display
time of every packet; decoding then seeks over every group of pictures (GOP) that holds no sample, which pays
when the sampling interval is longer than the GOP, and does not decode the non-reference frames (no other
frame is predicted from them) that no sample shows, which pays whatever the GOP (bench/README.md, "Video
decoding"). The frames returned are those of ``seek=False``, which decodes every frame in order; a damaged
frame that no sample shows may then go unnoticed.
"""
from __future__ import annotations

import bisect
import contextlib
import math
import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np

from vcl_fast.video import image_folder
from vcl_fast.video._pyav import (RgbConverter, check_draft_arg, check_size_arg, draft_size, existing_path, open_input,
                                  output_size, video_stream)
from vcl_fast.video.records import DecodedFrames, VideoDamageWarning, VideoDecodeError, VideoInfo
from vcl_fast.video.sampling import TIME_TOLERANCE, TimestampSampler, sample_times, select_frames

if TYPE_CHECKING:
    import av

# A video whose frames end this much before the length its header declares is reported as truncated.
TRUNCATION_SLACK_S = 1.0
TRUNCATION_SLACK_FRACTION = 0.05

# Containers whose packets carry the presentation time of the one frame each holds (FFmpeg format names). An
# AVI only stores decoding order, and DivX files pack two frames in a packet, so the packet a frame comes from
# is not known there, and no frame is skipped.
TIMESTAMPED_FORMATS = frozenset({"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm"})

_frame_counters: list[list[int]] = []  # open count_decoded_frames() blocks


@contextlib.contextmanager
def count_decoded_frames() -> Iterator[list[int]]:
    """Count the frames the decoder produces inside the block, in ``counter[0]`` (the cost of a read that
    does not depend on the machine's load; for tests and benchmarks)."""
    counter = [0]
    _frame_counters.append(counter)
    try:
        yield counter
    finally:
        _frame_counters.remove(counter)


def probe(source: str | os.PathLike, *, image_fps: float | None = None) -> VideoInfo:
    """Header facts about a video file or image folder, without decoding.

    image_fps: for a folder, the rate its images were taken at (frames per second); None gives nan
    ``fps`` and ``duration``.
    """
    path = existing_path(source)
    if path.is_dir():
        return image_folder.probe_images(path, image_fps)
    with open_input(path) as container:
        return _stream_info(path, container, video_stream(path, container))


def iter_frames(
    source: str | os.PathLike,
    fps: float = 1.0,
    size: None | int | tuple[int, int] = None,
    *,
    chunk_size: int = 64,
    seek: bool = True,
    strict: bool = True,
    image_fps: float | None = None,
    draft: int | None = None,
) -> Iterator[DecodedFrames]:
    """Stream a video as chunks of at most ``chunk_size`` frames sampled at ``fps`` (bounded memory).

    source: a video file (anything FFmpeg reads: mp4, mkv, avi, webm, gif, ...) or a folder of images.
    size: None keeps the source size, an int sets the short side (aspect kept), ``(w, h)`` sets both (as shown).
    Frames come upright: a picture the file says to show turned or mirrored (phone videos, images with an EXIF
    orientation: :func:`~vcl_fast.video.image_folder.exif_matrix`) is turned as FFmpeg's players turn it
    (:func:`~vcl_fast.video._pyav.upright`).
    seek: do not decode what no sample shows: GOPs (by seeking) and non-reference frames (False: decode every
    frame in order; the samples are the same).
    strict: raise on corrupt data and on truncated files; False keeps what was decoded up to the damage.
    image_fps: for a folder, the rate its images were taken at; default ``fps`` (one sample per image).
    draft: the frames are only needed at ``draft`` pixels or more per side: the decoders that can (MPEG-1/2/4,
    MS-MPEG-4, H.263, MJPEG...: :func:`~vcl_fast.video._pyav.draft_options`) then decode at 1/2, 1/4 or 1/8 of the
    size (faster; a few grey levels off once resized to ``draft``), and with ``size=None`` frames come at that
    size, halved again while above ``DRAFT_MAX_PIXELS`` (1920x1080; a 4K video's frames then take a quarter of
    the memory) and both sides stay >= ``draft`` (:func:`~vcl_fast.video._pyav.draft_size`). Other codecs are
    decoded whole, then resized by that rule alone; images in a folder are read as with None.
    Each chunk is a :class:`DecodedFrames`; chunks follow each other without gaps, and the last one carries the
    time the video ends (``end``; a full chunk is held until the next sample is decoded, so that the last one is
    known). Raises VideoDecodeError (a ValueError) naming the file when it cannot be read.
    """
    _check_sampling_args(fps, chunk_size)
    check_size_arg(size)
    check_draft_arg(draft)
    path = existing_path(source)
    sampler = None  # a video file's; it holds the video's end once its samples are exhausted
    if path.is_dir():
        info, samples = image_folder.sample_images(path, fps, size, fps if image_fps is None else image_fps)
    else:
        info = probe(path)
        if size is None and draft is not None:
            width, height = draft_size(info.codec, info.width, info.height, draft)
        else:
            width, height = output_size(info.width, info.height, size)
        sampler = TimestampSampler(fps)
        exif = None
        if path.suffix.lower() in image_folder.IMAGE_SUFFIXES:
            exif = image_folder.exif_matrix(path)
            if image_folder.damaged_jpeg(path):
                image_folder.warn_damaged_images(path, [path.name], 1)
        samples = _rgb_samples(path, _sample_video(path, sampler, seek, strict, draft), width, height,
                               shown=isinstance(size, (tuple, list)), matrix=exif)
    times: list[float] = []
    images: list[np.ndarray] = []
    for time, image in samples:
        if len(images) == chunk_size:  # not the last chunk: another sample follows
            yield DecodedFrames(np.stack(images), np.asarray(times, dtype=np.float64), float(fps), info)
            times, images = [], []
        times.append(time)
        images.append(image)
    if images:
        end = info.duration if sampler is None else sampler.end  # a folder lasts num_images / image_fps
        end = min(end, times[-1] + 1 / fps) if end is not None and end > times[-1] else None
        yield DecodedFrames(np.stack(images), np.asarray(times, dtype=np.float64), float(fps), info, end)


def read_frames(
    source: str | os.PathLike,
    fps: float = 1.0,
    size: None | int | tuple[int, int] = None,
    *,
    seek: bool = True,
    strict: bool = True,
    image_fps: float | None = None,
    draft: int | None = None,
) -> DecodedFrames:
    """A whole video sampled at ``fps``: ``frames`` ``(L, H, W, 3)`` uint8 RGB, ``timestamps`` ``(L,)``.

    Same arguments as :func:`iter_frames`; ``L >= 1`` for any readable video.
    """
    (whole,) = iter_frames(source, fps, size, chunk_size=sys.maxsize, seek=seek, strict=strict, image_fps=image_fps,
                           draft=draft)
    return whole


def _check_sampling_args(fps: float, chunk_size: int) -> None:
    if isinstance(fps, bool) or not isinstance(fps, (int, float, np.integer, np.floating)):
        raise TypeError(f"fps must be a number of frames per second, got {type(fps).__name__}")
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive finite number of frames per second, got {fps}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")


def _stream_info(path: Path, container, stream) -> VideoInfo:
    rate = stream.average_rate or stream.guessed_rate
    return VideoInfo(
        path=str(path),
        width=int(stream.codec_context.width),
        height=int(stream.codec_context.height),
        fps=float(rate) if rate else math.nan,
        duration=_declared_duration(container, stream),
        codec=stream.codec_context.name,
    )


def _declared_duration(container, stream) -> float:
    """Length of the video stream in seconds according to the header (nan when it does not say).

    The longest of the stream's duration and its frame count over its average rate (an AVI without
    its index only has the latter right); the container's duration counts when the video is its one stream.
    """
    declared = []
    if stream.duration:
        declared.append(float(stream.duration * stream.time_base))
    if stream.frames and stream.average_rate:
        declared.append(stream.frames / float(stream.average_rate))
    if not declared and container.duration and len(container.streams) == 1:
        declared.append(container.duration / 1_000_000)  # AV_TIME_BASE
    return max(declared, default=math.nan)


def _rgb_samples(path: Path, samples, width: int, height: int, shown: bool,
                 matrix: np.ndarray | None = None) -> Iterator[tuple[float, np.ndarray]]:
    """Convert the sampled frames of ``path`` to upright RGB arrays (:class:`~vcl_fast.video._pyav.RgbConverter`)
    by ``matrix`` (an image file's EXIF orientation), else by each frame's own; a frame shown at several times is
    converted once. Once the samples end, a :class:`VideoDamageWarning` says how many showed damaged frames."""
    to_rgb = RgbConverter(width, height, shown)
    last_frame = None
    last_image: np.ndarray  # converted at the first sample (a frame is never None)
    damaged: list[float] = []
    count = 0
    for time, frame in samples:
        if frame is not last_frame:
            last_frame, last_image = frame, to_rgb(frame, matrix)
        if frame.is_corrupt:
            damaged.append(time)
        count += 1
        yield time, last_image
    if damaged:
        warnings.warn(VideoDamageWarning(
            f"{path}: damaged video data: FFmpeg concealed decoding errors in the frames of {len(damaged)} of "
            f"{count} samples, at {damaged[0]:.2f}" + (f"-{damaged[-1]:.2f}" if len(damaged) > 1 else "") +
            " s, and frames predicted from them may be wrong too: copies shown there may be missed"), stacklevel=2)


class _StreamClock:
    """Stream ticks -> seconds from the stream start: ``(ticks - origin) * time_base`` as the nearest float, in
    integer arithmetic (the same value as through ``fractions.Fraction``, at a fraction of the cost per packet)."""

    def __init__(self, stream):
        self.origin = stream.start_time or 0
        self.numerator = stream.time_base.numerator
        self.denominator = stream.time_base.denominator

    def seconds(self, ticks: int) -> float:
        return (ticks - self.origin) * self.numerator / self.denominator

    def length(self, ticks: int) -> float:
        """A duration of ``ticks`` in seconds."""
        return ticks * self.numerator / self.denominator

    def ticks(self, seconds: float) -> int:
        """The stream timestamp of ``seconds`` from the start (rounded down)."""
        return self.origin + int(seconds / (self.numerator / self.denominator))


class _PacketIndex:
    """What one pass over a video stream's packet headers tells before decoding (no frame is decoded).

    keyframe_times: sorted seconds from the stream start of the keyframes (where a seek can land).
    frame_times: sorted display seconds of every packet, or None unless the container is one of
    ``TIMESTAMPED_FORMATS``, every packet has a presentation timestamp and no two share one.
    """

    def __init__(self, keyframe_times: list[float], frame_times: list[float] | None):
        self.keyframe_times = sorted(keyframe_times)
        self.frame_times = None if frame_times is None else np.sort(np.asarray(frame_times, dtype=np.float64))

    @classmethod
    def read(cls, path: Path) -> "_PacketIndex | None":
        """Index ``path``'s first video stream; None when the packets cannot be read (decoding will say why)."""
        import av

        with open_input(path) as container:
            stream = video_stream(path, container)
            clock = _StreamClock(stream)
            timestamped = container.format.name in TIMESTAMPED_FORMATS
            keyframes, frames, complete = [], [], True
            try:
                for packet in container.demux(stream):
                    if packet.size == 0:  # the flush packet at the end
                        continue
                    pts = packet.pts
                    if pts is None:
                        complete = False
                    else:
                        frames.append(clock.seconds(pts))
                    ts = pts if pts is not None else packet.dts
                    if packet.is_keyframe and ts is not None:
                        keyframes.append(clock.seconds(ts))
            except av.FFmpegError:
                return None
        if not keyframes:
            return None
        listed = timestamped and complete and len(set(frames)) == len(frames)
        return cls(keyframes, frames if listed else None)

    def worth_seeking(self, position: float, target: float) -> bool:
        """True when a whole GOP lies between the decoded ``position`` and the keyframe before ``target``."""
        target_gop = bisect.bisect_right(self.keyframe_times, target + TIME_TOLERANCE) - 1
        return target_gop > bisect.bisect_right(self.keyframe_times, position)

    def shown_times(self, fps: float) -> frozenset[float] | None:
        """Display times (seconds) of the frames some sample at ``fps`` shows, and of the last two frames (the
        end of the video and its last frame interval are read from them); None when ``frame_times`` is."""
        if self.frame_times is None:
            return None
        times = self.frame_times
        shown = select_frames(times, sample_times(float(times[-1]) + TIME_TOLERANCE, fps))
        return frozenset(times[shown].tolist()) | frozenset(times[-2:].tolist())


class _IndexUnusable(Exception):
    """A seek raised or landed after the wanted time, or a decoded frame's time is not one the packet index
    lists: decode every frame in order instead."""


def _sample_video(path: Path, sampler: TimestampSampler, seek: bool, strict: bool, draft: int | None
                  ) -> Iterator[tuple[float, "av.VideoFrame"]]:
    """``(t, frame)`` for every sample time ``t = i / sampler.fps`` of a video file, in order (a new
    ``sampler``; it holds the video's end once the samples are exhausted)."""
    index = _PacketIndex.read(path) if seek else None
    try:
        yield from _decode_samples(path, sampler, index, strict, draft)
    except _IndexUnusable:
        sampler.drop_held()
        yield from _decode_samples(path, sampler, None, strict, draft)


def _decode_samples(path: Path, sampler: TimestampSampler, index: _PacketIndex | None, strict: bool,
                    draft: int | None):
    """Decode ``path`` from the start, feed ``sampler`` and yield the samples it completes. With ``index``,
    seek over GOPs without samples and do not decode the non-reference frames no sample shows."""
    import av

    with open_input(path) as container:
        stream = video_stream(path, container, draft)
        clock = _StreamClock(stream)
        rate = stream.guessed_rate or stream.average_rate
        default_interval = 1.0 / float(rate) if rate else 0.0
        shown = listed = None
        if index is not None and index.frame_times is not None:
            shown = index.shown_times(sampler.fps)
            listed = frozenset(index.frame_times.tolist())
        frames = _decode_times(path, container, stream, clock, default_interval, strict, shown)
        seeked_from = None  # decoded time before the last seek, until the first frame after it arrives
        seeked_for = -1  # the sample the last seek went to: seek at most once per sample
        last_time, last_interval, last_duration = None, default_interval, 0.0
        while (item := next(frames, None)) is not None:
            time, frame, duration = item
            if listed is not None and (time not in listed or (last_time is not None and time <= last_time)):
                raise _IndexUnusable  # the frames are not the packets in display order: skipping is unsafe
            if seeked_from is not None:
                if time > sampler.next_time + TIME_TOLERANCE:
                    raise _IndexUnusable
                if time < seeked_from:  # landed before where it started: seeking does not pay here
                    index = None
                seeked_from = None
            if last_time is not None and time > last_time:
                last_interval = time - last_time
            last_time, last_duration = time, duration
            yield from sampler.push(time, frame)
            if (index is not None and sampler.next_index != seeked_for
                    and index.worth_seeking(time, sampler.next_time)):
                frames.close()
                try:
                    container.seek(clock.ticks(sampler.next_time), stream=stream)
                except av.FFmpegError:
                    raise _IndexUnusable from None
                sampler.drop_held()
                seeked_from, seeked_for, last_time = time, sampler.next_index, None
                frames = _decode_times(path, container, stream, clock, default_interval, strict, shown)
        if seeked_from is not None:  # the seek landed past the last frame
            raise _IndexUnusable
        if last_time is None:
            raise VideoDecodeError(path, "no decodable video frames (corrupt or truncated file)")
        end = last_time + (last_duration if last_duration > 0 else last_interval)
        declared = _declared_duration(container, stream)
        if strict and end < declared - max(TRUNCATION_SLACK_S, TRUNCATION_SLACK_FRACTION * declared):
            raise VideoDecodeError(
                path, f"truncated: video frames end at {end:.2f} s but the header says {declared:.2f} s "
                "(strict=False reads what is there)")
        yield from sampler.finish(end)


def _decode_times(path: Path, container, stream, clock: _StreamClock, default_interval: float, strict: bool,
                  shown: frozenset[float] | None = None):
    """Decode from the container's current position: ``(time_s, frame, duration_s)`` in display order.

    shown: display times (seconds) of the frames wanted; the decoder skips the non-reference frames of the
    other packets (no other frame is predicted from them). None decodes every packet.
    """
    import av

    context = stream.codec_context
    skipping = None  # the decoder's skip_frame setting, set only when it changes
    time = None
    try:
        for packet in container.demux(stream):
            if shown is not None and packet.pts is not None:
                skip = "DEFAULT" if clock.seconds(packet.pts) in shown else "NONREF"
                if skip != skipping:
                    context.skip_frame = skipping = skip
            for frame in packet.decode():
                ts = frame.pts if frame.pts is not None else frame.dts
                if ts is not None:
                    time = clock.seconds(ts)
                else:
                    time = 0.0 if time is None else time + default_interval
                for counter in _frame_counters:
                    counter[0] += 1
                yield time, frame, clock.length(frame.duration) if frame.duration else 0.0
    except av.FFmpegError as exc:
        if strict:
            where = f"after {time:.2f} s" if time is not None else "at the start"
            raise VideoDecodeError(path, f"corrupt video data {where} ({exc.strerror})") from None
