"""The "localize one query against many references" seam of the search, and its two implementations.

A pair localizer is a picklable callable ``localizer(query, references) -> boxes`` taking one query's
:class:`VideoFeatures` and a sequence of references' and returning, per reference, a float64 ``(N, 5)``
array ``[q_start, r_start, q_end, r_end, score]`` in SECONDS.

- :class:`LocalizerPairs`: ``vcl_fast.api.Localizer.localize_many`` (YOLOX detector or a classical method;
  one batched similarity-map call and one batched detector pass over all the candidates' maps). It needs
  the Localizer's models (an extractor at least, as the Localizer loads one).
- :class:`MapLocalizer`: the model-free path for libraries of precomputed features: the same batched
  ``vcl_fast.ops.similarity_maps`` call, then a map localizer ``maps -> frame boxes`` on all maps at once,
  :class:`ClassicalAligner` (a VCSL aligner, TN by default) unless another is given.
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
        return [_seconds(b, query, r) for b, r in zip(boxes, references)]


class LocalizerPairs:
    """Pair localizer: ``Localizer.localize_many(query, references)`` (one batched similarity call, one
    batched detector or classical pass) of the Localizer ``spec`` (a LocalizerSpec) describes."""

    def __init__(self, spec):
        self.spec = spec
        self._localizer = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_localizer": None}

    def load(self):
        """The Localizer (built once; raises when its models or settings are wrong)."""
        if self._localizer is None:
            self._localizer = self.spec.build()
        return self._localizer

    def __call__(self, query: VideoFeatures, references: Sequence[VideoFeatures]) -> list[np.ndarray]:
        if not references:
            return []
        return [result.boxes() for result in self.load().localize_many(query, list(references))]


def _seconds(boxes: np.ndarray, query: VideoFeatures, reference: VideoFeatures) -> np.ndarray:
    """(N, 5) frame boxes (exclusive ends) -> seconds on each video's timestamps (``api.frames_to_seconds``)."""
    from vcl_fast.api import frames_to_seconds

    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 5).copy()
    if len(boxes):
        boxes[:, [0, 2]] = frames_to_seconds(boxes[:, [0, 2]], query)
        boxes[:, [1, 3]] = frames_to_seconds(boxes[:, [1, 3]], reference)
    return boxes
