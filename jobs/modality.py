"""Adaptive modality selection: scene brightness → engine (rgb | fused | ir), with hysteresis and dwell.

Brightness costs almost nothing: the luminance of an 8x-downscaled frame, with saturated pixels (lamps,
headlights) left out so glare at night does not read as daylight. It is smoothed exponentially over time;
the mode changes only past a threshold plus a dead band, and never twice within `min_dwell_s`. RGB-only also
needs contrast (p90 - p10): fog is bright but flat, and there fusion is what keeps accuracy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from jobs.config import ModalityConfig

MODES = ("rgb", "fused", "ir")


@dataclass(frozen=True)
class Brightness:
    mean: float  # 0..1 mean luminance of unsaturated pixels
    p10: float  # 0..1 10th percentile (shadows)
    p90: float  # 0..1 90th percentile (highlights)


def brightness_batch(rgb: torch.Tensor, *, step: int = 8) -> np.ndarray:
    """rgb (n, 3, H, W) uint8 RGB, on any device → (n, 3) float64 [mean, p10, p90] in 0..1, one host copy.

    The luminance of every `step`-th pixel; saturated pixels (>= 250: lamps, headlights) are left out so glare at
    night does not read as daylight (a frame that is all glare keeps them all).
    """
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
    """Stateful per video: call `update(t, brightness)` for frames in time order."""

    def __init__(self, cfg: ModalityConfig):
        self.cfg = cfg
        self.mode: str | None = None if cfg.mode == "adaptive" else cfg.mode
        self.smoothed: float | None = None
        self.contrast = 1.0
        self._t_last: float | None = None
        self._t_switch = -math.inf
        self.switches: list[float] = []

    def _target(self, s: float, contrast: float) -> str:
        c = self.cfg
        h = c.hysteresis if self.mode is not None else 0.0  # the first decision has no band to leave
        if self.mode == "rgb":  # stay while bright and contrasty, past the dead band
            if s < c.dark_below - h:
                return "ir"
            return "rgb" if s >= c.bright_above - h and contrast >= c.min_contrast_rgb - h else "fused"
        if s > c.bright_above + h and contrast > c.min_contrast_rgb + h:
            return "rgb"
        if self.mode == "ir":
            return "fused" if s > c.dark_below + h else "ir"
        return "ir" if s < c.dark_below - h else "fused"

    def update(self, t: float, value: float, contrast: float = 1.0) -> str:
        """`value`: frame brightness (0..1); `contrast`: its p90 - p10 luminance spread (0..1)."""
        if self.cfg.mode != "adaptive":
            return self.cfg.mode
        if self.smoothed is None or self._t_last is None:
            self.smoothed, self.contrast = value, contrast
        else:
            dt = max(t - self._t_last, 0.0)
            alpha = 1.0 if self.cfg.smoothing_s == 0 else 1.0 - math.exp(-dt / self.cfg.smoothing_s)
            self.smoothed += alpha * (value - self.smoothed)
            self.contrast += alpha * (contrast - self.contrast)
        self._t_last = t
        target = self._target(self.smoothed, self.contrast)
        if self.mode is None:
            self.mode, self._t_switch = target, t
        elif target != self.mode and t - self._t_switch >= self.cfg.min_dwell_s:
            self.mode, self._t_switch = target, t
            self.switches.append(t)
        return self.mode
