"""The Ray Data callable class: engines deserialized once in `__init__`; `__call__` maps chunk rows to status rows.

Per chunk: pull RGB + IR with fsspec (range reads) → decode both in background threads (PyAV) → align by
timestamp → brightness → mode (rgb | fused | ir) → that mode's Detector in batches → Parquet (detections and
one row per frame). Decoded frames never leave the actor; only small status rows go back through Ray.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from fusion.config import from_dict
from fusion.data.scene import CLASS_NAMES
from fusion.data.video import VideoError, VideoReader
from jobs import schema
from jobs.config import JobConfig
from jobs.manifest import Chunk
from jobs.modality import ModePolicy, brightness
from jobs.storage import filesystem, valid_parquet, write_parquet
from trt.detector import Detector

log = logging.getLogger(__name__)
STATUS = ("video_id", "camera_id", "chunk_id", "status", "frames", "detections", "seconds", "error_type", "reason",
          "uri", "pid", "node_id", "t_start", "t_end", "modes")


def output_paths(root: str, chunk: Chunk) -> tuple[str, str]:
    part = f"camera_id={chunk.camera_id}/date={chunk.date}/{chunk.video_id}_{chunk.chunk_id:06d}.parquet"
    return f"{root}/detections/{part}", f"{root}/frames/{part}"


def build_engine(backend: str, model: str, *, device: str, precision: str, size: tuple[int, int], batch: int,
                 threads: int = 0, engine_cache: str = ""):
    if backend == "onnxruntime":
        from trt.runtime_onnx import OnnxRuntimeEngine

        return OnnxRuntimeEngine(model, device=device, threads=threads, max_batch=batch)
    if backend == "torch":
        from trt.runtime_torch import TorchEngine

        return TorchEngine(Path(model).with_suffix(".pt"), device=device, precision=precision,
                           channels_last=device.startswith("cuda"), max_batch=batch)
    from trt.build import DEFAULT_CACHE, BuildSpec, engine_for
    from trt.runtime_tensorrt import TensorRTEngine

    spec = BuildSpec(batch=(1, batch, batch), shape=(size[1], size[0]))
    return TensorRTEngine(engine_for(model, spec, cache_dir=engine_cache or DEFAULT_CACHE), device=device)


PROJECT = Path(__file__).resolve().parents[1]  # on every node: the code being run (repo, or the uploaded working dir)


def _resolve(path: str) -> str:
    """A relative model path is relative to the project the running code belongs to; then to the cwd."""
    if os.path.isabs(path) or "://" in path:
        return path
    candidate = PROJECT / path
    return str(candidate) if candidate.exists() else path


class ChunkDetector:
    def __init__(self, cfg: dict, run_id: str):
        self.cfg = from_dict(JobConfig, cfg, where="job")
        e = self.cfg.engine
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if e.device == "auto" else e.device
        self.run_id = run_id
        modes = ("rgb", "fused", "ir") if self.cfg.modality.mode == "adaptive" else (self.cfg.modality.mode,)
        models = {"fused": e.fused_model, "rgb": e.rgb_model, "ir": e.ir_model}
        self.detectors: dict[str, Detector] = {}
        self.model_ids: dict[str, str] = {}
        for mode in modes:
            size = e.rgb_size if mode == "rgb" else e.size
            engine = build_engine(e.backend, _resolve(models[mode]), device=self.device, precision=e.precision,
                                  size=size, batch=e.batch, threads=e.threads, engine_cache=e.engine_cache)
            self.detectors[mode] = Detector(engine, size=size, conf=e.conf, iou=e.iou)
            self.model_ids[mode] = Path(models[mode]).stem
        self.out_fs, _ = filesystem(self.cfg.output.path, self.cfg.output.storage_options)
        self.in_storage = self.cfg.input.storage_options
        self._pool = ThreadPoolExecutor(2, thread_name_prefix="decode")
        import ray

        self.node_id = ray.get_runtime_context().get_node_id() if ray.is_initialized() else ""
        from ray.util.metrics import Counter, Histogram

        self.m_frames = Counter("fusedet_frames_processed", description="frames run through a detector")
        self.m_latency = Histogram("fusedet_chunk_seconds", description="wall time per chunk",
                                   boundaries=[0.5, 1, 2, 5, 10, 30, 60, 120])

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        rows = [dict(zip(batch, values, strict=True)) for values in zip(*batch.values(), strict=True)]
        results = [self.process(Chunk(**{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}))
                   for r in rows]
        return {k: [r[k] for r in results] for k in STATUS}

    def _decode(self, uri: str, start: float, end: float, gray: bool) -> list[tuple[float, np.ndarray]]:
        with VideoReader.open(uri, storage_options=self.in_storage, gray=gray) as reader:
            return list(reader.frames(start, end))

    def process(self, chunk: Chunk) -> dict:
        t_start = time.time()
        status = {k: None for k in STATUS} | {"video_id": chunk.video_id, "camera_id": chunk.camera_id,
                                               "chunk_id": chunk.chunk_id, "pid": os.getpid(), "t_start": t_start,
                                               "node_id": self.node_id,
                                               "frames": 0, "detections": 0, "modes": ""}
        root = self.cfg.output.path.rstrip("/")
        det_path, frame_path = output_paths(root, chunk)
        if not self.cfg.output.overwrite and valid_parquet(self.out_fs, frame_path) and valid_parquet(
                self.out_fs, det_path):
            return status | {"status": "skipped", "seconds": 0.0, "t_end": time.time()}
        try:
            det, frames = self._detect(chunk)
        except VideoError as exc:  # a bad input is a row of the errors table; the job goes on
            log.warning("chunk %s/%d failed: %s", chunk.video_id, chunk.chunk_id, exc)
            return status | {"status": "failed", "error_type": "VideoError", "reason": str(exc)[:1000],
                             "uri": chunk.rgb_uri, "seconds": time.time() - t_start, "t_end": time.time()}
        write_parquet(self.out_fs, det_path, det)
        write_parquet(self.out_fs, frame_path, frames)  # written last: its presence marks the chunk complete
        seconds = time.time() - t_start
        self.m_frames.inc(frames.num_rows)
        self.m_latency.observe(seconds)
        modes = frames.column("modality").to_pylist()
        return status | {"status": "done", "frames": frames.num_rows, "detections": det.num_rows, "seconds": seconds,
                         "t_end": time.time(), "modes": ",".join(f"{m}:{modes.count(m)}" for m in sorted(set(modes)))}

    def _detect(self, chunk: Chunk):
        mcfg = self.cfg.modality
        lookback = (mcfg.min_dwell_s + 3 * mcfg.smoothing_s) if mcfg.mode == "adaptive" else 0.0
        rgb_job = self._pool.submit(self._decode, chunk.rgb_uri, max(chunk.start_s - lookback, 0.0), chunk.end_s,
                                    False)
        ir_job = self._pool.submit(self._decode, chunk.ir_uri, chunk.start_s, chunk.end_s, True)
        rgb, ir = rgb_job.result(), ir_job.result()
        policy = ModePolicy(mcfg)
        half = 0.5 / chunk.fps
        ir_t = np.array([t for t, _ in ir])
        frames = []  # (t, rgb, ir, brightness, mode)
        for t, img in rgb:
            br = brightness(img)
            b = br.mean
            mode = policy.update(t, b, br.p90 - br.p10)  # frames before the chunk only warm the policy up
            if t < chunk.start_s - half or not len(ir_t):
                continue
            j = int(np.abs(ir_t - t).argmin())
            if abs(ir_t[j] - t) > half:
                continue  # no IR frame at this time: not a pair
            frames.append((t, img, ir[j][1], b, mode))
        if not frames:
            raise VideoError(f"{chunk.rgb_uri}: no paired frames in [{chunk.start_s:.2f}, {chunk.end_s:.2f}) s")
        dets: dict[int, np.ndarray] = {}
        for mode, detector in self.detectors.items():
            idx = [i for i, f in enumerate(frames) if f[4] == mode]
            if idx:
                for i, d in zip(idx, detector([frames[i][1] for i in idx], [frames[i][2] for i in idx]), strict=True):
                    dets[i] = d
        return self._tables(chunk, frames, dets)

    def _tables(self, chunk: Chunk, frames: list, dets: dict[int, np.ndarray]):
        """frames [(t, rgb, ir, brightness, mode)], dets {frame i: (N, 6)} → (detections, frames) tables."""
        t0 = dt.datetime.fromisoformat(chunk.start_time)
        t0 = t0 if t0.tzinfo else t0.replace(tzinfo=dt.UTC)
        h, w = frames[0][1].shape[:2]
        n = len(frames)
        modes = [f[4] for f in frames]
        per_frame = {"video_id": [chunk.video_id] * n, "camera_id": [chunk.camera_id] * n,
                     "chunk_id": [chunk.chunk_id] * n, "frame_idx": [round(f[0] * chunk.fps) for f in frames],
                     "timestamp": [t0 + dt.timedelta(seconds=f[0]) for f in frames], "modality": modes,
                     "brightness": [f[3] for f in frames], "run_id": [self.run_id] * n}
        counts = [len(dets[i]) for i in range(n)]
        rows = np.repeat(np.arange(n), counts)  # detection → its frame
        d = np.concatenate([dets[i] for i in range(n)]).reshape(-1, 6)  # x1, y1, x2, y2, score, class
        cls = d[:, 5].astype(np.int16)
        det_cols = {k: [v[r] for r in rows] for k, v in per_frame.items()} | {
            "class_id": cls, "class_name": [CLASS_NAMES[c] for c in cls], "score": d[:, 4], "x1": d[:, 0],
            "y1": d[:, 1], "x2": d[:, 2], "y2": d[:, 3], "img_w": [w] * len(d), "img_h": [h] * len(d),
            "model_id": [self.model_ids[modes[r]] for r in rows],
            "precision": [self.detectors[modes[r]].engine.precision for r in rows]}
        return (schema.table(schema.DETECTIONS, det_cols),
                schema.table(schema.FRAMES, per_frame | {"detections": counts}))
