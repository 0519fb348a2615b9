"""Adaptive modality selection: scene brightness → engine (rgb | fused | ir), with hysteresis and dwell.

Brightness costs almost nothing: the luminance of an 8x-downscaled frame, with saturated pixels (lamps,
headlights) left out so glare at night does not read as daylight. It is smoothed exponentially over time; which
engine a brightness gets is decided by the models' validated accuracy (`jobs.routing`), and the mode changes only
past a dead band and never twice within `min_dwell_s`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from jobs.config import ModalityConfig
from jobs.routing import FUSED_ONLY, Routes

MODES = ("rgb", "fused", "ir")


@dataclass(frozen=True)
class Brightness:
    mean: float  # 0..1 mean luminance of unsaturated pixels
    p10: float  # 0..1 10th percentile (shadows)
    p90: float  # 0..1 90th percentile (highlights)


def brightness_batch(rgb: torch.Tensor, *, step: int = 8, nv12: bool = False) -> np.ndarray:
    """rgb (n, 3, H, W) uint8 RGB, on any device → (n, 3) float64 [mean, p10, p90] in 0..1, one host copy.

    The luminance of every `step`-th pixel; saturated pixels (>= 250: lamps, headlights) are left out so glare at
    night does not read as daylight (a frame that is all glare keeps them all). nv12: rgb is (n, 1, H*3/2, W) NV12,
    whose luma plane is that luminance already (BT.601 weights, video range expanded to 0..255).
    """
    if nv12:
        rows = rgb.shape[-2] * 2 // 3
        y = rgb[:, 0, :rows:step, ::step].float()
        lum = ((y - 16) * (255 / 219)).clamp_(0, 255).flatten(1)  # (n, h*w)
    else:
        small = rgb[:, :, ::step, ::step].float()
        lum = (small[:, 0] * 0.299 + small[:, 1] * 0.587 + small[:, 2] * 0.114).flatten(1)  # (n, h*w)
    sat = lum >= 250
    lum = torch.where(sat & ~sat.all(1, keepdim=True), torch.nan, lum)
    mean = lum.nanmean(1)
    q = torch.nanquantile(lum, torch.tensor([0.1, 0.9], device=lum.device, dtype=lum.dtype), dim=1)  # (2, n)
    return (torch.stack([mean, q[0], q[1]], 1) / 255).double().cpu().numpy()


def brightness(frame: np.ndarray | torch.Tensor, *, step: int = 8) -> Brightness:
    """One frame (H, W, 3) uint8 BGR (numpy, or a torch tensor on any device) → Brightness (see brightness_batch)."""
    t = torch.from_numpy(np.ascontiguousarray(frame)) if isinstance(frame, np.ndarray) else frame
    m, p10, p90 = brightness_batch(t.flip(-1).permute(2, 0, 1).unsqueeze(0), step=step)[0]
    return Brightness(float(m), float(p10), float(p90))


class ModePolicy:
    """Stateful per video: call `update(t, brightness)` for frames in time order → the engine for that frame.

    Adaptive: smoothed brightness (plus the camera's offset) → the route of its bin (`jobs.routing`), switching only
    past a dead band around bin edges and never twice within `min_dwell_s`.
    """

    def __init__(self, cfg: ModalityConfig, routes: Routes = FUSED_ONLY, camera_id: str = ""):
        self.cfg, self.routes = cfg, routes
        self.offset = cfg.camera_offsets.get(camera_id, 0.0)
        self.mode: str | None = None if cfg.mode == "adaptive" else cfg.mode
        self.smoothed: float | None = None
        self._t_last: float | None = None
        self._t_switch = -math.inf
        self.switches: list[float] = []

    def _target(self, s: float) -> str:
        target = self.routes.mode_at(s)
        if self.mode is None or target == self.mode:
            return target
        h = self.cfg.hysteresis  # leave the current mode only when clearly inside the other route's range
        return target if self.routes.mode_at(s - h) == target == self.routes.mode_at(s + h) else self.mode

    def update(self, t: float, value: float, contrast: float = 1.0) -> str:
        """`value`: frame brightness (0..1). (`contrast` is accepted for callers that have it; unused.)"""
        if self.cfg.mode != "adaptive":
            return self.cfg.mode
        value += self.offset
        if self.smoothed is None or self._t_last is None:
            self.smoothed = value
        else:
            dt = max(t - self._t_last, 0.0)
            alpha = 1.0 if self.cfg.smoothing_s == 0 else 1.0 - math.exp(-dt / self.cfg.smoothing_s)
            self.smoothed += alpha * (value - self.smoothed)
        self._t_last = t
        target = self._target(self.smoothed)
        if self.mode is None:
            self.mode, self._t_switch = target, t
        elif target != self.mode and t - self._t_switch >= self.cfg.min_dwell_s:
            self.mode, self._t_switch = target, t
            self.switches.append(t)
        return self.mode
