"""Do the engine's batches slow NVDEC decoding down? Decode-only (the job's decode + pairing code, 2 processes as 2
actors) alone, and beside an engine process replaying the compiled fused model, paced to a rate or flat out, with
the decode side's CUDA streams at high or normal priority. GPU machine only; needs the archive of
`benchmarks/bench_job.py` (its generate stage) in `work`.

    python benchmarks/probe_contention.py out=$OUT/probe_contention.json [pairs=21600 'rates=[1800,0]']
"""

from __future__ import annotations

import json
import multiprocessing as mp
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.bench_job import BenchJobConfig  # noqa: E402
from benchmarks.decode_rates import archive_chunks, decode_worker  # noqa: E402


@dataclass(frozen=True)
class ProbeConfig:
    out: str = "benchmarks/results/probe_contention.json"
    work: str = "/tmp/fusedet-bench"
    pairs: int = 21600  # decoded per variant (a prefix of the archive)
    rates: tuple[float, ...] = (1800.0,)  # engine paced to these pairs/s (the job's rate; 0 = flat out)
    batch: int = 32
    threads: int = 8  # chunk threads per decode process, as an actor's decoding chunks


def _engine_loop(batch: int, rate: float, go, stop, done) -> float:
    """Replay the compiled engine until `stop` (paced to `rate` pairs/s, 0 = flat out) → pairs/s it ran."""
    import torch

    from trt.engine import EngineSpec, load_engine

    e = load_engine(EngineSpec(backend="torch", model=str(ROOT / "models" / "mid_n.pt"), precision="fp16",
                               size=(640, 512), max_batch=batch, compile=True, device="cuda:0"))
    x = torch.rand(batch, 3, 512, 640, device="cuda", dtype=torch.float16)
    y = torch.rand(batch, 1, 512, 640, device="cuda", dtype=torch.float16)
    for _ in range(3):
        e(x, y)
    torch.cuda.synchronize()
    done.set()  # compiled: the decode side may start
    go.wait()
    n, t0 = 0, time.perf_counter()
    while not stop.is_set():
        e(x, y)[0].sum().item()  # a host sync per batch, as the job's one host copy per batch
        n += batch
        if rate:
            ahead = n / rate - (time.perf_counter() - t0)
            if ahead > 0:
                time.sleep(ahead)
    return n / (time.perf_counter() - t0)


def _decode(chunks, high: bool, pool: ProcessPoolExecutor, batch: int, threads: int) -> tuple[int, float]:
    parts = [chunks[i::2] for i in range(2)]
    t0 = time.perf_counter()
    n = sum(pool.map(decode_worker, [(p, "nvdec", threads, batch, high) for p in parts]))
    return n, time.perf_counter() - t0


def run(args: list[str]) -> int:
    from fusion.config import parse_args

    _, cfg = parse_args(ProbeConfig, args)
    ctx = mp.get_context("spawn")
    chunks = archive_chunks(cfg.work, seconds=BenchJobConfig().chunk_seconds, limit=cfg.pairs)
    res: dict = {"config": asdict(cfg), "command": "python benchmarks/probe_contention.py " + " ".join(args)}
    with ProcessPoolExecutor(2, mp_context=ctx) as decoders:
        list(decoders.map(decode_worker, [(chunks[:2], "nvdec", 2, cfg.batch, True)] * 2))  # CUDA init
        for engine_rate in (None, *cfg.rates):
            for high in (True, False):
                name = ("alone" if engine_rate is None else f"engine_{'flat_out' if not engine_rate else engine_rate}"
                        ) + ("_high" if high else "_normal")
                if engine_rate is None:
                    n, dt = _decode(chunks, high, decoders, cfg.batch, cfg.threads)
                    res[name] = {"pairs": n, "seconds": round(dt, 2), "decode_pairs_per_s": round(n / dt, 1)}
                else:
                    m = ctx.Manager()
                    go, stop, done = m.Event(), m.Event(), m.Event()
                    with ProcessPoolExecutor(1, mp_context=ctx) as eng:
                        fut = eng.submit(_engine_loop, cfg.batch, engine_rate, go, stop, done)
                        done.wait()
                        go.set()
                        n, dt = _decode(chunks, high, decoders, cfg.batch, cfg.threads)
                        stop.set()
                        res[name] = {"pairs": n, "seconds": round(dt, 2), "decode_pairs_per_s": round(n / dt, 1),
                                     "engine_pairs_per_s": round(fut.result(), 1)}
                    m.shutdown()
                print(name, res[name], flush=True)
                Path(cfg.out).parent.mkdir(parents=True, exist_ok=True)
                Path(cfg.out).write_text(json.dumps(res, indent=1))
    return 0


def main(argv: list[str] | None = None) -> int:
    from fusion.config import cli_main

    return cli_main(run, argv, doc=__doc__)


if __name__ == "__main__":
    sys.exit(main())
