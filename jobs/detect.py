"""Detect people and vehicles in a paired RGB + IR video archive; write Parquet.

    python -m jobs.detect configs/job.yaml [key=value ...]
    ray job submit --working-dir . --runtime-env cluster/runtime_env.yaml -- \\
        python -m jobs.detect configs/job_gpu.yaml cluster.address=auto input.archive=s3://bucket/archive

checks (models, output) → archive → pairs → chunk plan from container headers (driver, O(videos)) → Ray Data actor
pool (ChunkDetector) → Parquet per chunk → run record (summary, chunks, errors), written also after Ctrl-C.
Re-running skips chunks whose output is complete (`output.overwrite=true` redoes them).
Exit status: 0 all chunks done (warnings allowed), 1 something failed or was partial (see the errors table),
2 a configuration or input mistake (one line on stderr), 130 interrupted (what finished is recorded).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from fusion.config import cli_main, parse_args, to_dict
from fusion.data.video import VideoError
from jobs import schema
from jobs.config import JobConfig
from jobs.manifest import ManifestError, list_pairs
from jobs.paths import IdError, Layout, new_run_id, validate_id
from jobs.plan import Chunk, plan_pair, reconcile
from jobs.preflight import PreflightError, preflight
from jobs.progress import Progress
from jobs.storage import StorageError, filesystem, with_retry, write_parquet
from jobs.tracks import VideoRef, stitch_all

log = logging.getLogger("jobs.detect")


def _init_ray(cfg: JobConfig) -> None:
    import ray

    if ray.is_initialized():
        return
    c = cfg.cluster
    quiet = {"log_to_driver": True, "logging_level": logging.WARNING, "configure_logging": True}
    if c.address:
        ray.init(address=c.address, **quiet)
    else:
        # "local": a new Ray of this process's own, even where `ray start` left a cluster on this machine (a bare
        # ray.init() would join that one and then refuse num_cpus / num_gpus).
        ray.init(address="local", num_cpus=c.local_cpus or None, num_gpus=c.local_gpus or None,
                 include_dashboard=False, **quiet)


def plan(cfg: JobConfig, run_id: str) -> tuple[list[Chunk], list[dict], int]:
    """Archive → chunks to run, error/warning rows, number of videos that cannot run at all."""
    pairs, problems = list_pairs(cfg.input, cfg.storage)
    errors = [schema.error_row(uri=p.uri, error_type=p.error_type, reason=p.reason, run_id=run_id,
                               video_id=p.video_id, camera_id=p.camera_id) for p in problems]
    fs, base = filesystem(cfg.output.path, cfg.output.storage_options)
    layout = Layout(base)

    def one(pair):
        vp = plan_pair(pair, cfg.chunk.seconds, cfg.input.storage_options, cfg.storage)
        return vp, reconcile(vp, layout, fs, overwrite=cfg.output.overwrite, retry=cfg.storage)

    chunks: list[Chunk] = []
    failed = len(problems)
    with ThreadPoolExecutor(32) as pool:  # header reads are a few ranged GETs each: I/O-bound, many at once
        for pair, fut in zip(pairs, [pool.submit(one, p) for p in pairs], strict=True):
            try:
                vp, refused = fut.result()
            except (VideoError, StorageError, FileNotFoundError, PermissionError) as exc:
                failed += 1
                uri = pair.ir_uri if pair.ir_uri in str(exc) and pair.rgb_uri not in str(exc) else pair.rgb_uri
                errors.append(schema.error_row(uri=uri, error_type=type(exc).__name__, reason=str(exc),
                                               run_id=run_id, video_id=pair.video_id, camera_id=pair.camera_id))
                continue
            for w in vp.warnings:
                errors.append(schema.error_row(uri=w.uri, error_type=w.error_type, reason=w.reason, run_id=run_id,
                                               video_id=w.video_id, camera_id=w.camera_id, severity="warning"))
            if refused is not None:
                failed += 1
                errors.append(schema.error_row(uri=refused.uri, error_type=refused.error_type, reason=refused.reason,
                                               run_id=run_id, video_id=refused.video_id,
                                               camera_id=refused.camera_id))
                continue
            chunks += vp.chunks
    return chunks, errors, failed


@contextlib.contextmanager
def _sigint_noted():
    """Ctrl-C raises KeyboardInterrupt as usual, and is also noted in an Event: Ray Data's row iterator can swallow
    the exception (seen on CI: the run went on to the end and exited 0), so the loop checks the Event per row."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum, frame):
        stop.set()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def run_chunks(cfg: JobConfig, chunks: list[Chunk], run_id: str, progress: Progress):
    """Chunks through the Ray Data actor pool; yields status rows as they finish."""
    import ray
    from ray.data import ActorPoolStrategy

    from jobs.actor import ChunkDetector

    _init_ray(cfg)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # the job reports its own progress (chunks, pairs/s, ETA)
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # Ray Data's per-operator chatter is not for users
    c = cfg.cluster
    ds = ray.data.from_items([ch.row() for ch in chunks], override_num_blocks=len(chunks))
    pool = ActorPoolStrategy(min_size=c.min_actors or c.actors, max_size=c.actors,
                             max_tasks_in_flight_per_actor=c.chunks_in_flight,
                             max_concurrent_calls_per_actor=c.chunks_in_flight, enable_true_multi_threading=True)
    out = ds.map_batches(ChunkDetector, batch_size=1, compute=pool, num_gpus=c.gpus_per_actor or None,
                         num_cpus=c.cpus_per_actor, memory=int(c.memory_gb * 2**30) or None,
                         fn_constructor_kwargs={"cfg": to_dict(cfg), "run_id": run_id})
    for row in out.iter_rows():  # one small row per chunk, as chunks finish: frames never reach the driver
        row = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        progress.update(row)
        yield row


def main(cfg: JobConfig) -> dict:
    started = dt.datetime.now(dt.UTC)
    run_id = cfg.output.run_id or new_run_id(started)
    t0 = time.perf_counter()
    _, routes = preflight(cfg)
    chunks, errors, videos_failed = plan(cfg, run_id)
    plan_seconds = time.perf_counter() - t0
    log.info("planned %d chunks of %d videos in %.1f s (%d input problems)", len(chunks),
             len({c.video_id for c in chunks}), plan_seconds, videos_failed)
    status: list[dict] = []
    interrupted = False
    progress = Progress(len(chunks))
    try:
        with _sigint_noted() as stop:
            for row in (run_chunks(cfg, chunks, run_id, progress) if chunks else ()):
                status.append(row)
                if stop.is_set():  # Ctrl-C arrived where a library swallowed the KeyboardInterrupt
                    raise KeyboardInterrupt
            if stop.is_set():
                raise KeyboardInterrupt
        if cfg.tracking.enabled:
            errors += stitch_all(cfg, run_id, videos_to_stitch(chunks, status))
    except KeyboardInterrupt:
        interrupted = True
        log.warning("interrupted: recording the %d chunks that finished", len(status))
    finally:
        for s in status:
            if s["status"] in ("failed", "partial"):
                errors.append(schema.error_row(uri=s["uri"], error_type=s["error_type"], reason=s["reason"],
                                               run_id=run_id, video_id=s["video_id"], camera_id=s["camera_id"],
                                               chunk_id=s["chunk_id"]))
        summary = _summary(cfg, run_id, started, time.perf_counter() - t0, plan_seconds, chunks, status,
                           videos_failed, interrupted) | {"routes": json.dumps(
                               {"edges": list(routes.edges), "modes": list(routes.modes), "why": list(routes.reasons)})}
        _write_run(cfg, run_id, summary, status, errors)
    return summary | {"status": status, "errors": errors}


def videos_to_stitch(chunks: list[Chunk], status: list[dict]) -> list[VideoRef]:
    """Videos with a chunk (re)written in this run: their tracks change. Fully skipped videos keep theirs."""
    touched = {s["video_id"] for s in status if s["status"] in ("done", "partial")}
    refs = {c.video_id: VideoRef(c.camera_id, c.date, c.video_id) for c in chunks if c.video_id in touched}
    return [refs[v] for v in sorted(refs)]


def _summary(cfg, run_id, started, seconds, plan_seconds, chunks, status, videos_failed, interrupted) -> dict:
    count = {k: sum(s["status"] == k for s in status) for k in ("done", "partial", "skipped", "failed")}
    frames = sum(int(s["frames"]) for s in status if s["status"] in ("done", "partial"))
    return {"run_id": run_id, "started": started, "seconds": seconds, "plan_seconds": plan_seconds,
            "chunks_total": len(chunks), "chunks_done": count["done"], "chunks_partial": count["partial"],
            "chunks_skipped": count["skipped"], "chunks_failed": count["failed"], "videos_failed": videos_failed,
            "frames": frames, "detections": sum(int(s["detections"]) for s in status),
            "pairs_per_s": frames / seconds if seconds else 0.0, "actors": cfg.cluster.actors,
            "backend": cfg.engine.backend, "interrupted": interrupted, "config": json.dumps(to_dict(cfg))}


def _write_run(cfg: JobConfig, run_id: str, summary: dict, status: list[dict], errors: list[dict]) -> None:
    fs, base = filesystem(cfg.output.path, cfg.output.storage_options)
    layout = Layout(base)
    tables = {"summary": schema.rows_table(schema.SUMMARY, [summary]),
              "chunks": schema.rows_table(schema.CHUNKS, [s | {"run_id": run_id} for s in status]),
              "errors": schema.rows_table(schema.ERRORS, errors)}
    for name, table in tables.items():
        path = layout.run(run_id, name)
        with_retry(lambda p=path, t=table: write_parquet(fs, p, t), what=f"write {path}", policy=cfg.storage)


def summary_text(result: dict, cfg: JobConfig) -> str:
    """The run in a few lines, for people (the JSON line after it is for machines)."""
    r = result
    lines = [f"run {r['run_id']}: {r['frames']} frames, {r['detections']} detections in {r['seconds']:.1f} s "
             f"({r['pairs_per_s']:.1f} pairs/s; planning {r['plan_seconds']:.1f} s)",
             f"  chunks: {r['chunks_done']} done, {r['chunks_partial']} partial, {r['chunks_skipped']} skipped, "
             f"{r['chunks_failed']} failed of {r['chunks_total']}; videos that could not run: {r['videos_failed']}"]
    if r["interrupted"]:
        lines.append("  interrupted: the chunks that finished are recorded; run the same command to finish")
    root = cfg.output.path.rstrip("/")
    lines.append(f"  wrote {root}/detections/, {root}/frames/ and {root}/_runs/run_id={r['run_id']}/")
    errors = [e for e in r["errors"] if e["severity"] == "error"]
    if errors:
        lines.append(f"  {len(errors)} problem(s) in {root}/_runs/run_id={r['run_id']}/errors.parquet "
                     f"(python -m jobs.report {root} shows them)")
    return "\n".join(lines)


def exit_status(result: dict) -> int:
    if result["interrupted"]:
        return 130
    bad = [e for e in result["errors"] if e["severity"] == "error"]
    return 1 if bad or result["chunks_failed"] or result["chunks_partial"] else 0


def cli(argv: Sequence[str] | None = None) -> int:
    return cli_main(_run, argv, doc=__doc__, config=JobConfig, errors=(ManifestError, PreflightError, IdError))


def _run(args: list[str]) -> int:
    if not args:
        print("jobs.detect: no config given — running the built-in defaults (the demo archive in "
              "demo-output/archive, ONNX Runtime on the CPU); python -m jobs.detect --help lists every key",
              file=sys.stderr)
    _, cfg = parse_args(JobConfig, args, config_file=True)
    if cfg.output.run_id:
        validate_id(cfg.output.run_id, field="output.run_id")
    result = main(cfg)
    print(summary_text(result, cfg))
    keys = ("run_id", "chunks_total", "chunks_done", "chunks_partial", "chunks_skipped", "chunks_failed",
            "videos_failed", "frames", "detections")
    print(json.dumps({k: result[k] for k in keys} | {"seconds": round(result["seconds"], 1),
                                                    "plan_seconds": round(result["plan_seconds"], 2),
                                                    "pairs_per_s": round(result["pairs_per_s"], 1),
                                                    "output": cfg.output.path}))
    for e in result["errors"]:
        print(f"{e['severity']}: {e['uri']}: {e['error_type']}: {e['reason']}", file=sys.stderr)
    return exit_status(result)


if __name__ == "__main__":
    sys.exit(cli())
