"""Detector: paired frames in, detections out — preprocess → engine → decode (in graph) → NMS → rescale.

Frames may be numpy (H,W,3) BGR uint8 / (h,w) uint8 IR, or torch tensors of the same layout; IR may have
another resolution than RGB: it is registered onto the RGB grid by resize. Preprocessing runs on the engine's
device (the GPU when the engine is there). Boxes come back in original RGB pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from fusion.models.postprocess import postprocess
from trt.engine import Engine

Frame = np.ndarray | torch.Tensor


@dataclass(frozen=True)
class Letterbox:
    scale: float
    pad_x: float
    pad_y: float
    src_w: int
    src_h: int

    def to_source(self, boxes: torch.Tensor) -> torch.Tensor:
        """(N, 4) xyxy in model pixels → original RGB pixels, clipped."""
        out = boxes.clone()
        out[:, [0, 2]] = ((out[:, [0, 2]] - self.pad_x) / self.scale).clamp(0, self.src_w)
        out[:, [1, 3]] = ((out[:, [1, 3]] - self.pad_y) / self.scale).clamp(0, self.src_h)
        return out


def _stack(frames: Sequence[Frame], device: torch.device) -> torch.Tensor:
    ts = [torch.from_numpy(np.ascontiguousarray(f)) if isinstance(f, np.ndarray) else f for f in frames]
    return torch.stack(ts).to(device, non_blocking=True)


def preprocess(rgb: Sequence[Frame], ir: Sequence[Frame], *, size: tuple[int, int], device: torch.device
               ) -> tuple[torch.Tensor, torch.Tensor, Letterbox]:
    """Frames (same size within a batch) → rgb (B,3,H,W), ir (B,1,H,W) float [0,1], letterboxed to size (W,H)."""
    W, H = size
    x = _stack(rgb, device)  # (B, h0, w0, 3) uint8 BGR
    y = _stack(ir, device)  # (B, h1, w1) or (B, h1, w1, 1) uint8
    if y.ndim == 4:
        y = y[..., 0]
    h0, w0 = x.shape[1:3]
    s = min(W / w0, H / h0)
    nw, nh = round(w0 * s), round(h0 * s)
    px, py = (W - nw) / 2, (H - nh) / 2
    x = x.flip(-1).permute(0, 3, 1, 2).float().div_(255)  # (B, 3, h0, w0) RGB
    y = y.unsqueeze(1).float().div_(255)  # (B, 1, h1, w1)
    x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=s < 1)
    y = F.interpolate(y, size=(nh, nw), mode="bilinear", align_corners=False,
                      antialias=nh < y.shape[-2])  # IR registered onto the (letterboxed) RGB grid
    pad = (int(px), W - nw - int(px), int(py), H - nh - int(py))
    x = F.pad(x, pad, value=114 / 255)
    y = F.pad(y, pad, value=114 / 255)
    return x, y, Letterbox(s, int(px), int(py), w0, h0)


def preprocess_numpy(rgb: Sequence[np.ndarray], ir: Sequence[np.ndarray], *, size: tuple[int, int]):
    x, y, lb = preprocess(rgb, ir, size=size, device=torch.device("cpu"))
    return x.numpy(), y.numpy(), lb


class Detector:
    """Run one engine on paired frames; returns per frame an (N, 6) float32 array x1,y1,x2,y2,score,class."""

    def __init__(self, engine: Engine, *, size: tuple[int, int] | None = None, conf: float = 0.25,
                 iou: float = 0.6):
        self.engine = engine
        self.size = size or engine.input_size or (640, 512)
        if engine.input_size is not None and tuple(engine.input_size) != tuple(self.size):
            raise ValueError(f"engine {engine.name} needs input size {engine.input_size}, Detector asked {self.size}")
        self.conf, self.iou = conf, iou

    @property
    def device(self) -> torch.device:
        # TensorRT/torch engines take inputs on their GPU; ONNX Runtime takes host tensors.
        return self.engine.device

    @torch.inference_mode()
    def __call__(self, rgb: Sequence[Frame], ir: Sequence[Frame]) -> list[np.ndarray]:
        if len(rgb) != len(ir):
            raise ValueError(f"got {len(rgb)} RGB frames and {len(ir)} IR frames: pairs must match")
        out: list[np.ndarray] = []
        step = self.engine.max_batch
        for i in range(0, len(rgb), step):
            x, y, lb = preprocess(rgb[i:i + step], ir[i:i + step], size=self.size, device=self.device)
            preds = self.engine(x, y)
            dets = postprocess(preds if len(preds) > 1 else preds[0], conf=self.conf, iou=self.iou, size=self.size)
            for d in dets:
                d = d.float()
                d[:, :4] = lb.to_source(d[:, :4])
                out.append(d.cpu().numpy())
        return out
