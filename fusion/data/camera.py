"""An elevated pinhole camera over a flat street: world metres ↔ RGB pixels.

World axes: X to the right, Y forward along the ground, Z up; the camera sits at (0, 0, height) and looks along +Y,
pitched down by `pitch`. Surveillance cameras on poles and façades sit 3-8 m up looking down 10-35°, which is why
people near the camera are tall and seen slightly from above and far ones shrink towards the horizon. Their lenses
are varifocal, from wide (66° across) to tele (20°): one person in ten is then over ~400 px tall in a 1280x1024
frame, as near people are in real footage, and the detector must see that whole range in training
(`SceneConfig.hfov`; trained on 40-66° lenses alone, one person in ten over ~350 px, the models boxed tele views'
people short: 0.92 of their height, `benchmarks/eval_lens.py`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Camera:
    size: tuple[int, int]  # (W, H) of the RGB image
    height: float  # metres above the ground
    pitch: float  # radians below the horizontal
    focal: float  # pixels

    @classmethod
    def sample(cls, size: tuple[int, int], rng: np.random.Generator, *,
               hfov: tuple[float, float] = (20.0, 66.0)) -> Camera:
        """A random rig: 3-8 m up, pitched 18-42° down, a horizontal field of view drawn from `hfov` (degrees)."""
        hfov_rad = math.radians(rng.uniform(*hfov))
        return cls(size=size, height=float(rng.uniform(3.0, 8.0)), pitch=math.radians(rng.uniform(18.0, 42.0)),
                   focal=size[0] / 2 / math.tan(hfov_rad / 2))

    @property
    def horizon(self) -> float:
        """Image row of the horizon (may be above the image when the camera looks steeply down)."""
        return self.size[1] / 2 - self.focal * math.tan(self.pitch)

    def project(self, x, y, z):
        """World points → (u, v, depth along the optical axis); arrays or floats broadcast."""
        cp, sp = math.cos(self.pitch), math.sin(self.pitch)
        dz = np.asarray(z, np.float64) - self.height
        depth = cp * np.asarray(y, np.float64) - sp * dz
        down = -sp * np.asarray(y, np.float64) - cp * dz
        d = np.maximum(depth, 1e-3)
        u = self.size[0] / 2 + self.focal * np.asarray(x, np.float64) / d
        return u, self.size[1] / 2 + self.focal * down / d, depth

    def rays(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pixel coordinates → world ray directions (not normalised; unit length along the optical axis)."""
        cp, sp = np.float32(math.cos(self.pitch)), np.float32(math.sin(self.pitch))
        a = (u - self.size[0] / 2) / self.focal
        b = (v - self.size[1] / 2) / self.focal
        return a, cp - b * sp, -sp - b * cp

    def ground_point(self, u: float, v: float) -> tuple[float, float] | None:
        """Where pixel (u, v) meets the ground, or None above the horizon."""
        rx, ry, rz = self.rays(np.float64(u), np.float64(v))
        if rz >= -1e-6:
            return None
        t = self.height / -rz
        return float(t * rx), float(t * ry)

    def scale_at(self, depth: float) -> float:
        """Pixels per metre, across the image, at `depth` metres along the optical axis."""
        return self.focal / max(depth, 1e-3)
