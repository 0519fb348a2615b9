"""Detectors: every model takes `rgb` (B,3,H,W) and `ir` (B,1,H,W) in [0, 1], IR registered to the RGB grid.

Training mode returns the head's raw dict (or a tuple of dicts for decision fusion) for ultralytics' loss;
eval mode returns decoded predictions (B, 4 + nc, A): xywh in input pixels and class probabilities. NMS happens
outside, so the exported graph stays a plain tensor program. All models share one forward signature, so
training, export and the runtimes treat them alike.
"""

from __future__ import annotations

import torch
from torch import nn
from ultralytics.nn.modules import Detect

from fusion.models.parts import Backbone, Family, Neck, PyramidFusion, Scale

STRIDES = (8.0, 16.0, 32.0)


class Yolo11Detect(Detect):
    """YOLO11's head: depthwise convolutions in the class branch. `legacy` is pinned here because ultralytics'
    YAML parser sets `Detect.legacy` on the shared class whenever it builds a YOLOv8 model."""

    legacy = False  # read by Detect.__init__


class LegacyDetect(Detect):
    """YOLOv8's head: its class branch is plain 3x3 convolutions."""

    legacy = True


def make_head(num_classes: int, channels: tuple[int, int, int], family: Family = "yolo11") -> Detect:
    head = (LegacyDetect if family == "yolov8" else Yolo11Detect)(nc=num_classes, ch=channels)
    head.stride = torch.tensor(STRIDES)
    head.bias_init()
    head.export = True  # eval forward returns the decoded tensor alone (no raw dict), also for ONNX
    head.dynamic = True  # anchors follow the input size (ONNX with dynamic H/W; any eval size)
    return head


class SingleStream(nn.Module):
    """One backbone on `inputs` ∈ {"rgb", "ir", "early"}; "early" stacks RGB+IR as 4 channels at the stem."""

    def __init__(self, inputs: str, backbone: Backbone, neck: Neck, head: Detect):
        super().__init__()
        if inputs not in ("rgb", "ir", "early"):
            raise ValueError(f"inputs={inputs!r}: choose rgb, ir or early")
        self.inputs = inputs
        self.backbone, self.neck, self.head = backbone, neck, head

    def forward(self, rgb: torch.Tensor, ir: torch.Tensor):
        if self.inputs == "rgb":
            x = rgb  # (B, 3, H, W)
        elif self.inputs == "ir":
            x = ir  # (B, 1, H, W)
        else:
            x = torch.cat([rgb, ir], 1)  # (B, 4, H, W)
        return self.head(list(self.neck(self.backbone(x))))


class MidFusion(nn.Module):
    """Two backbones (shared or separate weights), attention fusion at P3/P4/P5, one neck and head."""

    def __init__(self, rgb_backbone: Backbone, ir_backbone: Backbone | None, fuse: PyramidFusion, neck: Neck,
                 head: Detect):
        super().__init__()
        self.rgb_backbone = rgb_backbone
        self.ir_backbone = ir_backbone  # None: weights shared with rgb_backbone
        self.fuse, self.neck, self.head = fuse, neck, head

    def forward(self, rgb: torch.Tensor, ir: torch.Tensor):
        p_rgb = self.rgb_backbone(rgb)
        if self.ir_backbone is None:
            p_ir = self.rgb_backbone(ir.expand(-1, 3, -1, -1))  # shared weights: IR as 3 equal channels
        else:
            p_ir = self.ir_backbone(ir)
        return self.head(list(self.neck(self.fuse(p_rgb, p_ir))))


class DecisionFusion(nn.Module):
    """Two complete single-modality detectors; their boxes are merged after NMS by weighted box fusion."""

    def __init__(self, rgb_detector: SingleStream, ir_detector: SingleStream):
        super().__init__()
        self.rgb_detector, self.ir_detector = rgb_detector, ir_detector
        self.head = rgb_detector.head  # strides / nc for the loss and decode

    def forward(self, rgb: torch.Tensor, ir: torch.Tensor):
        return self.rgb_detector(rgb, ir), self.ir_detector(rgb, ir)  # two (B, 4+nc, A) in eval


def single_stream(*, inputs: str, scale: Scale, num_classes: int, family: Family = "yolo11") -> SingleStream:
    in_ch = {"rgb": 3, "ir": 1, "early": 4}[inputs]
    backbone = Backbone(in_ch, scale, family)
    neck = Neck(backbone.channels, scale, family)
    return SingleStream(inputs, backbone, neck, make_head(num_classes, neck.channels, family))


def mid_fusion(*, scale: Scale, num_classes: int, shared_backbone: bool = False,
               family: Family = "yolo11") -> MidFusion:
    rgb_backbone = Backbone(3, scale, family)
    ir_backbone = None if shared_backbone else Backbone(1, scale, family)
    neck = Neck(rgb_backbone.channels, scale, family)
    return MidFusion(rgb_backbone, ir_backbone, PyramidFusion(rgb_backbone.channels), neck,
                     make_head(num_classes, neck.channels, family))


def decision_fusion(*, scale: Scale, num_classes: int, family: Family = "yolo11") -> DecisionFusion:
    return DecisionFusion(single_stream(inputs="rgb", scale=scale, num_classes=num_classes, family=family),
                          single_stream(inputs="ir", scale=scale, num_classes=num_classes, family=family))
