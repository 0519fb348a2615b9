"""Audit a job's output: is every expected frame written exactly once, and is everything else accounted for?

    python -m jobs.audit demo-output/detections [archive=demo-output/archive manifest=manifest.csv]
                         [storage_options={endpoint_url: http://...}] [out=audit.json]

Checks: files the job did not write (stray names, `.tmp` leftovers), unreadable Parquet, detections files without
their frames file (a chunk cut short) and the reverse, files outside a video's recorded cut, chunks of a recorded cut
with no complete output, duplicate (video_id, frame_idx) keys, and — given the archive — videos never planned and
frames never written (partial pairs), each said to be reported in a run's errors table or not.
Exit status: 0 clean, 1 something is wrong (listed), 2 a usage mistake.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from dataclasses import dataclass, field

import duckdb

from fusion.config import ConfigError, cli_main, parse_args
from jobs.config import InputConfig, RetryConfig
from jobs.manifest import ManifestError, list_pairs
from jobs.paths import Layout, parse_chunk_file
from jobs.storage import filesystem, valid_parquet


@dataclass(frozen=True)
class AuditConfig:
    archive: str = ""  # the archive the job read ("" = the one in the latest run record); needed for missing videos
    manifest: str = "manifest.csv"  # as the job's input.manifest ("" = pair files by name)
    storage_options: dict[str, str] = field(default_factory=dict)  # for the output and the archive (fsspec)
    out: str = ""  # also write the full report as JSON here


def _duck(fs, proto: str) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    if proto not in ("", "file"):
        con.register_filesystem(fs)
    return con


def audit(output: str, cfg: AuditConfig) -> dict:
    """→ report: counts, problem lists (each a short string naming the file or key), and `ok`."""
    fs, base = filesystem(output, cfg.storage_options)
    proto = output.split("://", 1)[0] if "://" in output else ""
    url = (lambda p: f"{proto}://{p}") if proto not in ("", "file") else (lambda p: p)
    layout = Layout(base)
    rep: dict = {"output": output, "stray": [], "unreadable": [], "incomplete": [], "orphan_frames": [],
                 "off_plan": [], "missing_chunks": [], "duplicates": [], "missing_videos": [], "partial": []}
    files: dict[str, dict[tuple[str, int, int], str]] = {"detections": {}, "frames": {}}
    for table in files:
        for p in fs.find(f"{base}/{table}") if fs.exists(f"{base}/{table}") else []:
            key = parse_chunk_file(p.rsplit("/", 1)[-1])
            if key is None:
                rep["stray"].append(url(p))
            elif not valid_parquet(fs, p):
                rep["unreadable"].append(url(p))
            else:
                files[table][key] = p
    rep["incomplete"] = sorted(url(p) for k, p in files["detections"].items() if k not in files["frames"])
    rep["orphan_frames"] = sorted(url(p) for k, p in files["frames"].items() if k not in files["detections"])
    plans = {}
    for p in fs.find(f"{base}/_plans") if fs.exists(f"{base}/_plans") else []:
        rec = json.loads(fs.cat_file(p))
        plans[rec["video_id"]] = rec
    by_video: dict[str, set[tuple[int, int]]] = defaultdict(set)
    for vid, a, b in files["frames"]:
        by_video[vid].add((a, b))
    for vid, ranges in sorted(by_video.items()):
        bounds = {tuple(x) for x in plans.get(vid, {}).get("bounds", [])}
        rep["off_plan"] += [f"{vid} frames [{a}, {b})" for a, b in sorted(ranges - bounds)]
    for vid, rec in sorted(plans.items()):
        rep["missing_chunks"] += [f"{vid} frames [{a}, {b})" for a, b in rec["bounds"]
                                  if (a, b) not in by_video.get(vid, set())]
    written: dict[str, int] = {}
    frame_files = [url(p) for p in files["frames"].values()]
    if frame_files:
        con = _duck(fs, proto)
        src = f"read_parquet({frame_files!r})"
        rep["duplicates"] = [f"{v} frame {f} ×{n}" for v, f, n in con.sql(
            f"SELECT video_id, frame_idx, count(*) n FROM {src} GROUP BY ALL HAVING n > 1 ORDER BY ALL LIMIT 1000"
        ).fetchall()]
        written = dict(con.sql(f"SELECT video_id, count(DISTINCT frame_idx) FROM {src} GROUP BY ALL").fetchall())
    reported = _reported(fs, base, url, proto)
    rep["chunks_planned"] = sum(len(r["bounds"]) for r in plans.values())
    rep["chunks_written"] = sum(1 for k in files["frames"] if k in files["detections"])
    rep["expected_frames"] = sum(int(r["frames"]) for r in plans.values())
    rep["written_frames"] = sum(written.values())
    for vid, rec in sorted(plans.items()):
        missing = int(rec["frames"]) - written.get(vid, 0)
        if missing > 0:
            rep["partial"].append(f"{vid}: {missing} of {rec['frames']} frames not written"
                                  + (" (reported in the errors table)" if vid in reported else " (NOT reported)"))
    archive = cfg.archive or _latest_archive(fs, layout, url, proto)
    if archive:
        try:
            inp = InputConfig(archive=archive, manifest=cfg.manifest, storage_options=cfg.storage_options)
            pairs, problems = list_pairs(inp, RetryConfig(attempts=3))
        except ManifestError as exc:
            raise ConfigError(str(exc)) from exc
        rep["archive"] = archive
        rep["bad_inputs"] = len(problems)
        rep["missing_videos"] = [f"{p.video_id} ({p.rgb_uri})" + (" (reported in the errors table)"
                                                                  if p.video_id in reported else " (NOT reported)")
                                 for p in pairs if p.video_id not in plans]
    checks = ("stray", "unreadable", "incomplete", "orphan_frames", "off_plan", "missing_chunks", "duplicates",
              "missing_videos", "partial")
    rep["ok"] = not any(rep[k] for k in checks)
    rep["counts"] = {k: len(rep[k]) for k in checks}
    return rep


def _reported(fs, base: str, url, proto: str) -> set[str]:
    """Video ids named in any run's errors table."""
    paths = [url(p) for p in fs.glob(f"{base}/_runs/*/errors.parquet")]
    if not paths:
        return set()
    return {r[0] for r in _duck(fs, proto).sql(f"SELECT DISTINCT video_id FROM read_parquet({paths!r})").fetchall()}


def _latest_archive(fs, layout: Layout, url, proto: str) -> str:
    paths = [url(p) for p in fs.glob(f"{layout.root}/_runs/*/summary.parquet")]
    if not paths:
        return ""
    rows = _duck(fs, proto).sql(f"SELECT config FROM read_parquet({paths!r}) ORDER BY started DESC LIMIT 1").fetchall()
    return json.loads(rows[0][0])["input"]["archive"] if rows else ""


def main(argv: list[str] | None = None) -> int:
    return cli_main(_run, argv, doc=__doc__, config=AuditConfig)


def _run(args: list[str]) -> int:
    (output,), cfg = parse_args(AuditConfig, args, positional=1)
    fs, base = filesystem(output, cfg.storage_options)
    if not fs.exists(base):
        raise ConfigError(f"{output}: no such output folder")
    rep = audit(output, cfg)
    if cfg.out:
        with fs.open(cfg.out, "w") if "://" in cfg.out else open(cfg.out, "w") as f:
            json.dump(rep, f, indent=1)
    print(f"audit of {output}: {rep['written_frames']} of {rep['expected_frames']} planned frames written")
    for k, n in rep["counts"].items():
        print(f"  {k:15} {n}")
        for item in rep[k][:20]:
            print(f"      {item}")
        if n > 20:
            print(f"      … {n - 20} more")
    print("OK" if rep["ok"] else "PROBLEMS FOUND")
    return 0 if rep["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
