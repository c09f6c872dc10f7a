"""SimOTA assignment and the YOLOX loss on hand-made cases."""
import pytest
import torch

from vcl_fast.models import build_detector
from vcl_fast.models.yolox import anchor_points
from vcl_fast.train.yolox_loss import YOLOXLoss, iou_loss, pairwise_iou, simota_assign

S = 64
ANCHORS = anchor_points(S)
CENTRES = (ANCHORS[:, :2] + 0.5) * ANCHORS[:, 2:3]

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def perfect_predictions(boxes):
    """Every anchor predicts the first gt box exactly, with neutral logits."""
    pred = boxes[:1].repeat(len(ANCHORS), 1)
    return pred, torch.zeros(len(ANCHORS)), torch.zeros(len(ANCHORS), 1)


def test_pairwise_iou_and_iou_loss():
    a = torch.tensor([[5.0, 5.0, 10.0, 10.0]])
    b = torch.tensor([[5.0, 5.0, 10.0, 10.0], [10.0, 5.0, 10.0, 10.0], [50.0, 50.0, 2.0, 2.0]])
    torch.testing.assert_close(pairwise_iou(a, b), torch.tensor([[1.0, 1 / 3, 0.0]]))
    torch.testing.assert_close(iou_loss(b[:2], a.repeat(2, 1)), torch.tensor([0.0, 1 - 1 / 9]))


def test_gt_box_gets_positive_anchors_at_its_centre():
    gt = torch.tensor([[32.0, 24.0, 32.0, 32.0]])  # 20 anchors have centres in the box and its centre region
    pred, obj, cls = perfect_predictions(gt)
    fg, matched, ious = simota_assign(pred, obj, cls, gt, torch.zeros(1, dtype=torch.int64), ANCHORS)
    # dynamic k = sum of the top-10 IoUs (all 1 here) = 10 anchors, all inside the box
    assert int(fg.sum()) == 10 and (matched == 0).all() and torch.allclose(ious, torch.ones(10))
    assert ((CENTRES[fg] - gt[0, :2]).abs() < gt[0, 2:] / 2).all()


def test_anchors_outside_box_fill_up_k_for_tiny_boxes():
    gt = torch.tensor([[32.0, 24.0, 16.0, 16.0]])  # only 4 anchor centres inside
    pred, obj, cls = perfect_predictions(gt)
    fg, _, _ = simota_assign(pred, obj, cls, gt, torch.zeros(1, dtype=torch.int64), ANCHORS)
    inside = ((CENTRES - gt[0, :2]).abs() < 8).all(1)
    assert int(fg.sum()) == 10 and bool(fg[inside].all()) and int(inside.sum()) == 4


def test_dynamic_k_follows_prediction_quality():
    gt = torch.tensor([[32.0, 32.0, 16.0, 16.0]])
    pred = torch.tensor([[32.0, 32.0, 16.0, 16.0]]).repeat(len(ANCHORS), 1)
    pred[:, 2:] = 8.0  # IoU 0.25 everywhere: top-10 sum 2.5 -> k = 2
    fg, _, ious = simota_assign(pred, torch.zeros(len(ANCHORS)), torch.zeros(len(ANCHORS), 1), gt,
                                torch.zeros(1, dtype=torch.int64), ANCHORS)
    assert int(fg.sum()) == 2 and torch.allclose(ious, torch.full((2,), 0.25))


def test_two_boxes_get_disjoint_anchors_and_far_anchors_stay_negative():
    gt = torch.tensor([[16.0, 16.0, 32.0, 32.0], [48.0, 48.0, 32.0, 32.0]])
    pred = torch.zeros(len(ANCHORS), 4)
    near_second = (CENTRES - gt[1, :2]).abs().max(1).values < (CENTRES - gt[0, :2]).abs().max(1).values
    pred[~near_second] = gt[0]
    pred[near_second] = gt[1]
    fg, matched, _ = simota_assign(pred, torch.zeros(len(ANCHORS)), torch.zeros(len(ANCHORS), 1), gt,
                                   torch.zeros(2, dtype=torch.int64), ANCHORS)
    positive_centres = CENTRES[fg]
    for g in (0, 1):
        assert (matched == g).any()
        assert ((positive_centres[matched == g] - gt[g, :2]).abs() < 16).all()


def test_gt_outside_every_anchor_region_gets_no_positives():
    gt = torch.tensor([[500.0, 500.0, 4.0, 4.0]])
    pred, obj, cls = perfect_predictions(gt)
    fg, matched, ious = simota_assign(pred, obj, cls, gt, torch.zeros(1, dtype=torch.int64), ANCHORS)
    assert not fg.any() and matched.numel() == 0 and ious.numel() == 0


def test_loss_terms_on_empty_and_non_empty_images():
    loss = YOLOXLoss(S)
    raw = torch.zeros(2, len(ANCHORS), 6)
    out = loss(raw, [torch.zeros(0, 4), torch.zeros(0, 4)])
    assert out["iou"] == 0 and out["cls"] == 0 and out["l1"] == 0
    # no positives: objectness BCE at logit 0 summed over all anchors, divided by max(num_fg, 1) = 1
    assert out["obj"].item() == pytest.approx(2 * len(ANCHORS) * torch.log(torch.tensor(2.0)).item(), rel=1e-5)
    out = loss(raw, [torch.tensor([[32.0, 32.0, 16.0, 16.0]]), torch.zeros(0, 4)], use_l1=True)
    assert out["iou"] > 0 and out["cls"] > 0 and out["l1"] > 0 and out["fg_per_gt"] >= 1
    assert out["loss"].item() == pytest.approx(sum(out[k].item() for k in ("iou", "obj", "cls", "l1")), rel=1e-6)


def test_loss_input_checks():
    loss = YOLOXLoss(S)
    with pytest.raises(ValueError, match="B gt box sets"):
        loss(torch.zeros(2, len(ANCHORS), 6), [torch.zeros(0, 4)])
    with pytest.raises(ValueError, match="anchors"):
        loss(torch.zeros(1, 10, 6), [torch.zeros(0, 4)])


def test_loss_decreases_when_training_one_batch():
    torch.manual_seed(0)
    model = build_detector("micro")
    images = torch.zeros(4, 3, S, S)
    images[0, :, 20:44, 24:40] = 1.0
    images[2, :, 4:20, 40:60] = 1.0
    boxes = [torch.tensor([[32.0, 32.0, 16.0, 24.0]]), torch.zeros(0, 4),
             torch.tensor([[50.0, 12.0, 20.0, 16.0]]), torch.zeros(0, 4)]
    loss = YOLOXLoss(S)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    values = []
    for _ in range(20):
        out = loss(model(images), boxes)
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
        values.append(out["loss"].item())
    assert sum(values[-3:]) / 3 < 0.75 * values[0]
