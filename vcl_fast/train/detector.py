"""Training the YOLOX detector on similarity maps (self-supervised pairs, or human labels for fine-tuning).

Data: any dataset indexing to ``MapSample(sim, boxes)`` (``vcl_fast.data.map_dataset``: an on-disk
directory of .npz samples or an in-memory list). Each sample is augmented (``vcl_fast.data.map_augment``)
except in the last ``no_aug_epochs``, rendered exactly as at inference (``vcl_fast.detect.render``) and its
boxes converted to input pixels (x = reference axis, y = query axis).

Determinism: the sample order of epoch e comes from ``(seed, e)``, the augmentation of sample i in epoch e
from ``(seed, e, i)``, the initial weights from ``seed``; nothing depends on how often training was resumed.
``out/checkpoint.pt`` (model, EMA, optimizer, scaler, position) is written atomically at every epoch end and
every ``checkpoint_every`` iterations; a run started again with the same config (``workers``, ``threads``,
``device`` and ``checkpoint_every`` may differ), data and ``out`` continues from it. The result, ``out/model.safetensors`` + ``out/config.json``, holds the EMA weights.

On CUDA, ``amp`` trains in float16 autocast with gradient scaling; under ``torchrun`` (WORLD_SIZE > 1) the
model is wrapped in DistributedDataParallel and every global batch is split across the processes.
"""
from __future__ import annotations

import copy
import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from vcl_fast.atomic import atomic_save
from vcl_fast.data.map_augment import MapAugmentation, augment_sample
from vcl_fast.data.map_dataset import MapSample
from vcl_fast.detect.render import render_maps
from vcl_fast.models.detector_io import load_detector, save_detector
from vcl_fast.models.yolox import YOLOX, YOLOXEnsemble, build_yolox
from vcl_fast.train.detector_config import DetectorTrainConfig
from vcl_fast.train.yolox_loss import YOLOXLoss

CHECKPOINT_FILE = "checkpoint.pt"
RUNTIME_FIELDS = ("workers", "threads", "device", "checkpoint_every")  # may change when resuming
LOSS_NAMES = ("loss", "iou", "obj", "cls", "l1")


def boxes_to_pixels(boxes: np.ndarray, shape: tuple[int, int], input_size: int) -> np.ndarray:
    """(N, 4) ``[q_start, r_start, q_end, r_end]`` frames of a (Q, R) map -> (N, 4) float32 ``[cx, cy, w, h]``
    in the S x S input (x = reference axis, y = query axis)."""
    q_scale, r_scale = input_size / shape[0], input_size / shape[1]
    b = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    x1, x2, y1, y2 = b[:, 1] * r_scale, b[:, 3] * r_scale, b[:, 0] * q_scale, b[:, 2] * q_scale
    return np.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], axis=1).astype(np.float32)


class RenderedMaps(torch.utils.data.Dataset):
    """Training view of a map dataset. Keys are ``(epoch, index, augment)``; an item is
    ``(image float32 (3, S, S), boxes float32 (N, 4) [cx, cy, w, h] pixels)``."""

    def __init__(self, maps, input_size: int, augmentation: MapAugmentation, seed: int):
        self.maps, self.input_size, self.augmentation, self.seed = maps, input_size, augmentation, seed

    def __len__(self) -> int:
        return len(self.maps)

    def __getitem__(self, key: tuple[int, int, bool]) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, index, augment = key
        sample: MapSample = self.maps[index]
        if augment:
            sample = augment_sample(sample, np.random.default_rng([self.seed, epoch, index]), self.augmentation)
        image = render_maps([sample.sim], self.input_size)[0]
        boxes = boxes_to_pixels(sample.boxes, sample.sim.shape, self.input_size)
        return torch.from_numpy(image), torch.from_numpy(boxes)


def collate(items: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    images, boxes = zip(*items)
    return torch.stack(images), list(boxes)


def epoch_batches(num_samples: int, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """Sample indices of every global batch of ``epoch`` (a seeded shuffle; the incomplete last batch is
    dropped unless the dataset is smaller than one batch)."""
    order = np.random.default_rng([seed, epoch]).permutation(num_samples)
    if num_samples < batch_size:
        return [order]
    return [order[i:i + batch_size] for i in range(0, num_samples - batch_size + 1, batch_size)]


def learning_rate(config: DetectorTrainConfig, iteration: int, iters_per_epoch: int) -> float:
    """YOLOX's "yoloxwarmcos": quadratic warm-up, cosine decay, then ``min_lr`` for the no-aug epochs."""
    base = config.basic_lr_per_img * config.batch_size
    min_lr = base * config.min_lr_ratio
    warmup = config.warmup_epochs * iters_per_epoch
    total = config.epochs * iters_per_epoch
    no_aug = config.no_aug_epochs * iters_per_epoch
    if iteration < warmup:
        return (base - config.warmup_lr) * (iteration / warmup) ** 2 + config.warmup_lr
    if iteration >= total - no_aug:
        return min_lr
    progress = (iteration - warmup) / max(total - warmup - no_aug, 1)
    return min_lr + 0.5 * (base - min_lr) * (1 + math.cos(math.pi * progress))


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Conv/linear weights with weight decay; BatchNorm weights and all biases without."""
    decay, no_decay = [], []
    for module in model.modules():
        if isinstance(getattr(module, "bias", None), nn.Parameter):
            no_decay.append(module.bias)
        if isinstance(getattr(module, "weight", None), nn.Parameter):
            is_norm = isinstance(module, nn.modules.batchnorm._BatchNorm)
            (no_decay if is_norm else decay).append(module.weight)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


class ModelEMA:
    """Exponential moving average of a model's parameters and buffers (integer buffers are copied)."""

    def __init__(self, model: nn.Module, decay: float, ramp: float):
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay, self.ramp, self.updates = decay, ramp, 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = self.decay * (1 - math.exp(-self.updates / self.ramp))
        current = model.state_dict()
        for name, value in self.module.state_dict().items():
            if value.dtype.is_floating_point:
                value.mul_(d).add_(current[name].detach(), alpha=1 - d)
            else:
                value.copy_(current[name])


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"device={name!r} is not a torch device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={name!r} but CUDA is not available; use device=cpu or auto")
    return device


def _distributed_context(config: DetectorTrainConfig) -> tuple[torch.device, int, int]:
    """(device, rank, world size); under torchrun (WORLD_SIZE > 1) initialises the process group (NCCL on
    CUDA, one GPU per process at LOCAL_RANK; gloo on CPU)."""
    device = _resolve_device(config.device)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return device, 0, 1
    import torch.distributed as dist

    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device, dist.get_rank(), dist.get_world_size()


def _run_settings(config: DetectorTrainConfig) -> dict:
    """The config fields that define a run (everything but where and how fast it executes)."""
    return {k: v for k, v in config.to_dict().items() if k not in RUNTIME_FIELDS}


def _load_checkpoint(path: Path, config: DetectorTrainConfig, num_samples: int) -> dict:
    state = torch.load(path, map_location="cpu", weights_only=True)
    if _run_settings(DetectorTrainConfig.from_dict(state["config"])) != _run_settings(config) \
            or state["num_samples"] != num_samples:
        raise ValueError(f"{path} belongs to another run (different config or dataset size); resume with the "
                         "same settings, or use a new output directory")
    return state


def train_detector(config: DetectorTrainConfig, dataset, out_dir: str | os.PathLike,
                   init: str | os.PathLike | None = None, resume: bool = True, progress: bool = True) -> Path:
    """Train (or, with ``init`` = a model directory or reference ``.pth``, fine-tune) a detector on
    ``dataset`` and save the EMA model to ``out_dir``; returns ``out_dir``."""
    from tqdm import tqdm

    out_dir = Path(out_dir)
    if len(dataset) == 0:
        raise ValueError("the training dataset is empty")
    if config.threads:
        torch.set_num_threads(config.threads)
    device, rank, world = _distributed_context(config)
    if config.batch_size % world:
        raise ValueError(f"batch_size={config.batch_size} must be divisible by the {world} processes")

    torch.manual_seed(config.seed)
    model: YOLOX = build_yolox(config.model)
    if init is not None:
        start = load_detector(init, config.model)
        if isinstance(start, YOLOXEnsemble):
            raise ValueError(f"{init}: an ensemble of {len(start.members)} detectors cannot be fine-tuned as one; "
                             "start from one of the detectors it was made of (its config.json lists them)")
        model.load_state_dict(start.state_dict())
    model.to(device)
    ema = ModelEMA(model, config.ema_decay, config.ema_ramp)
    optimizer = torch.optim.SGD(param_groups(model, config.weight_decay), lr=0.0, momentum=config.momentum,
                                nesterov=True)
    use_amp = config.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    loss_fn = YOLOXLoss(config.model.input_size, num_classes=config.model.num_classes)
    position = {"epoch": 0, "step": 0, "sums": [0.0] * len(LOSS_NAMES), "history": []}

    checkpoint = out_dir / CHECKPOINT_FILE
    if resume and checkpoint.is_file():
        state = _load_checkpoint(checkpoint, config, len(dataset))
        model.load_state_dict(state["model"])
        ema.module.load_state_dict(state["ema"])
        ema.updates = state["ema_updates"]
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        position = state["position"]

    def save_checkpoint() -> None:
        if rank == 0:
            state = {"model": model.state_dict(), "ema": ema.module.state_dict(), "ema_updates": ema.updates,
                     "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(), "position": position,
                     "config": config.to_dict(), "num_samples": len(dataset)}
            atomic_save(checkpoint, lambda path: torch.save(state, path))

    train_model = model
    if world > 1:
        device_ids = [device] if device.type == "cuda" else None
        train_model = nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    training_set = RenderedMaps(dataset, config.model.input_size, config.augment, config.seed)
    iters_per_epoch = len(epoch_batches(len(dataset), config.batch_size, config.seed, 0))

    for epoch in range(position["epoch"], config.epochs):
        augment = epoch < config.epochs - config.no_aug_epochs
        keys = [[(epoch, int(i), augment) for i in batch[rank::world]]
                for batch in epoch_batches(len(dataset), config.batch_size, config.seed, epoch)]
        loader = torch.utils.data.DataLoader(training_set, batch_sampler=keys[position["step"]:],
                                             collate_fn=collate, num_workers=config.workers)
        model.train()
        bar = tqdm(total=iters_per_epoch, initial=position["step"], desc=f"epoch {epoch + 1}/{config.epochs}",
                   disable=not progress or rank != 0, leave=False)
        for images, boxes in loader:
            iteration = epoch * iters_per_epoch + position["step"]
            lr = learning_rate(config, iteration, iters_per_epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr
            with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                raw = train_model(images.to(device, non_blocking=True))
            losses = loss_fn(raw, boxes, use_l1=not augment)
            if not torch.isfinite(losses["loss"]):
                raise FloatingPointError(f"the loss became {float(losses['loss'])} at iteration {iteration}; "
                                         "lower the learning rate (basic_lr_per_img)")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(losses["loss"]).backward()
            scaler.step(optimizer)
            scaler.update()
            ema.update(model)
            values = [float(losses[k].detach()) for k in LOSS_NAMES]
            position["sums"] = [s + v for s, v in zip(position["sums"], values)]
            position["step"] += 1
            bar.update(1)
            bar.set_postfix(loss=f"{values[0]:.3f}", lr=f"{lr:.2e}")
            if config.checkpoint_every and (iteration + 1) % config.checkpoint_every == 0:
                save_checkpoint()
        bar.close()
        means = {k: s / max(position["step"], 1) for k, s in zip(LOSS_NAMES, position["sums"])}
        position = {"epoch": epoch + 1, "step": 0, "sums": [0.0] * len(LOSS_NAMES),
                    "history": position["history"] + [{"epoch": epoch + 1, **means}]}
        save_checkpoint()

    if rank == 0:
        save_detector(ema.module, out_dir, extra={"train": config.to_dict(), "history": position["history"]})
    return out_dir
