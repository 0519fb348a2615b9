"""Build TensorRT engines from our ONNX, with an engine cache, a timing cache and a JSON sidecar per engine.

    python -m trt.build build/mid_n.onnx batch=[1,32,128] size=[640,512] [target=SM89 cache_dir=...]

Precision comes from the graph (FP16 ONNX, INT8 Q/DQ ONNX); networks are strongly typed. The cache key is
ONNX sha256 × compute capability × TensorRT flavour/version × profile, so a Ray actor on a new node builds once
and every later actor there deserializes. Parser failures raise `OnnxParseError` listing every parser error.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from filelock import FileLock

from fusion.config import ConfigError, cli_main, parse_args
from trt.engine import EngineError
from trt.export import sha256
from trt.tensorrt_api import Flavour, load_tensorrt

log = logging.getLogger(__name__)
DEFAULT_CACHE = Path(os.environ.get("FUSEDET_ENGINE_CACHE", Path.home() / ".cache" / "fusedet" / "engines"))


class OnnxParseError(RuntimeError):
    def __init__(self, path: str, errors: list[str]):
        self.errors = errors
        super().__init__(f"{path}: TensorRT's ONNX parser reported {len(errors)} error(s):\n  " + "\n  ".join(errors))


class EngineBuildError(RuntimeError):
    """The builder returned no engine; the message names the ONNX and the TensorRT log tail."""


@dataclass(frozen=True)
class BuildSpec:
    batch: tuple[int, int, int] = (1, 32, 128)  # optimization profile: min, opt, max batch
    size: tuple[int, int] = (640, 512)  # (W, H) of the inputs
    workspace_gb: float = 4.0  # builder scratch memory
    target: str = "current"  # compute capability ("current" = this GPU; TensorRT-RTX without GPU: e.g. "SM89")

    def __post_init__(self) -> None:
        lo, opt, hi = self.batch
        if not 1 <= lo <= opt <= hi:
            raise ConfigError(f"batch={list(self.batch)}: need 1 <= min <= opt <= max")
        if any(v % 32 for v in self.size):
            raise ConfigError(f"size={list(self.size)}: W and H must be multiples of 32")


def compute_capability(device=None) -> str:
    """'SM90' for the given torch device (the current one by default), 'none' without a GPU."""
    try:
        import torch

        if torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability(device)
            return f"SM{major}{minor}"
    except ImportError:
        pass
    return "none"


def gpu_name() -> str:
    try:
        import torch

        return torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
    except ImportError:
        return "none"


def engine_key(onnx_sha: str, flavour: Flavour, spec: BuildSpec) -> str:
    cc = compute_capability() if spec.target == "current" else spec.target
    lo, opt, hi = spec.batch
    return f"{onnx_sha[:16]}.{cc.lower()}.{flavour.tag}.b{lo}-{opt}-{hi}.{spec.size[0]}x{spec.size[1]}"


def _logger(trt):
    """A TensorRT logger that keeps every message (for error reports) and forwards them to `logging` at debug
    level: without a GPU the builder logs CUDA-runtime errors it recovers from."""

    class KeepingLogger(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)
            self.lines: list[str] = []

        def log(self, severity, msg):
            self.lines.append(f"[{severity.name}] {msg}")
            log.debug("TensorRT [%s]: %s", severity.name, msg)

    return KeepingLogger()


def build_serialized(onnx_path: str | Path, spec: BuildSpec, *, flavour: Flavour | None = None,
                     timing_cache: Path | None = None) -> bytes:
    """Parse and build; returns the serialized engine (plan)."""
    flavour = flavour or load_tensorrt()
    trt = flavour.module
    logger = _logger(trt)
    builder = trt.Builder(logger)
    flags = 0
    if hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):  # TensorRT 10; 11 is always strongly typed
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        raise OnnxParseError(str(onnx_path), [str(parser.get_error(i)) for i in range(parser.num_errors)])
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(spec.workspace_gb * 2**30))
    if spec.target != "current" and hasattr(config, "set_compute_capability"):
        config.num_compute_capabilities = 1
        config.set_compute_capability(getattr(trt.ComputeCapability, spec.target.upper()), 0)
    profile = builder.create_optimization_profile()
    lo, opt, hi = spec.batch
    w, h = spec.size
    for i in range(network.num_inputs):
        t = network.get_input(i)
        c = t.shape[1]
        profile.set_shape(t.name, (lo, c, h, w), (opt, c, h, w), (hi, c, h, w))
    config.add_optimization_profile(profile)
    cache = None
    if timing_cache is not None:
        data = timing_cache.read_bytes() if timing_cache.exists() else b""
        cache = config.create_timing_cache(data)
        config.set_timing_cache(cache, ignore_mismatch=True)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        tail = "\n".join(logger.lines[-20:])
        raise EngineBuildError(f"{onnx_path}: TensorRT ({flavour.tag}) built no engine. Log tail:\n{tail}")
    if cache is not None:
        timing_cache.parent.mkdir(parents=True, exist_ok=True)
        timing_cache.write_bytes(memoryview(config.get_timing_cache().serialize()))
    return bytes(memoryview(plan))


def engine_for(onnx_path: str | Path, spec: BuildSpec, *, cache_dir: str | Path = DEFAULT_CACHE,
               precision: str = "", flavour: Flavour | None = None) -> Path:
    """Return the cached engine for this ONNX × GPU × TensorRT × profile, building it once (file-locked)."""
    flavour = flavour or load_tensorrt()
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    onnx_sha = sha256(onnx_path)
    key = engine_key(onnx_sha, flavour, spec)
    engine = cache_dir / f"{Path(onnx_path).stem}.{key}.engine"
    with FileLock(str(engine) + ".lock"):  # actors on one node: one builds, the others wait and load
        if engine.exists() and engine.with_suffix(".json").exists():
            return engine
        t0 = time.perf_counter()
        timing = cache_dir / f"timing.{flavour.tag}.cache"
        plan = build_serialized(onnx_path, spec, flavour=flavour, timing_cache=timing)
        tmp = engine.with_suffix(".engine.tmp")
        tmp.write_bytes(plan)
        tmp.replace(engine)
        sidecar = {"tensorrt_flavour": flavour.name, "tensorrt_version": flavour.version, "gpu": gpu_name(),
                   "compute_capability": compute_capability() if spec.target == "current" else spec.target,
                   "precision": precision or _guess_precision(onnx_path), "onnx": str(onnx_path),
                   "classes": list(_classes(onnx_path)), "validated": _validated(onnx_path),
                   "onnx_sha256": onnx_sha, "profile": asdict(spec), "host": platform.node(),
                   "build_seconds": round(time.perf_counter() - t0, 2), "engine_bytes": len(plan)}
        engine.with_suffix(".json").write_text(json.dumps(sidecar, indent=2) + "\n")
        log.info("built %s in %.1fs", engine.name, sidecar["build_seconds"])
    return engine


def _guess_precision(onnx_path: str | Path) -> str:
    from trt.export import read_metadata

    return str(read_metadata(onnx_path).get("precision", "fp32"))


def _classes(onnx_path: str | Path) -> tuple[str, ...]:
    from trt.export import read_metadata

    return tuple(read_metadata(onnx_path)["classes"])


def _validated(onnx_path: str | Path) -> dict | None:
    from trt.export import read_metadata

    return read_metadata(onnx_path)["validated"]


def graph_for_precision(model: str | Path, precision: str, *, cache_dir: Path) -> Path:
    """The ONNX graph that holds `precision` (TensorRT 11 takes precision from the graph, not from flags).

    An fp32 graph asked for as fp16 is re-exported in half precision from the checkpoint beside it (cached by the
    checkpoint's hash); int8 needs an explicit Q/DQ graph from `python -m trt.pipeline`.
    """
    onnx = Path(model).with_suffix(".onnx")
    if not onnx.exists() and not Path(model).with_suffix(".pt").exists():
        raise EngineError(f"{model}: no such model (.onnx or .pt)")
    have = _guess_precision(onnx) if onnx.exists() else ""
    if have == precision:
        return onnx
    ckpt = Path(model).with_suffix(".pt")
    if precision == "fp16" and ckpt.exists():
        from trt.export import ExportConfig, export_checkpoint

        out = Path(cache_dir) / f"{ckpt.stem}.{sha256(ckpt)[:16]}.fp16.onnx"
        with FileLock(str(out) + ".lock"):
            if not out.exists():
                export_checkpoint(ckpt, ExportConfig(out=str(out), dynamic_hw=True), half=True)
        return out
    raise EngineError(f"{onnx}: engine.precision={precision} needs a {precision} graph; this one is "
                      f"{have or 'missing'} (python -m trt.pipeline {ckpt} writes fp16 and int8 graphs)")


def main(argv: list[str] | None = None) -> int:
    return cli_main(_run, argv, doc=__doc__, config=BuildCommand, errors=(OnnxParseError, EngineBuildError))


@dataclass(frozen=True)
class BuildCommand:
    batch: tuple[int, int, int] = (1, 32, 128)  # optimization profile: min, opt, max batch
    size: tuple[int, int] = (640, 512)  # (W, H) of the inputs
    target: str = "current"  # compute capability, e.g. SM89 (TensorRT-RTX builds without a GPU)
    cache_dir: str = str(DEFAULT_CACHE)  # engine cache folder
    workspace_gb: float = 4.0  # builder scratch memory


def _run(args: list[str]) -> int:
    (onnx,), cmd = parse_args(BuildCommand, args, positional=1)
    if not Path(onnx).is_file():
        raise ConfigError(f"{onnx}: no such ONNX file")
    spec = BuildSpec(batch=cmd.batch, size=cmd.size, target=cmd.target, workspace_gb=cmd.workspace_gb)
    try:
        path = engine_for(onnx, spec, cache_dir=cmd.cache_dir)
    except (OnnxParseError, EngineBuildError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"engine": str(path), **json.loads(path.with_suffix(".json").read_text())}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
