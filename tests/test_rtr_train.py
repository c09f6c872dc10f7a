import dataclasses
import shutil

import numpy as np
import pytest
import torch
from rtr_fixtures import write_photos

from vcl_fast.config import ConfigError
from vcl_fast.train.batches import (
    hard_negative_batches,
    hard_negative_batches_reference,
    random_batches,
    steps_per_epoch,
)
from vcl_fast.train.extractor import ExtractorTrainer, train_config, training_images


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    write_photos(folder, count=12, side=64)
    return folder


def _trainer(photos, out, **overrides):
    config, model_overrides = train_config("micro", overrides)
    return ExtractorTrainer(config, photos, out, model_overrides)


def _state(model):
    return {n: p.detach().clone() for n, p in model.state_dict().items()}


@pytest.mark.parametrize("k", [1, 2])
def test_stage1_freezes_regional_tokens_and_stage2_unlocks_them(photos, tmp_path, k):
    trainer = _trainer(photos, tmp_path / "out", num_regional_tokens=k, steps=4, stage1_steps=2)
    before = _state(trainer.model)
    trainer.run(until_step=2)
    model = trainer.model
    assert model.regional_tokens_frozen
    assert model.reg_token.grad is None
    assert torch.equal(model.pos_embed.grad[:, :k], torch.zeros_like(model.pos_embed.grad[:, :k]))
    assert model.pos_embed.grad[:, k:].abs().sum() > 0
    assert torch.equal(model.reg_token, before["reg_token"])
    assert torch.equal(model.pos_embed[:, :k], before["pos_embed"][:, :k])
    assert not torch.equal(model.cls_token, before["cls_token"])
    assert not torch.equal(model.blocks[0].attn.qkv.weight, before["blocks.0.attn.qkv.weight"])
    assert all(h["stage"] == 1 for h in trainer.history)
    trainer.run()
    assert not model.regional_tokens_frozen
    assert model.reg_token.grad is not None and model.reg_token.grad.abs().sum() > 0
    assert not torch.equal(model.reg_token, before["reg_token"])
    assert [h["stage"] for h in trainer.history] == [1, 1, 2, 2]


def test_symmetric_schedule_trains_regional_tokens_from_the_start(photos, tmp_path):
    trainer = _trainer(photos, tmp_path / "out", schedule="symmetric", steps=1)
    before = _state(trainer.model)
    trainer.run()
    assert not torch.equal(trainer.model.reg_token, before["reg_token"])
    assert trainer.history[0]["stage"] == 2 and 0.0 <= trainer.history[0]["hit_rate"] <= 1.0


@pytest.mark.parametrize("batching", ["random", "hard"])
def test_resume_after_interrupt_matches_uninterrupted_run(photos, tmp_path, batching):
    overrides = dict(steps=6, stage1_steps=2, batching=batching, hard_refresh_steps=4, checkpoint_every=4)
    straight = _trainer(photos, tmp_path / "straight", **overrides)
    straight.run()
    first = _trainer(photos, tmp_path / "resumed", **overrides)
    first.run(until_step=1)  # a run stopped on purpose checkpoints where it stopped
    assert _trainer(photos, tmp_path / "resumed", **overrides).step == 1
    step = first.train_step

    def interrupted_in_step_6(views):
        if first.step == 5:
            raise KeyboardInterrupt
        return step(views)

    first.train_step = interrupted_in_step_6
    with pytest.raises(KeyboardInterrupt):  # 5 steps done, last checkpoint at step 4: step 5 is lost
        first.run()
    resumed = _trainer(photos, tmp_path / "resumed", **overrides)
    assert resumed.step == 4
    resumed.run()
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert [h["loss"] for h in straight.history] == [h["loss"] for h in resumed.history]
    assert (tmp_path / "resumed" / "model.safetensors").is_file()


def test_resume_rejects_a_different_configuration(photos, tmp_path):
    _trainer(photos, tmp_path / "out", steps=2).run()
    with pytest.raises(ValueError, match="different configuration.*temperature"):
        _trainer(photos, tmp_path / "out", steps=2, temperature=0.5)
    assert _trainer(photos, tmp_path / "out", steps=3).step == 2  # more steps is a legal resume


def test_init_fine_tunes_the_weights_of_another_extractor(photos, tmp_path):
    from vcl_fast.models.weights import load_extractor

    _trainer(photos, tmp_path / "first", steps=2).run()
    first = _state(load_extractor(tmp_path / "first"))
    fresh = _trainer(photos, tmp_path / "fresh", seed=1)
    tuned = _trainer(photos, tmp_path / "tuned", steps=2, seed=1, init=str(tmp_path / "first"))
    assert any(not torch.equal(first[n], p) for n, p in _state(fresh.model).items())
    for name, value in _state(tuned.model).items():
        assert torch.equal(first[name], value), name
    tuned.run(until_step=1)
    shutil.rmtree(tmp_path / "first")  # resuming reads the checkpoint, not the init folder
    tuned = _trainer(photos, tmp_path / "tuned", steps=2, seed=1, init=str(tmp_path / "first"))
    assert tuned.step == 1
    tuned.run()
    assert any(not torch.equal(first[n], p) for n, p in _state(tuned.model).items())
    assert (tmp_path / "tuned" / "model.safetensors").is_file()
    with pytest.raises(ValueError, match="different configuration.*init"):  # resuming records where it started
        _trainer(photos, tmp_path / "tuned", steps=2, seed=1)
    with pytest.raises(ValueError, match="another shape: depth"):
        _trainer(photos, tmp_path / "deeper", init=str(tmp_path / "tuned"), **{"model.depth": 3})
    with pytest.raises(FileNotFoundError, match="no extractor config"):
        _trainer(photos, tmp_path / "nowhere", init=str(tmp_path / "missing"))


def test_resume_accepts_a_checkpoint_older_than_a_config_field(photos, tmp_path):
    trainer = _trainer(photos, tmp_path / "out", steps=2)
    trainer.run()
    path = tmp_path / "out" / "checkpoint.pt"
    state = torch.load(path, weights_only=False)
    del state["train_config"]["init"], state["train_config"]["pip_probability"]  # fields added since
    torch.save(state, path)
    assert _trainer(photos, tmp_path / "out", steps=3).step == 2
    with pytest.raises(ValueError, match="different configuration.*pip_probability"):
        _trainer(photos, tmp_path / "out", steps=3, pip_probability=0.9)


def test_hard_negative_batches_match_reference():
    rng = np.random.default_rng(0)
    for n, d, batch in [(5, 3, 2), (20, 8, 5), (33, 4, 33)]:
        emb = rng.normal(size=(n, d)).astype(np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        queries = rng.permutation(n)[: min(n, 7)]
        fast = hard_negative_batches(emb, queries, batch)
        ref = hard_negative_batches_reference(emb, queries, batch)
        assert fast.shape == (len(queries), batch)
        assert np.array_equal(fast, ref)
        assert np.array_equal(fast[:, 0], queries)
        assert all(len(set(row)) == batch for row in fast)
    with pytest.raises(ValueError, match="batch_size"):
        hard_negative_batches(emb, queries, n + 1)


def test_random_batches_shard_and_reshuffle():
    a0 = random_batches(20, 4, epoch=0, seed=1, world_size=2, rank=0)
    a1 = random_batches(20, 4, epoch=0, seed=1, world_size=2, rank=1)
    assert a0.shape == (steps_per_epoch(20, 4, 2), 4) == (2, 4)
    assert not set(a0.ravel()) & set(a1.ravel())
    assert np.array_equal(a0, random_batches(20, 4, epoch=0, seed=1, world_size=2, rank=0))
    assert not np.array_equal(a0, random_batches(20, 4, epoch=1, seed=1, world_size=2, rank=0))
    with pytest.raises(ValueError, match="at least"):
        random_batches(3, 4, 0, 0)


def test_train_config_and_data_errors(photos, tmp_path):
    config, model_overrides = train_config("micro", {"model.depth": "2", "steps": "7"})
    assert config.steps == 7 and model_overrides == {"depth": "2"}
    with pytest.raises(ConfigError, match="unknown RTRConfig key"):
        train_config("micro", {"model.width": "2"})
    with pytest.raises(ValueError, match="schedule"):
        train_config("micro", {"schedule": "sideways"})
    with pytest.raises(FileNotFoundError):
        training_images(tmp_path / "missing")
    (tmp_path / "disc" / "train").mkdir(parents=True)
    write_photos(tmp_path / "disc" / "train", count=2, side=32)
    (tmp_path / "disc" / "elsewhere.png").write_bytes((photos / "camera.png").read_bytes())
    assert [p.parent.name for p in training_images(tmp_path / "disc")] == ["train", "train"]
    with pytest.raises(ValueError, match="need at least"):
        _trainer(tmp_path / "disc", tmp_path / "out")


def test_pip_probability_sets_how_often_views_are_picture_in_picture(photos, monkeypatch):
    from vcl_fast.train import extractor

    chains = []
    real_copy_edit = extractor.copy_edit

    def recording_copy_edit(image, rng, space, background):
        edited, names = real_copy_edit(image, rng, space, background)
        chains.append(names)
        return edited, names

    monkeypatch.setattr(extractor, "copy_edit", recording_copy_edit)
    config, model_config = extractor.TrainConfig(model="micro", batch_size=8), extractor.extractor_config("micro", 1)
    for probability, expected in ((0.0, 0.0), (1.0, 1.0)):
        views = extractor.ViewPairBatches(training_images(photos),
                                          dataclasses.replace(config, pip_probability=probability), model_config)
        views.set_plan(0, np.arange(8).reshape(1, 8))
        chains.clear()
        assert views[0].shape == (16, 3, 32, 32)
        assert np.mean(["pip" in names for names in chains]) == expected
    with pytest.raises(ValueError, match="pip_probability"):
        train_config("micro", {"pip_probability": "1.5"})
