"""What the inference code needs to know about a model besides its weights: input sizes, preprocessing,
output layout. Exported models carry these in their manifest; torch models derive them from their config."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ExtractorSpec:
    """Frame feature extractor: RGB frames are resized to ``input_size`` x ``input_size`` (squashed, no crop),
    scaled to [0, 1] and normalised by ``mean``/``std`` per channel; the model maps (B, 3, S, S) float32 to
    (B, ``num_tokens``, ``dim``) float32 unit vectors (regional tokens first, CLS last). The runtimes set the
    features of blank frames to zero (:func:`vcl_fast.runtime.preprocess.blank_images`)."""

    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    num_tokens: int
    dim: int

    def __post_init__(self) -> None:
        if self.input_size < 1 or self.num_tokens < 1 or self.dim < 1:
            raise ValueError(f"input_size, num_tokens and dim must be >= 1, got {self}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError(f"mean and std need 3 values (RGB), std > 0, got {self.mean}, {self.std}")
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))

    def to_dict(self) -> dict:
        return asdict(self)


# The post-processing settings calibrated per extractor (``DetectionSettings``) that an exported detector carries,
# with their defaults (off).
CALIBRATED_FIELDS = {"min_similarity": -1.0, "extent_similarity": -1.0, "confident_similarity": -1.0,
                     "confident_score": 1.0, "transpose_fusion_iou": -1.0, "query_margin": 0.0,
                     "reference_margin": 0.0, "merge_overlap": -1.0}
# How a detector cuts long maps into tiles (``DetectionSettings``): the map sizes it was trained on, carried in an
# exported detector's manifest, with their defaults (the paper's disjoint 1,200-frame chunks).
TILING_FIELDS = {"chunk_length": 1200, "chunk_overlap": 0}
SHARE_FIELDS = ("transpose_fusion_iou", "merge_overlap")  # shares in (0, 1], or -1 (off)
MARGIN_FIELDS = ("query_margin", "reference_margin")
MAX_MARGIN = 10.0  # frames


def check_calibrated(settings) -> None:
    """ValueError unless the ``CALIBRATED_FIELDS`` attributes of ``settings`` are cosines in [-1, 1], a score
    in [0, 1], shares (an IoU, an overlap) in (0, 1] or -1 (off) and margins in [-``MAX_MARGIN``, ``MAX_MARGIN``]
    frames."""
    for name in CALIBRATED_FIELDS:
        value = getattr(settings, name)
        if name in MARGIN_FIELDS:
            if not -MAX_MARGIN <= value <= MAX_MARGIN:
                raise ValueError(f"{name} is a number of frames in [-{MAX_MARGIN:g}, {MAX_MARGIN:g}], got {value}")
            continue
        if name in SHARE_FIELDS:
            if not (value == -1.0 or 0.0 < value <= 1.0):
                raise ValueError(f"{name} is a share in (0, 1] or -1 (off), got {value}")
            continue
        low = 0.0 if name == "confident_score" else -1.0
        if not low <= value <= 1.0:
            kind = "a detector score in [0, 1]" if low == 0.0 else "a cosine in [-1, 1]"
            raise ValueError(f"{name} is {kind}, got {value}")


def check_tiling(settings) -> None:
    """ValueError unless ``settings.chunk_length`` is an int >= 1 and ``settings.chunk_overlap`` an int in
    [0, chunk_length)."""
    length, overlap = settings.chunk_length, settings.chunk_overlap
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (length, overlap)) or length < 1 \
            or not 0 <= overlap < length:
        raise ValueError(f"chunk_length must be an int >= 1 and chunk_overlap an int in [0, chunk_length), got "
                         f"{length!r} and {overlap!r} (a shorter chunk_length needs its own chunk_overlap below it)")


@dataclass(frozen=True)
class DetectorSpec:
    """Copy detector: (B, 3, ``input_size``, ``input_size``) float32 rendered similarity maps -> raw YOLOX head
    outputs (B, A, 5 + ``num_classes``) over feature levels ``strides``. ``min_similarity``,
    ``extent_similarity``, ``confident_similarity`` and ``confident_score``: the cosine floor, the extent-fit
    cosine and the lower floor of confident detections calibrated for the extractor the detector was trained
    with; ``transpose_fusion_iou``: the IoU at which boxes of the map and of its transpose are fused (the
    defaults of ``DetectionSettings``; -1 = none); ``query_margin``, ``reference_margin``: the frames added to
    each end of a box on either axis (0 = none); ``merge_overlap``: the share of the smaller of two overlapping
    boxes from which they merge into one (-1 = none); ``chunk_length``, ``chunk_overlap``: the tiles long maps are
    cut into, in frames (the paper's by default)."""

    input_size: int
    strides: tuple[int, ...]
    num_classes: int
    min_similarity: float = -1.0
    extent_similarity: float = -1.0
    confident_similarity: float = -1.0
    confident_score: float = 1.0
    transpose_fusion_iou: float = -1.0
    query_margin: float = 0.0
    reference_margin: float = 0.0
    merge_overlap: float = -1.0
    chunk_length: int = 1200
    chunk_overlap: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "strides", tuple(int(s) for s in self.strides))
        if self.input_size < 1 or self.num_classes < 1 or not self.strides:
            raise ValueError(f"input_size and num_classes must be >= 1 and strides non-empty, got {self}")
        check_calibrated(self)
        check_tiling(self)

    @property
    def num_anchors(self) -> int:
        return sum((self.input_size // s) ** 2 for s in self.strides)

    def to_dict(self) -> dict:
        return asdict(self)
