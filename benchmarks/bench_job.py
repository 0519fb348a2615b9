"""The job at decoder speed? One run on one GPU machine: archive → decode ceilings → engine ceiling → the real job.
Every figure comes from this one run (the device runs one script per call); GPU sampling: benchmarks/gpu_sampler.py.

    python benchmarks/bench_job.py [out=benchmarks/results/bench_job.json work=/tmp/fusedet-bench pairs=10800]

Stages, all in this one process and run, on the same archive:
  generate  12 distinct paired clips (RGB 1280x1024 + IR 640x512, textured H.264 from the project's generator; half
            day→night, half night→day), copied to `pairs` pairs, with a manifest.
  decode    decode-only ceilings (`benchmarks/decode_rates.py`: the job's own decode + pairing code, no inference):
            NVDEC (1 and 2 processes, `chunks_in_flight` chunk threads each, as the actors run them) and PyAV on the
            CPU (16 threads).
  engine    engine-only ceiling: the fused model, torch fp16 + channels_last + torch.compile (CUDA graphs), inputs on
            the GPU, batch `batch`.
  actor     the actor's own code without Ray Data (a local Ray only for its tracking actors): one ChunkDetector in
            this process, all chunks through it with N chunk threads (as Ray's threaded actor runs them), for each N
            in `actor_in_flight` and GIL switch interval in `switch_ms`; py-spy samples it if asked (`profile=`),
            or torch.profiler records its CUDA kernels (`profile=... kernels=true`).
  job       the real job (`jobs.detect.main`, local Ray, configs/job_gpu.yaml with a local archive): fused with each
            count in `actors` sharing the GPU; the best count with `more_in_flight` chunks per actor; then adaptive
            and fused without tracking at the best of those; GPU and NVDEC utilisation sampled by nvidia-smi.
Results go to `out` after every stage (a run cut short keeps what it measured); a table is printed last.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.decode_rates import archive_chunks, decode_worker, nvdec_rate  # noqa: E402  (after the path: a script)
from benchmarks.gpu_sampler import GpuSampler  # noqa: E402
from benchmarks.profilers import kernel_profiler, py_spy, write_kernels  # noqa: E402


@dataclass(frozen=True)
class BenchJobConfig:
    out: str = "benchmarks/results/bench_job.json"
    work: str = "/tmp/fusedet-bench"  # local disk for the archive and the job outputs
    pairs: int = 10800  # archive size in RGB-IR pairs (distinct clips copied)
    clips: int = 12  # distinct rendered clips
    seconds: float = 6.0  # per clip
    rgb_size: tuple[int, int] = (1280, 1024)  # (W, H)
    ir_size: tuple[int, int] = (640, 512)
    batch: int = 32
    chunk_seconds: float = 10.0  # as configs/job_gpu.yaml: fewer NVDEC re-points per frame
    chunks_in_flight: int = 8  # per actor: 2 decoders each
    at_best: tuple[str, ...] = ("adaptive", "no_tracking")  # job stage, at the best fused configuration (or
    #   normal_priority: decode.high_priority=false; nv12: decode.nvdec_rgb=nv12, with its decode ceiling too)
    more_in_flight: tuple[int, ...] = ()  # job stage: the best actor count again with these many chunks in flight
    repeat: int = 1  # job stage: all its runs this many times, interleaved (run-to-run spread next to differences)
    actors: tuple[int, ...] = (1, 2)  # actors sharing the one GPU (4 measured slower: results/bench_job_h100_run3.json)
    pyav_pairs: int = 1200  # PyAV is slow: its ceiling is measured on a prefix of the archive
    engines: tuple[str, ...] = ("mid_n",)  # models timed in the engine stage (rgb_n, ir_n: the adaptive engines)
    actor_in_flight: tuple[int, ...] = (8,)  # actor stage: chunks in flight per actor, one variant each
    switch_ms: tuple[float, ...] = (0.5,)  # actor stage: GIL switch intervals to try (the actor's; Python's is 5)
    profile: str = ""  # a folder: py-spy profiles of the actor stage (GIL holders; all threads) land there
    kernels: bool = False  # actor stage: GPU time per CUDA kernel (torch.profiler) into `profile`, not py-spy
    stages: tuple[str, ...] = ("generate", "decode", "engine", "actor", "job")
    job_overrides: tuple[str, ...] = ()  # extra key=value for the job config (e.g. a CPU smoke run of this script)


def _clip(args):
    from fusion.data.generate import write_clip
    from fusion.data.scene import Illumination, SceneConfig

    k, cfg, folder = args
    day, night = Illumination(0.9, 0.0, 0.3), Illumination(0.03, 0.0, 0.3)
    write_clip(rgb_url=f"{folder}/c{k:02d}_rgb.mp4", ir_url=f"{folder}/c{k:02d}_ir.mp4",
               gt_url=f"{folder}/c{k:02d}_gt.parquet", seed=5000 + k, seconds=cfg.seconds, fps=25,
               config=SceneConfig(rgb_size=cfg.rgb_size, ir_size=cfg.ir_size, ir_shift=2.0, ir_scale=0.02),
               light_from=day if k % 2 == 0 else night, light_to=night if k % 2 == 0 else day)
    return k


def generate(cfg: BenchJobConfig) -> dict:
    t0 = time.perf_counter()
    arch = Path(cfg.work) / "archive"
    src = Path(cfg.work) / "clips"
    shutil.rmtree(arch, ignore_errors=True)
    src.mkdir(parents=True, exist_ok=True)
    todo = [k for k in range(cfg.clips) if not (src / f"c{k:02d}_ir.mp4").exists()]
    with ProcessPoolExecutor(min(len(todo) or 1, os.cpu_count() or 1)) as pool:
        list(pool.map(_clip, [(k, cfg, str(src)) for k in todo]))
    t_render = time.perf_counter() - t0
    per_clip = round(cfg.seconds * 25)
    copies = -(-cfg.pairs // per_clip)
    rows = ["video_id,camera_id,rgb_uri,ir_uri,start_time"]
    for i in range(copies):
        k = i % cfg.clips
        cam = f"cam{i % 8:02d}"
        (arch / cam).mkdir(parents=True, exist_ok=True)
        for m in ("rgb", "ir"):
            shutil.copyfile(src / f"c{k:02d}_{m}.mp4", arch / cam / f"v{i:04d}_{m}.mp4")
        rows.append(f"v{i:04d},{cam},{cam}/v{i:04d}_rgb.mp4,{cam}/v{i:04d}_ir.mp4,2026-06-01T{18 + i // 60:02d}:"
                    f"{i % 60:02d}:00")
    (arch / "manifest.csv").write_text("\n".join(rows) + "\n")
    size = sum(p.stat().st_size for p in arch.rglob("*.mp4"))
    return {"pairs": copies * per_clip, "videos": copies, "distinct_clips": cfg.clips,
            "archive_MB": round(size / 2**20), "render_s": round(t_render, 1),
            "total_s": round(time.perf_counter() - t0, 1)}


def decode(cfg: BenchJobConfig) -> dict:
    from fusion.data.decode import nvdec_available

    res = {}
    all_chunks = archive_chunks(cfg.work, seconds=cfg.chunk_seconds)
    runs = [(1, False), (2, False)] + [(2, True)] * ("nv12" in cfg.at_best)  # (processes, NV12 RGB)
    for procs, nv12 in runs if not nvdec_available() else ():
        res[f"nvdec_{procs}proc" + ("_nv12" if nv12 else "")] = nvdec_rate(
            all_chunks, procs=procs, threads=cfg.chunks_in_flight, batch=cfg.batch, nv12=nv12)
        _save(cfg, "decode", res)
    sub = archive_chunks(cfg.work, seconds=cfg.chunk_seconds, limit=cfg.pyav_pairs)
    t0 = time.perf_counter()
    n = decode_worker((sub, "pyav", os.cpu_count() or 4, cfg.batch))
    dt = time.perf_counter() - t0
    res["pyav_cpu"] = {"pairs": n, "seconds": round(dt, 2), "pairs_per_s": round(n / dt, 1),
                       "threads": os.cpu_count()}
    return res


def engine(cfg: BenchJobConfig) -> dict:
    """In a fresh process: compiled graphs are per process and thread (the actor stage compiles its own)."""
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        return pool.submit(_engine, cfg).result()


def _engine(cfg: BenchJobConfig) -> dict:
    import numpy as np
    import torch

    if not torch.cuda.is_available():
        return {"not_run": "no CUDA GPU"}
    from trt.bench import time_calls
    from trt.engine import EngineSpec, load_engine

    res = {}
    for name in cfg.engines:
        e = load_engine(EngineSpec(backend="torch", model=str(ROOT / "models" / f"{name}.pt"), precision="fp16",
                                   size=(640, 512), max_batch=cfg.batch, compile=True, device="cuda:0"))
        x = torch.rand(cfg.batch, 3, 512, 640, device="cuda", dtype=torch.float16)
        y = torch.rand(cfg.batch, 1, 512, 640, device="cuda", dtype=torch.float16)
        t0 = time.perf_counter()
        for _ in range(3):
            e(x, y)
        torch.cuda.synchronize()
        compile_s = time.perf_counter() - t0
        p50 = float(np.median(time_calls(e, x, y, iters=50, warmup=0, cuda=True)))
        res[name] = {"batch": cfg.batch, "p50_ms": round(p50, 3), "pairs_per_s": round(cfg.batch / p50 * 1e3, 1),
                     "compile_s": round(compile_s, 1)}
    return res


def actor(cfg: BenchJobConfig) -> dict:
    """Each variant in a fresh process, as each Ray actor is one (compiled graphs belong to one engine thread)."""
    res = {}
    for n in cfg.actor_in_flight:
        for ms in cfg.switch_ms:
            with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
                res[f"inflight{n}_switch{ms:g}ms"] = pool.submit(_actor_variant, cfg, n, ms).result()
            _save(cfg, "actor", res)
    return res


def _actor_variant(cfg: BenchJobConfig, n: int, switch_ms: float) -> dict:
    from fusion.config import load_config, to_dict
    from jobs.actor import ChunkDetector
    from jobs.config import JobConfig

    chunks = archive_chunks(cfg.work, seconds=cfg.chunk_seconds)
    out = Path(cfg.work) / f"out_actor_{n}"
    shutil.rmtree(out, ignore_errors=True)
    jc = load_config(JobConfig, ROOT / "configs" / "job_gpu.yaml", [
        f"input.archive={cfg.work}/archive", f"output.path={out}", "cluster.address=", "cluster.min_actors=0",
        f"cluster.chunks_in_flight={n}", f"engine.batch={cfg.batch}", *cfg.job_overrides])
    import ray

    # only for the actor's tracking actors (GPU actors start them)
    ray.init(address="local", num_cpus=8, include_dashboard=False)
    t0 = time.perf_counter()
    a = ChunkDetector(cfg=to_dict(jc), run_id="bench")
    init_s = time.perf_counter() - t0
    sys.setswitchinterval(switch_ms / 1e3)  # after the actor's own setting
    spy = py_spy(cfg.profile, f"actor_inflight{n}_switch{switch_ms:g}ms") if cfg.profile and not cfg.kernels else []
    prof = kernel_profiler() if cfg.profile and cfg.kernels else contextlib.nullcontext()
    sampler = GpuSampler()
    t0 = time.perf_counter()
    w0 = time.time()
    with prof, ThreadPoolExecutor(n) as pool:
        rows = list(pool.map(a.process, chunks))
    dt = time.perf_counter() - t0
    if cfg.kernels and cfg.profile:
        write_kernels(prof, Path(cfg.profile, f"actor_inflight{n}_kernels.txt"),
                      f"wall {dt:.2f} s, {sum(r['frames'] for r in rows)} pairs")
    gpu = sampler.stop(w0, time.time())
    for proc in spy:
        proc.wait(timeout=60)
    a.close()
    ray.shutdown()
    frames = sum(r["frames"] for r in rows)
    return {"pairs": frames, "failed": sum(r["status"] == "failed" for r in rows), "init_s": round(init_s, 1),
            "switch_ms": switch_ms,
            "detections": sum(r["detections"] or 0 for r in rows),  # equal in every variant and job run: no race
            "seconds": round(dt, 2), "pairs_per_s": round(frames / dt, 1), "engine_busy_s": round(a.runner.busy_s, 2),
            "engine_batches": a.runner.batches, "decode_wait_s_sum": round(sum(r["decode_s"] for r in rows), 1),
            "engine_wait_s_sum": round(sum(r["engine_wait_s"] for r in rows), 1),
            "errors": sorted({r["reason"][:200] for r in rows if r["status"] == "failed"})[:3], **gpu}


def job(cfg: BenchJobConfig) -> dict:
    import ray

    from fusion.config import load_config
    from jobs.config import JobConfig
    from jobs.detect import main as run_job

    res = {}
    # fused at each actor count; then, at the best count, more chunks in flight; then the `at_best` variants at the
    # best (actors, chunks in flight)
    runs = [("fused", a, cfg.chunks_in_flight, True, "") for a in cfg.actors]
    runs += [("fused", None, n, True, "") for n in cfg.more_in_flight]
    after = {"adaptive": ("adaptive", None, None, True, ""), "no_tracking": ("fused", None, None, False, ""),
             "normal_priority": ("fused", None, None, True, "decode.high_priority=false"),
             "nv12": ("fused", None, None, True, "decode.nvdec_rgb=nv12")}
    plan = [*runs, *(after[k] for k in cfg.at_best)]
    for rep, (mode, actors, inflight, tracking, extra) in [(r, p) for r in range(cfg.repeat) for p in plan]:
        best = max((r for r in res.values() if r.get("mode") == "fused"), key=lambda r: r["processing_pairs_per_s"],
                   default={})
        actors = actors or best["actors"]
        inflight = inflight or best["chunks_in_flight"]
        name = (f"{mode}_{actors}actor_{inflight}inflight" + ("" if tracking else "_no_tracking")
                + (f"_{extra.split('.')[-1]}" if extra else "") + (f"_r{rep + 1}" if rep else ""))  # _r2: repeat
        out = Path(cfg.work) / f"out_{name}"
        shutil.rmtree(out, ignore_errors=True)
        jc = load_config(JobConfig, ROOT / "configs" / "job_gpu.yaml", [
            f"input.archive={cfg.work}/archive", f"output.path={out}", "cluster.address=", "cluster.local_gpus=1",
            "cluster.min_actors=0",
            f"cluster.actors={actors}", f"cluster.gpus_per_actor={1 / actors}", f"cluster.cpus_per_actor={8 / actors}",
            f"cluster.chunks_in_flight={inflight}", f"chunk.seconds={cfg.chunk_seconds}",
            f"engine.batch={cfg.batch}", f"modality.mode={mode}", f"tracking.enabled={str(tracking).lower()}",
            *cfg.job_overrides, *([extra] if extra else [])])
        sampler = GpuSampler()
        t0 = time.time()
        result = run_job(jc)
        t1 = time.time()
        ray.shutdown()
        st = [s for s in result["status"] if s["status"] in ("done", "partial")]
        first, last = min(s["t_start"] for s in st), max(s["t_end"] for s in st)
        busy, batches, firsts, lasts = {}, {}, {}, {}  # per actor process; one that starts late shortens the window
        for s in st:
            busy[s["pid"]] = max(busy.get(s["pid"], 0.0), s["engine_busy_s"])
            batches[s["pid"]] = max(batches.get(s["pid"], 0), s["engine_batches"])
            firsts[s["pid"]] = min(firsts.get(s["pid"], s["t_start"]), s["t_start"])
            lasts[s["pid"]] = max(lasts.get(s["pid"], s["t_end"]), s["t_end"])
        frames = sum(s["frames"] for s in st)
        res[name] = {
            "mode": mode, "actors": actors, "chunks_in_flight": inflight, "tracking": tracking, "pairs": frames,
            "chunks": len(st), "detections": sum(s["detections"] for s in st),
            "failed": result["chunks_failed"],
            "wall_s": round(t1 - t0, 1), "wall_pairs_per_s": round(frames / (t1 - t0), 1),
            "plan_s": round(result["plan_seconds"], 2), "startup_s": round(first - t0, 1),
            "processing_s": round(last - first, 2), "processing_pairs_per_s": round(frames / (last - first), 1),
            "after_s": round(t1 - last, 1),  # stitching tracks + run record
            "chunk_decode_s_sum": round(sum(s["decode_s"] for s in st), 1),
            "chunk_engine_wait_s_sum": round(sum(s["engine_wait_s"] for s in st), 1),
            "chunk_write_s_sum": round(sum(s["write_s"] for s in st), 1),
            "engine_busy_s": round(sum(busy.values()), 2),
            "engine_batches": sum(batches.values()),  # × engine.batch − pairs = padded frames (CUDA graphs)
            "decoder": st[0]["decoder"],
            "actor_start_skew_s": round(max(firsts.values()) - first, 2),
            "actor_end_skew_s": round(last - min(lasts.values()), 2),
            "modes": _modes(st), **sampler.stop(first, last)}
        _save(cfg, "job", res)
    return res


def _modes(st: list[dict]) -> dict:
    out: dict[str, int] = {}
    for s in st:
        for part in filter(None, s["modes"].split(",")):
            m, n = part.split(":")
            out[m] = out.get(m, 0) + int(n)
    return out


RESULT: dict = {}


def _save(cfg: BenchJobConfig, stage: str, value: dict) -> None:
    RESULT[stage] = value
    Path(cfg.out).parent.mkdir(parents=True, exist_ok=True)
    Path(cfg.out).write_text(json.dumps(RESULT, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    from fusion.config import cli_main, parse_args

    def run(args: list[str]) -> int:
        _, cfg = parse_args(BenchJobConfig, args)
        import torch

        gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
        RESULT["machine"] = {"gpu": gpu, "cpus": os.cpu_count(), "torch": torch.__version__, "config": asdict(cfg),
                             "command": "python benchmarks/bench_job.py " + " ".join(args)}
        stages = {"generate": generate, "decode": decode, "engine": engine, "actor": actor, "job": job}
        for name in cfg.stages:
            t0 = time.perf_counter()
            _save(cfg, name, stages[name](cfg))
            print(f"[{name}] {time.perf_counter() - t0:.0f} s: {json.dumps(RESULT[name])}", flush=True)
        print(table(RESULT))
        return 0

    return cli_main(run, argv, doc=__doc__)


def table(r: dict) -> str:
    lines = [f"{'what':44} {'pairs/s':>9}  notes"]
    for k, v in r.get("decode", {}).items():
        lines.append(f"{'decode only ' + k:44} {v['pairs_per_s']:9.1f}  {v['pairs']} pairs")
    for k, v in r.get("engine", {}).items():
        if not isinstance(v, dict):
            continue
        lines.append(f"{'engine only ' + k + ' (torch fp16 compile)':44} {v['pairs_per_s']:9.1f}  b{v['batch']}")
    for k, v in r.get("actor", {}).items():
        lines.append(f"{'actor without Ray ' + k:44} {v['pairs_per_s']:9.1f}  engine busy {v['engine_busy_s']} s of "
                     f"{v['seconds']} s; GPU {v.get('gpu_util_mean')}%, NVDEC {v.get('nvdec_util_mean')}%")
    for k, v in r.get("job", {}).items():
        lines.append(f"{'job ' + k + ' (processing)':44} {v['processing_pairs_per_s']:9.1f}  wall "
                     f"{v['wall_pairs_per_s']} pairs/s incl. {v['startup_s']} s start-up; GPU "
                     f"{v.get('gpu_util_mean')}%, NVDEC {v.get('nvdec_util_mean')}%")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
