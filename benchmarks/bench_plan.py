"""The driver's work before the first chunk starts, over object storage: checks + listing + every video's header.

    .venv/bin/python benchmarks/bench_plan.py [videos=100 out=benchmarks/results/plan_s3.json]

A moto S3 server (HTTP, the S3 protocol, on this machine) holds `videos` paired clips and a manifest; the job's own
`preflight` and `plan` run against it as they would before starting Ray. Each file is only opened for its header
and index (ranged GETs), so the time grows with the number of videos, not with their bytes.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


@dataclass(frozen=True)
class BenchPlanConfig:
    videos: int = 100
    seconds: float = 30.0  # per clip: a long clip shows that only headers are read
    out: str = "benchmarks/results/plan_s3.json"


def main(argv: list[str] | None = None) -> int:
    from fusion.config import cli_main, parse_args

    def run(args: list[str]) -> int:
        import fsspec
        from moto.server import ThreadedMotoServer

        from fusion.config import load_config
        from fusion.data.generate import write_clip
        from fusion.data.scene import Illumination, SceneConfig
        from jobs.config import JobConfig
        from jobs.detect import plan
        from jobs.preflight import preflight

        _, cfg = parse_args(BenchPlanConfig, args)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
        server.start()
        host, port = server.get_host_and_port()
        os.environ.update({"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1"})
        so = {"endpoint_url": f"http://{host}:{port}"}
        fs = fsspec.filesystem("s3", **so)
        fs.mkdir("bench")
        local = Path("/tmp/fusedet-plan")
        local.mkdir(exist_ok=True)
        if not (local / "c_ir.mp4").exists():
            write_clip(rgb_url=str(local / "c_rgb.mp4"), ir_url=str(local / "c_ir.mp4"), gt_url=str(local / "gt.pq"),
                       seed=1, seconds=cfg.seconds, fps=25, config=SceneConfig(rgb_size=(640, 512),
                                                                               ir_size=(320, 256)),
                       light_from=Illumination(0.5), light_to=Illumination(0.5))
        rows = ["video_id,camera_id,rgb_uri,ir_uri,start_time"]
        for i in range(cfg.videos):
            for m in ("rgb", "ir"):
                fs.put_file(str(local / f"c_{m}.mp4"), f"bench/archive/v{i:03d}_{m}.mp4")
            rows.append(f"v{i:03d},cam{i % 4},v{i:03d}_rgb.mp4,v{i:03d}_ir.mp4,2026-06-01T10:{i % 60:02d}:00")
        fs.pipe_file("bench/archive/manifest.csv", ("\n".join(rows) + "\n").encode())
        size = sum(fs.size(p) for p in fs.find("bench/archive") if p.endswith(".mp4"))
        jc = load_config(JobConfig, ROOT / "configs" / "job.yaml", [
            "input.archive=s3://bench/archive", "output.path=s3://bench/out", f"input.storage_options={so}",
            f"output.storage_options={so}", "modality.mode=fused"])
        t0 = time.perf_counter()
        preflight(jc)
        t1 = time.perf_counter()
        chunks, errors, _failed = plan(jc, "bench")
        t2 = time.perf_counter()
        server.stop()
        res = {"videos": cfg.videos, "archive_MB": round(size / 2**20, 1), "chunks": len(chunks), "errors": len(errors),
               "preflight_s": round(t1 - t0, 2), "plan_s": round(t2 - t1, 2), "total_s": round(t2 - t0, 2),
               "per_video_ms": round(1000 * (t2 - t1) / cfg.videos, 1), "cpus": os.cpu_count(),
               "command": "python benchmarks/bench_plan.py " + " ".join(args)}
        Path(cfg.out).write_text(json.dumps(res, indent=1) + "\n")
        print(json.dumps(res))
        return 0

    return cli_main(run, argv, doc=__doc__, config=BenchPlanConfig)


if __name__ == "__main__":
    sys.exit(main())
