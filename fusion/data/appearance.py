"""Appearance randomisation: take away what the renderer gives for free and real cameras do not.

The generated scenes are flat-shaded polygons on a noise-free sensor. A detector trained on them learns flat fills:
the RGB-only model of 2026-12-02 scored 0.98 mAP50 on held-out generated scenes and found none of the people
standing in full view in two real photos (`benchmarks/eval_real_photos.py`). These draws remove the shortcuts —
uniform colour inside an object, one colour balance, one tone curve, sharp edges, clean pixels, a modality that is
always informative — so what is left to learn is shape (domain randomisation, Tobin et al. 2017; modality dropout,
Neverova et al. 2015). Batched, on whatever device the batch is on; training's GPU batches and the CPU data loader
both call `randomize_appearance`, so the two loaders draw from one distribution. Off by default
(`AugmentConfig.with_appearance()` turns it on): fine-tuning with it did not help on those photos (README).

    rgb, ir = randomize_appearance(rgb, ir, aug, gen)   # rgb (B,3,H,W), ir (B,1,H,W) float in [0,1]
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from fusion.data.pairs import AugmentConfig

_OCTAVES = ((64, 1.0), (16, 0.6), (4, 0.35))  # (cell size in px, weight): stains, fabric folds, weave / grain


def uniform(gen: torch.Generator, shape: int | tuple[int, ...], lo: float, hi: float, dev) -> torch.Tensor:
    """Draws in [lo, hi) of `shape` from `gen` (the augmentations' one source of randomness)."""
    return torch.rand(shape, generator=gen, device=dev) * (hi - lo) + lo


def _texture(gen: torch.Generator, B: int, C: int, H: int, W: int, dev) -> torch.Tensor:
    """(B, C, H, W) zero-mean multi-scale value noise, about unit standard deviation."""
    f = torch.zeros(B, C, H, W, device=dev)
    for cell, w in _OCTAVES:
        g = torch.randn(B, C, H // cell + 2, W // cell + 2, generator=gen, device=dev)  # coarse grid, then smooth
        f += F.interpolate(g, size=(H, W), mode="bilinear", align_corners=False) * w
    return f / math.sqrt(sum(w * w for _, w in _OCTAVES))


def _blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Gaussian blur with one sigma (px) per image, sigma (B,); 0 leaves the image as it is."""
    B, C, H, W = x.shape
    r = max(math.ceil(3 * float(sigma.max())), 1)
    t = torch.arange(-r, r + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-0.5 * (t[None] / sigma.clamp(min=1e-3)[:, None]) ** 2)  # (B, 2r+1)
    k = (k / k.sum(1, keepdim=True)).repeat_interleave(C, 0)  # (B*C, 2r+1): one kernel per image and channel
    y = F.pad(x.reshape(1, B * C, H, W), (r, r, r, r), mode="reflect")
    y = F.conv2d(y, k[:, None, None, :], groups=B * C)  # rows
    y = F.conv2d(y, k[:, None, :, None], groups=B * C)  # columns
    return y.reshape(B, C, H, W)


def randomize_appearance(rgb: torch.Tensor, ir: torch.Tensor, aug: AugmentConfig, gen: torch.Generator
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """rgb (B,3,H,W), ir (B,1,H,W) float in [0,1] → the same, each image with its own draws. Geometry is untouched
    (boxes stay valid); `gen` lives on the tensors' device."""
    if not aug.appearance:
        return rgb, ir
    B, _, H, W = rgb.shape
    dev = rgb.device
    # Colour: a random 3x3 mix towards another balance and saturation; some frames grey (night cameras, IR-cut off).
    t = uniform(gen, (B, 1, 1), 0, aug.colour_mix, dev)
    mix = torch.rand(B, 3, 3, generator=gen, device=dev)
    mix = (1 - t) * torch.eye(3, device=dev) + t * mix / mix.sum(2, keepdim=True)  # rows sum to 1: grey stays grey
    rgb = torch.einsum("bij,bjhw->bihw", mix, rgb)
    grey = torch.rand(B, generator=gen, device=dev) < aug.grey
    rgb = torch.where(grey[:, None, None, None], rgb.mean(1, keepdim=True).expand_as(rgb), rgb)
    # Texture: multiplicative multi-scale noise over everything, mostly shared by the colour channels.
    a = uniform(gen, (B, 1, 1, 1), 0, aug.texture, dev)
    tex = _texture(gen, B, 1, H, W, dev) + 0.15 * _texture(gen, B, 3, H, W, dev)
    rgb = rgb * (1 + a * tex).clamp(min=0)
    ir = ir * (1 + 0.5 * uniform(gen, (B, 1, 1, 1), 0, aug.texture, dev) * _texture(gen, B, 1, H, W, dev)).clamp(min=0)
    # Tone curve, optics, sensor noise: each modality its own.
    lg = math.log1p(aug.gamma)
    rgb = rgb.clamp(1e-4, 1) ** torch.exp(uniform(gen, (B, 1, 1, 1), -lg, lg, dev))
    ir = ir.clamp(1e-4, 1) ** torch.exp(uniform(gen, (B, 1, 1, 1), -lg, lg, dev))
    if aug.blur > 0:
        rgb = _blur(rgb, uniform(gen, (B,), 0, aug.blur, dev) * (torch.rand(B, generator=gen, device=dev) < 0.5))
        ir = _blur(ir, uniform(gen, (B,), 0, aug.blur, dev) * (torch.rand(B, generator=gen, device=dev) < 0.5))
    rgb = rgb + torch.randn(rgb.shape, generator=gen, device=dev) * uniform(gen, (B, 1, 1, 1), 0, aug.noise, dev)
    ir = ir + torch.randn(ir.shape, generator=gen, device=dev) * uniform(gen, (B, 1, 1, 1), 0, aug.noise, dev)
    # Modality dropout, at most one per image: a black-dark RGB frame (find it in IR alone), a washed-out IR frame.
    u = torch.rand(B, generator=gen, device=dev)
    drop_rgb = (u < aug.drop_rgb)[:, None, None, None]
    drop_ir = ((u >= aug.drop_rgb) & (u < aug.drop_rgb + aug.drop_ir))[:, None, None, None]
    rgb = torch.where(drop_rgb, rgb * uniform(gen, (B, 1, 1, 1), 0.02, 0.08, dev), rgb)
    ir = torch.where(drop_ir, ir.mean((2, 3), keepdim=True) + 0.3 * (ir - ir.mean((2, 3), keepdim=True))
                     * uniform(gen, (B, 1, 1, 1), 0, 0.3, dev), ir)
    return rgb.clamp_(0, 1), ir.clamp_(0, 1)
