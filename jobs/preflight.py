"""Checks before Ray starts, each failing with one line that names the key, file or URL: the models exist, load
and agree on their classes; the output location is writable with the given credentials; the archive is there
(checked when it is listed). Cheap next to a run that would find the problem on every actor."""

from __future__ import annotations

import logging
from pathlib import Path

from jobs.actor import engine_specs
from jobs.config import JobConfig
from jobs.paths import Layout
from jobs.routing import FUSED_ONLY, Routes, build_routes
from jobs.storage import filesystem, with_retry, write_bytes
from trt.engine import sibling

log = logging.getLogger(__name__)


class PreflightError(ValueError):
    """The job cannot start; the message is one line naming the key, file or URL."""


def _files(model: str, backend: str) -> list[Path]:
    """The model files the backend may load (auto: the actor picks TensorRT, torch or ONNX Runtime by its device,
    which the driver cannot see, so either file will do)."""
    if backend == "torch":
        return [sibling(model, ".pt")]
    if backend == "onnxruntime":
        return [sibling(model, ".onnx")]
    return [sibling(model, ".onnx"), sibling(model, ".pt")]  # tensorrt can export fp16 from the checkpoint


def model_meta(path: Path) -> tuple[tuple[str, ...], dict | None]:
    """(class names, validated accuracy per brightness) a model file carries, read without building an engine."""
    if path.suffix == ".pt":
        import json

        from fusion.checkpoint import CheckpointError, load_checkpoint

        try:
            _, mcfg, ckpt = load_checkpoint(path)
        except CheckpointError as exc:
            raise PreflightError(str(exc)) from exc
        return tuple(mcfg.class_names), json.loads(ckpt["validated"]) if ckpt.get("validated") else None
    from trt.export import read_metadata

    try:
        meta = read_metadata(path)
    except Exception as exc:  # onnx raises DecodeError / ValidationError for a corrupt file
        raise PreflightError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {exc})") from exc
    return tuple(meta["classes"]), meta["validated"]


def check_models(cfg: JobConfig) -> tuple[tuple[str, ...], Routes]:
    """Every model the policy may use exists and loads; all carry the same class list (the output's names).
    → (class names, the routes adaptive mode will take)."""
    keys = {"fused": "engine.fused_model", "rgb": "engine.rgb_model", "ir": "engine.ir_model"}
    found: dict[str, tuple[str, ...]] = {}
    validated: dict[str, dict | None] = {}
    for mode, spec in engine_specs(cfg, "cpu", resolve=False).items():
        files = [f for f in _files(spec.model, spec.backend) if f.exists()]
        given = getattr(cfg.engine, keys[mode].split(".")[1])
        if not files:
            raise PreflightError(f"{keys[mode]}={given}: no model file "
                                 f"({' or '.join(str(f) for f in _files(spec.model, spec.backend))})")
        for f in files:
            classes, validated[mode] = model_meta(f)
            if not classes:
                raise PreflightError(f"{keys[mode]}={given}: {f.name} carries no class names (re-export it)")
            if found.setdefault(mode, classes) != classes:
                raise PreflightError(f"{keys[mode]}={given}: {f.name} has classes {list(classes)}, its sibling "
                                     f"{list(found[mode])}")
    first_mode, first = next(iter(found.items()))
    for mode, classes in found.items():
        if classes != first:
            raise PreflightError(f"{keys[mode]} has classes {list(classes)} but {keys[first_mode]} has "
                                 f"{list(first)}: the models of one run must agree")
    m = cfg.modality
    routes = build_routes(validated, max_loss=m.max_loss, min_frames=m.min_frames,
                          trust_generated=m.trust_generated) if m.mode == "adaptive" else FUSED_ONLY
    return first, routes


def check_output(cfg: JobConfig) -> None:
    """Write and delete a small object where the run will write (credentials, permissions, bucket, path)."""
    fs, base = filesystem(cfg.output.path, cfg.output.storage_options)
    probe = Layout(base).probe()
    try:
        with_retry(lambda: write_bytes(fs, probe, b""), what=f"write under {cfg.output.path}", policy=cfg.storage)
        with_retry(lambda: fs.rm_file(probe), what=f"delete {probe}", policy=cfg.storage)
    except Exception as exc:
        raise PreflightError(f"output.path={cfg.output.path}: not writable ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else ''})") from exc


def preflight(cfg: JobConfig) -> tuple[tuple[str, ...], Routes]:
    """Run every check; → (the class names the run will write, the adaptive routes)."""
    classes, routes = check_models(cfg)
    check_output(cfg)
    if cfg.modality.mode == "adaptive" and routes.only_fused:
        # Not routes.reasons[0]: the first bin's reason (often "no validation frames") misreads as the whole story.
        log.warning("adaptive: no cheaper engine is validated within modality.max_loss=%g of the fused model at any "
                    "brightness, so every frame runs fused; per bin: %s", cfg.modality.max_loss, routes.text())
    elif cfg.modality.mode == "adaptive":
        log.info("adaptive routes: %s", routes.text())
    return classes, routes
