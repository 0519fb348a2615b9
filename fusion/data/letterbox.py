"""One letterbox for every path: training, evaluation, INT8 calibration and deployment all call `letterbox`.

Sizes are (W, H) everywhere. Frames are uint8 tensors, RGB (B, 3, h0, w0) and IR (B, 1, h1, w1), on any device;
the IR is registered onto the RGB grid by resizing it to the letterboxed RGB content (rigs are aligned up to a
small shift, which the models are trained to tolerate). Padding is grey 114, as in ultralytics.

RGB may also arrive as NV12 from NVDEC, (B, 1, H * 3/2, W): the luma and the half-resolution chroma planes are
each resized to the letterboxed content and converted to RGB there (BT.601, video range: what FFmpeg assumes for
untagged H.264 and what the PyAV path gives), so colour conversion touches a quarter of the source pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

PAD = 114


@dataclass(frozen=True)
class Letterbox:
    scale: float  # model pixels per source pixel
    pad_x: int  # left padding, model pixels
    pad_y: int  # top padding, model pixels
    src_w: int
    src_h: int

    def to_source(self, boxes: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """(N, 4) xyxy in model pixels → source RGB pixels, clipped to the image."""
        out = boxes.clone() if isinstance(boxes, torch.Tensor) else boxes.copy()
        out[:, [0, 2]] = ((out[:, [0, 2]] - self.pad_x) / self.scale).clip(0, self.src_w)
        out[:, [1, 3]] = ((out[:, [1, 3]] - self.pad_y) / self.scale).clip(0, self.src_h)
        return out

    def to_model(self, boxes: np.ndarray) -> np.ndarray:
        """(N, 4) xyxy in source pixels → model pixels."""
        out = boxes.astype(np.float32).copy()
        out[:, [0, 2]] = out[:, [0, 2]] * self.scale + self.pad_x
        out[:, [1, 3]] = out[:, [1, 3]] * self.scale + self.pad_y
        return out


def geometry(src: tuple[int, int], size: tuple[int, int]) -> Letterbox:
    """Source (w, h) into model (W, H): uniform scale, content centred."""
    (w0, h0), (W, H) = src, size
    s = min(W / w0, H / h0)
    nw, nh = round(w0 * s), round(h0 * s)
    return Letterbox(s, (W - nw) // 2, (H - nh) // 2, w0, h0)


def _resize(x: torch.Tensor, lb: Letterbox, dtype: torch.dtype) -> torch.Tensor:
    """(B, C, h, w) uint8 → (B, C, nh, nw) in [0, 1]: the letterboxed content's size. RGB on the CPU is
    interpolated as uint8 (torch's SIMD kernel for 3-4 channels, 5-8 × faster than fp32 on a 1280x1024 frame: 3.5
    against 29 ms on one core; values within 1/255 of it) and the smaller result converted; one-channel frames
    (slower there as uint8) and the GPU convert to fp32 / `dtype` first."""
    nw, nh = round(lb.src_w * lb.scale), round(lb.src_h * lb.scale)
    resize = (x.shape[-2], x.shape[-1]) != (nh, nw)
    uint8_first = resize and not x.is_cuda and x.shape[1] >= 3
    aa = nh < x.shape[-2]  # downscaling: antialias, as training saw
    if uint8_first:
        x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=aa)
    x = x.to(dtype if x.is_cuda else torch.float32).div_(255)
    if resize and not uint8_first:
        x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=aa)
    return x


def _pad(x: torch.Tensor, lb: Letterbox, size: tuple[int, int], dtype: torch.dtype) -> torch.Tensor:
    """(B, C, nh, nw) content → (B, C, H, W) `dtype`, grey bars around it."""
    (W, H), (nh, nw) = size, x.shape[-2:]
    if (nh, nw) == (H, W):  # no bars: F.pad would still copy the whole batch (1.5 ms a frame on a CPU core)
        return x.to(dtype)
    return F.pad(x, (lb.pad_x, W - nw - lb.pad_x, lb.pad_y, H - nh - lb.pad_y), value=PAD / 255).to(dtype)


def _fit(x: torch.Tensor, lb: Letterbox, size: tuple[int, int], dtype: torch.dtype) -> torch.Tensor:
    """(B, C, h, w) uint8 → (B, C, H, W) `dtype` in [0, 1]: resize to the letterboxed content, pad."""
    return _pad(_resize(x, lb, dtype), lb, size, dtype)


def letterbox(rgb: torch.Tensor, ir: torch.Tensor, *, size: tuple[int, int], dtype: torch.dtype = torch.float32,
              nv12: bool = False) -> tuple[torch.Tensor, torch.Tensor, Letterbox]:
    """rgb (B,3,h0,w0) + ir (B,1,h1,w1) uint8 → x (B,3,H,W), y (B,1,H,W) in [0,1], and the geometry.
    nv12: rgb is (B,1,h0*3/2,w0) NV12 instead."""
    c, rows = (1, rgb.shape[-2] * 2 // 3) if nv12 else (3, rgb.shape[-2])
    if rgb.ndim != 4 or rgb.shape[1] != c or ir.ndim != 4 or ir.shape[1] != 1 or len(rgb) != len(ir):
        want = "(B,1,H*3/2,W) NV12" if nv12 else "(B,3,H,W)"
        raise ValueError(f"letterbox: expected rgb {want} and ir (B,1,H,W), got {tuple(rgb.shape)} and "
                         f"{tuple(ir.shape)}")
    lb = geometry((rgb.shape[-1], rows), size)
    x = _fit_nv12(rgb, rows, lb, size, dtype) if nv12 else _fit(rgb, lb, size, dtype)
    return x, _fit(ir, lb, size, dtype), lb


# BT.601 video range → RGB in [0, 1]: R = Y' + 1.402 V', G = Y' - 0.344 U' - 0.714 V', B = Y' + 1.772 U', where
# Y' = (Y - 16) / 219 and U', V' = (C - 128) / 224 (C, Y in 0..255).
_CHROMA = ((0.0, 1.402), (-0.344136, -0.714136), (1.772, 0.0))


def _fit_nv12(nv12: torch.Tensor, rows: int, lb: Letterbox, size: tuple[int, int], dtype: torch.dtype
              ) -> torch.Tensor:
    """(B, 1, H*3/2, W) NV12 uint8 → (B, 3, H', W') RGB `dtype` in [0, 1]: both planes resized to the content,
    converted there, then padded."""
    B, w0 = len(nv12), nv12.shape[-1]
    if w0 % 2:  # interleaved chroma pairs: an odd width has no whole last pair
        raise ValueError(f"letterbox: NV12 frames of odd width {w0}: decode them as planar RGB "
                         "(decode.nvdec_rgb=rgbp)")
    y = _resize(nv12[:, :, :rows], lb, dtype)  # (B, 1, nh, nw)
    uv = nv12[:, 0, rows:rows + (rows + 1) // 2].reshape(B, (rows + 1) // 2, w0 // 2, 2).permute(0, 3, 1, 2)
    uv = _resize(uv, lb, dtype).sub_(128 / 255).mul_(255 / 224)  # (B, 2, nh, nw): U', V'
    y = y.sub_(16 / 255).mul_(255 / 219)
    rgb = torch.cat([y + cu * uv[:, :1] + cv * uv[:, 1:] for cu, cv in _CHROMA], 1).clamp_(0, 1)
    return _pad(rgb, lb, size, dtype)


def frames_to_tensors(rgb: Sequence[np.ndarray], ir: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """OpenCV-style frames (BGR (H,W,3) uint8, IR (h,w) or (h,w,1)) → rgb (B,3,H,W) RGB, ir (B,1,h,w) uint8."""
    x = torch.from_numpy(np.ascontiguousarray(np.stack(rgb)[..., ::-1])).permute(0, 3, 1, 2)
    y = np.stack([f[..., 0] if f.ndim == 3 else f for f in ir])
    return x, torch.from_numpy(y).unsqueeze(1)
