"""Training configuration of the detector: one dataclass and its named presets; ``train_config`` applies
overrides (``batch_size=8``; the parts with dots: ``model.width=0.25``, ``augment.crop_prob=0``)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from vcl_fast.config import config_from_dict, preset
from vcl_fast.data.map_augment import MapAugmentation
from vcl_fast.models.yolox import MODEL_PRESETS, YOLOXConfig


@dataclass(frozen=True)
class DetectorTrainConfig:
    """SGD (momentum 0.9, Nesterov) with lr = ``basic_lr_per_img`` x batch, quadratic warm-up then cosine
    decay to ``min_lr_ratio`` x lr, fixed for the last ``no_aug_epochs`` (no augmentation, L1 loss on), as in
    the reference YOLOX recipe; weight decay on conv weights only (not BN, not biases); EMA of the weights
    (decay ``ema_decay * (1 - exp(-updates / ema_ramp))``) is what gets evaluated and saved."""

    model: YOLOXConfig = field(default_factory=YOLOXConfig)
    augment: MapAugmentation = field(default_factory=MapAugmentation)
    batch_size: int = 64
    epochs: int = 50
    warmup_epochs: int = 5
    no_aug_epochs: int = 5
    basic_lr_per_img: float = 0.01 / 64
    warmup_lr: float = 0.0
    min_lr_ratio: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    ema_decay: float = 0.9998
    ema_ramp: float = 2000.0
    seed: int = 0
    workers: int = 0  # DataLoader worker processes (0: load in the training process)
    threads: int = 0  # torch CPU threads (0: torch's default)
    amp: bool = True  # float16 autocast + gradient scaling on CUDA (ignored on CPU)
    device: str = "auto"  # "auto" (CUDA when available), "cpu", "cuda", "cuda:1", ...
    checkpoint_every: int = 200  # also checkpoint every this many iterations (0: at epoch ends only)

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.epochs < 1:
            raise ValueError(f"batch_size and epochs must be >= 1, got {self.batch_size}, {self.epochs}")
        if not 0 <= self.warmup_epochs <= self.epochs or not 0 <= self.no_aug_epochs <= self.epochs:
            raise ValueError(f"warmup_epochs and no_aug_epochs must lie in [0, epochs={self.epochs}], got "
                             f"{self.warmup_epochs}, {self.no_aug_epochs}")
        if self.basic_lr_per_img <= 0 or not 0 <= self.min_lr_ratio <= 1 or not 0 <= self.ema_decay < 1:
            raise ValueError("basic_lr_per_img must be > 0, min_lr_ratio in [0, 1] and ema_decay in [0, 1)")
        if self.workers < 0 or self.threads < 0 or self.checkpoint_every < 0 or self.ema_ramp <= 0:
            raise ValueError("workers, threads and checkpoint_every must be >= 0 and ema_ramp > 0")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "DetectorTrainConfig":
        return config_from_dict(cls, values)


TRAIN_PRESETS: dict[str, DetectorTrainConfig] = {
    # The paper's recipe (SGD 0.9, batch 64, lr 0.01, wd 5e-4) on YOLOX-s at 640; the epoch counts are ours.
    "paper": DetectorTrainConfig(model=MODEL_PRESETS["paper"]),
    # A few minutes on 2 CPU cores: narrow YOLOX at 256, small batches, a short schedule with 4x the
    # reference per-image learning rate (0.01 at batch 16), short EMA ramp (bench/README.md, "Detector").
    "tiny_cpu": DetectorTrainConfig(model=MODEL_PRESETS["tiny_cpu"], batch_size=16, epochs=6, warmup_epochs=1,
                                    no_aug_epochs=1, basic_lr_per_img=0.04 / 64, ema_ramp=200.0, threads=1),
    # Unit tests.
    "micro": DetectorTrainConfig(model=MODEL_PRESETS["micro"], batch_size=4, epochs=2, warmup_epochs=1,
                                 no_aug_epochs=1, ema_ramp=10.0, threads=1, checkpoint_every=0),
}


def train_config(name: str, overrides: Mapping[str, Any] | Iterable[str] | None = None) -> DetectorTrainConfig:
    """The named training preset with overrides (``{"batch_size": 8}`` or ``["model.width=0.25"]``)."""
    return preset(TRAIN_PRESETS, name, overrides)
