"""Backbone, neck and fusion blocks, composed from ultralytics building blocks (YOLO11 or YOLOv8 topology).

Wired in Python, not from a YAML index graph. Channel widths and depths follow each family's own scaling rules, so
weights and FLOPs are comparable with the single-modality peers, and an ultralytics checkpoint of the same family
fills every backbone, neck and box-head tensor (`fusion.pretrained`). The two families differ in their CSP block
(YOLO11: C3k2 and a C2PSA attention block after SPPF; YOLOv8: C2f) and in the head's class branch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from ultralytics.nn.modules import C2PSA, CBAM, SPPF, C2f, C3k2, Conv


@dataclass(frozen=True)
class Scale:
    width: float
    depth: float
    max_channels: int

    def ch(self, c: int) -> int:
        return int(min(c, self.max_channels) * self.width)

    def n(self, repeats: int) -> int:
        return max(round(repeats * self.depth), 1)


Family = Literal["yolo11", "yolov8"]
SCALES: dict[Family, dict[str, Scale]] = {  # each family's yolo*{n,s,m}.yaml
    "yolo11": {"n": Scale(0.25, 0.5, 1024), "s": Scale(0.50, 0.5, 1024), "m": Scale(1.0, 0.5, 512)},
    "yolov8": {"n": Scale(0.25, 0.33, 1024), "s": Scale(0.50, 0.33, 1024), "m": Scale(0.75, 0.67, 768)},
}

Features = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # P3 (B,c3,H/8,W/8), P4 (/16), P5 (/32)


class Backbone(nn.Module):
    """YOLO11 or YOLOv8 backbone returning P3, P4, P5 (ultralytics layers 0-10 / 0-9, in order)."""

    def __init__(self, in_channels: int, scale: Scale, family: Family = "yolo11"):
        super().__init__()
        c, n = scale.ch, scale.n
        if family == "yolov8":
            self.stem = nn.Sequential(Conv(in_channels, c(64), 3, 2), Conv(c(64), c(128), 3, 2),
                                      C2f(c(128), c(128), n(3), True))
            self.p3 = nn.Sequential(Conv(c(128), c(256), 3, 2), C2f(c(256), c(256), n(6), True))
            self.p4 = nn.Sequential(Conv(c(256), c(512), 3, 2), C2f(c(512), c(512), n(6), True))
            self.p5 = nn.Sequential(Conv(c(512), c(1024), 3, 2), C2f(c(1024), c(1024), n(3), True),
                                    SPPF(c(1024), c(1024), 5))
            self.channels = (c(256), c(512), c(1024))
            return
        self.stem = nn.Sequential(Conv(in_channels, c(64), 3, 2), Conv(c(64), c(128), 3, 2),
                                  C3k2(c(128), c(256), n(2), False, 0.25))
        self.p3 = nn.Sequential(Conv(c(256), c(256), 3, 2), C3k2(c(256), c(512), n(2), False, 0.25))
        self.p4 = nn.Sequential(Conv(c(512), c(512), 3, 2), C3k2(c(512), c(512), n(2), True))
        self.p5 = nn.Sequential(Conv(c(512), c(1024), 3, 2), C3k2(c(1024), c(1024), n(2), True),
                                SPPF(c(1024), c(1024), 5), C2PSA(c(1024), c(1024), n(2)))
        self.channels = (c(512), c(512), c(1024))

    def forward(self, x: torch.Tensor) -> Features:
        p3 = self.p3(self.stem(x))
        p4 = self.p4(p3)
        return p3, p4, self.p5(p4)


class Neck(nn.Module):
    """PAN-FPN (YOLO11 or YOLOv8 head layers before Detect): top-down then bottom-up, three levels for the head."""

    def __init__(self, channels: tuple[int, int, int], scale: Scale, family: Family = "yolo11"):
        super().__init__()
        c, n = scale.ch, scale.n
        c3, c4, c5 = channels
        if family == "yolov8":
            def csp(c1: int, c2: int, _c3k: bool) -> nn.Module:
                return C2f(c1, c2, n(3))
        else:
            def csp(c1: int, c2: int, c3k: bool) -> nn.Module:
                return C3k2(c1, c2, n(2), c3k)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.td4 = csp(c5 + c4, c(512), False)
        self.td3 = csp(c(512) + c3, c(256), False)
        self.down3 = Conv(c(256), c(256), 3, 2)
        self.bu4 = csp(c(256) + c(512), c(512), False)
        self.down4 = Conv(c(512), c(512), 3, 2)
        self.bu5 = csp(c(512) + c5, c(1024), True)
        self.channels = (c(256), c(512), c(1024))

    def forward(self, feats: Features) -> Features:
        p3, p4, p5 = feats
        t4 = self.td4(torch.cat([self.up(p5), p4], 1))  # (B, c5+c4, H/16, W/16) → (B, c(512), ...)
        n3 = self.td3(torch.cat([self.up(t4), p3], 1))  # (B, c(256), H/8, W/8)
        n4 = self.bu4(torch.cat([self.down3(n3), t4], 1))  # (B, c(512), H/16, W/16)
        n5 = self.bu5(torch.cat([self.down4(n4), p5], 1))  # (B, c(1024), H/32, W/32)
        return n3, n4, n5


class AttentionFusion(nn.Module):
    """Mid-level fusion of one pyramid level: concat → CBAM (channel + spatial weighting) → 1x1 projection.

    CBAM learns per channel and per location how much to trust each modality (glare in RGB, clutter in IR).
    """

    def __init__(self, channels: int):
        super().__init__()
        self.attend = CBAM(2 * channels, kernel_size=7)
        self.project = Conv(2 * channels, channels, 1, 1)

    def forward(self, rgb: torch.Tensor, ir: torch.Tensor) -> torch.Tensor:
        x = torch.cat([rgb, ir], 1)  # (B, 2C, h, w)
        return self.project(self.attend(x))  # (B, C, h, w)


class PyramidFusion(nn.Module):
    """One fusion block per level; `(rgb_feats, ir_feats) -> feats`, like every fusion block here."""

    def __init__(self, channels: tuple[int, int, int]):
        super().__init__()
        self.levels = nn.ModuleList(AttentionFusion(c) for c in channels)

    def forward(self, rgb: Features, ir: Features) -> Features:
        return tuple(f(r, i) for f, r, i in zip(self.levels, rgb, ir, strict=True))  # type: ignore[return-value]
