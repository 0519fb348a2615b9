"""Predictions → detections: NMS (ultralytics / torchvision) and weighted box fusion (ensemble-boxes).

Shared by evaluation and the deployed `trt.detector.Detector`, so accuracy measured here is what runs.
"""

from __future__ import annotations

import numpy as np
import torch
from ensemble_boxes import weighted_boxes_fusion
from ultralytics.utils.nms import non_max_suppression


def nms(pred: torch.Tensor, *, conf: float, iou: float, max_det: int = 300) -> list[torch.Tensor]:
    """pred (B, 4+nc, A) decoded xywh → per image (N, 6): x1, y1, x2, y2, score, class (input pixels)."""
    return non_max_suppression(pred.float(), conf_thres=conf, iou_thres=iou, max_det=max_det)


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


def postprocess(outputs: torch.Tensor | tuple[torch.Tensor, ...], *, conf: float, iou: float,
                size: tuple[int, int]) -> list[torch.Tensor]:
    """Model eval output (one tensor, or two for decision fusion) → per-image (N, 6) detections."""
    if isinstance(outputs, tuple | list) and len(outputs) == 2:
        return fuse_decisions(nms(outputs[0], conf=conf, iou=iou), nms(outputs[1], conf=conf, iou=iou), size=size,
                              iou=iou)
    if isinstance(outputs, tuple | list):
        outputs = outputs[0]
    return nms(outputs, conf=conf, iou=iou)
