"""Decode-only ceilings at other parallelism than `bench_job`'s decode stage (2 processes x 8 chunk threads): is
the job's best configuration (3 actors x 12 chunks in flight) held back by decoding more streams at once?

    python3 benchmarks/probe_decode_ceiling.py out=$OUT/decode_ceiling.json    # after bench_job's generate stage
    → {"nvdec_<procs>proc_<threads>threads[_nv12]": {"pairs", "seconds", "pairs_per_s"}, ...}

Each variant runs the job's own decode + pairing code (`decode_rates.decode_worker`) in fresh processes on the archive
`bench_job` generated (all its chunks), after a two-chunk warm-up per process.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.bench_job import BenchJobConfig  # noqa: E402  (after the path)
from benchmarks.decode_rates import archive_chunks, nvdec_rate  # noqa: E402


@dataclass(frozen=True)
class CeilingConfig:
    out: str = "benchmarks/results/decode_ceiling.json"
    batch: int = 32
    # (processes, chunk threads per process, NV12 RGB)
    variants: tuple[tuple[int, int, bool], ...] = ((3, 12, True), (3, 12, False), (2, 8, True))


def main(argv: list[str] | None = None) -> int:
    from fusion.config import cli_main, parse_args

    def run(args: list[str]) -> int:
        _, cfg = parse_args(CeilingConfig, args)
        bench = BenchJobConfig()
        chunks = archive_chunks(bench.work, seconds=bench.chunk_seconds)
        res = {}
        for procs, threads, nv12 in cfg.variants:
            name = f"nvdec_{procs}proc_{threads}threads" + ("_nv12" if nv12 else "")
            res[name] = nvdec_rate(chunks, procs=procs, threads=threads, batch=cfg.batch, nv12=nv12)
            print(name, res[name], flush=True)
            Path(cfg.out).write_text(json.dumps(res, indent=1) + "\n")
        return 0

    return cli_main(run, argv, doc=__doc__, config=CeilingConfig)


if __name__ == "__main__":
    sys.exit(main())
