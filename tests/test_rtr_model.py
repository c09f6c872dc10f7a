import dataclasses
import itertools

import pytest
import torch
import torch.nn.functional as F

from vcl_fast.config import ConfigError, apply_overrides, parse_overrides
from vcl_fast.models.rtr import PRESETS, RTRConfig, build_extractor, extractor_config


@pytest.mark.parametrize("k,batch", list(itertools.product(range(4), [1, 3])))
def test_output_shape_and_unit_norm(k, batch):
    torch.manual_seed(0)
    model = build_extractor("micro", k)
    out = model(torch.randn(batch, 3, 32, 32))
    assert out.shape == (batch, k + 1, 16)
    assert model.cls_index == k == model.num_regional_tokens
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(batch, k + 1))
    assert model.pos_embed.shape == (1, k + 1 + 4, 32)


@pytest.mark.parametrize("k", range(4))
def test_token_order_regions_then_cls_then_patches(k):
    torch.manual_seed(0)
    model = build_extractor("micro", k)
    with torch.no_grad():
        model.cls_token.fill_(5.0)
        if k:
            model.reg_token.copy_(torch.arange(k, dtype=torch.float32).view(1, k, 1).expand(1, k, 32) - 10.0)
    x = torch.randn(2, 3, 32, 32)
    seq = model._pos_embed(model.patch_embed(x))
    pos = model.pos_embed
    for i in range(k):
        torch.testing.assert_close(seq[:, i], (model.reg_token[:, i] + pos[:, i]).expand(2, -1))
    torch.testing.assert_close(seq[:, k], (model.cls_token[:, 0] + pos[:, k]).expand(2, -1))
    torch.testing.assert_close(seq[:, k + 1 :], model.patch_embed(x) + pos[:, k + 1 :])
    # the output's last row is the projected CLS token, earlier rows the regional tokens in order
    feats = model.forward_features(x)
    expected = F.normalize(model.proj(feats[:, : k + 1]), dim=-1)
    torch.testing.assert_close(model(x), expected)
    torch.testing.assert_close(model(x)[:, -1], F.normalize(model.proj(feats[:, k]), dim=-1))


def test_fused_attention_switch_gives_same_output():
    torch.manual_seed(0)
    model = build_extractor("micro", 2).eval()
    x = torch.randn(2, 3, 32, 32)
    model.set_fused_attn(True)
    fused = model(x)
    model.set_fused_attn(False)
    assert not any(b.attn.fused_attn for b in model.blocks)
    torch.testing.assert_close(model(x), fused, atol=1e-5, rtol=1e-5)


def test_no_weight_decay_names_are_the_token_parameters():
    model = build_extractor("micro", 1)
    names = dict(model.named_parameters())
    assert model.no_weight_decay() == {"pos_embed", "cls_token", "reg_token"}
    assert all(n in names for n in model.no_weight_decay())


def test_presets_paper_and_tiny():
    paper = PRESETS["paper"]
    assert (paper.img_size, paper.patch_size, paper.embed_dim, paper.depth, paper.num_heads, paper.out_dim) == (
        384, 16, 384, 12, 6, 256)
    assert paper.num_patches == 576
    model = build_extractor("paper", 1)
    assert model.pos_embed.shape == (1, 578, 384)
    assert build_extractor("tiny_cpu", 0).config.num_tokens == 1
    hybrid = build_extractor("hybrid_cpu")
    assert hybrid.pos_embed.shape == (1, 2 + 49, 192) and hybrid.config.mean == (0.5, 0.5, 0.5)


def test_config_overrides_are_type_checked():
    config = extractor_config("micro", 2, depth="3", mlp_ratio="2.5")
    assert (config.depth, config.mlp_ratio, config.num_regional_tokens) == (3, 2.5, 2)
    assert apply_overrides(config, {"mean": "0.5,0.5,0.5"}).mean == (0.5, 0.5, 0.5)
    with pytest.raises(ConfigError, match="unknown RTRConfig key 'width'"):
        extractor_config("micro", width=3)
    with pytest.raises(ConfigError, match="depth must be int"):
        extractor_config("micro", depth="deep")
    with pytest.raises(TypeError, match="depth must be int"):
        extractor_config("micro", depth=True)
    with pytest.raises(ConfigError, match="unknown preset"):
        extractor_config("huge")
    with pytest.raises(ValueError, match="multiple of patch_size"):
        extractor_config("micro", img_size=40)
    with pytest.raises(ValueError, match="key=value"):
        parse_overrides(["depth"])
    assert parse_overrides(["a=1", " b = x=y"]) == {"a": "1", "b": "x=y"}


def test_build_from_config_object():
    config = dataclasses.replace(PRESETS["micro"], depth=2)
    model = build_extractor(config, 3)
    assert len(model.blocks) == 2 and model.num_regional_tokens == 3
    assert isinstance(model.config, RTRConfig)


def _micro_hybrid():
    return build_extractor("micro", 1, backbone="tf_efficientnet_lite0")


def test_hybrid_backbone_gives_one_token_per_16_pixels():
    torch.manual_seed(0)
    model = _micro_hybrid().eval()
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 2, 16)
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(2, 2))
    assert model.pos_embed.shape == (1, 2 + 4, 32)


def test_hybrid_stem_stops_at_stride_16_with_the_full_backbones_output():
    import timm

    from vcl_fast.models.rtr import stride16_stem

    torch.manual_seed(0)
    stem = stride16_stem("tf_efficientnet_lite0").eval()
    full = timm.create_model("tf_efficientnet_lite0", pretrained=False, features_only=True, out_indices=(3,)).eval()
    full.load_state_dict(stem.state_dict(), strict=False)  # the cut stages stay random and must not matter
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        (mine,), (theirs,) = stem(x), full(x)
    assert mine.shape == (1, 112, 4, 4)
    torch.testing.assert_close(mine, theirs)
    assert len(stem.blocks) < len(full.blocks)


@pytest.mark.parametrize("change,message", [({"backbone": "resnet50"}, "unknown backbone"),
                                            ({"backbone": "tf_efficientnet_lite0", "patch_size": 8}, "patch_size must be 16")])
def test_hybrid_config_errors(change, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(PRESETS["hybrid_cpu"], **change)


def test_extract_features_gives_blank_images_zero_rows():
    import numpy as np
    from PIL import Image

    from vcl_fast.models.extract import extract_features

    torch.manual_seed(0)
    model = build_extractor(extractor_config("micro", 1))
    noise = np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    images = [Image.fromarray(noise), Image.new("RGB", (48, 48), (0, 0, 0)),
              lambda: Image.new("RGB", (40, 64), (250, 250, 250)), Image.fromarray(noise[:, ::-1])]
    for batch_size in (1, 3):
        features = extract_features(model, images, batch_size=batch_size)
        assert features.shape == (4, 2, 16)
        np.testing.assert_array_equal(np.abs(features).sum(axis=(1, 2)) == 0, [False, True, True, False])
        np.testing.assert_allclose(np.linalg.norm(features[[0, 3]], axis=-1), 1.0, atol=1e-5)
