"""Checkpoints: `torch.save` of the state dict plus the plain-dict config; loaded with `weights_only=True`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from fusion.config import from_dict, to_dict
from fusion.models.build import ModelConfig, build_model


class CheckpointError(RuntimeError):
    """A checkpoint is missing or does not fit its model; the message names the file."""


def save_checkpoint(path: str | Path, *, model: nn.Module, model_config: ModelConfig, half: bool = False,
                    **extra: Any) -> None:
    # CPU tensors: a checkpoint saved on a GPU machine loads with a plain torch.load on any machine
    state = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu()
             for k, v in model.state_dict().items()}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(str(path) + ".tmp")
    torch.save({"model": state, "model_config": to_dict(model_config), **extra}, tmp)
    tmp.replace(path)  # atomic: a crash mid-save never leaves a truncated checkpoint


def load_checkpoint(path: str | Path, *, map_location: str = "cpu") -> tuple[nn.Module, ModelConfig, dict]:
    """→ (model in eval mode, float32, its ModelConfig, the whole checkpoint dict)."""
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError as exc:
        raise CheckpointError(f"{path}: checkpoint not found") from exc
    except Exception as exc:  # torch raises several types for corrupt files
        raise CheckpointError(f"{path}: not a readable checkpoint ({exc})") from exc
    cfg = from_dict(ModelConfig, ckpt["model_config"], where=f"{path}:model_config")
    model = build_model(cfg)
    try:
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in ckpt["model"].items()})
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit model {cfg}: {exc}") from exc
    return model.eval(), cfg, ckpt
