"""Query a job's Parquet with DuckDB (hive partitions camera_id=/date=), canned queries and plots.

    python -m jobs.query demo-output/detections "SELECT class_name, count(*) FROM detections GROUP BY 1"
    python -m jobs.query demo-output/detections canned=per_camera_hour
    python -m jobs.query demo-output/detections plot=demo-output/plots
    python -m jobs.query s3://bucket/out canned=errors storage_options={endpoint_url: http://minio:9000}

Views: `detections` (track_id = the object's id in its video), `frames` (one row per processed frame), `tracks` (one
row per object: class, first/last seen, frames, path), `errors`, `runs` (summaries), `chunks` (per chunk: status,
node, seconds). Object stores are read through fsspec with the same storage options as the job.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field

import duckdb
import fsspec

from fusion.config import ConfigError, cli_main, load_config

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
    "unique_persons_per_camera_hour": """
        SELECT camera_id, date_trunc('hour', first_seen) AS hour, count(*) AS persons,
               round(median(epoch(last_seen) - epoch(first_seen)), 1) AS median_seconds_in_view
        FROM tracks WHERE class_name = 'person' AND frames >= 5 GROUP BY ALL ORDER BY ALL""",
    "longest_tracks": """
        SELECT camera_id, video_id, track_id, class_name, first_seen, last_seen, frames, round(mean_score, 3) AS score,
               round(path_px) AS path_px, chunks
        FROM tracks ORDER BY frames DESC, path_px DESC LIMIT 20""",
    "errors": """
        SELECT run_id, severity, error_type, video_id, chunk_id, uri, reason FROM errors
        ORDER BY run_id DESC, severity, video_id, chunk_id""",
}
VIEWS = {"detections": "detections/**/*.parquet", "frames": "frames/**/*.parquet", "tracks": "tracks/**/*.parquet",
         "track_links": "track_links/**/*.parquet", "errors": "_runs/*/errors.parquet",
         "runs": "_runs/*/summary.parquet", "chunks": "_runs/*/chunks.parquet"}
_OVERRIDE = re.compile(r"^[A-Za-z_][\w.]*=")


@dataclass(frozen=True)
class QueryConfig:
    canned: str = ""  # a named query (see the docstring's list): per_camera_hour, night_persons, busiest_frames, ...
    plot: str = ""  # a folder: write PNG plots there (detections over time per camera, modality timelines)
    storage_options: dict[str, str] = field(default_factory=dict)  # fsspec options for s3:// etc., as the job's
    max_rows: int = 40  # rows printed of a result

    def __post_init__(self) -> None:
        if self.canned and self.canned not in CANNED:
            raise ConfigError(f"canned={self.canned!r}: one of {sorted(CANNED)}")


def connect(root: str, storage_options: dict | None = None) -> duckdb.DuckDBPyConnection:
    """DuckDB with the job's views over `root`. ConfigError when `root` holds no job output."""
    con = duckdb.connect()
    root = root.rstrip("/")
    fs, base = fsspec.core.url_to_fs(root, **(storage_options or {}))
    if "://" in root and not root.startswith("file://"):
        con.register_filesystem(fs)
    if not fs.isdir(base):
        raise ConfigError(f"{root}: no such output folder")
    found = [name for name, pattern in VIEWS.items() if fs.glob(f"{base}/{pattern}")]
    if not {"frames", "runs"} & set(found):
        inner = [p.rsplit("/", 1)[-1] for p in fs.ls(base, detail=False) if fs.glob(f"{p}/frames/**/*.parquet")]
        hint = f"; did you mean {root}/{inner[0]}?" if inner else " (expected detections/, frames/, _runs/)"
        raise ConfigError(f"{root}: no job output here{hint}")
    for name in found:
        view = "raw_detections" if name == "detections" and "track_links" in found else name
        con.execute(f"CREATE VIEW {view} AS SELECT * FROM "
                    f"read_parquet('{root}/{VIEWS[name]}', hive_partitioning = true, union_by_name = true)")
    if "detections" in found and "track_links" in found:  # chunk-scoped track ids → the video-wide ones
        con.execute("CREATE VIEW detections AS SELECT d.* REPLACE (coalesce(l.track_id, d.track_id) AS track_id) "
                    "FROM raw_detections d LEFT JOIN track_links l ON d.video_id = l.video_id AND "
                    "d.track_id = l.chunk_track_id")
    return con


def main(argv: list[str] | None = None) -> int:
    return cli_main(_run, argv, doc=__doc__, config=QueryConfig)


def _run(args: list[str]) -> int:
    if not args or _OVERRIDE.match(args[0]):
        raise ConfigError("give the job's output folder first, e.g. python -m jobs.query demo-output/detections "
                          "canned=per_camera_hour")
    output, rest = args[0], args[1:]
    sql = [a for a in rest if not _OVERRIDE.match(a)]
    cfg = load_config(QueryConfig, None, [a for a in rest if _OVERRIDE.match(a)])
    if len(sql) > 1:
        raise ConfigError(f"one SQL statement at a time, got {len(sql)} (quote the SQL as one argument)")
    if not (sql or cfg.canned or cfg.plot):
        raise ConfigError("give SQL, canned=NAME or plot=DIR")
    con = connect(output, cfg.storage_options)
    try:
        if sql or cfg.canned:
            print(con.sql(sql[0] if sql else CANNED[cfg.canned]).show(max_rows=cfg.max_rows) or "", end="")
        if cfg.plot:
            from jobs.plots import plot

            for path in plot(con, cfg.plot):
                print(f"wrote {path}")
    except duckdb.Error as exc:
        print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
