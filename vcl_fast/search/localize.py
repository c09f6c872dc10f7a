"""The "localize one query against many references" seam of the search, and its default.

A pair localizer is a picklable callable ``localizer(query, references) -> boxes`` taking one query's
:class:`VideoFeatures` and a sequence of references' and returning, per reference, a float64 ``(N, 5)``
array ``[q_start, r_start, q_end, r_end, score]`` in SECONDS.

The default, :class:`MapLocalizer`, computes all the query's similarity maps in one batched
``vcl_fast.ops.similarity_maps`` call and hands them together to a map localizer ``maps -> frame boxes``:
:class:`ClassicalAligner` (a VCSL aligner, TN by default, on each map), or the YOLOX detector as
``functools.partial(vcl_fast.detect.localizer.localize_maps, run=runner, settings=settings)``, which
batches the tiles of all maps through the network.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np

from vcl_fast.data.features import VideoFeatures
from vcl_fast.eval.localizers import LocalizerParams, get_localizer, localizer_params

PairLocalizer = Callable[[VideoFeatures, Sequence[VideoFeatures]], list[np.ndarray]]
MapsLocalizer = Callable[[Sequence[np.ndarray]], list[np.ndarray]]


@dataclasses.dataclass(frozen=True)
class ClassicalAligner:
    """Map localizer: ``method`` (hv, tn, dp, dtw) with ``params`` (None = its VCSL-tuned preset) on each
    ``(Q, R)`` map -> ``(N, 5)`` float32 boxes in frames, exclusive ends."""

    method: str = "tn"
    params: LocalizerParams | None = None

    def __post_init__(self) -> None:
        if self.params is None:
            object.__setattr__(self, "params", localizer_params(self.method))
        elif type(self.params) is not type(get_localizer(self.method).preset):
            raise TypeError(f"{self.method} needs {type(get_localizer(self.method).preset).__name__} parameters, "
                            f"got {type(self.params).__name__}")

    def __call__(self, maps: Sequence[np.ndarray]) -> list[np.ndarray]:
        run = get_localizer(self.method).run
        return [run(sim, self.params) for sim in maps]


def frame_edges(video: VideoFeatures) -> np.ndarray:
    """``(L + 1,)`` float64 seconds: frame ``i`` spans ``[edges[i], edges[i + 1])``; the last lasts 1 / fps."""
    return np.append(video.timestamps, video.timestamps[-1] + 1.0 / video.fps) if video.num_frames else np.zeros(1)


def frames_to_seconds(boxes: np.ndarray, query: VideoFeatures, reference: VideoFeatures) -> np.ndarray:
    """``(N, 5)`` boxes in (fractional) frames, exclusive ends -> seconds on each video's own timeline.

    Frame positions are interpolated linearly between the frame edges, so with timestamps ``i / fps``
    this is ``frames / fps``. The score column is unchanged. Returns float64.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 5)
    q_edges, r_edges = frame_edges(query), frame_edges(reference)
    q_grid, r_grid = np.arange(len(q_edges)), np.arange(len(r_edges))
    out = boxes.copy()
    out[:, [0, 2]] = np.interp(boxes[:, [0, 2]], q_grid, q_edges)
    out[:, [1, 3]] = np.interp(boxes[:, [1, 3]], r_grid, r_edges)
    return out


class MapLocalizer:
    """Pair localizer: one batched similarity-map call for the query vs all references, then
    ``localize_maps`` on all maps at once (default: ``ClassicalAligner()``, TN)."""

    def __init__(self, localize_maps: MapsLocalizer | None = None):
        self.localize_maps = localize_maps if localize_maps is not None else ClassicalAligner()

    def __call__(self, query: VideoFeatures, references: Sequence[VideoFeatures]) -> list[np.ndarray]:
        from vcl_fast.ops import similarity_maps

        if not references:
            return []
        dtype = references[0].features.dtype
        maps = similarity_maps(query.features.astype(dtype, copy=False), [r.features for r in references])
        boxes = self.localize_maps(maps)
        return [frames_to_seconds(b, query, r) for b, r in zip(boxes, references)]
