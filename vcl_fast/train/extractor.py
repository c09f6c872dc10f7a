"""Self-supervised training of the RTR extractor: NT-Xent over copy-edited view pairs, two-stage asymmetric.

Stage 1 (steps < ``stage1_steps``): regional tokens frozen, similarity = CLS cosine. Stage 2: tokens
unlocked, similarity = max cosine over all (k+1) x (k+1) token combinations. ``schedule='symmetric'`` runs
stage 2 from the first step (the paper's ablation). The Regional Token Hit Rate (share of positive pairs
whose best combination used a regional feature) is logged throughout. Optionally (``distill_weight > 0``) the
projected CLS feature also learns, through a Linear head, to predict the pooled features of a frozen ImageNet
EfficientNet-Lite0 (:mod:`vcl_fast.models.teacher`) on the same view: an ImageNet prior for a ViT that
otherwise starts from scratch. ``init`` (an extractor directory) fine-tunes its weights instead: they replace the
seed's initialisation and the ImageNet stem, and must have the preset's shape.

Everything random derives from ``seed`` and the step number (model init, batch plans, the edits of each
view), so a run interrupted and resumed from its checkpoint ends with the same weights as an uninterrupted
one. Checkpoints (``OUT/checkpoint.pt``) and the final weights (``OUT/model.safetensors`` +
``OUT/config.json``, loadable with :func:`vcl_fast.models.weights.load_extractor`) are written atomically by
rank 0. Multi-GPU: launch with ``torchrun``; each rank trains on its own batches (DDP averages gradients).
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from vcl_fast.atomic import atomic_save, atomic_write
from vcl_fast.config import preset
from vcl_fast.data.augment import TRAIN_EDITS, copy_edit
from vcl_fast.data.images import list_images, load_image, to_tensor_batch
from vcl_fast.models.extract import extract_features
from vcl_fast.models.rtr import RegionalTokenViT, RTRConfig, extractor_config
from vcl_fast.models.teacher import TEACHER_DIM, efficientnet_lite0_teacher, load_imagenet_lite0, teacher_input
from vcl_fast.models.weights import load_config, load_extractor, save_extractor
from vcl_fast.train.batches import hard_negative_batches, random_batches, steps_per_epoch
from vcl_fast.train.losses import nt_xent, positive_pair_combinations, regional_hit_rate, view_similarity

CHECKPOINT_FILE = "checkpoint.pt"
LOG_FILE = "train_log.json"
CONFIG_FILE = "train_config.json"
# Fields that may differ when resuming (they do not change the result).
RESUMABLE_CHANGES = {"steps", "checkpoint_every", "log_every", "workers", "progress"}


@dataclass(frozen=True)
class TrainConfig:
    """One extractor training run. ``batch_size`` images give 2 x batch_size views per step."""

    model: str = "tiny_cpu"  # extractor preset (vcl_fast.models.rtr.PRESETS)
    num_regional_tokens: int = 1
    steps: int = 400
    stage1_steps: int = 200  # asymmetric schedule: steps with frozen regional tokens and CLS-only similarity
    schedule: str = "asymmetric"  # or "symmetric" (one stage, max similarity from the start)
    batch_size: int = 16
    temperature: float = 0.1
    lr: float = 1e-4
    warmup_steps: int = 30  # linear warm-up from 0, then constant lr
    weight_decay: float = 0.0  # decoupled (AdamW); 0 is plain Adam as in the paper; never on tokens/pos-embed
    batching: str = "random"  # or "hard": each query + its batch_size-1 nearest neighbours (the paper's)
    hard_refresh_steps: int = 25  # hard batching: re-embed the training set every this many steps
    image_max_side: int = 256  # images are downsized to this before editing (pixels)
    pip_probability: float = TRAIN_EDITS.probabilities["pip"]  # chance that a view is a picture-in-picture
    cache_images: bool = True  # keep decoded training images in memory (small sets)
    seed: int = 0
    checkpoint_every: int = 25
    log_every: int = 10
    workers: int = 0  # DataLoader worker processes
    amp: bool = True  # bfloat16 autocast on CUDA (ignored on CPU)
    distill_weight: float = 0.0  # > 0: add w * (1 - cos(Linear(f_cls), teacher)) with the ImageNet EfficientNet-Lite0
    teacher_size: int = 224  # teacher input side (pixels)
    backbone_init: str = "imagenet"  # hybrid extractors: "imagenet" (EfficientNet-Lite0 weights) or "random" stem
    init: str = ""  # an extractor directory (save_extractor) to fine-tune: its weights replace the initialisation
    progress: bool = True

    def __post_init__(self) -> None:
        if self.schedule not in ("asymmetric", "symmetric"):
            raise ValueError(f"schedule must be 'asymmetric' or 'symmetric', got {self.schedule!r}")
        if self.backbone_init not in ("imagenet", "random"):
            raise ValueError(f"backbone_init must be 'imagenet' or 'random', got {self.backbone_init!r}")
        if self.batching not in ("random", "hard"):
            raise ValueError(f"batching must be 'random' or 'hard', got {self.batching!r}")
        for name in ("steps", "batch_size", "checkpoint_every", "log_every", "hard_refresh_steps", "image_max_side",
                     "teacher_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_size < 2:
            raise ValueError("batch_size must be >= 2 (NT-Xent needs negatives)")
        if self.temperature <= 0 or self.lr <= 0:
            raise ValueError("temperature and lr must be > 0")
        if self.distill_weight < 0:
            raise ValueError(f"distill_weight must be >= 0, got {self.distill_weight}")
        if not 0 <= self.pip_probability <= 1:
            raise ValueError(f"pip_probability must be in [0, 1], got {self.pip_probability}")


TRAIN_PRESETS: dict[str, TrainConfig] = {
    # The paper: ViT-S/16 384 px, hard-negative batches of 48, Adam, constant lr 1e-5, 240K iterations.
    "paper": TrainConfig(
        model="paper", steps=240_000, stage1_steps=120_000, batch_size=48, temperature=0.05, lr=1e-5,
        warmup_steps=0, batching="hard", hard_refresh_steps=2000, image_max_side=512, cache_images=False, checkpoint_every=2000,
        log_every=50,
    ),
    # From scratch on ~150 photos within ~15 minutes of 2 shared CPU cores: small model, higher lr with warm-up,
    # random batches (hard-negative batches kept the loss at chance level for a model that starts from scratch).
    "tiny_cpu": TrainConfig(),
    # The hybrid extractor: tiny_cpu's recipe on an ImageNet-initialised EfficientNet-Lite0 stem.
    "hybrid_cpu": TrainConfig(model="hybrid_cpu"),
    # Unit tests.
    "micro": TrainConfig(
        model="micro", steps=4, stage1_steps=2, batch_size=4, lr=1e-3, warmup_steps=0, image_max_side=48,
        checkpoint_every=2, log_every=1, hard_refresh_steps=2, progress=False,
    ),
}


def train_config(name: str, overrides: Mapping[str, Any] | None = None) -> tuple[TrainConfig, dict[str, Any]]:
    """Training preset ``name`` with ``overrides``; keys ``model.FIELD`` go to the extractor config.
    Returns (train config, extractor overrides)."""
    overrides = dict(overrides or {})
    model_overrides = {k[len("model."):]: v for k, v in overrides.items() if k.startswith("model.")}
    config = preset(TRAIN_PRESETS, name, {k: v for k, v in overrides.items() if not k.startswith("model.")})
    extractor_config(config.model, config.num_regional_tokens, **model_overrides)  # validate early
    return config, model_overrides


def training_images(data: str | os.PathLike) -> list[Path]:
    """Training images of ``data``: its ``train/`` folder when present (DISC21 layout), else every image below it."""
    root = Path(data)
    if not root.is_dir():
        raise FileNotFoundError(f"training data directory {root} does not exist")
    return list_images(root / "train" if (root / "train").is_dir() else root)


class ViewPairBatches(Dataset):
    """Item ``j`` of a plan -> (2N, 3, S, S) views ``[a_1..a_N, b_1..b_N]`` of the plan's batch ``j``.

    View ``v`` of the image at batch position ``i`` of global step ``s`` is edited with the generator seeded
    ``(seed, s, i, v)`` through :data:`TRAIN_EDITS` with ``config.pip_probability``; picture-in-picture backgrounds
    are other training images drawn from the same generator.
    """

    def __init__(self, paths: list[Path], config: TrainConfig, model_config: RTRConfig) -> None:
        self.paths = paths
        self.config = config
        self.model_config = model_config
        self.first_step = 0
        self.plan = np.zeros((0, config.batch_size), dtype=np.int64)
        self.edits = dataclasses.replace(
            TRAIN_EDITS, probabilities={**TRAIN_EDITS.probabilities, "pip": config.pip_probability})
        self._cache: dict[int, Any] = {}

    def set_plan(self, first_step: int, plan: np.ndarray) -> None:
        self.first_step, self.plan = first_step, plan

    def image(self, index: int):
        if index in self._cache:
            return self._cache[index]
        image = load_image(self.paths[index], self.config.image_max_side)
        if self.config.cache_images:
            self._cache[index] = image
        return image

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, j: int) -> torch.Tensor:
        step = self.first_step + j
        views: list[list] = [[], []]
        for position, index in enumerate(self.plan[j]):
            for v in (0, 1):
                rng = np.random.default_rng([self.config.seed, step, position, v])
                background = None
                if rng.random() < 0.5:
                    background = self.image(int(rng.integers(len(self.paths))))
                edited, _ = copy_edit(self.image(int(index)), rng, self.edits, background)
                views[v].append(edited)
        mc = self.model_config
        return to_tensor_batch(views[0] + views[1], mc.img_size, mc.mean, mc.std)


def _distributed() -> tuple[int, int, int]:
    """(world_size, rank, local_rank) from the torchrun environment."""
    return int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0))


class ExtractorTrainer:
    """Trains one extractor into ``out``; resumes from ``out/checkpoint.pt`` when it exists."""

    def __init__(
        self,
        config: TrainConfig,
        data: str | os.PathLike,
        out: str | os.PathLike,
        model_overrides: Mapping[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.out = Path(out)
        self.model_overrides = dict(model_overrides or {})
        self.model_config = extractor_config(config.model, config.num_regional_tokens, **self.model_overrides)
        self.paths = training_images(data)
        self.world_size, self.rank, local_rank = _distributed()
        if self.world_size > 1 and not torch.distributed.is_initialized():
            backend = "nccl" if torch.cuda.is_available() else "gloo"
            torch.distributed.init_process_group(backend)
        self.device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
        needed = config.batch_size * (self.world_size if config.batching == "random" else 1)
        if len(self.paths) < needed:
            raise ValueError(
                f"need at least {needed} training images for batch_size {config.batch_size} "
                f"({config.batching} batches, {self.world_size} rank(s)), found {len(self.paths)}"
            )

        torch.manual_seed(config.seed)
        self.model = RegionalTokenViT(self.model_config)
        resuming = (self.out / CHECKPOINT_FILE).is_file()
        if config.init and not resuming:  # a resumed run's weights come from its checkpoint
            self._load_init(Path(config.init))
        elif self.model_config.backbone and config.backbone_init == "imagenet":
            load_imagenet_lite0(self.model.patch_embed.backbone)
        self.model.to(self.device)
        no_decay = self.model.no_weight_decay()
        decay_params = [p for n, p in self.model.named_parameters() if n not in no_decay]
        token_params = [p for n, p in self.model.named_parameters() if n in no_decay]
        self.teacher = self.distill_head = None
        if config.distill_weight > 0:
            self.teacher = efficientnet_lite0_teacher().to(self.device)
            self.distill_head = torch.nn.Linear(self.model_config.out_dim, TEACHER_DIM).to(self.device)
            decay_params += list(self.distill_head.parameters())
        self.optimizer = torch.optim.AdamW(
            [{"params": decay_params, "weight_decay": config.weight_decay}, {"params": token_params, "weight_decay": 0.0}],
            lr=config.lr,
        )
        self.step = 0
        self.plan_start = 0
        self.plan = np.zeros((0, config.batch_size), dtype=np.int64)
        self.history: list[dict[str, float]] = []
        self.views = ViewPairBatches(self.paths, config, self.model_config)
        if resuming:
            self._load_checkpoint()
        self.ddp_model, self.ddp_distill_head = self.model, self.distill_head
        if self.world_size > 1:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp_model = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=device_ids, find_unused_parameters=self.model_config.num_regional_tokens > 0
            )
            if self.distill_head is not None:
                self.ddp_distill_head = torch.nn.parallel.DistributedDataParallel(self.distill_head, device_ids=device_ids)

    def _load_init(self, directory: Path) -> None:
        """Start from the weights of the extractor in ``directory``; ValueError when its shape is not the preset's."""
        found = load_config(directory)
        if found != self.model_config:
            differences = ", ".join(
                f"{f.name} {getattr(found, f.name)!r} (this run: {getattr(self.model_config, f.name)!r})"
                for f in dataclasses.fields(found) if getattr(found, f.name) != getattr(self.model_config, f.name))
            raise ValueError(f"init extractor {directory} has another shape: {differences}; use the preset it was "
                             "trained with, or set num_regional_tokens / model.FIELD to match")
        self.model.load_state_dict(load_extractor(directory).state_dict())

    # ----- plans -------------------------------------------------------------------------------------
    def _plan_from(self, step: int) -> tuple[int, np.ndarray]:
        """(first step, batch index plan) of the chunk of steps that starts at ``step``."""
        c = self.config
        if c.batching == "random":
            per_epoch = steps_per_epoch(len(self.paths), c.batch_size, self.world_size)
            epoch, offset = divmod(step, per_epoch)
            plan = random_batches(len(self.paths), c.batch_size, epoch, c.seed, self.world_size, self.rank)
            return step, plan[offset:]
        count = min(c.hard_refresh_steps, c.steps - step)
        embeddings = extract_features(
            self.model, [lambda i=i: self.views.image(i) for i in range(len(self.paths))], c.batch_size * 2, self.device
        )[:, -1]
        order = np.random.default_rng([c.seed, step]).permutation(len(self.paths))
        picks = (np.arange(count) * self.world_size + self.rank) % len(self.paths)
        return step, hard_negative_batches(embeddings, order[picks], c.batch_size)

    # ----- checkpoints --------------------------------------------------------------------------------
    def _checkpoint_state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "plan_start": self.plan_start,
            "plan": torch.from_numpy(self.plan),
            "history": self.history,
            "distill_head": self.distill_head.state_dict() if self.distill_head is not None else None,
            "train_config": dataclasses.asdict(self.config),
            "model_config": dataclasses.asdict(self.model_config),
        }

    def save_checkpoint(self) -> None:
        if self.rank != 0:
            return
        state = self._checkpoint_state()
        atomic_save(self.out / CHECKPOINT_FILE, lambda path: torch.save(state, path))
        with atomic_write(self.out / LOG_FILE) as handle:
            json.dump(self.history, handle, indent=1)
        with atomic_write(self.out / CONFIG_FILE) as handle:
            json.dump({"train": dataclasses.asdict(self.config), "model_overrides": self.model_overrides}, handle, indent=2)

    def _load_checkpoint(self) -> None:
        path = self.out / CHECKPOINT_FILE
        state = torch.load(path, map_location=self.device, weights_only=False)
        defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
        saved = {**defaults, **state["train_config"]}  # a field added since the checkpoint: its default was in use
        mine = dataclasses.asdict(self.config)
        changed = sorted(k for k in mine if k not in RESUMABLE_CHANGES and saved[k] != mine[k])
        if changed or state["model_config"] != dataclasses.asdict(self.model_config):
            what = ", ".join(f"{k}: {saved[k]!r} -> {mine[k]!r}" for k in changed) or "extractor config"
            raise ValueError(f"{path} was written by a different configuration ({what}); use a new --out")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        self.plan_start = int(state["plan_start"])
        self.plan = state["plan"].numpy()
        self.history = list(state["history"])
        if self.distill_head is not None:
            self.distill_head.load_state_dict(state["distill_head"])

    # ----- training -----------------------------------------------------------------------------------
    def _lr(self, step: int) -> float:
        c = self.config
        return c.lr * min(1.0, (step + 1) / c.warmup_steps) if c.warmup_steps else c.lr

    def train_step(self, views: torch.Tensor) -> dict[str, float]:
        """One optimisation step on (2N, 3, S, S) views; returns the NT-Xent loss, the distillation loss (when
        on), the stage and the hit rate of this batch's positive pairs (None for k = 0)."""
        c = self.config
        k = self.model_config.num_regional_tokens
        stage2 = c.schedule == "symmetric" or self.step >= c.stage1_steps
        self.model.freeze_regional_tokens(k > 0 and not stage2)
        for group in self.optimizer.param_groups:
            group["lr"] = self._lr(self.step)
        self.model.train()
        views = views.to(self.device, non_blocking=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=c.amp and self.device.type == "cuda"):
            features = self.ddp_model(views)
        features = features.float()
        similarity, _ = view_similarity(features, use_regional=stage2)
        loss = nt_xent(similarity, c.temperature)
        stats = {"loss": float(loss.detach())}
        if self.teacher is not None:
            mc = self.model_config
            with torch.no_grad():
                target = self.teacher(teacher_input(views, mc.mean, mc.std, c.teacher_size))
            predicted = self.ddp_distill_head(features[:, -1])
            distill = (1.0 - torch.nn.functional.cosine_similarity(predicted, target.float(), dim=1)).mean()
            loss = loss + c.distill_weight * distill
            stats["distill"] = float(distill.detach())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        stats["hit_rate"] = regional_hit_rate(positive_pair_combinations(features.detach()), k + 1) if k else None
        stats["stage"] = 2 if stage2 else 1
        return stats

    def run(self, until_step: int | None = None) -> list[dict[str, float]]:
        """Train up to ``until_step`` (default: config.steps), checkpointing every ``checkpoint_every`` steps
        and at the end; writes the final weights when ``config.steps`` is reached. Returns the log."""
        from tqdm import tqdm

        c = self.config
        end = min(c.steps, until_step if until_step is not None else c.steps)
        bar = tqdm(total=c.steps, initial=self.step, disable=not c.progress or self.rank != 0, unit="step")
        window_start, window_images = time.perf_counter(), 0
        try:
            while self.step < end:
                if self.step - self.plan_start >= len(self.plan):
                    self.plan_start, self.plan = self._plan_from(self.step)
                    self.save_checkpoint()
                offset = self.step - self.plan_start
                chunk = min(len(self.plan) - offset, end - self.step)
                self.views.set_plan(self.step, self.plan[offset : offset + chunk])
                loader = DataLoader(self.views, batch_size=None, num_workers=c.workers, pin_memory=self.device.type == "cuda")
                for views in loader:
                    stats = self.train_step(views)
                    self.step += 1
                    window_images += views.shape[0]
                    if self.step % c.log_every == 0 or self.step == end:
                        elapsed = time.perf_counter() - window_start
                        stats.update(step=self.step, views_per_s=window_images / max(elapsed, 1e-9))
                        self.history.append(stats)
                        bar.set_postfix(loss=f"{stats['loss']:.3f}", hit=stats["hit_rate"], stage=stats["stage"],
                                        views_s=f"{stats['views_per_s']:.0f}")
                        window_start, window_images = time.perf_counter(), 0
                    bar.update(1)
                    if self.step % c.checkpoint_every == 0:
                        self.save_checkpoint()
        finally:
            bar.close()
        self.save_checkpoint()
        if self.step >= c.steps and self.rank == 0:
            save_extractor(self.model, self.out)
        if self.world_size > 1:
            torch.distributed.barrier()
        return self.history


def train_extractor(
    preset_name: str, data: str | os.PathLike, out: str | os.PathLike, overrides: Mapping[str, Any] | None = None
) -> RegionalTokenViT:
    """Train (or resume) preset ``preset_name`` on the images of ``data`` into ``out``; returns the model."""
    config, model_overrides = train_config(preset_name, overrides)
    trainer = ExtractorTrainer(config, data, out, model_overrides)
    trainer.run()
    return trainer.model
