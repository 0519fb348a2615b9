"""Query a run's Parquet with DuckDB (hive partitions camera_id=/date=), canned queries and plots.

    python -m jobs.query demo-output/detections "SELECT class_name, count(*) FROM detections GROUP BY 1"
    python -m jobs.query demo-output/detections --canned per_camera_hour
    python -m jobs.query demo-output/detections --plot demo-output/plots

Views: `detections`, `frames` (one row per processed frame), `errors`, `runs` (summaries), `chunks` (per chunk:
status, node, seconds).
For s3:// outputs DuckDB reads through fsspec (s3fs), with the same storage options as the job.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import duckdb
import fsspec

CANNED = {
    "per_camera_hour": """
        SELECT camera_id, date_trunc('hour', timestamp) AS hour, class_name, count(*) AS detections
        FROM detections GROUP BY ALL ORDER BY ALL""",
    "night_persons": """
        SELECT d.camera_id, d.video_id, d.frame_idx, d.timestamp, d.score, d.modality, d.brightness
        FROM detections d WHERE d.class_name = 'person' AND d.brightness < 0.14 ORDER BY d.timestamp""",
    "busiest_frames": """
        SELECT video_id, frame_idx, timestamp, detections, modality FROM frames
        ORDER BY detections DESC, timestamp LIMIT 20""",
    "modality_share": """
        SELECT modality, count(*) AS frames, round(avg(brightness), 3) AS mean_brightness
        FROM frames GROUP BY ALL ORDER BY frames DESC""",
}


def connect(root: str, storage_options: dict | None = None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    root = root.rstrip("/")
    if "://" in root and not root.startswith("file://"):
        con.register_filesystem(fsspec.filesystem(root.split("://", 1)[0], **(storage_options or {})))
    fs, base = fsspec.core.url_to_fs(root, **(storage_options or {}))
    views = {"detections": "detections/**/*.parquet", "frames": "frames/**/*.parquet",
             "errors": "_runs/*/errors.parquet", "runs": "_runs/*/summary.parquet", "chunks": "_runs/*/chunks.parquet"}
    for name, pattern in views.items():
        if fs.glob(f"{base}/{pattern}"):
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM "
                        f"read_parquet('{root}/{pattern}', hive_partitioning = true, union_by_name = true)")
    return con


def plot(con: duckdb.DuckDBPyConnection, out: str) -> list[str]:
    """PNG: detections over time per class; modality and brightness timeline per video."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    Path(out).mkdir(parents=True, exist_ok=True)
    written = []
    df = con.sql("SELECT date_trunc('second', timestamp) AS t, class_name, count(*) AS n FROM detections "
                 "GROUP BY ALL ORDER BY t").fetchnumpy()
    fig, ax = plt.subplots(figsize=(9, 3.5))
    for cls in sorted(set(df["class_name"])):
        m = df["class_name"] == cls
        ax.plot(df["t"][m], df["n"][m], label=cls)
    ax.set(title="detections per second", ylabel="detections")
    ax.legend()
    fig.autofmt_xdate()
    fig.savefig(f"{out}/detections_over_time.png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    written.append(f"{out}/detections_over_time.png")
    fr = con.sql("SELECT video_id, frame_idx, brightness, modality, detections FROM frames ORDER BY video_id, "
                 "frame_idx").fetchnumpy()
    videos = sorted(set(fr["video_id"]))
    fig, axes = plt.subplots(len(videos), 1, figsize=(9, 2.2 * len(videos)), squeeze=False)
    colours = {"rgb": "tab:orange", "fused": "tab:green", "ir": "tab:purple"}
    for ax, vid in zip(axes[:, 0], videos, strict=True):
        m = fr["video_id"] == vid
        ax.plot(fr["frame_idx"][m], fr["brightness"][m], color="black", lw=1, label="brightness")
        for mode, c in colours.items():
            mm = m & (fr["modality"] == mode)
            ax.scatter(fr["frame_idx"][mm], fr["brightness"][mm], s=6, color=c, label=mode)
        ax2 = ax.twinx()
        ax2.plot(fr["frame_idx"][m], fr["detections"][m], color="tab:blue", lw=0.8, alpha=0.6)
        ax2.set_ylabel("detections", color="tab:blue")
        ax.set(title=vid, ylabel="brightness")
    axes[0, 0].legend(loc="upper right", fontsize=7)
    axes[-1, 0].set_xlabel("frame")
    fig.tight_layout()
    fig.savefig(f"{out}/modality_timeline.png", dpi=90)
    plt.close(fig)
    written.append(f"{out}/modality_timeline.png")
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jobs.query", description=__doc__.split("\n\n")[0])
    p.add_argument("output", help="the job's output URL")
    p.add_argument("sql", nargs="?", help="SQL over the views detections, frames, errors, runs")
    p.add_argument("--canned", choices=sorted(CANNED), help="a named query")
    p.add_argument("--plot", metavar="DIR", help="write PNG plots to DIR")
    a = p.parse_args(argv)
    con = connect(a.output)
    if not (a.sql or a.canned or a.plot):
        p.error("give SQL, --canned NAME or --plot DIR")
    try:
        if a.sql or a.canned:
            print(con.sql(a.sql or CANNED[a.canned]))
        if a.plot:
            for path in plot(con, a.plot):
                print(path)
    except duckdb.Error as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
