"""Decode-only rates with the job's own decode + pairing code and no inference: what `bench_job`'s decode stage,
`probe_decode_ceiling.py` and `probe_contention.py` measure (the ceilings the job is compared with)."""

from __future__ import annotations

import multiprocessing as mp
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path


def archive_chunks(work: str, *, seconds: float, limit: int | None = None) -> list:
    """The job's chunk plan of `<work>/archive` (bench_job's generated archive), cut after `limit` pairs."""
    import itertools

    from jobs.config import InputConfig, RetryConfig
    from jobs.manifest import list_pairs
    from jobs.plan import plan_pair

    pairs, _ = list_pairs(InputConfig(archive=str(Path(work) / "archive")), RetryConfig())
    chunks = [c for p in pairs for c in plan_pair(p, seconds, {}, RetryConfig()).chunks]
    before = itertools.accumulate((c.end - c.first for c in chunks), initial=0)  # pairs ahead of each chunk
    return [c for c, n in zip(chunks, before, strict=False) if limit is None or n < limit]


_POOL = None  # one NvdecPool per process, as one per actor


def decode_worker(args) -> int:
    """(chunks, backend, threads, batch[, high_priority[, nv12]]) → pairs: decode + pair the chunks in `threads`
    threads, as one actor does, without inference."""
    import torch

    from fusion.data.decode import NvdecPool, open_decoder
    from jobs.pipeline import PairCounts, chunk_stream, pair_frames

    chunks, backend, threads, batch, *rest = args
    high = rest[0] if rest else True  # decode.high_priority (probe_contention.py compares both)
    nv12 = len(rest) > 1 and rest[1]  # decode.nvdec_rgb=nv12
    device = torch.device("cuda:0" if backend == "nvdec" else "cpu")
    global _POOL
    if backend == "nvdec" and (_POOL is None or (_POOL.high_priority, _POOL.nv12) != (high, nv12)):
        _POOL = NvdecPool(device, high_priority=high, nv12=nv12)  # as an actor: sessions re-pointed at each file
    pool = _POOL if backend == "nvdec" else None

    def one(c) -> int:
        if backend == "nvdec":  # a fresh thread each call: its own stream, as the actor's chunk threads have
            torch.cuda.set_stream(chunk_stream(device, high_priority=high))
        counts = PairCounts()
        rgb = open_decoder(c.rgb_uri, backend=backend, gray=False, device=device, pool=pool)
        ir = open_decoder(c.ir_uri, backend=backend, gray=True, device=device, pool=pool)
        tol = 0.5 / c.fps
        for _ in pair_frames(rgb.read(c.start_s, c.end_s, batch=batch), ir.read(c.start_s, c.end_s + tol, batch=batch),
                             start=c.start_s, end=c.end_s, tol=tol, fps=c.fps, size=batch, counts=counts):
            pass
        rgb.close()
        ir.close()
        return counts.paired

    with ThreadPoolExecutor(threads) as workers:
        n = sum(workers.map(one, chunks))
    if backend == "nvdec":
        torch.cuda.synchronize()
    return n


def nvdec_rate(chunks: list, *, procs: int, threads: int, batch: int, nv12: bool) -> dict:
    """Decode-only through NVDEC: `chunks` split over `procs` fresh processes × `threads` chunk threads, after a
    two-chunk warm-up per process (CUDA init, first sessions)."""
    parts = [chunks[i::procs] for i in range(procs)]
    with ProcessPoolExecutor(procs, mp_context=mp.get_context("spawn")) as pool:
        list(pool.map(decode_worker, [(p[:2], "nvdec", 2, batch, True, nv12) for p in parts]))
        t0 = time.perf_counter()
        n = sum(pool.map(decode_worker, [(p, "nvdec", threads, batch, True, nv12) for p in parts]))
        dt = time.perf_counter() - t0
    return {"pairs": n, "seconds": round(dt, 2), "pairs_per_s": round(n / dt, 1), "threads_per_proc": threads}
