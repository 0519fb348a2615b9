"""Model configuration and the one place an architecture name becomes a model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from ultralytics.nn.modules import SPPF, Conv

from fusion.config import ConfigError
from fusion.data.scene import CLASS_NAMES
from fusion.models.detectors import decision_fusion, mid_fusion, single_stream
from fusion.models.parts import SCALES, Family

Architecture = Literal["early", "mid", "decision", "rgb", "ir"]
ULTRALYTICS_BN_EPS, ULTRALYTICS_BN_MOMENTUM = 1e-3, 0.03  # what ultralytics' models set on every BatchNorm


@dataclass(frozen=True)
class ModelConfig:
    arch: Architecture = "mid"  # fusion family; rgb / ir are the single-modality baselines
    scale: Literal["n", "s", "m"] = "n"  # width/depth multiplier, the family's own (yolo11n, yolov8n, ...)
    family: Family = "yolo11"  # block topology: yolo11 (C3k2, C2PSA) or yolov8 (C2f), to start from either's weights
    # ultralytics' own layer details, which its weights were trained with: SiLU after SPPF's first convolution,
    # BatchNorm eps 1e-3 and momentum 0.03 (PyTorch's defaults: 1e-5, 0.1). Off: the models of this project trained
    # from scratch before it existed (the shipped ones; their checkpoints lack the key). fusion.train turns it on
    # when it starts from pretrained= weights, so they compute what they computed in ultralytics.
    ultralytics_exact: bool = False
    num_classes: int = len(CLASS_NAMES)  # 0 person, 1 vehicle
    shared_backbone: bool = False  # mid fusion only: one backbone for both modalities
    class_names: tuple[str, ...] = CLASS_NAMES

    def __post_init__(self) -> None:
        if self.num_classes < 1 or len(self.class_names) != self.num_classes:
            raise ConfigError(f"model: num_classes={self.num_classes} must equal len(class_names)="
                              f"{len(self.class_names)}")
        if self.shared_backbone and self.arch != "mid":
            raise ConfigError("model.shared_backbone applies to arch=mid only")

    @property
    def modalities(self) -> tuple[str, ...]:
        return {"rgb": ("rgb",), "ir": ("ir",)}.get(self.arch, ("rgb", "ir"))


def build_model(cfg: ModelConfig) -> nn.Module:
    """The detector `cfg` describes; its class names travel with it (`model.class_names`) into ONNX and engines."""
    kw = {"scale": SCALES[cfg.family][cfg.scale], "num_classes": cfg.num_classes, "family": cfg.family}
    if cfg.arch == "mid":
        model = mid_fusion(shared_backbone=cfg.shared_backbone, **kw)
    elif cfg.arch == "decision":
        model = decision_fusion(**kw)
    else:
        model = single_stream(inputs=cfg.arch, **kw)
    if cfg.ultralytics_exact:
        for m in model.modules():
            if isinstance(m, SPPF):
                m.cv1.act = Conv.default_act
            elif isinstance(m, nn.BatchNorm2d):
                m.eps, m.momentum = ULTRALYTICS_BN_EPS, ULTRALYTICS_BN_MOMENTUM
    model.class_names = tuple(cfg.class_names)
    model.family = cfg.family  # which ultralytics checkpoints fill it whole (fusion.pretrained)
    model.ultralytics_exact = cfg.ultralytics_exact  # whether loaded ultralytics layers compute as they did there
    return model


def model_stats(model: nn.Module, *, size: tuple[int, int] = (640, 512)) -> dict[str, float]:
    """Parameters (M), fp16 weight size (MB) and GFLOPs for one pair at `size` (W, H), like peers report."""
    from torch.utils.flop_counter import FlopCounterMode

    params = sum(p.numel() for p in model.parameters())
    w, h = size
    was_training = model.training
    model.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, 3, h, w), torch.zeros(1, 1, h, w))
    model.train(was_training)
    return {"params_M": params / 1e6, "fp16_MB": params * 2 / 2**20, "GFLOPs": counter.get_total_flops() / 1e9}
