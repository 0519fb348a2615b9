"""TensorRT engine: deserialized once; I/O are torch CUDA tensors (no pycuda: torch already owns the device
memory and the streams); `set_tensor_address` + `execute_async_v3` on a dedicated stream; optional CUDA graph
per full input shape; a TensorRT-RTX runtime cache so actors do not recompile kernels; IProfiler on request.

Marked: this runtime cannot execute in this project's CI (no GPU) nor on its H100 machine (no full TensorRT there,
and TensorRT-RTX refuses compute capability 9.0); its tests are marked `gpu` + `tensorrt` and skip elsewhere.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import torch
from filelock import FileLock

from trt.build import compute_capability
from trt.engine import EngineError
from trt.tensorrt_api import load_tensorrt

_DTYPES = {"FLOAT": torch.float32, "HALF": torch.float16, "BF16": torch.bfloat16, "INT8": torch.int8,
           "INT32": torch.int32, "INT64": torch.int64, "BOOL": torch.bool}


def check_sidecar(engine_path: Path, flavour_name: str, version: str, device: torch.device) -> dict:
    """Compare the engine's sidecar with this process and this device; explain any mismatch."""
    side = engine_path.with_suffix(".json")
    if not side.exists():
        raise EngineError(f"{engine_path}: no sidecar {side.name}; rebuild with python -m trt.build")
    meta = json.loads(side.read_text())
    problems = []
    if meta["tensorrt_flavour"] != flavour_name or meta["tensorrt_version"] != version:
        problems.append(f"built with {meta['tensorrt_flavour']} {meta['tensorrt_version']}, "
                        f"running {flavour_name} {version}")
    cc = compute_capability(device)
    if meta["compute_capability"] != cc:
        problems.append(f"built for {meta['compute_capability']} ({meta['gpu']}), {device} is {cc}")
    if problems:
        raise EngineError(f"{engine_path}: engine does not fit this machine: " + "; ".join(problems)
                          + ". Engines are specific to GPU and TensorRT version: rebuild (python -m trt.build).")
    return meta


class TensorRTEngine:
    name = "tensorrt"

    def __init__(self, engine_path: str | Path, *, device: str = "cuda:0", cuda_graph: bool = False,
                 profile: bool = False, runtime_cache_dir: str | Path | None = None):
        if not torch.cuda.is_available():
            raise EngineError(f"{engine_path}: TensorRT needs a CUDA GPU; none is visible")
        flavour = load_tensorrt()
        trt = flavour.module
        self.path = Path(engine_path)
        self.device = torch.device(device)
        meta = check_sidecar(self.path, flavour.name, flavour.version, self.device)
        self.precision = meta["precision"]
        self.max_batch = int(meta["profile"]["batch"][2])
        self.input_size = tuple(meta["profile"]["size"])  # (W, H)
        self.classes = tuple(meta.get("classes", ()))
        self.validated = meta.get("validated")
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._cache_file = None
        with torch.cuda.device(self.device):
            self.engine = trt.Runtime(self._logger).deserialize_cuda_engine(self.path.read_bytes())
            if self.engine is None:
                raise EngineError(f"{engine_path}: TensorRT could not deserialize it")
            self.context = self._context(trt, runtime_cache_dir)
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        dtype = {n: _DTYPES[self.engine.get_tensor_dtype(n).name] for n in names}
        self._in_dtype = {n: dtype[n] for n in self.inputs}  # what the engine declares: fp16 graphs take fp16
        self._out_dtype = {n: dtype[n] for n in self.outputs}
        self.dtype = self._in_dtype[self.inputs[0]]
        self.stream = torch.cuda.Stream(self.device)
        self.cuda_graph = cuda_graph
        self.fixed_batch = cuda_graph  # a graph is captured per input shape: callers keep one shape
        self._graphs: dict[tuple, tuple[torch.cuda.CUDAGraph, dict[str, torch.Tensor]]] = {}
        self.profiler = None
        if profile:
            self.profiler = _layer_profiler(trt)
            self.context.profiler = self.profiler

    def _context(self, trt, runtime_cache_dir):
        """TensorRT-RTX compiles kernels for this GPU at first run; its runtime cache (a file per engine, shared by
        the actors of a node) keeps them for the next actor. Full TensorRT has no runtime cache."""
        if runtime_cache_dir is None or not hasattr(self.engine, "create_runtime_config"):
            return self.engine.create_execution_context()
        config = self.engine.create_runtime_config()
        cache = config.create_runtime_cache()
        self._cache_file = Path(runtime_cache_dir) / f"{self.path.stem}.runtime.cache"
        with FileLock(str(self._cache_file) + ".lock"):
            if self._cache_file.exists() and not cache.deserialize(self._cache_file.read_bytes()):
                self._cache_file.unlink()  # stale (other driver or TensorRT-RTX version): start afresh
        if not config.set_runtime_cache(cache):
            raise EngineError(f"{self.path}: TensorRT-RTX refused its runtime cache")
        self._runtime_cache = cache
        return self.engine.create_execution_context(config)

    def save_runtime_cache(self) -> None:
        if self._cache_file is None:
            return
        with FileLock(str(self._cache_file) + ".lock"):
            tmp = self._cache_file.with_suffix(".tmp")
            tmp.write_bytes(memoryview(self._runtime_cache.serialize()))
            tmp.replace(self._cache_file)

    def _bind(self, feeds: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        for name, t in feeds.items():
            if not self.context.set_input_shape(name, tuple(t.shape)):
                raise EngineError(f"{self.path}: input {name} shape {tuple(t.shape)} is outside the profile")
            self.context.set_tensor_address(name, t.data_ptr())
        outs = {}
        for name in self.outputs:
            shape = tuple(self.context.get_tensor_shape(name))
            outs[name] = torch.empty(shape, dtype=self._out_dtype[name], device=self.device)
            self.context.set_tensor_address(name, outs[name].data_ptr())
        return outs

    def _enqueue(self) -> None:
        if not self.context.execute_async_v3(self.stream.cuda_stream):
            raise EngineError(f"{self.path}: execute_async_v3 failed (see the TensorRT log above)")

    def __call__(self, rgb: torch.Tensor, ir: torch.Tensor) -> tuple[torch.Tensor, ...]:
        b = rgb.shape[0]
        if b > self.max_batch:
            raise EngineError(f"{self.path}: batch {b} exceeds the engine profile's max {self.max_batch}")
        tensors = {"rgb": rgb, "ir": ir}  # single-modality engines bind only their own input
        feeds = {n: tensors[n].to(self.device, self._in_dtype[n]).contiguous() for n in self.inputs}
        current = torch.cuda.current_stream(self.device)
        self.stream.wait_stream(current)  # inputs were produced on the caller's stream
        with torch.cuda.stream(self.stream):
            if self.cuda_graph and self.profiler is None:
                outs = self._run_graph(feeds)
            else:
                outs = self._bind(feeds)
                self._enqueue()
        for t in feeds.values():
            t.record_stream(self.stream)  # keep the caller's inputs alive until this stream used them
        current.wait_stream(self.stream)
        return tuple(outs[n].float() for n in self.outputs)

    def _run_graph(self, feeds: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        key = tuple((n, tuple(t.shape)) for n, t in feeds.items())  # the full input shape, not just the batch
        if key not in self._graphs:  # static buffers per shape; captured after one warm-up launch
            static_in = {k: v.clone() for k, v in feeds.items()}
            outs = self._bind(static_in)
            self._enqueue()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, stream=self.stream):
                self._enqueue()
            self._graphs[key] = (graph, {**static_in, **outs})
            self.save_runtime_cache()
        graph, bufs = self._graphs[key]
        for k, v in feeds.items():
            bufs[k].copy_(v)
        graph.replay()
        return {n: bufs[n].clone() for n in self.outputs}

    def profile_table(self) -> str:
        if self.profiler is None:
            return "(profiling disabled: TensorRTEngine(..., profile=True))"
        rows = sorted(self.profiler.totals.items(), key=lambda kv: -kv[1])
        total = sum(self.profiler.totals.values()) or 1.0
        lines = [f"{'layer':60} {'ms':>9} {'%':>6}"]
        lines += [f"{name[:60]:60} {ms:9.3f} {100 * ms / total:6.1f}" for name, ms in rows[:40]]
        return "\n".join(lines)


def _layer_profiler(trt):
    class LayerProfiler(trt.IProfiler):
        def __init__(self):
            trt.IProfiler.__init__(self)
            self.totals: dict[str, float] = defaultdict(float)

        def report_layer_time(self, layer_name, ms):
            self.totals[layer_name] += ms

    return LayerProfiler()
