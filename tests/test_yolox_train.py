"""Detector training: map datasets, augmentations, schedule, EMA, end-to-end runs, resume, CLI."""
import json

import numpy as np
import pytest
import torch

from vcl_fast.cli import main
from vcl_fast.data.map_augment import (MapAugmentation, augment_sample, crop_window, reverse_sample,
                                       transpose_sample)
from vcl_fast.data.map_dataset import InMemoryMapDataset, MapDataset, MapSample, validate_sample, write_map_sample
from vcl_fast.data.synthetic_maps import planted_copy_map, planted_copy_samples
from vcl_fast.models import build_detector
from vcl_fast.models.detector_io import load_detector
from vcl_fast.train import detector
from vcl_fast.train.detector import (ModelEMA, boxes_to_pixels, epoch_batches, learning_rate, param_groups,
                                     train_detector)
from vcl_fast.train.detector_config import train_config

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def small_maps():
    return InMemoryMapDataset(planted_copy_samples(10, seed=3, length_range=(24, 90), copy_length=(6, 30)))


def copy_cells_inside_boxes(sample: MapSample, level: float = 0.42) -> bool:
    """Every planted high-similarity cell lies in some box (cells are [q, q + 1) x [r, r + 1))."""
    qs, rs = np.nonzero(sample.sim > level)
    b = sample.boxes
    inside = ((qs[:, None] >= b[:, 0] - 1e-4) & (qs[:, None] + 1 <= b[:, 2] + 1e-4)
              & (rs[:, None] >= b[:, 1] - 1e-4) & (rs[:, None] + 1 <= b[:, 3] + 1e-4))
    return bool(inside.any(1).all())


# ----------------------------------------------------------------------------------------- datasets


def test_synthetic_copies_are_exactly_boxed():
    rng = np.random.default_rng(0)
    for _ in range(20):
        sample = planted_copy_map(rng, 150, 120, 3, background=(0.0, 0.3), noise=0.02,
                                  copy_similarity=(0.6, 0.9))
        assert copy_cells_inside_boxes(sample, level=0.5)
        b = sample.boxes
        slopes = (b[:, 3] - b[:, 1]) / (b[:, 2] - b[:, 0])
        assert ((slopes > 0.45) & (slopes < 2.2)).all()
        for i in range(len(b)):  # copies never share query or reference frames
            for j in range(i):
                assert b[i, 2] <= b[j, 0] or b[j, 2] <= b[i, 0]
                assert b[i, 3] <= b[j, 1] or b[j, 3] <= b[i, 1]


def test_map_dataset_round_trip(tmp_path):
    samples = planted_copy_samples(3, seed=1, length_range=(5, 20), copy_length=(2, 4), copies_range=(0, 2))
    for i, (sim, boxes) in enumerate(samples):
        write_map_sample(tmp_path / f"{i:03d}.npz", sim, boxes)
    (tmp_path / "notes.txt").write_text("ignored")
    dataset = MapDataset(tmp_path)
    assert len(dataset) == 3
    for (sim, boxes), loaded in zip(samples, dataset):
        np.testing.assert_array_equal(loaded.sim, sim)
        np.testing.assert_array_equal(loaded.boxes, boxes)
        assert loaded.sim.dtype == np.float32 and loaded.boxes.shape[1] == 4


@pytest.mark.parametrize("sim, boxes, error, message", [
    (np.zeros((4, 5)), [[0, 0, 5, 5]], ValueError, "0 <= q_start < q_end <= 4"),
    (np.zeros((4, 5)), [[2, 0, 1, 5]], ValueError, "is not"),
    (np.zeros((4, 5)), [[0, 0, 1]], ValueError, r"shape \(N, 4\)"),
    (np.zeros(4), [], ValueError, "non-empty 2-D"),
    (np.zeros((4, 5), np.int64), [], TypeError, "floating point"),
    (np.full((4, 5), np.nan), [], ValueError, "finite"),
])
def test_bad_samples(sim, boxes, error, message):
    with pytest.raises(error, match=message):
        validate_sample(sim, np.asarray(boxes, dtype=np.float32))


def test_dataset_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        MapDataset(tmp_path / "missing")
    with pytest.raises(ValueError, match="no .npz samples"):
        MapDataset(tmp_path)
    np.savez(tmp_path / "a.npz", sim=np.zeros((3, 3), np.float32))
    with pytest.raises(ValueError, match="needs arrays 'sim' and 'boxes'"):
        MapDataset(tmp_path)[0]
    with pytest.raises(ValueError, match="at least one sample"):
        InMemoryMapDataset([])


# ------------------------------------------------------------------------------------ augmentations


def test_transpose_and_reverse_are_exact():
    sim = np.arange(12, dtype=np.float32).reshape(3, 4)
    sample = MapSample(sim, np.array([[0, 1, 2, 4]], np.float32))
    t = transpose_sample(sample)
    np.testing.assert_array_equal(t.sim, sim.T)
    np.testing.assert_array_equal(t.boxes, [[1, 0, 4, 2]])
    r = reverse_sample(sample)
    np.testing.assert_array_equal(r.sim, sim[::-1, ::-1])
    np.testing.assert_array_equal(r.boxes, [[1, 0, 3, 3]])


def test_crop_windows_never_cut_a_box():
    rng = np.random.default_rng(5)
    sample = planted_copy_map(rng, 200, 160, 3)
    for _ in range(200):
        window = crop_window(sample.boxes, sample.sim.shape, rng, 0.5, 10)
        if window is None:
            continue
        q0, r0, q1, r1 = window
        assert q1 - q0 >= 100 and r1 - r0 >= 80
        b = sample.boxes
        inside = (b[:, 0] >= q0) & (b[:, 2] <= q1) & (b[:, 1] >= r0) & (b[:, 3] <= r1)
        outside = (b[:, 2] <= q0) | (b[:, 0] >= q1) | (b[:, 3] <= r0) | (b[:, 1] >= r1)
        assert (inside | outside).all()


def test_augmented_samples_keep_copies_boxed():
    rng = np.random.default_rng(7)
    aug = MapAugmentation(crop_prob=1.0, gain_jitter=0.0, offset_jitter=0.0)
    for _ in range(30):
        sample = planted_copy_map(rng, 120, 100, 3, background=(0.0, 0.3), noise=0.02, copy_similarity=(0.6, 0.9))
        out = augment_sample(sample, rng, aug)
        assert out.sim.flags.c_contiguous and out.sim.dtype == np.float32
        assert copy_cells_inside_boxes(out, level=0.5)
        validate_sample(out.sim, out.boxes)


def test_no_augmentation_is_identity_and_bad_settings():
    sample = planted_copy_map(np.random.default_rng(0), 40, 50, 2)
    out = augment_sample(sample, np.random.default_rng(1), MapAugmentation.none())
    np.testing.assert_array_equal(out.sim, sample.sim)
    np.testing.assert_array_equal(out.boxes, sample.boxes)
    with pytest.raises(ValueError):
        MapAugmentation(crop_prob=2.0)
    with pytest.raises(ValueError):
        MapAugmentation(min_crop=0.0)


# -------------------------------------------------------------------------------- recipe components


def test_boxes_to_pixels_axes():
    # a (100, 50) map at 64 px: query (rows) -> y scaled 0.64, reference (columns) -> x scaled 1.28
    np.testing.assert_allclose(boxes_to_pixels(np.array([[10, 5, 60, 25]]), (100, 50), 64),
                               [[19.2, 22.4, 25.6, 32.0]], rtol=1e-6)
    assert boxes_to_pixels(np.zeros((0, 4)), (5, 5), 64).shape == (0, 4)


def test_epoch_batches_are_seeded_and_cover_the_data():
    a = epoch_batches(10, 4, seed=1, epoch=2)
    assert a[0].tolist() == epoch_batches(10, 4, seed=1, epoch=2)[0].tolist()
    assert [len(b) for b in a] == [4, 4]  # the incomplete last batch is dropped
    assert len(set(np.concatenate(a).tolist())) == 8
    assert not np.array_equal(np.concatenate(a), np.concatenate(epoch_batches(10, 4, seed=1, epoch=3)))
    assert [len(b) for b in epoch_batches(3, 8, 0, 0)] == [3]


def test_learning_rate_schedule():
    config = train_config("micro", {"epochs": 10, "warmup_epochs": 2, "no_aug_epochs": 2, "batch_size": 64,
                                    "basic_lr_per_img": 0.01 / 64, "min_lr_ratio": 0.05})
    lr = [learning_rate(config, i, 10) for i in range(100)]
    assert lr[0] == 0 and lr[10] == pytest.approx(0.0025)  # quadratic warm-up: (10 / 20)^2 * 0.01
    assert lr[20] == pytest.approx(0.01)  # peak = 0.01 per 64 images x batch 64
    assert all(a >= b for a, b in zip(lr[20:80], lr[21:80]))  # cosine decay
    assert lr[80:] == [pytest.approx(0.0005)] * 20  # no-aug epochs at min_lr


def test_param_groups_exclude_norms_and_biases_from_decay():
    model = build_detector("micro")
    decay, no_decay = param_groups(model, 5e-4)
    assert decay["weight_decay"] == 5e-4 and no_decay["weight_decay"] == 0
    ids = [id(p) for p in decay["params"] + no_decay["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())
    assert all(p.dim() == 4 for p in decay["params"]) and all(p.dim() == 1 for p in no_decay["params"])


def test_model_ema():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    ema = ModelEMA(model, decay=0.5, ramp=1e-9)  # decay 0.5 from the first update
    before = model[0].weight.detach().clone()
    with torch.no_grad():
        model[0].weight.add_(2.0)
    model[1].num_batches_tracked += 3
    ema.update(model)
    torch.testing.assert_close(ema.module[0].weight, before + 1.0)
    assert int(ema.module[1].num_batches_tracked) == 3


# ------------------------------------------------------------------------------------ training runs


def run_micro(small_maps, out, **kwargs):
    config = train_config("micro", {"checkpoint_every": 1, "batch_size": 4})
    return train_detector(config, small_maps, out, progress=False, **kwargs)


def test_training_writes_a_loadable_ema_model(tmp_path, small_maps):
    out = run_micro(small_maps, tmp_path / "run")
    info = json.loads((out / "config.json").read_text())
    assert [h["epoch"] for h in info["history"]] == [1, 2]
    assert info["history"][0]["l1"] == 0 and info["history"][1]["l1"] > 0  # L1 in the last (no-aug) epoch
    assert info["train"]["batch_size"] == 4
    model = load_detector(out)
    assert model.config == train_config("micro").model
    assert (out / "checkpoint.pt").is_file()


def test_resume_after_interruption_is_bit_exact(tmp_path, small_maps, monkeypatch):
    straight = run_micro(small_maps, tmp_path / "straight")
    calls = {"n": 0}
    forward = detector.YOLOXLoss.forward

    def interrupted(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:  # the second iteration of epoch 2
            raise KeyboardInterrupt
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(detector.YOLOXLoss, "forward", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_micro(small_maps, tmp_path / "resumed")
    assert not (tmp_path / "resumed" / "model.safetensors").exists()
    monkeypatch.setattr(detector.YOLOXLoss, "forward", forward)
    resumed = run_micro(small_maps, tmp_path / "resumed")
    a, b = load_detector(straight).state_dict(), load_detector(resumed).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    history = [json.loads((d / "config.json").read_text())["history"] for d in (straight, resumed)]
    assert history[0] == history[1]


def test_resume_refuses_another_config(tmp_path, small_maps):
    run_micro(small_maps, tmp_path / "run")
    with pytest.raises(ValueError, match="belongs to another run"):
        train_detector(train_config("micro", {"seed": 5}), small_maps, tmp_path / "run", progress=False)
    # runtime settings may change between runs
    train_detector(train_config("micro", {"checkpoint_every": 5, "batch_size": 4, "device": "cpu"}), small_maps,
                   tmp_path / "run", progress=False)
    train_detector(train_config("micro", {"seed": 5, "epochs": 1, "no_aug_epochs": 0}), small_maps,
                   tmp_path / "run", progress=False, resume=False)


def test_fine_tuning_starts_from_init_weights(tmp_path, small_maps):
    torch.manual_seed(11)
    init = build_detector("micro")
    from vcl_fast.models.detector_io import save_detector

    save_detector(init, tmp_path / "init")
    config = train_config("micro", {"epochs": 1, "no_aug_epochs": 0, "warmup_epochs": 1, "ema_decay": 0.0})
    out = train_detector(config, small_maps, tmp_path / "ft", init=tmp_path / "init", progress=False)
    # warm-up from lr 0 and one epoch of 2 steps: weights stay near the init, far from a fresh seed-0 model
    tuned = load_detector(out).state_dict()
    fresh = train_config("micro")
    torch.manual_seed(fresh.seed)
    other = build_detector("micro").state_dict()
    key = "backbone.backbone.stem.conv.conv.weight"
    assert (tuned[key] - init.state_dict()[key]).abs().max() < (tuned[key] - other[key]).abs().max()
    with pytest.raises(ValueError, match="not the requested"):
        train_detector(train_config("micro", {"model.width": 0.125}), small_maps, tmp_path / "ft2",
                       init=tmp_path / "init", progress=False)


# ------------------------------------------------------------------------------------------------ CLI


def write_dataset(path, count=6):
    for i, (sim, boxes) in enumerate(planted_copy_samples(count, 0, length_range=(20, 60), copy_length=(5, 20))):
        write_map_sample(path / f"{i}.npz", sim, boxes)
    return path


def test_cli_trains_on_a_map_folder(tmp_path, capsys):
    data = write_dataset(tmp_path / "maps")
    code = main(["train", "detector", "--preset", "micro", "--data", str(data), "--out", str(tmp_path / "out"),
                 "--quiet", "epochs=1", "no_aug_epochs=0", "batch_size=2"])
    assert code == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["epoch"] == 1
    assert load_detector(tmp_path / "out").config == train_config("micro").model


@pytest.mark.parametrize("extra, message", [
    ([], "give --data DIR"),
    (["--data", "{maps}", "--labels", "x.json"], "needs --features"),
    (["--data", "{maps}", "--fraction", "0.5"], "go with --labels"),
    (["--labels", "x.json"], "needs --features"),
    (["--data", "{maps}", "bogus=1"], "unknown DetectorTrainConfig key 'bogus'"),
    (["--data", "{maps}", "model.width=abc"], "width must be float"),
    (["--data", "{maps}", "model=3"], "is a group"),
    (["--data", "{tmp}/nothing"], "no such dataset directory"),
    (["--data", "{maps}", "--preset", "huge"], "unknown preset 'huge'"),
])
def test_cli_errors_are_one_line(tmp_path, capsys, extra, message):
    maps = write_dataset(tmp_path / "maps", count=2)
    args = [a.format(maps=maps, tmp=tmp_path) for a in extra]
    code = main(["train", "detector", "--preset", "micro", "--out", str(tmp_path / "out"), "--quiet", *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("vcl-fast train: error:") and message in err[0]
    assert not (tmp_path / "out" / "model.safetensors").exists()
