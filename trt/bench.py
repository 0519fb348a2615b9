"""Benchmark engines: backend × precision × batch → pairs/s, p50/p99 latency, peak GPU memory, model size.

    python -m trt.bench [models=[mid_n] batches=[1,32,128] size=[640,512] iters=50 out=benchmarks/results/bench.json]

Rows: torch eager fp32 (the baseline), torch fp16 + channels_last + torch.compile("reduce-overhead", CUDA graphs),
ONNX Runtime (CPU; CUDA provider when installed), TensorRT (when a TensorRT flavour runs on this GPU; the row
records why not otherwise). Engine time only, inputs already on the device; a `detector` row adds uint8 frame
upload, letterbox and NMS. A benchmark, not a test: run it on the machine whose figures you want.
"""

from __future__ import annotations

import json
import logging
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fusion.config import cli_main, parse_args

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BenchConfig:
    models: tuple[str, ...] = ("mid_n",)  # names under models/ (checkpoint .pt; ONNX exported on the fly)
    batches: tuple[int, ...] = (1, 32, 128)
    size: tuple[int, int] = (640, 512)  # (W, H)
    extra_sizes: tuple[tuple[int, int], ...] = ()  # more (W, H) for single-modality models (e.g. RGB at 320x256)
    iters: int = 50
    warmup: int = 10
    backends: tuple[str, ...] = ("torch-eager", "torch-compile", "onnxruntime", "tensorrt")
    ort_max_batch: int = 32  # CPU ONNX Runtime at batch 128 takes minutes per call
    profile: bool = False  # TensorRT rows: also print a per-layer time table (IProfiler) at the largest batch
    out: str = "benchmarks/results/bench.json"


def time_calls(fn, x, y, *, iters: int, warmup: int, cuda: bool) -> list[float]:
    """Milliseconds per call of fn(x, y) after `warmup` calls: CUDA events on the GPU, the wall clock on the CPU."""
    for _ in range(warmup):
        fn(x, y)
    times = []
    for _ in range(iters):
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn(x, y)
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t = time.perf_counter()
            fn(x, y)
            times.append((time.perf_counter() - t) * 1e3)
    return times


def _engines(name: str, backend: str, size: tuple[int, int], workdir: Path, device: str, profile: bool = False):
    from trt.runtime_torch import TorchEngine

    ckpt = Path("models") / f"{name}.pt"
    if backend == "torch-eager":
        yield "fp32", TorchEngine(ckpt, device=device)
    elif backend == "torch-compile":
        yield "fp16", TorchEngine(ckpt, device=device, precision="fp16", channels_last=True, compile=True)
    elif backend == "onnxruntime":
        from trt.export import ExportConfig, export_checkpoint
        from trt.runtime_onnx import OnnxRuntimeEngine

        onnx = export_checkpoint(ckpt, ExportConfig(out=str(workdir / f"{name}.{size[0]}x{size[1]}.onnx"), size=size))
        yield "fp32", OnnxRuntimeEngine(onnx, device="cpu")
    elif backend == "tensorrt":
        from trt.pipeline import PipelineConfig, run_pipeline
        from trt.runtime_tensorrt import TensorRTEngine
        from trt.tensorrt_api import load_tensorrt

        load_tensorrt()  # fail fast (TensorRTUnavailable) before exporting and calibrating
        if not torch.cuda.is_available():
            raise RuntimeError("TensorRT engines need a CUDA GPU; none is visible")

        rep = run_pipeline(ckpt, PipelineConfig(out=str(workdir / f"{name}_pipe"), size=size, n_eval=50, calib_n=40))
        for prec, e in rep["engines"].items():
            if isinstance(e, dict) and e.get("ok"):
                yield prec, TensorRTEngine(e["engine"], device=device, cuda_graph=True)
                if profile:
                    eng = TensorRTEngine(e["engine"], device=device, profile=True)
                    b = eng.max_batch
                    eng(torch.rand(b, 3, size[1], size[0], device=device), torch.rand(b, 1, size[1], size[0],
                                                                                      device=device))
                    torch.cuda.synchronize()
                    print(f"per-layer times, {name} {prec} batch {b}:\n{eng.profile_table()}")


def _detector_row(engine, name: str, size: tuple[int, int], b: int, cfg: BenchConfig) -> dict:
    """End to end from host uint8 frames (RGB 1280x1024, IR 640x512): upload, letterbox, engine, NMS."""
    from trt.detector import Detector

    det = Detector(engine, size=size)
    rng = np.random.default_rng(0)
    rgb = [rng.integers(0, 255, (1024, 1280, 3), dtype=np.uint8) for _ in range(b)]
    ir = [rng.integers(0, 255, (512, 640), dtype=np.uint8) for _ in range(b)]
    t = time_calls(lambda x, y: (det(x, y), torch.cuda.synchronize()), rgb, ir, iters=max(cfg.iters // 5, 5),
              warmup=3, cuda=False)
    p50 = float(np.percentile(t, 50))
    return {"model": name, "size": list(size), "backend": "detector(torch-compile)", "precision": engine.precision,
            "device": str(engine.device), "batch": b, "p50_ms": round(p50, 3),
            "p99_ms": round(float(np.percentile(t, 99)), 3), "pairs_per_s": round(b / p50 * 1e3, 1),
            "peak_gpu_MB": round(torch.cuda.max_memory_allocated() / 2**20, 1)}


def bench(cfg: BenchConfig) -> dict:
    cuda = torch.cuda.is_available()
    device = "cuda:0" if cuda else "cpu"
    workdir = Path("build/bench")
    workdir.mkdir(parents=True, exist_ok=True)
    rows, notes = [], []
    for name in cfg.models:
        sizes = [cfg.size, *([s for s in cfg.extra_sizes] if not name.startswith(("mid", "early", "decision")) else [])]
        for size in sizes:
            for backend in cfg.backends:
                try:
                    for precision, engine in _engines(name, backend, size, workdir, device, cfg.profile):
                        on_gpu = engine.device.type == "cuda"
                        for b in cfg.batches:
                            if backend == "onnxruntime" and b > cfg.ort_max_batch:
                                continue
                            w, h = size
                            x = torch.rand(b, 3, h, w, device=engine.device)
                            y = torch.rand(b, 1, h, w, device=engine.device)
                            if on_gpu:
                                torch.cuda.reset_peak_memory_stats()
                            iters = cfg.iters if on_gpu or b == 1 else max(cfg.iters // 10, 3)
                            t = time_calls(engine, x, y, iters=iters, warmup=cfg.warmup if on_gpu else 2, cuda=on_gpu)
                            p50 = float(np.percentile(t, 50))
                            rows.append({"model": name, "size": list(size), "backend": backend, "precision": precision,
                                         "device": str(engine.device), "batch": b, "p50_ms": round(p50, 3),
                                         "p99_ms": round(float(np.percentile(t, 99)), 3),
                                         "pairs_per_s": round(b / p50 * 1e3, 1),
                                         "peak_gpu_MB": round(torch.cuda.max_memory_allocated() / 2**20, 1)
                                         if on_gpu else None})
                            log.info("%s", rows[-1])
                            if on_gpu and backend == "torch-compile" and b == 32:
                                rows.append(_detector_row(engine, name, size, b, cfg))
                except Exception as exc:  # a backend that cannot run here is a row of the report, not a crash
                    notes.append({"model": name, "backend": backend, "size": list(size),
                                  "error": f"{type(exc).__name__}: {exc}"[:600]})
                    log.warning("%s %s: %s", name, backend, notes[-1]["error"])
    return {"device": torch.cuda.get_device_name() if cuda else platform.processor() or "cpu",
            "torch": torch.__version__, "rows": rows, "not_run": notes,
            "model_bytes": {m: (Path("models") / f"{m}.pt").stat().st_size for m in cfg.models}}


def main(argv: list[str] | None = None) -> int:
    return cli_main(_run, argv, doc=__doc__, config=BenchConfig)


def _run(args: list[str]) -> int:
    _, cfg = parse_args(BenchConfig, args, config_file=True)
    result = bench(cfg)
    Path(cfg.out).parent.mkdir(parents=True, exist_ok=True)
    Path(cfg.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"{'model':8} {'size':9} {'backend':14} {'prec':5} {'batch':>5} {'pairs/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for r in result["rows"]:
        print(f"{r['model']:8} {r['size'][0]}x{r['size'][1]:<5} {r['backend']:14} {r['precision']:5} {r['batch']:5d} "
              f"{r['pairs_per_s']:9.1f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f}")
    for n in result["not_run"]:
        print(f"not run: {n['model']} {n['backend']}: {n['error'][:150]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
