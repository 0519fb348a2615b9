"""Time paired-data generation: 1,000 training pairs at 640x512 with 2 worker processes.

    .venv/bin/python benchmarks/bench_generate.py   # writes benchmarks/results/generate.json
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from pathlib import Path

from fusion.data.generate import DatasetSpec, write_dataset


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for layout in ("yolofuse", "llvip"):
            spec = DatasetSpec(out=f"{tmp}/{layout}", n=1000, layout=layout, workers=2)
            t0 = time.perf_counter()
            write_dataset(spec)
            seconds = time.perf_counter() - t0
            result = {"pairs": spec.n, "size": list(spec.rgb_size), "layout": layout, "workers": spec.workers,
                      "seconds": round(seconds, 2), "pairs_per_s": round(spec.n / seconds, 1),
                      "cpus": os.cpu_count(), "machine": platform.processor() or platform.machine()}
            print(json.dumps(result))
            out = Path(__file__).parent / "results" / f"generate_{layout}.json"
            out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
