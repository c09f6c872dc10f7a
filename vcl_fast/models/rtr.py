"""RTR feature extractor: a ViT with k learnable Regional Tokens in front of the CLS token.

Sequence layout (the paper's, generic over k = ``num_regional_tokens``)::

    z_0 = [region_1 .. region_k; cls; patch_1 .. patch_P] + E_pos,   E_pos in R^{(k+1+P) x D}

Output layout: ``(B, k+1, out_dim)`` float, L2-normalised, in sequence order: rows ``0..k-1`` are the
regional features, row ``k`` (always the LAST row, index ``-1``) is the CLS feature. One shared Linear
projects all k+1 token outputs. ``k = 0`` is a plain ViT whose only feature is the CLS token.

timm's ``VisionTransformer`` with ``reg_tokens=k`` puts its register tokens AFTER the CLS token; this
subclass keeps timm's parameters (``reg_token``, ``cls_token``, ``pos_embed`` over all k+1+P tokens) and
only reorders the prefix so that ``pos_embed[:, :k]`` belongs to the regional tokens and ``pos_embed[:, k]``
to CLS, as in the paper's checkpoints.

``backbone=""`` embeds 16x16 patches with one linear layer (a plain ViT). ``backbone="tf_efficientnet_lite0"``
is a hybrid ViT (timm's ``HybridEmbed``): the stride-16 feature map of an EfficientNet-Lite0 stem (112
channels) gives the patch tokens, one per 16x16 pixels as before, so the token layout and outputs are the same.
The stem can start from ImageNet weights (:func:`vcl_fast.models.teacher.load_imagenet_lite0`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from timm.layers import HybridEmbed
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from vcl_fast.config import preset

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Hybrid backbones: timm model name -> feature index of its stride-16 map (``features_only`` out_indices).
BACKBONE_STRIDE16_FEATURE = {"tf_efficientnet_lite0": 3}


@dataclass(frozen=True)
class RTRConfig:
    """Architecture of the extractor. ``img_size`` is the square input side in pixels."""

    img_size: int = 384
    patch_size: int = 16
    embed_dim: int = 384
    depth: int = 12
    num_heads: int = 6
    mlp_ratio: float = 4.0
    out_dim: int = 256
    num_regional_tokens: int = 1
    backbone: str = ""  # "" = linear patch embedding; a key of BACKBONE_STRIDE16_FEATURE = hybrid ViT
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD

    def __post_init__(self) -> None:
        if self.num_regional_tokens < 0:
            raise ValueError(f"num_regional_tokens must be >= 0, got {self.num_regional_tokens}")
        if self.img_size % self.patch_size:
            raise ValueError(f"img_size {self.img_size} must be a multiple of patch_size {self.patch_size}")
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim {self.embed_dim} must be divisible by num_heads {self.num_heads}")
        if self.backbone and self.backbone not in BACKBONE_STRIDE16_FEATURE:
            known = ", ".join(sorted(BACKBONE_STRIDE16_FEATURE))
            raise ValueError(f"unknown backbone {self.backbone!r}; use '' (patch embedding) or one of: {known}")
        if self.backbone and self.patch_size != 16:
            raise ValueError(f"a hybrid backbone gives one token per 16 pixels; patch_size must be 16, got {self.patch_size}")
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError("mean and std need 3 values (RGB)")

    @property
    def num_tokens(self) -> int:
        """Feature vectors per image: k regional + 1 CLS."""
        return self.num_regional_tokens + 1

    @property
    def num_patches(self) -> int:
        return (self.img_size // self.patch_size) ** 2


PRESETS: dict[str, RTRConfig] = {
    # ViT-S/16 at 384 px (576 patches), as in the paper.
    "paper": RTRConfig(),
    # Small enough to train and run on 2 shared CPU cores: 112 px, 49 patches, 4 blocks of width 192.
    "tiny_cpu": RTRConfig(img_size=112, embed_dim=192, depth=4, num_heads=3),
    # tiny_cpu's transformer on an EfficientNet-Lite0 stem (ImageNet-initialisable; TF-style [-1, 1] inputs).
    "hybrid_cpu": RTRConfig(img_size=112, embed_dim=192, depth=2, num_heads=3, backbone="tf_efficientnet_lite0",
                            mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
    # For unit tests only: 32 px, 4 patches, one block of width 32.
    "micro": RTRConfig(img_size=32, embed_dim=32, depth=1, num_heads=2, out_dim=16),
}


def stride16_stem(name: str) -> nn.Module:
    """timm backbone ``name`` (randomly initialised) cut after its stride-16 stage:
    (B, 3, H, W) -> [(B, C, H/16, W/16)]."""
    import timm

    stem = timm.create_model(name, pretrained=False, features_only=True, out_indices=(BACKBONE_STRIDE16_FEATURE[name],))
    stem.blocks = stem.blocks[: max(stem._stage_out_idx)]  # the later stages would run for nothing
    return stem


class RegionalTokenViT(VisionTransformer):
    """timm ViT with ``k`` Regional Tokens before CLS and a shared projection of all k+1 token outputs."""

    def __init__(self, config: RTRConfig) -> None:
        embed_layer = {}
        if config.backbone:
            embed_layer = {"embed_layer": partial(HybridEmbed, backbone=stride16_stem(config.backbone), patch_size=1)}
        super().__init__(
            img_size=config.img_size,
            patch_size=1 if config.backbone else config.patch_size,  # hybrid: one token per feature-map cell
            embed_dim=config.embed_dim,
            depth=config.depth,
            num_heads=config.num_heads,
            mlp_ratio=config.mlp_ratio,
            class_token=True,
            reg_tokens=config.num_regional_tokens,
            no_embed_class=False,
            num_classes=0,
            global_pool="",
            **embed_layer,
        )
        self.config = config
        self.proj = nn.Linear(config.embed_dim, config.out_dim)
        self.regional_tokens_frozen = False

    @property
    def num_regional_tokens(self) -> int:
        return self.num_reg_tokens

    @property
    def cls_index(self) -> int:
        """Row of the CLS feature in the output (== k, the last row)."""
        return self.num_reg_tokens

    def freeze_regional_tokens(self, frozen: bool = True) -> None:
        """Stage 1 of the asymmetric schedule: the regional tokens' input embeddings (``reg_token`` and their
        rows of ``pos_embed``) are detached from the graph, so no gradient reaches them and an optimizer
        leaves them unchanged. ``frozen=False`` (stage 2) unlocks them."""
        self.regional_tokens_frozen = frozen

    def set_fused_attn(self, enabled: bool) -> None:
        """Switch every block between fused scaled-dot-product attention and the explicit softmax(QK^T)V
        (the latter exports to ONNX opsets without an SDPA op and exposes attention maps)."""
        for block in self.blocks:
            block.attn.fused_attn = enabled

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        return {"pos_embed", "cls_token", "reg_token"}

    def _pos_embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, P, D) patch embeddings -> (B, k+1+P, D) ``[regions; cls; patches] + pos_embed``."""
        batch = x.shape[0]
        k = self.num_reg_tokens
        pos = self.pos_embed
        cls = (self.cls_token + pos[:, k : k + 1]).expand(batch, -1, -1)
        patches = x.reshape(batch, -1, x.shape[-1]) + pos[:, k + 1 :]
        parts = [cls, patches]
        if k:
            regions = self.reg_token + pos[:, :k]
            if self.regional_tokens_frozen:
                regions = regions.detach()
            parts.insert(0, regions.expand(batch, -1, -1))
        return self.pos_drop(torch.cat(parts, dim=1))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """(B, k+1+P, D) normed token sequence -> (B, k+1, out_dim) L2-normalised features
        (``pre_logits=True``: the (B, k+1, D) prefix token outputs before the projection)."""
        prefix = x[:, : self.num_prefix_tokens]
        if pre_logits:
            return prefix
        return F.normalize(self.proj(prefix), dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, img_size, img_size) normalised images -> (B, k+1, out_dim) unit-norm features, CLS last."""
        return self.forward_head(self.forward_features(x))


def extractor_config(name: str = "tiny_cpu", num_regional_tokens: int | None = None, **overrides) -> RTRConfig:
    """Preset ``name`` ('paper', 'tiny_cpu', 'micro') with ``num_regional_tokens`` and field overrides
    (strings are parsed, e.g. ``depth="4"``); unknown keys raise KeyError, wrong types TypeError."""
    if num_regional_tokens is not None:
        overrides["num_regional_tokens"] = num_regional_tokens
    return preset(PRESETS, name, overrides)


def build_extractor(
    preset_name: str | RTRConfig = "tiny_cpu", num_regional_tokens: int | None = None, **overrides
) -> RegionalTokenViT:
    """Build a randomly initialised extractor from a preset name (or a ready :class:`RTRConfig`)."""
    if isinstance(preset_name, RTRConfig):
        config = dataclasses.replace(preset_name, **overrides)
        if num_regional_tokens is not None:
            config = dataclasses.replace(config, num_regional_tokens=num_regional_tokens)
    else:
        config = extractor_config(preset_name, num_regional_tokens, **overrides)
    return RegionalTokenViT(config)
