"""Sampling by timestamp: the frame on screen at time ``t`` is the last frame whose presentation time is
``<= t``; times before the first frame show the first frame and the last frame stays on screen until the
end of the video. A video of ``end`` seconds sampled at ``fps`` gives the times ``i / fps < end``.

``select_frames`` is the plain reference; ``TimestampSampler`` applies the same rule incrementally to
frames arriving in display order, so a decoder never holds more than one frame.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

# Two times closer than this (seconds) are equal: frame times and i / fps are rounded in different ways.
TIME_TOLERANCE = 1e-6


def num_samples(end: float, fps: float) -> int:
    """Number of sample times ``i / fps`` before ``end`` seconds (at least 1 when ``end > 0``)."""
    if not end > 0:
        return 0
    return max(1, math.ceil((end - TIME_TOLERANCE) * fps))


def sample_times(end: float, fps: float) -> np.ndarray:
    """Sample times ``i / fps`` (float64 seconds, shape ``(num_samples(end, fps),)``)."""
    return np.arange(num_samples(end, fps), dtype=np.float64) / fps


def select_frames(frame_times: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Reference rule: index of the frame on screen at each time.

    frame_times: ``(N,)`` presentation times in seconds, non-decreasing, ``N >= 1``.
    times: ``(L,)`` seconds. Returns ``(L,)`` int64 indices into ``frame_times``.
    """
    frame_times = np.asarray(frame_times, dtype=np.float64)
    if frame_times.ndim != 1 or frame_times.size == 0:
        raise ValueError(f"frame_times must be a non-empty 1-D array, got shape {frame_times.shape}")
    shown = np.searchsorted(frame_times, np.asarray(times, dtype=np.float64) + TIME_TOLERANCE, side="right") - 1
    return np.maximum(shown, 0).astype(np.int64)


class TimestampSampler:
    """Incremental :func:`select_frames`: push frames in display order, get the samples each one completes.

    A sample at time ``t`` is complete once a frame later than ``t`` arrives (or the video ends), and it
    shows the frame held before that one. Payloads are opaque (decoded frames, file names, ...). After
    :meth:`finish`, ``end`` is the time the video ends (seconds).
    """

    def __init__(self, fps: float):
        self.fps = fps
        self.next_index = 0  # index i of the next sample time i / fps to emit
        self.held: tuple[float, Any] | None = None  # (time, payload) of the last frame pushed
        self.end: float | None = None  # set by finish()

    @property
    def next_time(self) -> float:
        return self.next_index / self.fps

    def push(self, time: float, payload: Any) -> list[tuple[float, Any]]:
        """Add the next frame (``time`` in seconds); return the ``(t, payload)`` samples it completes."""
        done = self._emit_before(time, self.held[1]) if self.held is not None else []
        self.held = (time, payload)
        return done

    def finish(self, end: float) -> list[tuple[float, Any]]:
        """The video ends at ``end`` seconds: return the remaining samples (all show the last frame)."""
        self.end = end
        if self.held is None:
            return []
        done = self._emit_before(end, self.held[1])
        if self.next_index == 0:  # a video shorter than the tolerance still shows its one frame
            done.append((0.0, self.held[1]))
            self.next_index = 1
        return done

    def drop_held(self) -> None:
        """Forget the held frame (decoding restarts from an earlier point of the video)."""
        self.held = None

    def _emit_before(self, time: float, payload: Any) -> list[tuple[float, Any]]:
        """The samples due before ``time``: they show ``payload``, the held frame's."""
        done = []
        while self.next_time + TIME_TOLERANCE < time:
            done.append((self.next_time, payload))
            self.next_index += 1
        return done
