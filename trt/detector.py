"""Detector: paired frames in, detections out — letterbox → engine → decode (in graph) → batched NMS → rescale.

    det = Detector(load_engine(spec), conf=0.25, iou=0.6)
    rows = det.detect(rgb, ir)   # rgb (n,3,H,W) + ir (n,1,h,w) uint8 tensors → (K, 7) numpy: frame, box, score, class
    per_frame = det(rgb_list, ir_list)   # OpenCV-style numpy frames (BGR / gray) → per frame (N, 6)

Preprocessing runs on the engine's device, in the dtype the engine takes (fp16 straight from uint8 on the GPU).
IR may have another resolution than RGB: it is registered onto the RGB grid (`fusion.data.letterbox`). Engines that
replay CUDA graphs get every batch padded to their fixed size. Boxes come back in source RGB pixels; detections
reach the host once per call.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from fusion.data.letterbox import Letterbox, frames_to_tensors, letterbox
from fusion.models.postprocess import postprocess_flat
from trt.engine import Engine


class Detector:
    """Run one engine on paired frames."""

    def __init__(self, engine: Engine, *, size: tuple[int, int] | None = None, conf: float = 0.25,
                 iou: float = 0.6):
        self.engine = engine
        self.size = size or engine.input_size or (640, 512)
        if engine.input_size is not None and tuple(engine.input_size) != tuple(self.size):
            raise ValueError(f"engine {engine.name} needs input size {engine.input_size}, Detector asked {self.size}")
        self.conf, self.iou = conf, iou
        if not getattr(engine, "classes", ()):
            raise ValueError(f"engine {engine.name}: the model carries no class names (re-export it)")
        self.classes: tuple[str, ...] = tuple(engine.classes)

    @property
    def device(self) -> torch.device:
        return self.engine.device

    def prepare(self, rgb: torch.Tensor, ir: torch.Tensor, *, nv12: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor, Letterbox]:
        """uint8 rgb (n,3,H,W) (nv12: (n,1,H*3/2,W)) + ir (n,1,h,w) on any device → engine inputs on the engine's
        device + geometry."""
        dev = self.device
        rgb = rgb.to(dev, non_blocking=True)  # pinned host batches upload asynchronously
        ir = ir.to(dev, non_blocking=True)
        return letterbox(rgb, ir, size=self.size, dtype=getattr(self.engine, "dtype", torch.float32), nv12=nv12)

    @torch.inference_mode()
    def infer(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Model inputs (n,3,H,W) + (n,1,H,W) → (K, 7) detections in model pixels, on the engine's device."""
        step, n = self.engine.max_batch, len(x)
        parts = []
        for i in range(0, n, step):
            xb, yb = x[i:i + step], y[i:i + step]
            m = len(xb)
            if self.engine.fixed_batch and m < step:  # pad: the captured graph has one shape
                xb = torch.cat([xb, xb.new_zeros((step - m, *xb.shape[1:]))])
                yb = torch.cat([yb, yb.new_zeros((step - m, *yb.shape[1:]))])
            outs = tuple(o[:m] for o in self.engine(xb, yb))  # padding frames never reach NMS
            flat = postprocess_flat(outs, conf=self.conf, iou=self.iou, size=self.size)
            flat[:, 0] += i
            parts.append(flat)
        return torch.cat(parts) if parts else torch.zeros((0, 7), device=self.device)

    @torch.inference_mode()
    def detect(self, rgb: torch.Tensor, ir: torch.Tensor, *, nv12: bool = False) -> np.ndarray:
        """uint8 tensors (as `prepare` takes) → (K, 7) float32 numpy: frame index, x1, y1, x2, y2 (source RGB
        pixels), score, class."""
        if len(rgb) != len(ir):
            raise ValueError(f"got {len(rgb)} RGB frames and {len(ir)} IR frames: pairs must match")
        if not len(rgb):
            return np.zeros((0, 7), np.float32)
        x, y, lb = self.prepare(rgb, ir, nv12=nv12)
        flat = self.infer(x, y)
        flat[:, 1:5] = lb.to_source(flat[:, 1:5])
        return flat.cpu().numpy().astype(np.float32)  # the one host copy

    def __call__(self, rgb: Sequence[np.ndarray], ir: Sequence[np.ndarray]) -> list[np.ndarray]:
        """OpenCV-style frames: BGR (H,W,3) uint8 and IR (h,w) uint8 → per frame (N, 6) x1,y1,x2,y2,score,class."""
        if len(rgb) != len(ir):
            raise ValueError(f"got {len(rgb)} RGB frames and {len(ir)} IR frames: pairs must match")
        if not len(rgb):
            return []
        flat = self.detect(*frames_to_tensors(rgb, ir))
        counts = np.bincount(flat[:, 0].astype(int), minlength=len(rgb))
        return np.split(flat[:, 1:], np.cumsum(counts)[:-1])
