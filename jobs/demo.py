"""Embedded default: a generated paired-video archive → the detection job (local Ray, CPU actors, ONNX Runtime,
the shipped mid-fusion model) → Parquet → one DuckDB query. What `make demo` runs.

    python -m jobs.demo [key=value ...]      # overrides for configs/job.yaml, e.g. cluster.actors=1
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
from pathlib import Path

from fusion.config import ConfigError, load_config
from fusion.data.generate import ArchiveSpec, write_archive
from jobs.config import JobConfig
from jobs.detect import main as detect
from jobs.manifest import ManifestError
from jobs.preflight import PreflightError
from jobs.query import CANNED, connect

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "job.yaml"


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        cfg = load_config(JobConfig, CONFIG, sys.argv[1:] if argv is None else argv)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    archive = cfg.input.archive
    if not Path(archive, "manifest.csv").exists():  # generated once; later runs resume on it
        write_archive(ArchiveSpec(out=archive, clips=4, seconds=5.0, schedule="transition"))
    try:
        result = detect(cfg)
    except (ManifestError, PreflightError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"\nrun {result['run_id']}: {result['chunks_done']} chunks done, {result['chunks_skipped']} skipped, "
          f"{result['chunks_partial']} partial, {result['chunks_failed']} failed; {result['frames']} frames, "
          f"{result['detections']} detections, {result['pairs_per_s']:.1f} pairs/s")
    print(f"Parquet: {cfg.output.path}/detections/ and {cfg.output.path}/frames/ (camera_id=/date= partitions)")
    print("\nDuckDB: detections per camera per hour")
    print(connect(cfg.output.path).sql(CANNED["per_camera_hour"]))
    print("More (the README's querying section has the rest):")
    plots = Path(cfg.output.path).with_name("plots")
    python = os.path.relpath(sys.executable)  # .venv/bin/python under `make demo`: what the README uses
    python = sys.executable if python.startswith("..") else python
    for hint in ("canned=night_persons", f"plot={plots}"):  # quoted: a user's output path may hold spaces
        print("  $ " + shlex.join([python, "-m", "jobs.query", cfg.output.path, hint]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
