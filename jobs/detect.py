"""Detect people and vehicles in a paired RGB + IR video archive; write Parquet.

    python -m jobs.detect configs/job.yaml [key=value ...]
    ray job submit --working-dir . --runtime-env cluster/runtime_env.yaml -- \\
        python -m jobs.detect configs/job.yaml cluster.address=auto input.archive=s3://bucket/archive

archive → pairs → chunk manifest (driver) → Ray Data actor pool (ChunkDetector) → Parquet per chunk
→ run summary + errors table. Re-running skips chunks whose output is complete (`output.overwrite=true` redoes).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import ray

from fusion.config import cli_main, parse_args, to_dict
from fusion.data.video import VideoError
from jobs import schema
from jobs.actor import ChunkDetector
from jobs.config import JobConfig
from jobs.manifest import ManifestError, chunk_pair, list_pairs
from jobs.storage import filesystem, write_parquet

log = logging.getLogger("jobs.detect")


def _init_ray(cfg: JobConfig) -> None:
    if ray.is_initialized():
        return
    c = cfg.cluster
    if c.address:
        ray.init(address=c.address, log_to_driver=True)
    else:
        ray.init(num_cpus=c.local_cpus or None, num_gpus=c.local_gpus or None, include_dashboard=False,
                 log_to_driver=True)


def main(cfg: JobConfig) -> dict:
    started = dt.datetime.now(dt.UTC)
    run_id = cfg.output.run_id or started.strftime("%Y%m%dT%H%M%SZ")
    t0 = time.perf_counter()
    pairs, problems = list_pairs(cfg.input)
    errors = [{"video_id": "", "camera_id": "", "chunk_id": -1, "uri": uri, "error_type": "Unpaired",
               "reason": reason, "run_id": run_id} for uri, reason in problems]
    chunks = []
    with ThreadPoolExecutor(16) as pool:  # reading packet indexes is I/O-bound: many videos at once
        futures = [pool.submit(chunk_pair, p, cfg.chunk.seconds, cfg.input.storage_options) for p in pairs]
        for pair, fut in zip(pairs, futures, strict=True):
            try:
                chunks += fut.result()
            except VideoError as exc:  # a bad video is an error row; the other videos go on
                errors.append({"video_id": pair.video_id, "camera_id": pair.camera_id, "chunk_id": -1,
                               "uri": pair.rgb_uri, "error_type": "VideoError", "reason": str(exc), "run_id": run_id})
    log.info("%d pairs → %d chunks (%d problems)", len(pairs), len(chunks), len(errors))
    status: list[dict] = []
    if chunks:
        _init_ray(cfg)
        c = cfg.cluster
        ds = ray.data.from_items([ch.row() for ch in chunks], override_num_blocks=len(chunks))
        out = ds.map_batches(ChunkDetector, batch_size=1, concurrency=c.actors, num_gpus=c.gpus_per_actor or None,
                             num_cpus=c.cpus_per_actor,
                             max_restarts=c.max_restarts, max_task_retries=c.max_task_retries,
                             fn_constructor_kwargs={"cfg": to_dict(cfg), "run_id": run_id})
        status = out.take_all()  # one small row per chunk: frames never come back to the driver
    for s in status:
        if s["status"] == "failed":
            errors.append({k: s[k] for k in ("video_id", "camera_id", "chunk_id", "uri", "error_type", "reason")}
                          | {"run_id": run_id})
    seconds = time.perf_counter() - t0
    count = {k: sum(s["status"] == k for s in status) for k in ("done", "skipped", "failed")}
    frames = sum(int(s["frames"]) for s in status)
    summary = {"run_id": run_id, "started": started, "seconds": seconds, "chunks_total": len(chunks),
               "chunks_done": count["done"], "chunks_skipped": count["skipped"], "chunks_failed": count["failed"],
               "frames": frames, "detections": sum(int(s["detections"]) for s in status),
               "pairs_per_s": frames / seconds if seconds else 0.0, "actors": cfg.cluster.actors,
               "backend": cfg.engine.backend, "config": json.dumps(to_dict(cfg))}
    fs, _ = filesystem(cfg.output.path, cfg.output.storage_options)
    root = cfg.output.path.rstrip("/")
    write_parquet(fs, f"{root}/_runs/run_id={run_id}/summary.parquet",
                  schema.table(schema.SUMMARY, {k: [v] for k, v in summary.items()}))
    write_parquet(fs, f"{root}/_runs/run_id={run_id}/chunks.parquet", schema.table(
        schema.CHUNKS, {f.name: [run_id if f.name == "run_id" else s[f.name] for s in status] for f in schema.CHUNKS}))
    write_parquet(fs, f"{root}/_runs/run_id={run_id}/errors.parquet",
                  schema.table(schema.ERRORS, {f.name: [e[f.name] for e in errors] for f in schema.ERRORS}))
    return summary | {"status": status, "errors": errors}


def cli(argv: Sequence[str] | None = None) -> int:
    return cli_main(_run, argv, doc=__doc__)


def _run(args: list[str]) -> int:
    _, cfg = parse_args(JobConfig, args, config_file=True)
    try:
        result = main(cfg)
    except ManifestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    keys = ("run_id", "chunks_total", "chunks_done", "chunks_skipped", "chunks_failed", "frames", "detections")
    print(json.dumps({k: result[k] for k in keys} | {"seconds": round(result["seconds"], 1),
                                                    "pairs_per_s": round(result["pairs_per_s"], 1),
                                                    "output": cfg.output.path}))
    for e in result["errors"]:
        print(f"error row: {e['uri']}: {e['reason']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(cli())
