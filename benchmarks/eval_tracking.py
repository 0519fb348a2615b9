"""Tracking quality on generated clips with ground-truth identities: MOTA, IDF1 and ID switches (motmetrics), per
illumination slice, with the job's chunking (2 s chunks stitched across boundaries) and on whole videos.

    .venv/bin/python benchmarks/eval_tracking.py [out=benchmarks/results/tracking.json clips_per_slice=1 seconds=10]

Each clip goes through the job's own code path without Ray (plan → ChunkDetector.process per chunk → stitching), so
the figures are what the job writes. Boxes are matched to ground truth at IoU >= 0.5.
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import motmetrics as mm
import numpy as np
import torch
from torchvision.ops import box_iou

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
log = logging.getLogger("eval_tracking")


@dataclass(frozen=True)
class EvalTrackingConfig:
    out: str = "benchmarks/results/tracking.json"
    clips_per_slice: int = 1
    seconds: float = 10.0  # per clip (keyframes every 2 s)
    size: tuple[int, int] = (640, 512)  # RGB (W, H); IR is half
    chunk_seconds: float = 2.0  # the chunked run; the other run is one chunk per video
    seed: int = 8100
    model: str = "models/mid_n.onnx"  # the fused model the job runs (relative to the repository root, or absolute)


def _clips(cfg: EvalTrackingConfig, root: Path) -> dict[str, str]:
    from fusion.data.generate import write_clip
    from fusion.data.scene import SLICES, SceneConfig, sample_illumination

    videos = {}
    for k, slice_ in enumerate(s for s in SLICES for _ in range(cfg.clips_per_slice)):
        il = sample_illumination(slice_, np.random.default_rng(cfg.seed + k))
        vid = f"{slice_}{k}"
        (root / "archive" / "cam").mkdir(parents=True, exist_ok=True)
        write_clip(rgb_url=str(root / f"archive/cam/{vid}_rgb.mp4"), ir_url=str(root / f"archive/cam/{vid}_ir.mp4"),
                   gt_url=str(root / f"{vid}_gt.parquet"), seed=cfg.seed + k, seconds=cfg.seconds, fps=25,
                   config=SceneConfig(rgb_size=cfg.size, ir_size=(cfg.size[0] // 2, cfg.size[1] // 2), ir_shift=2.0,
                                      ir_scale=0.02), light_from=il, light_to=il)
        videos[vid] = slice_
    return videos


def _run(root: Path, chunk_seconds: float, out: str, model: str):
    from fusion.config import load_config, to_dict
    from jobs.actor import ChunkDetector
    from jobs.config import JobConfig
    from jobs.detect import plan
    from jobs.query import connect
    from jobs.tracks import VideoRef, stitch_all

    cfg = load_config(JobConfig, ROOT / "configs" / "job.yaml", [
        f"input.archive={root}/archive", "input.manifest=", f"output.path={out}", f"chunk.seconds={chunk_seconds}",
        "modality.mode=fused", f"engine.fused_model={ROOT / model}"])
    chunks, _, _ = plan(cfg, "eval")
    actor = ChunkDetector(cfg=to_dict(cfg), run_id="eval")
    for c in chunks:
        actor.process(c)
    actor.runner.close()
    refs = sorted({VideoRef(c.camera_id, c.date, c.video_id) for c in chunks}, key=lambda r: r.video_id)
    stitch_all(cfg, "eval", refs)
    return connect(out), len(chunks)


def _metrics(con, root: Path, videos: dict[str, str]) -> dict:
    import pyarrow.parquet as pq

    accs, names = [], []
    for vid in videos:
        gt = pq.read_table(root / f"{vid}_gt.parquet").to_pandas()
        det = con.execute("SELECT frame_idx, track_id, x1, y1, x2, y2 FROM detections WHERE video_id = ? AND "
                          "track_id >= 0", [vid]).df()
        acc = mm.MOTAccumulator(auto_id=False)
        for f in sorted(set(gt.frame_idx) | set(det.frame_idx)):
            g, d = gt[gt.frame_idx == f], det[det.frame_idx == f]
            gb = torch.tensor(g[["x1", "y1", "x2", "y2"]].to_numpy(), dtype=torch.float64)
            db = torch.tensor(d[["x1", "y1", "x2", "y2"]].to_numpy(), dtype=torch.float64)
            # motmetrics' own iou_matrix calls np.asfarray (gone in NumPy 2): same distance from torchvision's IoU
            dist = 1 - box_iou(gb, db).numpy()
            dist[dist > 0.5] = np.nan  # IoU < 0.5: not a match
            acc.update(g.object_id.tolist(), d.track_id.tolist(), dist, frameid=int(f))
        accs.append(acc)
        names.append(vid)
    mh = mm.metrics.create()
    metrics = ["mota", "idf1", "num_switches", "num_objects", "mostly_tracked", "num_unique_objects"]
    summary = mh.compute_many(accs, names=names, metrics=metrics, generate_overall=True)
    rows = summary.to_dict(orient="index")
    by_slice = {}
    for s in sorted(set(videos.values())):
        vs = [v for v in videos if videos[v] == s]
        # the counts behind MOTA: one clip per slice holds few people, so one missed frame moves it visibly
        sub = mh.compute_many([accs[names.index(v)] for v in vs], names=vs, generate_overall=True,
                              metrics=["mota", "idf1", "num_switches", "num_objects", "num_unique_objects",
                                       "num_misses", "num_false_positives"]).to_dict(orient="index")["OVERALL"]
        by_slice[s] = {k: round(float(v), 4) for k, v in sub.items()}
    return {"overall": {k: round(float(v), 4) for k, v in rows["OVERALL"].items()}, "per_slice": by_slice}


def main(argv: list[str] | None = None) -> int:
    from fusion.config import cli_main, parse_args

    def run(args: list[str]) -> int:
        _, cfg = parse_args(EvalTrackingConfig, args)
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            videos = _clips(cfg, root)
            result = {"config": {"clips": len(videos), "seconds": cfg.seconds, "size": list(cfg.size),
                                 "model": cfg.model}}
            for name, seconds in (("chunked", cfg.chunk_seconds), ("whole_video", 10_000.0)):
                con, n = _run(root, seconds, str(root / f"out_{name}"), cfg.model)
                result[name] = _metrics(con, root, videos) | {"chunks": n}
                log.info("%s: %s", name, result[name]["overall"])
        Path(cfg.out).write_text(json.dumps(result, indent=1) + "\n")
        print(f"{'run':12} {'MOTA':>6} {'IDF1':>6} {'IDsw':>5}")
        for name in ("chunked", "whole_video"):
            o = result[name]["overall"]
            print(f"{name:12} {o['mota']:6.3f} {o['idf1']:6.3f} {int(o['num_switches']):5d}")
        print(f"wrote {cfg.out}")
        return 0

    return cli_main(run, argv, doc=__doc__, config=EvalTrackingConfig)


if __name__ == "__main__":
    sys.exit(main())
