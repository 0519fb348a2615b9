"""Checks before Ray starts, each failing with one line that names the key, file or URL: the models exist, load
and agree on their classes; the output location is writable with the given credentials; the archive is there
(checked when it is listed). Cheap next to a run that would find the problem on every actor."""

from __future__ import annotations

from pathlib import Path

from jobs.actor import engine_specs
from jobs.config import JobConfig
from jobs.paths import Layout
from jobs.storage import filesystem, with_retry, write_bytes
from trt.engine import sibling


class PreflightError(ValueError):
    """The job cannot start; the message is one line naming the key, file or URL."""


def model_classes(path: str, backend: str) -> tuple[str, ...]:
    """Class names a model carries, read without building an engine."""
    if backend == "torch":
        from fusion.checkpoint import CheckpointError, load_checkpoint

        try:
            return tuple(load_checkpoint(sibling(path, ".pt"))[1].class_names)
        except CheckpointError as exc:
            raise PreflightError(str(exc)) from exc
    from trt.export import read_metadata

    onnx = sibling(path, ".onnx")
    if not onnx.exists() and backend == "tensorrt" and sibling(path, ".pt").exists():
        return model_classes(path, "torch")
    try:
        meta = read_metadata(onnx)
    except FileNotFoundError as exc:
        raise PreflightError(f"{onnx}: model not found") from exc
    except Exception as exc:  # onnx raises DecodeError / ValidationError for a corrupt file
        raise PreflightError(f"{onnx}: not a readable ONNX model ({type(exc).__name__}: {exc})") from exc
    return tuple(meta.get("model_config", {}).get("class_names", ()))


def check_models(cfg: JobConfig) -> tuple[str, ...]:
    """Every model the policy may use exists and loads; all carry the same class list (the output's names)."""
    keys = {"fused": "engine.fused_model", "rgb": "engine.rgb_model", "ir": "engine.ir_model"}
    found: dict[str, tuple[str, ...]] = {}
    for mode, spec in engine_specs(cfg, "cpu").items():
        want = ".pt" if spec.backend == "torch" else ".onnx"
        if not sibling(spec.model, want).exists() and not (spec.backend == "tensorrt"
                                                           and sibling(spec.model, ".pt").exists()):
            raise PreflightError(f"{keys[mode]}={getattr(cfg.engine, keys[mode].split('.')[1])}: "
                                 f"{sibling(spec.model, want)} not found")
        classes = model_classes(spec.model, spec.backend)
        if not classes:
            raise PreflightError(f"{keys[mode]}: {Path(spec.model).name} carries no class names (re-export it)")
        found[mode] = classes
    first_mode, first = next(iter(found.items()))
    for mode, classes in found.items():
        if classes != first:
            raise PreflightError(f"{keys[mode]} has classes {list(classes)} but {keys[first_mode]} has "
                                 f"{list(first)}: the models of one run must agree")
    return first


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


def preflight(cfg: JobConfig) -> tuple[str, ...]:
    """Run every check; → the class names the run will write."""
    classes = check_models(cfg)
    check_output(cfg)
    return classes
