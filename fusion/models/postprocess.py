"""Predictions → detections: NMS (ultralytics / torchvision) and weighted box fusion (ensemble-boxes).

Shared by evaluation and the deployed `trt.detector.Detector`, so accuracy measured here is what runs.
"""

from __future__ import annotations

import numpy as np
import torch
from ensemble_boxes import weighted_boxes_fusion
from torchvision.ops import batched_nms, box_convert


def nms_flat(pred: torch.Tensor, *, conf: float, iou: float, max_det: int = 300) -> torch.Tensor:
    """pred (B, 4+nc, A) decoded xywh → (K, 7): image, x1, y1, x2, y2, score, class (input pixels), sorted by image
    then score.

    One NMS over the whole batch (torchvision's batched_nms, keyed by image × class), with the semantics of
    ultralytics' per-image `non_max_suppression` (best class per anchor above `conf`, class-aware, `max_det` per
    image): no Python loop and no host sync per image.
    """
    pred = pred.float()
    nc = pred.shape[1] - 4
    scores, cls = pred[:, 4:].max(1)  # (B, A)
    img, anchor = (scores > conf).nonzero(as_tuple=True)  # (K,) candidates
    boxes = box_convert(pred[img, :4, anchor], "cxcywh", "xyxy")  # (K, 4)
    s, c = scores[img, anchor], cls[img, anchor]
    keep = batched_nms(boxes, s, img * nc + c, iou)  # score-descending
    out = torch.cat([img[keep, None].float(), boxes[keep], s[keep, None], c[keep, None].float()], 1)  # (K', 7)
    out = out[torch.sort(out[:, 0], stable=True).indices]  # by image, score order kept within each image
    counts = torch.bincount(out[:, 0].long(), minlength=pred.shape[0])
    first = torch.cumsum(counts, 0) - counts  # (B,) row where each image starts
    rank = torch.arange(len(out), device=out.device) - first[out[:, 0].long()]
    return out[rank < max_det]


def split_images(flat: torch.Tensor, n: int) -> list[torch.Tensor]:
    """(K, 7) image-tagged rows → per image (N, 6)."""
    counts = torch.bincount(flat[:, 0].long(), minlength=n).tolist()
    return [d[:, 1:] for d in torch.split(flat, counts)]


def nms(pred: torch.Tensor, *, conf: float, iou: float, max_det: int = 300) -> list[torch.Tensor]:
    """pred (B, 4+nc, A) decoded xywh → per image (N, 6): x1, y1, x2, y2, score, class (input pixels)."""
    return split_images(nms_flat(pred, conf=conf, iou=iou, max_det=max_det), pred.shape[0])


def fuse_decisions(rgb_dets: list[torch.Tensor], ir_dets: list[torch.Tensor], *, size: tuple[int, int],
                   iou: float = 0.55, skip: float = 0.0) -> list[torch.Tensor]:
    """Merge two detectors' per-image detections by weighted box fusion; size (W, H) normalises coordinates."""
    W, H = size
    scale = torch.tensor([W, H, W, H], dtype=torch.float32)
    out = []
    for a, b in zip(rgb_dets, ir_dets, strict=True):
        if len(a) + len(b) == 0:
            out.append(a.new_zeros((0, 6)))
            continue
        lists = [(d[:, :4].cpu() / scale).clamp(0, 1).numpy() for d in (a, b)]
        boxes, scores, labels = weighted_boxes_fusion(
            lists, [d[:, 4].cpu().numpy() for d in (a, b)], [d[:, 5].cpu().numpy() for d in (a, b)],
            iou_thr=iou, skip_box_thr=skip, conf_type="avg")
        fused = np.concatenate([boxes * scale.numpy(), scores[:, None], labels[:, None]], 1)
        out.append(torch.from_numpy(fused.astype(np.float32)).to(a.device))
    return out


def postprocess_flat(outputs: tuple[torch.Tensor, ...], *, conf: float, iou: float, size: tuple[int, int]
                     ) -> torch.Tensor:
    """Engine outputs → (K, 7) image-tagged detections (see `nms_flat`); decision fusion merges per image."""
    if len(outputs) == 1:
        return nms_flat(outputs[0], conf=conf, iou=iou)
    per_image = postprocess(outputs, conf=conf, iou=iou, size=size)
    rows = [torch.cat([torch.full((len(d), 1), i, dtype=torch.float32, device=d.device), d.float()], 1)
            for i, d in enumerate(per_image)]
    return torch.cat(rows) if rows else outputs[0].new_zeros((0, 7))


def postprocess(outputs: torch.Tensor | tuple[torch.Tensor, ...], *, conf: float, iou: float,
                size: tuple[int, int]) -> list[torch.Tensor]:
    """Model eval output (one tensor, or two for decision fusion) → per-image (N, 6) detections."""
    if isinstance(outputs, tuple | list) and len(outputs) == 2:
        return fuse_decisions(nms(outputs[0], conf=conf, iou=iou), nms(outputs[1], conf=conf, iou=iou), size=size,
                              iou=iou)
    if isinstance(outputs, tuple | list):
        outputs = outputs[0]
    return nms(outputs, conf=conf, iou=iou)
