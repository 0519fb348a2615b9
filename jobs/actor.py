"""The Ray Data callable class: engines deserialized once in `__init__`; `__call__` maps a chunk row to a status row.

Per chunk (several at once per actor, each in its own thread): open RGB + IR decoders (NVDEC on the GPU or PyAV)
→ pair frames by time → brightness of the decoded RGB batch → mode (rgb | fused | ir) → letterbox on the engine's
device → the actor's engine thread (batches merged across chunks, batched NMS) → Parquet (detections, then one
row per frame: the completion marker). Decoded frames never leave the actor; a small status row goes back.
Any exception while processing a chunk becomes a failed status row naming the file that failed; the actor and the
run go on. Transient storage errors are retried first (`storage.*`).
"""

from __future__ import annotations

import itertools
import logging
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

import numpy as np
import torch

from fusion.config import from_dict
from fusion.data.decode import NvdecPool, open_decoder, resolve_backend
from fusion.data.letterbox import Letterbox
from fusion.data.video import VideoError, VideoReader
from jobs import schema, tables
from jobs.config import JobConfig
from jobs.modality import ModePolicy, brightness_batch
from jobs.paths import Layout
from jobs.pipeline import BatchRunner, PairCounts, chunk_stream, pair_frames
from jobs.plan import Chunk
from jobs.storage import StorageError, filesystem, valid_parquet, with_retry, write_bytes, write_parquet
from jobs.tables import ChunkFrames
from jobs.tracking import ID_STRIDE, TrackWorker, track_ids
from trt.detector import Detector
from trt.engine import EngineError, EngineSpec, load_engine

log = logging.getLogger(__name__)
GIL_SWITCH_S = 0.0005  # GPU actors; Python's default is 0.005 (benchmarks/bench_job.py measures both)
PROJECT = Path(__file__).resolve().parents[1]  # on every node: the code being run (repo, or the uploaded working dir)


def resolve_model(path: str) -> str:
    """A relative model path is relative to the project the running code belongs to; then to the cwd."""
    if os.path.isabs(path) or "://" in path:
        return path
    candidate = PROJECT / path
    return str(candidate) if candidate.exists() or candidate.with_suffix(".pt").exists() else path


def engine_specs(cfg: JobConfig, device: str, *, resolve: bool = True) -> dict[str, EngineSpec]:
    """mode → the engine description of its model (one per mode the policy can choose); `resolve` turns
    backend=auto into the backend that runs on `device`."""
    e = cfg.engine
    # On the CPU an actor owns `cpus_per_actor` cores: ONNX Runtime gets that many threads unless told otherwise
    # (its default, one per core of the machine, oversubscribes when several actors share a machine).
    threads = e.threads or (max(int(cfg.cluster.cpus_per_actor), 1) if device == "cpu" else 0)
    modes = ("rgb", "fused", "ir") if cfg.modality.mode == "adaptive" else (cfg.modality.mode,)
    models = {"fused": e.fused_model, "rgb": e.rgb_model, "ir": e.ir_model}
    specs = {m: EngineSpec(backend=e.backend, model=resolve_model(models[m]), precision=e.precision,
                          size=e.rgb_size if m == "rgb" else e.size, max_batch=e.batch, compile=e.compile,
                          device=device, threads=threads, cache_dir=e.engine_cache) for m in modes}
    return {m: s.resolved() for m, s in specs.items()} if resolve else specs


class ChunkFailed(Exception):
    """Processing one chunk failed; carries the error row's fields."""

    def __init__(self, error_type: str, uri: str, reason: str):
        super().__init__(f"{error_type}: {uri}: {reason}")
        self.error_type, self.uri, self.reason = error_type, uri, reason


def _stream(decoder, start: float, end: float | None, batch: int, what: str):
    """Decoder batches, with any failure re-raised as ChunkFailed naming this stream's file."""
    try:
        yield from decoder.read(start, end, batch=batch)
    except VideoError as exc:
        raise ChunkFailed("VideoError", decoder.uri, str(exc)) from exc
    except Exception as exc:
        raise ChunkFailed(type(exc).__name__, decoder.uri, f"{what} decode: {exc}") from exc


class ChunkDetector:
    def __init__(self, cfg: dict, run_id: str):
        self.cfg = from_dict(JobConfig, cfg, where="job")
        e = self.cfg.engine
        device = ("cuda" if torch.cuda.is_available() else "cpu") if e.device == "auto" else e.device
        self.device = torch.device(device)
        if self.device.type == "cpu":
            # The ONNX Runtime engine owns the actor's cores; torch only resizes and pads frames (and runs the
            # engine's NMS). One torch thread: an OpenMP pool spinning beside ORT's threads halved the engine's rate.
            torch.set_num_threads(1)
        else:
            # Every torch op releases and re-takes the GIL, so the one engine thread waits for it behind the chunk
            # threads. A shorter switch interval hands it back sooner; measured on the H100 it made no real
            # difference (bench_job_h100_run2.json: 950 vs 938 pairs/s) and the later runs kept it.
            sys.setswitchinterval(GIL_SWITCH_S)
        self.run_id = run_id
        import ray

        self.node_id = ray.get_runtime_context().get_node_id() if ray.is_initialized() else ""
        self._closed = False
        trk = self.cfg.tracking
        n_track = trk.processes if trk.processes >= 0 else 4 if self.device.type == "cuda" else 0
        self._trackers, self._next_tracker = [], itertools.count()
        if trk.enabled and n_track and not ray.is_initialized():
            log.info("tracking.processes=%d: Ray is not running here, so ByteTrack runs in the chunk threads", n_track)
        elif trk.enabled and n_track:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            # Ray actors owned by this one (they end with it), on its node. num_cpus=0: the GPU actors may hold every
            # CPU the scheduler knows of, and a tracker waiting for a CPU would hold up the whole actor.
            self._tracker_cls = ray.remote(num_cpus=0)(TrackWorker).options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(self.node_id, soft=True))
            self._trackers = [self._tracker_cls.remote() for _ in range(n_track)]  # start while the engines compile
        from jobs.preflight import check_models  # (preflight builds on this module's engine_specs)

        # The routes come from the model files' metadata, as the driver's preflight read them: engines no route
        # uses are never loaded (with routes that are fused everywhere, adaptive costs one engine, not three).
        _, self.routes = check_models(self.cfg)
        if self.cfg.modality.mode == "adaptive":
            log.info("adaptive routes: %s", self.routes.text())
        used = {*self.routes.modes, "fused"} if self.cfg.modality.mode == "adaptive" else {self.cfg.modality.mode}
        self.specs = {k: s for k, s in engine_specs(self.cfg, device).items() if k in used}
        self.detectors = {m: Detector(load_engine(s), size=s.size, conf=e.conf, iou=e.iou)
                          for m, s in self.specs.items()}
        self.classes = self.detectors[next(iter(self.detectors))].classes
        c = self.cfg.cluster
        self._decode_slots = threading.BoundedSemaphore(c.decoding_chunks or c.chunks_in_flight)
        self.runner = BatchRunner(self.detectors, batch=e.batch, max_queue=2 * c.chunks_in_flight + 2)
        self.decoder, why = resolve_backend(self.cfg.decode.backend, self.device)
        self.nvdec_pool = (NvdecPool(self.device, high_priority=self.cfg.decode.high_priority,
                                     nv12=self.cfg.decode.nvdec_rgb == "nv12")
                           if self.decoder == "nvdec" else None)
        # FFmpeg's own default is a thread per core for each stream: on a small CPU actor that is many threads
        # fighting over its cores with the engine.
        self.decode_threads = self.cfg.decode.threads or (1 if self.device.type == "cpu" else 0)
        log.info("actor %d: engines %s on %s; decode %s (%s)", os.getpid(),
                 {m: d.engine.name for m, d in self.detectors.items()}, device, self.decoder, why)
        fs, base = filesystem(self.cfg.output.path, self.cfg.output.storage_options)
        self.out_fs, self.layout = fs, Layout(base)
        self._io = ThreadPoolExecutor(2, thread_name_prefix="open")
        self.m_frames = self.m_latency = None
        try:  # Prometheus metrics where Ray's metrics agent runs (ray[default]); the job does not depend on them
            from ray.util.metrics import Counter, Histogram

            self.m_frames = Counter("fusedet_frames_processed", description="frames run through a detector")
            self.m_latency = Histogram("fusedet_chunk_seconds", description="wall time per chunk",
                                       boundaries=[0.5, 1, 2, 5, 10, 30, 60, 120])
        except Exception as exc:
            log.info("Ray metrics unavailable (%s)", exc)
        if self._trackers:
            ray.get([w.ready.remote() for w in self._trackers])

    def close(self) -> None:
        """Stop the engine thread and the tracking processes. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.runner.close()
        if self._trackers:
            import ray

            for w in self._trackers:
                ray.kill(w)
            self._trackers = []

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        rows = [dict(zip(batch, values, strict=True)) for values in zip(*batch.values(), strict=True)]
        results = [self.process(Chunk(**{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}))
                   for r in rows]
        return {k: [r[k] for r in results] for k in schema.CHUNKS.names}

    def process(self, chunk: Chunk) -> dict:
        t_start = time.time()
        status = dict.fromkeys(schema.CHUNKS.names) | {
            "video_id": chunk.video_id, "camera_id": chunk.camera_id, "chunk_id": chunk.chunk_id,
            "first_frame": chunk.first, "end_frame": chunk.end, "frames_expected": chunk.end - chunk.first,
            "pid": os.getpid(), "t_start": t_start, "node_id": self.node_id, "run_id": self.run_id, "frames": 0,
            "detections": 0, "rgb_frames": 0, "ir_frames": 0, "unpaired_rgb": 0, "unpaired_ir": 0, "modes": "",
            "decoder": self.decoder, "error_type": "", "reason": "", "uri": "", "decode_s": 0.0, "engine_wait_s": 0.0,
            "write_s": 0.0, "engine_busy_s": self.runner.busy_s, "engine_batches": self.runner.batches}
        det_path, frame_path = self.layout.detections(chunk.key), self.layout.frames(chunk.key)
        policy = self.cfg.storage
        counted = False
        try:
            if not self.cfg.output.overwrite and all(
                    with_retry(lambda p=p: valid_parquet(self.out_fs, p), what=f"check {p}", policy=policy)
                    for p in (frame_path, det_path)):
                return status | {"status": "skipped", "seconds": 0.0, "t_end": time.time()}
            attempt, counted = self._count_attempt(chunk), True
            if attempt > self.cfg.cluster.max_chunk_attempts:
                raise ChunkFailed("ActorDied", chunk.rgb_uri, f"started {attempt - 1} times in this run and its actor "
                                  "died each time (out of memory, or a crash while decoding this chunk)")
            result, counts, timing = self._detect(chunk)
            det, frames, overlap = tables.build(chunk, result, run_id=self.run_id, classes=self.classes,
                                                models={m: Path(s.model).stem for m, s in self.specs.items()},
                                                precisions={m: d.engine.precision for m, d in self.detectors.items()})
            t_write = time.perf_counter()
            writes = [(self.layout.overlap(chunk.key), overlap)] if overlap is not None else []
            writes += [(det_path, det), (frame_path, frames)]  # the frames file last: it marks completion
            for path, table in writes:
                try:
                    with_retry(lambda p=path, t=table: write_parquet(self.out_fs, p, t), what=f"write {path}",
                               policy=policy)
                except Exception as exc:
                    raise ChunkFailed("WriteError", path, f"{type(exc).__name__}: {exc}") from exc
            timing["write_s"] = time.perf_counter() - t_write
        except ChunkFailed as exc:
            log.warning("chunk %s/%d failed: %s", chunk.video_id, chunk.chunk_id, exc)
            return status | {"status": "failed", "error_type": exc.error_type, "reason": exc.reason[:2000],
                             "uri": exc.uri, "seconds": time.time() - t_start, "t_end": time.time()}
        except Exception as exc:  # anything else (engine, CUDA, storage, a bug): this chunk fails, the run goes on
            kind = {StorageError: "StorageError", EngineError: "EngineError"}.get(type(exc), type(exc).__name__)
            log.exception("chunk %s/%d failed", chunk.video_id, chunk.chunk_id)
            return status | {"status": "failed", "error_type": kind, "reason": f"{exc}"[:2000], "uri": chunk.rgb_uri,
                             "seconds": time.time() - t_start, "t_end": time.time()}
        finally:
            if counted:
                self._clear_attempt(chunk)
        seconds = time.time() - t_start
        if self.m_frames is not None:
            self.m_frames.inc(frames.num_rows)
            self.m_latency.observe(seconds)
        modes = frames.column("modality").to_pylist()
        partial = counts.paired < chunk.end - chunk.first or counts.out_of_order > 0
        return status | timing | {
            "engine_busy_s": self.runner.busy_s, "engine_batches": self.runner.batches,
            "status": "partial" if partial else "done", "frames": frames.num_rows, "detections": det.num_rows,
            "rgb_frames": counts.rgb, "ir_frames": counts.ir, "unpaired_rgb": counts.unpaired_rgb,
            "unpaired_ir": counts.unpaired_ir, "seconds": seconds, "t_end": time.time(),
            "modes": ",".join(f"{m}:{modes.count(m)}" for m in sorted(set(modes))),
            # the IR file when RGB frames found no IR partner; else the RGB file fell short of the plan or its frame
            # times were at fault (a variable rate)
            "uri": "" if not partial else chunk.ir_uri if counts.unpaired_rgb and not counts.out_of_order
            else chunk.rgb_uri,
            "error_type": "PartialPair" if partial else "",
            "reason": (f"{counts.paired} of {chunk.end - chunk.first} frames paired: {counts.rgb} RGB and "
                       f"{counts.ir} IR frames decoded, {counts.unpaired_rgb} RGB without an IR partner, "
                       f"{counts.unpaired_ir} IR without an RGB partner"
                       + (f", {counts.out_of_order} RGB frames dropped whose time repeats, goes back or falls on the "
                          f"previous frame's index at {chunk.fps:g} fps (a variable frame rate? remux at a constant "
                          f"one: ffmpeg -i <file> -fps_mode cfr -r {chunk.fps:g} <file>.mp4)"
                          if counts.out_of_order else "")) if partial else ""}

    def _track(self, args: tuple, kw: dict) -> np.ndarray:
        """Track ids from one of the tracker actors; one that died (OOM, killed) is replaced, and this chunk is
        tracked in its own thread meanwhile."""
        import ray

        k = next(self._next_tracker) % len(self._trackers)
        try:
            return ray.get(self._trackers[k].track.remote(*args, **kw))
        except ray.exceptions.RayActorError as exc:
            log.warning("tracker actor %d died (%s); tracking this chunk here and starting a new one", k,
                        type(exc).__name__)
            self._trackers[k] = self._tracker_cls.remote()
            return track_ids(*args, **kw)

    def _count_attempt(self, chunk: Chunk) -> int:
        """Record one more start of this chunk in this run; → the attempt number (1 = first)."""
        path = self.layout.attempt(self.run_id, chunk.key)

        def bump() -> int:
            try:
                n = int(self.out_fs.cat_file(path)) + 1
            except FileNotFoundError:
                n = 1
            write_bytes(self.out_fs, path, str(n).encode())
            return n

        return with_retry(bump, what=f"update {path}", policy=self.cfg.storage)

    def _clear_attempt(self, chunk: Chunk) -> None:
        try:
            self.out_fs.rm_file(self.layout.attempt(self.run_id, chunk.key))
        except Exception:  # a leftover counter only matters if this chunk's actor dies later
            pass

    def _warm_policy(self, chunk: Chunk, policy: ModePolicy, start: float) -> None:
        """The policy's state before `start`, from the keyframes of a short look-back (cheap: no other frame)."""
        m = self.cfg.modality
        lookback = m.min_dwell_s + 3 * m.smoothing_s
        # One engine for every brightness (the shipped models' routes): the state cannot change a frame's engine, so
        # the extra open + keyframe decode per chunk would be adaptive's only cost over fused (bench_job run 15).
        if m.mode != "adaptive" or start <= 0 or lookback <= 0 or self.routes.one_engine:
            return
        try:
            with VideoReader.open(chunk.rgb_uri, storage_options=self.cfg.input.storage_options) as r:
                keys = list(r.frames(max(start - lookback, 0.0), start, keyframes_only=True, fmt="rgb24"))
        except VideoError as exc:
            raise ChunkFailed("VideoError", chunk.rgb_uri, str(exc)) from exc
        if keys:
            stats = brightness_batch(torch.from_numpy(np.stack([f for _, f in keys])).permute(0, 3, 1, 2))
            for (t, _), (b, p10, p90) in zip(keys, stats, strict=True):
                policy.update(t, b, p90 - p10)

    def _open(self, uri: str, gray: bool):
        so, policy = self.cfg.input.storage_options, self.cfg.storage
        try:
            return with_retry(lambda: open_decoder(uri, backend=self.decoder, gray=gray, device=self.device,
                                                   storage_options=so, threads=self.decode_threads,
                                                   pool=self.nvdec_pool),
                              what=f"open {uri}", policy=policy)
        except VideoError as exc:
            raise ChunkFailed("VideoError", uri, str(exc)) from exc
        except FileNotFoundError as exc:
            raise ChunkFailed("VideoError", uri, "file not found") from exc
        except StorageError as exc:
            raise ChunkFailed("StorageError", uri, str(exc)) from exc

    def _open_pair(self, chunk: Chunk):
        """Both decoders, opened side by side; when one fails the other is closed (its NVDEC session goes back)."""
        futures = [self._io.submit(self._open, chunk.rgb_uri, False), self._io.submit(self._open, chunk.ir_uri, True)]
        wait(futures)
        failed = [f.exception() for f in futures if f.exception() is not None]
        if failed:
            for f in futures:
                if f.exception() is None:
                    f.result().close()
            raise failed[0]
        return futures[0].result(), futures[1].result()

    def _detect(self, chunk: Chunk) -> tuple[ChunkFrames, PairCounts, dict[str, float]]:
        batch = self.cfg.engine.batch
        tol = self.cfg.decode.pair_tolerance_s or 0.5 / chunk.fps
        trk = self.cfg.tracking
        # Tracking runs over the overlap with the previous chunk too (its rows go to the _overlap file only).
        start = max(chunk.first - round(trk.overlap_s * chunk.fps), 0) / chunk.fps if trk.enabled else chunk.start_s
        policy = ModePolicy(self.cfg.modality, self.routes, chunk.camera_id)
        self._warm_policy(chunk, policy, start)
        counts = PairCounts()
        times, bright, modes, sizes, pending = [], [], [], [], []
        t_decode = 0.0  # time this thread waited for the next paired piece (decode + pairing)
        stream = chunk_stream(self.device, high_priority=self.cfg.decode.high_priority)
        if stream is not None:
            torch.cuda.set_stream(stream)  # this thread's stream, for good: it works on one chunk at a time
        with self._decode_slots:  # decoders are given back before this chunk waits for its results
            rgb_dec, ir_dec = self._open_pair(chunk)
            try:
                end = None if chunk.last else chunk.end_s  # the last chunk runs to the stream's end
                pieces = pair_frames(_stream(rgb_dec, start, end, batch, "RGB"),
                                     _stream(ir_dec, max(start - tol, 0.0), None if end is None else end + tol, batch,
                                             "IR"),
                                     start=start, end=float("inf") if end is None else end, tol=tol, fps=chunk.fps,
                                     size=batch, counts=counts)
                while True:
                    t0 = time.perf_counter()
                    piece = next(pieces, None)
                    t_decode += time.perf_counter() - t0
                    if piece is None:
                        break
                    base = len(times)
                    stats = brightness_batch(piece.rgb, nv12=piece.nv12)  # (n, 3), on the frames' device
                    piece_modes = [policy.update(t, b, p90 - p10)
                                   for t, (b, p10, p90) in zip(piece.t, stats, strict=True)]
                    times += piece.t.tolist()
                    bright += stats[:, 0].tolist()
                    modes += piece_modes
                    sizes += [piece.size] * len(piece.t)
                    for mode in dict.fromkeys(piece_modes):
                        idx = [i for i, m in enumerate(piece_modes) if m == mode]
                        rgb, ir = piece.rgb, piece.ir
                        if len(idx) < len(piece_modes):  # a mode switch inside the piece: its frames only
                            sel = torch.tensor(idx, device=rgb.device)
                            rgb, ir = rgb.index_select(0, sel), ir.index_select(0, sel.to(ir.device))
                        x, y, lb = self.detectors[mode].prepare(rgb, ir, nv12=piece.nv12)
                        pending.append((np.asarray(idx) + base, lb, self.runner.submit(mode, x, y)))
            finally:
                rgb_dec.close()
                ir_dec.close()
        t0 = time.perf_counter()
        rows = [_to_source(f.result(), frame_ids, lb) for frame_ids, lb, f in pending]
        t_wait = time.perf_counter() - t0
        if not times:
            raise ChunkFailed("VideoError", chunk.rgb_uri if not counts.rgb else chunk.ir_uri,
                              f"no paired frames in [{chunk.start_s:.2f}, {chunk.end_s:.2f}) s ({counts.rgb} RGB, "
                              f"{counts.ir} IR frames decoded)")
        flat = np.concatenate(rows) if rows else np.zeros((0, 7), np.float32)
        flat = flat[np.lexsort((-flat[:, 5], flat[:, 0]))]  # by frame, then score
        result = ChunkFrames(np.asarray(times), np.asarray(bright, np.float32), modes, sizes, flat)
        if trk.enabled:
            args = (flat[:, 0].astype(np.int64), flat[:, 1:])
            kw = {"n_frames": len(times), "fps": chunk.fps, "cfg": trk, "id_base": chunk.first * ID_STRIDE}
            result.track = self._track(args, kw) if self._trackers else track_ids(*args, **kw)
        counts.paired = int((result.times >= chunk.start_s - 0.5 / chunk.fps).sum())  # the chunk's own frames
        return result, counts, {"decode_s": t_decode, "engine_wait_s": t_wait}


def _to_source(rows: np.ndarray, frame_ids: np.ndarray, lb: Letterbox) -> np.ndarray:
    """Runner rows (piece-local frame, model-pixel box, score, class) → chunk frame index, source-pixel box."""
    rows = rows.copy()
    rows[:, 1:5] = lb.to_source(rows[:, 1:5])
    rows[:, 0] = frame_ids[rows[:, 0].astype(np.int64)]
    return rows
