"""Plots of a job's output that tell the truth: one panel per camera (never summed), gaps where there is no footage
(no line across them), integer counts, the brightness thresholds the policy used, a legend on every panel."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np

MODE_COLOURS = {"rgb": "#f0a030", "fused": "#3aa655", "ir": "#8e5cc2"}
CLASS_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
MAX_PANELS = 12


def _with_gaps(t: np.ndarray, y: np.ndarray, gap_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Insert a NaN where consecutive samples are more than `gap_s` apart, so the line breaks there."""
    if len(t) < 2:
        return t, y.astype(float)
    cut = np.nonzero(np.diff(t).astype("timedelta64[ms]").astype(float) / 1e3 > gap_s)[0] + 1
    return (np.insert(t, cut, t[cut - 1] + (t[cut] - t[cut - 1]) / 2),
            np.insert(y.astype(float), cut, np.nan))


def thresholds(con: duckdb.DuckDBPyConnection) -> list[tuple[float, str]]:
    """Brightness values where the latest run's routes change engine: [(edge, "fused → rgb"), ...]."""
    try:
        rows = con.sql("SELECT routes FROM runs ORDER BY started DESC LIMIT 1").fetchall()
    except duckdb.Error:
        return []
    if not rows or not rows[0][0]:
        return []
    r = json.loads(rows[0][0])
    return [(e, f"{a} → {b}") for e, a, b in zip(r["edges"][1:-1], r["modes"][:-1], r["modes"][1:], strict=True)
            if a != b]


def detections_over_time(con: duckdb.DuckDBPyConnection, path: str) -> str:
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    span = con.sql("SELECT epoch(max(timestamp)) - epoch(min(timestamp)) FROM frames").fetchall()[0][0] or 0
    # Bins that keep a year readable and a clip visible: 1 s up to 15 min of footage, then 10 s, 1 min, 10 min.
    step = next(b for limit, b in ((900, 1), (3 * 3600, 10), (2 * 86400, 60), (float("inf"), 600)) if span <= limit)
    bucket = f"time_bucket(INTERVAL '{step} seconds', timestamp)"
    frames = con.sql(f"SELECT camera_id, {bucket} AS t FROM frames GROUP BY ALL ORDER BY ALL").fetchnumpy()
    dets = con.sql(f"SELECT camera_id, {bucket} AS t, class_name, count(*) AS n "
                   "FROM detections GROUP BY ALL").fetchnumpy() if _has(con, "detections") else {}
    cameras = sorted(set(frames["camera_id"]))[:MAX_PANELS]
    classes = sorted(set(dets.get("class_name", [])))
    fig, axes = plt.subplots(len(cameras), 1, figsize=(10, 2.3 * len(cameras) + 0.6), squeeze=False,
                             sharex=True)
    for ax, cam in zip(axes[:, 0], cameras, strict=True):
        covered = frames["t"][frames["camera_id"] == cam]  # seconds with footage: zero there is a real zero
        for k, cls in enumerate(classes):
            m = (dets["camera_id"] == cam) & (dets["class_name"] == cls)
            counts = dict(zip(dets["t"][m], dets["n"][m], strict=True))
            y = np.array([counts.get(t, 0) for t in covered])
            t, y = _with_gaps(covered, y, gap_s=2.0 * step)
            ax.plot(t, y, color=CLASS_COLOURS[k % len(CLASS_COLOURS)], lw=1.2, marker="o", ms=2.5, label=cls)
        ax.set_title(f"camera {cam}", loc="left", fontsize=10)
        ax.set_ylabel(f"detections / {step} s" if step > 1 else "detections / s")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper right", fontsize=8, frameon=False)
        ax.grid(alpha=0.25)
    fig.suptitle(f"Detections per {'second' if step == 1 else f'{step} s'}, per camera (line breaks: no footage)",
                 fontsize=11)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def modality_timeline(con: duckdb.DuckDBPyConnection, path: str) -> str:
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    fr = con.sql("SELECT video_id, camera_id, frame_idx, timestamp, brightness, modality, detections FROM frames "
                 "ORDER BY video_id, frame_idx").fetchnumpy()
    videos = list(dict.fromkeys(fr["video_id"]))[:MAX_PANELS]
    th = thresholds(con)
    fig, axes = plt.subplots(len(videos), 1, figsize=(10, 2.4 * len(videos) + 0.6), squeeze=False)
    for ax, vid in zip(axes[:, 0], videos, strict=True):
        m = fr["video_id"] == vid
        t = (fr["timestamp"][m] - fr["timestamp"][m][0]).astype("timedelta64[ms]").astype(float) / 1e3
        modes = fr["modality"][m]
        start = 0
        for i in range(1, len(t) + 1):  # one coloured span per run of frames in the same mode
            if i == len(t) or modes[i] != modes[start]:
                ax.axvspan(t[start], t[min(i, len(t) - 1)], color=MODE_COLOURS.get(modes[start], "#cccccc"),
                           alpha=0.25, lw=0)
                start = i
        ax.plot(t, fr["brightness"][m], color="black", lw=1.2, label="brightness")
        for (edge, change), style in zip(th, (":", "--", "-."), strict=False):
            ax.axhline(edge, color="grey", ls=style, lw=1, label=f"{change} at {edge:g}")
        ax.set_ylim(0, max(0.6, float(np.nanmax(fr["brightness"][m])) * 1.1))
        ax.set_ylabel("brightness")
        ax2 = ax.twinx()
        ax2.step(t, fr["detections"][m], where="post", color="tab:blue", lw=0.8, alpha=0.7)
        ax2.set_ylabel("detections", color="tab:blue")
        ax2.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax2.set_ylim(bottom=0)
        cam = fr["camera_id"][m][0]
        ax.set_title(f"{vid} (camera {cam}, from {str(fr['timestamp'][m][0])[:19]})", loc="left", fontsize=10)
        handles = ax.get_legend_handles_labels()[0] + [Patch(color=c, alpha=0.35, label=f"mode: {k}")
                                                       for k, c in MODE_COLOURS.items()]
        ax.legend(handles=handles, loc="upper right", fontsize=7, ncol=3, frameon=False)
    axes[-1, 0].set_xlabel("seconds from the video start")
    fig.suptitle("Brightness, engine chosen (background) and detections per frame", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _has(con: duckdb.DuckDBPyConnection, view: str) -> bool:
    return bool(con.sql(f"SELECT count(*) FROM duckdb_views() WHERE view_name = '{view}'").fetchall()[0][0])


def plot(con: duckdb.DuckDBPyConnection, out: str) -> list[str]:
    """Write both plots into the folder `out`; → their paths."""
    import matplotlib

    matplotlib.use("Agg")
    Path(out).mkdir(parents=True, exist_ok=True)
    return [detections_over_time(con, f"{out}/detections_over_time.png"),
            modality_timeline(con, f"{out}/modality_timeline.png")]
