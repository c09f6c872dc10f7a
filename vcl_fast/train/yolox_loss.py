"""YOLOX training loss with SimOTA label assignment, as in the reference implementation, kept out of the
model: ``YOLOXLoss(input_size)(raw_outputs, gt_boxes)``.

Per image, SimOTA picks the candidate anchors whose centre lies inside a ground-truth box or within
``center_radius`` strides of its centre, scores each (gt, anchor) pair by
``cost = BCE(sqrt(p_cls * p_obj), one-hot) + 3 * -log(IoU) + 1e5 * [not (in box and in centre region)]``,
gives each gt its ``k`` cheapest anchors with ``k = max(1, int(sum of its top-10 IoUs))`` and resolves anchors
claimed twice by the lower cost. Losses, each summed and divided by the number of positive anchors:
``5 * (1 - IoU^2)`` on positive boxes, BCE on objectness for every anchor (target: positive or not), BCE on
class logits of positive anchors (target: one-hot x IoU), and, when ``use_l1`` (the reference's last,
no-augmentation epochs), L1 between raw box outputs and the encoded gt boxes.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vcl_fast.detect.decode import STRIDES
from vcl_fast.models.yolox import anchor_points


def pairwise_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N, 4) x (M, 4) boxes ``[cx, cy, w, h]`` -> (N, M) IoU."""
    tl = torch.maximum(a[:, None, :2] - a[:, None, 2:] / 2, b[None, :, :2] - b[None, :, 2:] / 2)
    br = torch.minimum(a[:, None, :2] + a[:, None, 2:] / 2, b[None, :, :2] + b[None, :, 2:] / 2)
    inter = (br - tl).clamp(min=0).prod(-1)
    union = a[:, None, 2:].prod(-1) + b[None, :, 2:].prod(-1) - inter
    return inter / (union + 1e-16)


def iou_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(N, 4) x (N, 4) ``[cx, cy, w, h]`` -> (N,) ``1 - IoU^2`` of matching rows."""
    tl = torch.maximum(pred[:, :2] - pred[:, 2:] / 2, target[:, :2] - target[:, 2:] / 2)
    br = torch.minimum(pred[:, :2] + pred[:, 2:] / 2, target[:, :2] + target[:, 2:] / 2)
    inter = (br - tl).clamp(min=0).prod(-1)
    union = pred[:, 2:].prod(-1) + target[:, 2:].prod(-1) - inter
    return 1 - (inter / (union + 1e-16)) ** 2


@torch.no_grad()
def simota_assign(pred_boxes: torch.Tensor, obj_logits: torch.Tensor, cls_logits: torch.Tensor,
                  gt_boxes: torch.Tensor, gt_classes: torch.Tensor, anchors: torch.Tensor,
                  center_radius: float = 2.5, candidate_k: int = 10
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """SimOTA for one image.

    pred_boxes (A, 4) ``[cx, cy, w, h]`` pixels, obj_logits (A,), cls_logits (A, C), gt_boxes (G, 4) (G >= 1),
    gt_classes (G,) int64, anchors (A, 3) ``[grid_x, grid_y, stride]``.
    Returns fg_mask (A,) bool, matched_gt (F,) int64 (gt index of each positive anchor in anchor order) and
    matched_iou (F,) (IoU of its prediction with that gt).
    """
    centres = (anchors[:, :2] + 0.5) * anchors[:, 2:3]  # (A, 2)
    half = gt_boxes[:, None, 2:] / 2
    offset = centres[None] - gt_boxes[:, None, :2]  # (G, A, 2)
    in_box = (offset.abs() < half).all(-1)
    in_centre = (offset.abs() < center_radius * anchors[None, :, 2:3]).all(-1)
    candidates = in_box.any(0) | in_centre.any(0)
    fg_mask = torch.zeros_like(candidates)
    if not candidates.any():
        return fg_mask, gt_classes.new_zeros(0), pred_boxes.new_zeros(0)
    ious = pairwise_iou(gt_boxes, pred_boxes[candidates].float())  # (G, N)
    probs = (cls_logits[candidates].float().sigmoid() * obj_logits[candidates, None].float().sigmoid()).sqrt()
    one_hot = F.one_hot(gt_classes, cls_logits.shape[1]).float()  # (G, C)
    cls_cost = F.binary_cross_entropy(probs[None].expand(len(gt_boxes), -1, -1),
                                      one_hot[:, None].expand(-1, probs.shape[0], -1), reduction="none").sum(-1)
    cost = cls_cost + 3.0 * -torch.log(ious + 1e-8) + 1e5 * ~(in_box & in_centre)[:, candidates]

    k_top = min(candidate_k, ious.shape[1])
    dynamic_k = ious.topk(k_top, dim=1).values.sum(1).int().clamp(min=1).tolist()
    matching = torch.zeros_like(cost, dtype=torch.bool)
    for g, k in enumerate(dynamic_k):
        matching[g, cost[g].topk(k, largest=False).indices] = True
    claimed = matching.sum(0) > 1
    if claimed.any():
        matching[:, claimed] = False
        matching[cost[:, claimed].argmin(0), claimed.nonzero()[:, 0]] = True
    positive = matching.any(0)
    fg_mask[candidates] = positive
    matched_gt = matching[:, positive].int().argmax(0)
    matched_iou = (matching.float() * ious).sum(0)[positive]
    return fg_mask, matched_gt, matched_iou


class YOLOXLoss(nn.Module):
    """``loss(raw (B, A, 5 + C), gt_boxes [ (G_b, 4) cx, cy, w, h in input pixels ], gt_classes=None,
    use_l1=False) -> dict`` with ``loss`` (the total to minimise), ``iou`` (already x reg_weight), ``obj``,
    ``cls``, ``l1`` (0 unless use_l1) and ``fg_per_gt`` (positives per gt box). Computed in float32."""

    def __init__(self, input_size: int, strides: tuple[int, ...] = STRIDES, num_classes: int = 1,
                 reg_weight: float = 5.0, center_radius: float = 2.5, candidate_k: int = 10):
        super().__init__()
        self.input_size = input_size
        self.strides = tuple(strides)
        self.num_classes = num_classes
        self.reg_weight = reg_weight
        self.center_radius = center_radius
        self.candidate_k = candidate_k

    def forward(self, raw: torch.Tensor, gt_boxes: list[torch.Tensor], gt_classes: list[torch.Tensor] | None = None,
                use_l1: bool = False) -> dict[str, torch.Tensor]:
        raw = raw.float()
        batch, num_anchors, channels = raw.shape
        if channels != 5 + self.num_classes or len(gt_boxes) != batch:
            raise ValueError(f"expected raw outputs (B, A, {5 + self.num_classes}) and B gt box sets, got "
                             f"{tuple(raw.shape)} and {len(gt_boxes)} sets")
        anchors = anchor_points(self.input_size, self.strides, raw.device)
        if anchors.shape[0] != num_anchors:
            raise ValueError(f"raw outputs have {num_anchors} anchors, input_size {self.input_size} gives "
                             f"{anchors.shape[0]}")
        stride = anchors[:, 2:3]
        pred_boxes = torch.cat([(raw[..., :2] + anchors[:, :2]) * stride, torch.exp(raw[..., 2:4]) * stride], -1)
        obj_logits, cls_logits = raw[..., 4], raw[..., 5:]

        fg_masks, reg_targets, cls_targets, l1_targets, num_gt = [], [], [], [], 0
        for b, boxes in enumerate(gt_boxes):
            boxes = boxes.to(raw.device, torch.float32).reshape(-1, 4)
            num_gt += len(boxes)
            if len(boxes) == 0:
                fg_masks.append(torch.zeros(num_anchors, dtype=torch.bool, device=raw.device))
                continue
            classes = (torch.zeros(len(boxes), dtype=torch.int64, device=raw.device) if gt_classes is None
                       else gt_classes[b].to(raw.device, torch.int64))
            fg, matched, matched_iou = simota_assign(pred_boxes[b].detach(), obj_logits[b].detach(),
                                                     cls_logits[b].detach(), boxes, classes, anchors,
                                                     self.center_radius, self.candidate_k)
            fg_masks.append(fg)
            target = boxes[matched]
            reg_targets.append(target)
            cls_targets.append(F.one_hot(classes[matched], self.num_classes).float() * matched_iou[:, None])
            if use_l1:
                a = anchors[fg]
                l1_targets.append(torch.cat([target[:, :2] / a[:, 2:3] - a[:, :2],
                                             torch.log(target[:, 2:] / a[:, 2:3] + 1e-8)], 1))

        fg = torch.stack(fg_masks)  # (B, A)
        num_fg = max(int(fg.sum()), 1)
        zero = raw.new_zeros(())
        loss_obj = F.binary_cross_entropy_with_logits(obj_logits, fg.float(), reduction="sum") / num_fg
        if reg_targets:
            loss_iou = self.reg_weight * iou_loss(pred_boxes[fg], torch.cat(reg_targets)).sum() / num_fg
            loss_cls = F.binary_cross_entropy_with_logits(cls_logits[fg], torch.cat(cls_targets),
                                                          reduction="sum") / num_fg
        else:
            loss_iou = loss_cls = zero
        loss_l1 = (F.l1_loss(raw[..., :4][fg], torch.cat(l1_targets), reduction="sum") / num_fg
                   if use_l1 and l1_targets else zero)
        return {"loss": loss_iou + loss_obj + loss_cls + loss_l1, "iou": loss_iou, "obj": loss_obj,
                "cls": loss_cls, "l1": loss_l1, "fg_per_gt": raw.new_tensor(int(fg.sum()) / max(num_gt, 1))}
