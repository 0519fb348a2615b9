"""The actor's two moving parts: pairing decoded streams into batches, and one engine thread shared by the chunks
an actor works on at once.

    decoders (per chunk, in the chunk's thread) ─► pair_frames ─► Piece (≤ batch pairs, one shape)
        ─► Detector.prepare (letterbox on the engine's device) ─► BatchRunner.submit ─► Future[(k, 7) rows]
    BatchRunner thread: merges pieces of one mode from all chunks into full batches ─► engine ─► batched NMS
        ─► one host copy per batch ─► each piece's rows

A bounded request queue keeps memory bounded: when the engine falls behind, chunk threads wait, so their decoders
wait too. CUDA graphs are captured in the runner thread, the only thread that calls the engines. On a GPU each chunk
thread works on its own CUDA stream (see `chunk_stream`), so its copies and syncs never wait behind the engine's
batches; a request carries an event that the engine's stream waits on before it reads the inputs. A decoding thread
per chunk, running ahead of the rest of its work, was measured and gained nothing (README: Benchmarks, run 10).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np
import torch

from fusion.data.decode import FrameBatch, decode_stream
from trt.detector import Detector

log = logging.getLogger(__name__)


@dataclass
class PairCounts:
    rgb: int = 0  # RGB frames decoded in the chunk
    ir: int = 0  # IR frames decoded in the chunk
    paired: int = 0
    unpaired_rgb: int = 0  # RGB frames with no IR frame within the tolerance
    unpaired_ir: int = 0  # IR frames inside the chunk that no RGB frame took
    out_of_order: int = 0  # RGB frames whose frame index (time × fps, rounded) does not advance: dropped, so each
    #   index has one row (a repeated or backward timestamp, or a variable frame rate faster than the nominal fps)


@dataclass(frozen=True)
class Piece:
    t: np.ndarray  # (n,) RGB frame times, seconds from the stream start
    rgb: torch.Tensor  # (n, 3, H, W) uint8, or (n, 1, H * 3/2, W) NV12 (`nv12`)
    ir: torch.Tensor  # (n, 1, h, w) uint8
    nv12: bool = False

    @property
    def size(self) -> tuple[int, int]:
        """The RGB frames' (W, H)."""
        h = self.rgb.shape[-2] * 2 // 3 if self.nv12 else self.rgb.shape[-2]
        return self.rgb.shape[-1], h


def pair_frames(rgb: Iterator[FrameBatch], ir: Iterator[FrameBatch], *, start: float, end: float, tol: float,
                fps: float, size: int, counts: PairCounts) -> Iterator[Piece]:
    """Pair each RGB frame with the nearest unused IR frame within `tol` seconds; yield pieces of ≤ `size` pairs
    of one shape. `ir` may cover a margin of `tol` around [start, end): only IR frames inside the window count
    as unpaired. An RGB frame whose index round(t × `fps`) (the output tables' frame_idx) is not past the previous
    frame's is dropped and counted in `counts.out_of_order`."""
    pending: deque[tuple[float, torch.Tensor]] = deque()
    ir_iter = iter(ir)
    ir_done = False

    def pull_until(t: float) -> None:
        nonlocal ir_done
        while not ir_done and (not pending or pending[-1][0] <= t + tol):
            b = next(ir_iter, None)
            if b is None:
                ir_done = True
                return
            pending.extend(zip(b.t.tolist(), b.data, strict=True))

    def drop_ir(t_ir: float) -> None:
        if start - 1e-6 <= t_ir < end - 1e-6:
            counts.ir += 1
            counts.unpaired_ir += 1

    buf: list[tuple[float, torch.Tensor, torch.Tensor]] = []
    nv12 = False

    def flush() -> Piece:
        piece = Piece(np.array([b[0] for b in buf]), torch.stack([b[1] for b in buf]), torch.stack([b[2] for b in buf]),
                      nv12=nv12)
        buf.clear()
        return piece

    last = -1 << 62  # the previous kept frame's index
    for batch in rgb:
        nv12 = batch.nv12  # one stream, one layout
        for t, x in zip(batch.t.tolist(), batch.data, strict=True):
            counts.rgb += 1
            if round(t * fps) <= last:  # round: half to even, as np.rint in jobs.tables
                counts.out_of_order += 1
                continue
            last = round(t * fps)
            pull_until(t)
            while pending and pending[0][0] < t - tol - 1e-9:
                drop_ir(pending.popleft()[0])
            if not pending or abs(pending[0][0] - t) > tol + 1e-9:
                counts.unpaired_rgb += 1
                continue
            if len(pending) > 1 and abs(pending[1][0] - t) < abs(pending[0][0] - t):
                drop_ir(pending.popleft()[0])
            t_ir, y = pending.popleft()
            counts.ir += 1
            counts.paired += 1
            if buf and (buf[0][1].shape != x.shape or buf[0][2].shape != y.shape or len(buf) == size):
                yield flush()
            buf.append((t, x, y))
    if buf:
        yield flush()
    pull_until(end + tol)
    for t_ir, _ in pending:
        drop_ir(t_ir)
    for b in ir_iter:
        for t_ir in b.t.tolist():
            drop_ir(t_ir)


_streams = threading.local()


def chunk_stream(device: torch.device, *, high_priority: bool = True) -> torch.cuda.Stream | None:
    """This thread's own CUDA stream on `device` (created once per thread, with the first call's priority), or None
    off the GPU."""
    if device.type != "cuda":
        return None
    if getattr(_streams, "stream", None) is None:
        _streams.stream = decode_stream(device, high_priority=high_priority)
    return _streams.stream


@dataclass
class _Request:
    mode: str
    x: torch.Tensor  # (n, 3, H, W) engine input
    y: torch.Tensor  # (n, 1, H, W)
    future: Future = field(default_factory=Future)
    t: float = field(default_factory=time.perf_counter)
    ready: torch.cuda.Event | None = None  # recorded on the submitting thread's stream after x and y were written
    taken: int = 0  # frames x[:taken] are in a batch already (a request may be split between two batches)
    done: int = 0  # frames whose detections are in `rows`
    rows: list = field(default_factory=list)  # (k, 7) arrays, request-local frame index, in frame order


class BatchRunner:
    """The one thread that runs the engines: requests of one mode from concurrent chunks become full batches.

    A request that does not fit whole is split: its first frames fill this batch and the rest start the next one.
    Engines that replay CUDA graphs run every batch padded to `batch`, so a batch left short while frames wait
    would be engine time spent on padding (a 150-frame chunk in pieces of 32 ends in a piece of 22: 10 of 160
    frames padding unless the next chunk's frames fill them)."""

    def __init__(self, detectors: dict[str, Detector], *, batch: int, max_queue: int = 8, wait_s: float = 0.005):
        self.detectors, self.batch, self.wait_s = detectors, batch, wait_s
        self._q: queue.Queue[_Request | None] = queue.Queue(maxsize=max_queue)
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.batches = 0
        self.frames = 0
        self.busy_s = 0.0  # time spent running batches (engine + NMS + host copy)
        self._thread = threading.Thread(target=self._loop, name="engine", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error

    def submit(self, mode: str, x: torch.Tensor, y: torch.Tensor) -> Future:
        """→ Future of a (k, 7) float32 numpy array: piece-local frame index, x1, y1, x2, y2 (model px), score, cls."""
        if not self._thread.is_alive():
            raise RuntimeError("the engine thread has stopped")
        req = _Request(mode, x, y)
        if x.is_cuda:
            req.ready = torch.cuda.Event()
            req.ready.record(torch.cuda.current_stream(x.device))
        self._q.put(req)
        return req.future

    def close(self) -> None:
        self._q.put(None)
        self._thread.join(timeout=30)

    def _warm_up(self) -> None:
        """Compile / capture CUDA graphs here, in the thread that will replay them, before the first chunk."""
        for det in self.detectors.values():
            w, h = det.size
            dt = getattr(det.engine, "dtype", torch.float32)
            n = det.engine.max_batch if det.engine.fixed_batch else 1
            for _ in range(3 if det.engine.fixed_batch else 1):
                det.infer(torch.zeros((n, 3, h, w), dtype=dt, device=det.device),
                          torch.zeros((n, 1, h, w), dtype=dt, device=det.device))

    def _loop(self) -> None:
        try:
            with torch.inference_mode():
                self._warm_up()
        except BaseException as exc:  # reported to the constructor, which raises it in the actor's __init__
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        pending: dict[str, deque[_Request]] = {m: deque() for m in self.detectors}
        stopping = False
        while not stopping or any(pending.values()):
            if not any(pending.values()):
                item = self._q.get()
                if item is None:
                    break
                pending[item.mode].append(item)
            stopping = self._drain(pending, block_s=0.0) or stopping
            mode = min((m for m in pending if pending[m]), key=lambda m: pending[m][0].t)
            if sum(len(r.x) - r.taken for r in pending[mode]) < self.batch and not stopping:
                stopping = self._drain(pending, block_s=self.wait_s) or stopping  # a full batch is worth 5 ms
            take, n = [], 0  # (request, first frame, frames)
            while pending[mode] and n < self.batch:
                r = pending[mode][0]
                k = min(len(r.x) - r.taken, self.batch - n)
                if not r.future.done():  # not failed already in an earlier batch
                    take.append((r, r.taken, k))
                    n += k
                r.taken += k
                if r.taken == len(r.x) or r.future.done():
                    pending[mode].popleft()
            if take:
                self._run(mode, take)

    def _drain(self, pending: dict[str, deque[_Request]], *, block_s: float) -> bool:
        """Move queued requests into `pending`; True when the stop sentinel was seen."""
        try:
            item = self._q.get(timeout=block_s) if block_s else self._q.get_nowait()
            while True:
                if item is None:
                    return True
                pending[item.mode].append(item)
                item = self._q.get_nowait()
        except queue.Empty:
            return False

    def _run(self, mode: str, take: list[tuple[_Request, int, int]]) -> None:
        t0 = time.perf_counter()
        try:
            with torch.inference_mode():
                for r, first, _ in take:
                    if r.ready is not None and first == 0:  # written on a chunk thread's stream: wait for it, and
                        engine = torch.cuda.current_stream(r.x.device)  # keep its memory from reuse until this
                        engine.wait_event(r.ready)  # stream is done (the engine stream: later parts are behind it)
                        r.x.record_stream(engine)
                        r.y.record_stream(engine)
                whole = len(take) == 1 and take[0][1] == 0 and take[0][2] == len(take[0][0].x)
                x = take[0][0].x if whole else torch.cat([r.x[a:a + k] for r, a, k in take])  # (n, 3, H, W)
                y = take[0][0].y if whole else torch.cat([r.y[a:a + k] for r, a, k in take])  # (n, 1, H, W)
                flat = self.detectors[mode].infer(x, y).cpu().numpy()  # (K, 7): the one host copy per batch
            self.batches += 1
            self.frames += len(x)
            self.busy_s += time.perf_counter() - t0
            offset = 0
            for r, first, k in take:
                rows = flat[(flat[:, 0] >= offset) & (flat[:, 0] < offset + k)].copy()
                rows[:, 0] += first - offset  # batch row → request-local frame index
                offset += k
                r.rows.append(rows)
                r.done += k
                if r.done == len(r.x):
                    r.future.set_result(np.concatenate(r.rows) if len(r.rows) > 1 else r.rows[0])
        except Exception as exc:  # e.g. CUDA OOM: every chunk in this batch fails with the same reason
            for r, _, _ in take:
                if not r.future.done():
                    r.future.set_exception(exc)
