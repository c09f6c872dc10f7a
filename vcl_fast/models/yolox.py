"""YOLOX detector for similarity maps, in the module layout and parameter names of Megvii's reference YOLOX.

``YOLOX(backbone=YOLOPAFPN(depth, width), head=YOLOXHead(num_classes, width))``: a CSPDarknet backbone with
a Focus stem, a PAFPN neck and a decoupled head over strides 8/16/32. Built with the ``paper`` preset the
``state_dict`` has exactly the names and shapes of the reference ``YOLOX(YOLOPAFPN(0.33, 0.5),
YOLOXHead(1, 0.5))``, so released ``.pth`` checkpoints load with ``strict=True``.

The forward pass keeps no state and computes no loss. It returns the raw head outputs ``(B, A, 5 + C)``
float32 per anchor: ``[tx, ty, tw, th, obj_logit, cls_logit_1..C]``, anchors ordered stride by stride and
row-major within a level (A = sum over strides of (S / stride)^2; 8,400 at S = 640). ``decode_raw_outputs``
(torch) and ``vcl_fast.detect.decode`` (numpy) turn them into boxes ``[cx, cy, w, h]`` in input pixels
(``cx = (tx + grid_x) * stride``, ``w = exp(tw) * stride``) and sigmoid probabilities. With
``decode_in_inference=True`` an eval-mode model returns that decoded form itself, exactly the reference's
eval output ``[cx, cy, w, h, obj_prob, cls_prob]``; the ONNX export and training use the raw form.
``YOLOXEnsemble`` averages the raw outputs of several such detectors and stands wherever one does.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Sequence

import torch
from torch import nn

from vcl_fast.config import config_from_dict, preset
from vcl_fast.detect.decode import STRIDES
from vcl_fast.detect.decode import anchor_points as numpy_anchor_points

BN_EPS = 1e-3
BN_MOMENTUM = 0.03
PRIOR_PROB = 0.01  # initial objectness/class probability (reference ``initialize_biases(1e-2)``)
ACTIVATIONS = {"silu": lambda: nn.SiLU(inplace=True), "relu": lambda: nn.ReLU(inplace=True),
               "lrelu": lambda: nn.LeakyReLU(0.1, inplace=True)}


@dataclass(frozen=True)
class YOLOXConfig:
    """Architecture of the detector. ``input_size``: side S of the square input, a multiple of 32."""

    depth: float = 0.33
    width: float = 0.50
    input_size: int = 640
    num_classes: int = 1
    act: str = "silu"

    def __post_init__(self) -> None:
        if self.depth <= 0 or self.width <= 0:
            raise ValueError(f"depth and width must be positive, got depth={self.depth}, width={self.width}")
        if int(64 * self.width) < 2:
            raise ValueError(f"width={self.width} leaves fewer than 2 stem channels; use width >= 1/32")
        if self.input_size <= 0 or self.input_size % max(STRIDES) != 0:
            raise ValueError(f"input_size must be a positive multiple of {max(STRIDES)}, got {self.input_size}")
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {self.num_classes}")
        if self.act not in ACTIVATIONS:
            raise ValueError(f"act must be one of {sorted(ACTIVATIONS)}, got {self.act!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "YOLOXConfig":
        """From ``to_dict`` output (e.g. a model directory's config.json)."""
        return config_from_dict(cls, values)


MODEL_PRESETS: dict[str, YOLOXConfig] = {
    # YOLOX-s, 1 class, 640x640: the paper's detector (8.94 M parameters).
    "paper": YOLOXConfig(depth=0.33, width=0.50, input_size=640),
    # Trains in minutes on 2 CPU cores (see bench/README.md); 0.56 M parameters.
    "tiny_cpu": YOLOXConfig(depth=0.33, width=0.125, input_size=256),
    # For unit tests only: 0.14 M parameters, 64 px input.
    "micro": YOLOXConfig(depth=0.33, width=0.0625, input_size=64),
}


def model_config(name: str = "paper", **overrides) -> YOLOXConfig:
    """The named preset with field overrides (``width=0.25``); ConfigError on unknown presets or keys."""
    return preset(MODEL_PRESETS, name, overrides)


class BaseConv(nn.Module):
    """Conv2d (no bias, 'same' padding) -> BatchNorm2d (eps 1e-3, momentum 0.03) -> activation."""

    def __init__(self, in_channels: int, out_channels: int, ksize: int, stride: int, act: str = "silu"):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, ksize, stride, padding=(ksize - 1) // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.act = ACTIVATIONS[act]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    """1x1 conv then 3x3 conv, with a residual connection when ``shortcut`` and the widths agree."""

    def __init__(self, in_channels: int, out_channels: int, shortcut: bool = True, expansion: float = 0.5,
                 act: str = "silu"):
        super().__init__()
        hidden = int(out_channels * expansion)
        self.conv1 = BaseConv(in_channels, hidden, 1, 1, act)
        self.conv2 = BaseConv(hidden, out_channels, 3, 1, act)
        self.use_add = shortcut and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(self.conv1(x))
        return y + x if self.use_add else y


class SPPBottleneck(nn.Module):
    """Spatial pyramid pooling: max-pools of sizes 5, 9, 13 (stride 1) concatenated with their input."""

    def __init__(self, in_channels: int, out_channels: int, kernel_sizes: tuple[int, ...] = (5, 9, 13),
                 act: str = "silu"):
        super().__init__()
        hidden = in_channels // 2
        self.conv1 = BaseConv(in_channels, hidden, 1, 1, act)
        self.m = nn.ModuleList([nn.MaxPool2d(k, stride=1, padding=k // 2) for k in kernel_sizes])
        self.conv2 = BaseConv(hidden * (len(kernel_sizes) + 1), out_channels, 1, 1, act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        return self.conv2(torch.cat([x] + [pool(x) for pool in self.m], dim=1))


class CSPLayer(nn.Module):
    """CSP block: two 1x1 branches, ``n`` bottlenecks on the first, concatenated and fused by a 1x1 conv."""

    def __init__(self, in_channels: int, out_channels: int, n: int = 1, shortcut: bool = True,
                 expansion: float = 0.5, act: str = "silu"):
        super().__init__()
        hidden = int(out_channels * expansion)
        self.conv1 = BaseConv(in_channels, hidden, 1, 1, act)
        self.conv2 = BaseConv(in_channels, hidden, 1, 1, act)
        self.conv3 = BaseConv(2 * hidden, out_channels, 1, 1, act)
        self.m = nn.Sequential(*[Bottleneck(hidden, hidden, shortcut, 1.0, act) for _ in range(n)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(torch.cat((self.m(self.conv1(x)), self.conv2(x)), dim=1))


class Focus(nn.Module):
    """Space-to-depth (B, C, H, W) -> (B, 4C, H/2, W/2), order top-left, bottom-left, top-right,
    bottom-right, then a conv."""

    def __init__(self, in_channels: int, out_channels: int, ksize: int = 1, stride: int = 1, act: str = "silu"):
        super().__init__()
        self.conv = BaseConv(in_channels * 4, out_channels, ksize, stride, act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat((x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]), dim=1)
        return self.conv(x)


class CSPDarknet(nn.Module):
    """Backbone: Focus stem and four stages; returns the stride 8, 16, 32 features (dark3, dark4, dark5)."""

    def __init__(self, depth: float, width: float, act: str = "silu"):
        super().__init__()
        base = int(width * 64)
        n = max(round(depth * 3), 1)
        self.stem = Focus(3, base, ksize=3, act=act)
        self.dark2 = nn.Sequential(BaseConv(base, base * 2, 3, 2, act), CSPLayer(base * 2, base * 2, n, act=act))
        self.dark3 = nn.Sequential(BaseConv(base * 2, base * 4, 3, 2, act),
                                   CSPLayer(base * 4, base * 4, n * 3, act=act))
        self.dark4 = nn.Sequential(BaseConv(base * 4, base * 8, 3, 2, act),
                                   CSPLayer(base * 8, base * 8, n * 3, act=act))
        self.dark5 = nn.Sequential(BaseConv(base * 8, base * 16, 3, 2, act),
                                   SPPBottleneck(base * 16, base * 16, act=act),
                                   CSPLayer(base * 16, base * 16, n, shortcut=False, act=act))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x3 = self.dark3(self.dark2(self.stem(x)))
        x4 = self.dark4(x3)
        return x3, x4, self.dark5(x4)


class YOLOPAFPN(nn.Module):
    """CSPDarknet + path-aggregation FPN; returns features at strides 8, 16, 32 with
    ``in_channels * width`` channels."""

    def __init__(self, depth: float = 1.0, width: float = 1.0, in_channels: tuple[int, ...] = (256, 512, 1024),
                 act: str = "silu"):
        super().__init__()
        self.backbone = CSPDarknet(depth, width, act)
        c0, c1, c2 = (int(c * width) for c in in_channels)
        n = round(3 * depth)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.lateral_conv0 = BaseConv(c2, c1, 1, 1, act)
        self.C3_p4 = CSPLayer(2 * c1, c1, n, False, act=act)
        self.reduce_conv1 = BaseConv(c1, c0, 1, 1, act)
        self.C3_p3 = CSPLayer(2 * c0, c0, n, False, act=act)
        self.bu_conv2 = BaseConv(c0, c0, 3, 2, act)
        self.C3_n3 = CSPLayer(2 * c0, c1, n, False, act=act)
        self.bu_conv1 = BaseConv(c1, c1, 3, 2, act)
        self.C3_n4 = CSPLayer(2 * c1, c2, n, False, act=act)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x2, x1, x0 = self.backbone(x)
        fpn_out0 = self.lateral_conv0(x0)
        f_out0 = self.C3_p4(torch.cat([self.upsample(fpn_out0), x1], 1))
        fpn_out1 = self.reduce_conv1(f_out0)
        pan_out2 = self.C3_p3(torch.cat([self.upsample(fpn_out1), x2], 1))
        pan_out1 = self.C3_n3(torch.cat([self.bu_conv2(pan_out2), fpn_out1], 1))
        pan_out0 = self.C3_n4(torch.cat([self.bu_conv1(pan_out1), fpn_out0], 1))
        return pan_out2, pan_out1, pan_out0


class YOLOXHead(nn.Module):
    """Decoupled head: per level a 1x1 stem, then a class branch and a box branch (two 3x3 convs each)."""

    def __init__(self, num_classes: int, width: float = 1.0, strides: tuple[int, ...] = STRIDES,
                 in_channels: tuple[int, ...] = (256, 512, 1024), act: str = "silu"):
        super().__init__()
        self.num_classes = num_classes
        self.strides = tuple(strides)
        hidden = int(256 * width)
        # Registration order fixes the state_dict order of the reference layout.
        self.cls_convs = nn.ModuleList()
        self.reg_convs = nn.ModuleList()
        self.cls_preds = nn.ModuleList()
        self.reg_preds = nn.ModuleList()
        self.obj_preds = nn.ModuleList()
        self.stems = nn.ModuleList()
        for channels in in_channels:
            self.stems.append(BaseConv(int(channels * width), hidden, 1, 1, act))
            for branch in (self.cls_convs, self.reg_convs):
                branch.append(nn.Sequential(BaseConv(hidden, hidden, 3, 1, act), BaseConv(hidden, hidden, 3, 1, act)))
            self.cls_preds.append(nn.Conv2d(hidden, num_classes, 1))
            self.reg_preds.append(nn.Conv2d(hidden, 4, 1))
            self.obj_preds.append(nn.Conv2d(hidden, 1, 1))
        prior_bias = -math.log((1 - PRIOR_PROB) / PRIOR_PROB)
        for conv in (*self.cls_preds, *self.obj_preds):
            nn.init.constant_(conv.bias, prior_bias)

    def forward(self, features: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Per-level features -> raw outputs (B, A, 5 + C) = [tx, ty, tw, th, obj_logit, cls_logits]."""
        outputs = []
        for k, x in enumerate(features):
            x = self.stems[k](x)
            cls_feat = self.cls_convs[k](x)
            reg_feat = self.reg_convs[k](x)
            out = torch.cat([self.reg_preds[k](reg_feat), self.obj_preds[k](reg_feat), self.cls_preds[k](cls_feat)],
                            dim=1)
            outputs.append(out.flatten(start_dim=2))
        return torch.cat(outputs, dim=2).permute(0, 2, 1)


class YOLOX(nn.Module):
    """Backbone + head. ``forward(images (B, 3, S, S) float32) -> (B, A, 5 + C)``: raw outputs (see the
    module docstring), or decoded ``[cx, cy, w, h, obj_prob, cls_prob]`` in eval mode when
    ``decode_in_inference`` is set."""

    def __init__(self, backbone: YOLOPAFPN, head: YOLOXHead, decode_in_inference: bool = False):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.decode_in_inference = decode_in_inference

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        raw = self.head(self.backbone(images))
        if self.decode_in_inference and not self.training:
            boxes, obj, cls = decode_raw_outputs(raw, images.shape[-1], self.head.strides)
            return torch.cat([boxes, obj[..., None], cls], dim=-1)
        return raw


class YOLOXEnsemble(nn.Module):
    """Detectors of one architecture whose raw outputs are averaged anchor by anchor: ``forward(images (B, 3, S,
    S) float32) -> (B, A, 5 + C)``, the mean of the members' raw outputs ``[tx, ty, tw, th, obj_logit,
    cls_logits]`` (so box centres and log sizes, and the logits, are averaged before decoding). It stands
    wherever a raw-output YOLOX does (runtimes, ONNX export, the GPU pipeline); ``config`` and ``head`` (strides,
    classes) are the members' own. Members trained alike with other seeds: +0.01 segment F on the validation sets
    at ~5 ms per member and map (docs/model_card.md, "A detector ensemble")."""

    decode_in_inference = False

    def __init__(self, members: Sequence[YOLOX]):
        super().__init__()
        members = list(members)
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least 2 detectors, got {len(members)}")
        for i, member in enumerate(members):
            if not isinstance(member, YOLOX) or member.decode_in_inference:
                raise ValueError(f"ensemble member {i} must be a raw-output YOLOX (decode_in_inference=False)")
            if member.config != members[0].config:
                raise ValueError(f"ensemble member {i} is {member.config}, member 0 is {members[0].config}; "
                                 "members must share one architecture")
        self.members = nn.ModuleList(members)
        self.config = members[0].config

    @property
    def head(self) -> YOLOXHead:
        """Member 0's head: its ``strides`` and ``num_classes`` hold for the ensemble."""
        return self.members[0].head

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.stack([member(images) for member in self.members]).mean(dim=0)


def anchor_points(input_size: int, strides: tuple[int, ...] = STRIDES, device=None,
                  dtype=torch.float32) -> torch.Tensor:
    """(A, 3) per anchor ``[grid_x, grid_y, stride]`` in the order of the head outputs (shared, do not modify:
    cached per device, so decoding on a GPU uploads the anchors once instead of once per call)."""
    return _anchor_points(int(input_size), tuple(strides), torch.device(device or "cpu"), dtype)


@lru_cache(maxsize=32)
def _anchor_points(input_size: int, strides: tuple[int, ...], device: torch.device, dtype: torch.dtype
                   ) -> torch.Tensor:
    return torch.tensor(numpy_anchor_points(input_size, strides), device=device, dtype=dtype)


def decode_raw_outputs(raw: torch.Tensor, input_size: int, strides: tuple[int, ...] = STRIDES
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Raw outputs (B, A, 5 + C) -> boxes (B, A, 4) ``[cx, cy, w, h]`` in input pixels, objectness (B, A)
    and class probabilities (B, A, C). Differentiable (used by the loss); numpy twin in vcl_fast.detect."""
    anchors = anchor_points(input_size, strides, raw.device, raw.dtype)
    if raw.shape[1] != anchors.shape[0]:
        raise ValueError(f"raw outputs have {raw.shape[1]} anchors; input_size={input_size} with strides "
                         f"{tuple(strides)} gives {anchors.shape[0]}")
    stride = anchors[:, 2:3]
    centres = (raw[..., 0:2] + anchors[:, :2]) * stride
    sizes = torch.exp(raw[..., 2:4]) * stride
    return torch.cat([centres, sizes], -1), raw[..., 4].sigmoid(), raw[..., 5:].sigmoid()


def build_yolox(config: YOLOXConfig, decode_in_inference: bool = False) -> YOLOX:
    """The detector for a config, freshly initialised (PyTorch default init, prior-probability biases)."""
    backbone = YOLOPAFPN(config.depth, config.width, (256, 512, 1024), config.act)
    head = YOLOXHead(config.num_classes, config.width, STRIDES, (256, 512, 1024), config.act)
    model = YOLOX(backbone, head, decode_in_inference)
    model.config = config
    return model


def build_detector(preset: str = "paper", decode_in_inference: bool = False, **overrides) -> YOLOX:
    """``build_detector("paper")`` is the reference YOLOX-s with one class; overrides change config fields
    (``build_detector("tiny_cpu", input_size=320)``). ``model.config`` holds the YOLOXConfig."""
    return build_yolox(model_config(preset, **overrides), decode_in_inference)
