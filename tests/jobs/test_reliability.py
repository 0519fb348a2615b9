"""Fault injection inside a run, each scenario ending with the same audit: every planned frame written, none twice,
every bad input in the errors table with its URI. Real local Ray, the moto S3 server behind a proxy that can go down,
real files. Lost nodes, stopped drivers and re-runs: test_reliability_restarts.py (the two modules run on the two
pytest-xdist workers of `make test`).

RELIABILITY.md is generated from these results: `FUSEDET_WRITE_RELIABILITY=1 pytest tests/jobs/test_reliability*.py`
rewrites it; otherwise the last test of each module checks the committed rows of its scenarios.
"""

from __future__ import annotations

import csv
import signal
import threading
import time
from pathlib import Path

import fsspec
import numpy as np
import psutil
import pyarrow.parquet as pq
import pytest

from jobs.detect import exit_status
from jobs.detect import main as run_job

from .faults import FlakyProxy, truncate, write_raw, write_resolution_change
from .reliability import assert_clean, check_rows, job_audit, job_config, record

pytestmark = [pytest.mark.ray, pytest.mark.slow]
SCENARIOS = ["clean run", "actor killed mid-chunk (SIGKILL)", "storage blips (3 s outage)",
             "storage down for a whole minute", "every bad input"]


@pytest.fixture(scope="module")
def proxy(s3_endpoint):
    return FlakyProxy(s3_endpoint)


def test_clean_run(ray_cluster, archive, proxy):
    out = "s3://fusedet/rel/clean"
    result = run_job(job_config(archive, out, endpoint=proxy.url, out_endpoint=proxy.url))
    assert result["chunks_done"] == 6 and exit_status(result) == 0
    rep = job_audit(out, proxy.url)
    assert_clean(rep)
    record("clean run", rep)


def _map_workers() -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["cmdline"]) if "ChunkDetector" in " ".join(p.info["cmdline"] or [])]


def test_actor_killed_mid_chunk(ray_cluster, archive, proxy, tmp_path):
    out = str(tmp_path / "out")
    cfg = job_config(archive, out, "cluster.actors=1", "cluster.chunks_in_flight=1")
    result: dict = {}
    runner = threading.Thread(target=lambda: result.update(run_job(cfg)), daemon=True)
    runner.start()
    deadline = time.time() + 240
    while not list(Path(out).glob("_runs/*/attempts/*")):  # a chunk is in progress
        assert time.time() < deadline and runner.is_alive(), "no chunk started"
        time.sleep(0.05)
    workers = _map_workers()
    assert workers, "no actor process found"
    workers[0].send_signal(signal.SIGKILL)  # the actor dies mid-chunk (as under the OOM killer)
    runner.join(timeout=420)
    assert not runner.is_alive()
    assert result["chunks_done"] == 6 and result["chunks_failed"] == 0
    rep = job_audit(out)
    assert_clean(rep)
    record("actor killed mid-chunk (SIGKILL)", rep)


@pytest.mark.parametrize(("name", "seconds"), [("storage blips (3 s outage)", 3.0),
                                               ("storage down for a whole minute", 60.0)])
def test_storage_outage_is_ridden_out(ray_cluster, archive, proxy, s3_endpoint, name, seconds):
    out = f"s3://fusedet/rel/outage{int(seconds)}"
    cfg = job_config(archive, out, "cluster.actors=1", "cluster.chunks_in_flight=1", endpoint=proxy.url,
               out_endpoint=proxy.url)
    refused = proxy.refused
    # The server itself, not through the proxy.
    upstream = fsspec.filesystem("s3", endpoint_url=s3_endpoint, skip_instance_cache=True)

    def chunk_started() -> bool:  # actors are up and reading and writing chunks
        upstream.invalidate_cache()
        return bool(upstream.glob(f"{out}/_runs/*/attempts/*"))

    outage = proxy.outage(seconds, when=chunk_started)
    result = run_job(cfg)
    outage.join()
    assert proxy.refused > refused, "the outage hit no request: nothing was tested"
    assert result["chunks_failed"] == 0 and result["chunks_done"] == 6, result["errors"]
    rep = job_audit(out, proxy.url)
    assert_clean(rep)
    record(name, rep)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """A local archive: two good pairs and one of every bad input an operator has seen; → (root, expected)."""
    root = tmp_path_factory.mktemp("hostile")
    (root / "v").mkdir()

    def pair(name, rgb_kw=None, ir_kw=None):
        rgb = write_raw(str(root / "v" / f"{name}_rgb.mp4"), **({"n": 50, "size": (320, 256)} | (rgb_kw or {})))
        ir = write_raw(str(root / "v" / f"{name}_ir.mp4"), **({"n": 50, "size": (160, 128), "gray": True}
                                                                 | (ir_kw or {})))
        return f"v/{Path(rgb).name}", f"v/{Path(ir).name}"

    rows = []
    t = "2026-06-01T10:00:00"
    rows.append(["good1", "camA", *pair("good1"), t])
    rows.append(["good2", "camB", *pair("good2"), t])
    write_resolution_change(str(root / "v" / "reschange_rgb.ts"), n=50, sizes=((320, 256), (384, 288)))
    rows.append(["reschange", "camA", "v/reschange_rgb.ts", pair("reschange")[1], t])
    rgb, ir = pair("trunc", rgb_kw={"options": {"movflags": "faststart"}})
    truncate(str(root / rgb), 0.55)
    rows.append(["trunc", "camA", rgb, ir, t])
    rows.append(["irfps", "camA", *pair("irfps", ir_kw={"n": 20, "fps": 10}), t])
    rows.append(["irshort", "camA", *pair("irshort", ir_kw={"n": 25}), t])
    rows.append(["irlate", "camA", *pair("irlate", ir_kw={"start_s": 0.5}), t])
    rgb, ir = pair("irbroken")
    (root / ir).write_bytes(b"\x00" * 4096)
    rows.append(["irbroken", "camA", rgb, ir, t])
    g_rgb, g_ir = "v/good1_rgb.mp4", "v/good1_ir.mp4"
    rows.append(["escape1", "../../../../escaped", g_rgb, g_ir, t])
    rows.append(["../../x", "camA", g_rgb, g_ir, t])
    rows.append(["eq", "cam=1", g_rgb, g_ir, t])
    rows.append(["slash", "a/b", g_rgb, g_ir, t])
    rows.append(["good1", "camA", g_rgb, g_ir, t])  # duplicate video_id
    write_raw(str(root / "v" / "rawh264_rgb.h264"), n=50, size=(320, 256), fmt="h264")  # an NVR's export
    rows.append(["rawh264", "camA", "v/rawh264_rgb.h264", pair("rawh264")[1], t])
    vfr = {"n": 50, "times_s": np.r_[np.arange(30) / 30, 1 + np.arange(20) / 10]}  # 30 fps, then 10 fps
    rows.append(["vfr", "camA", *pair("vfr", rgb_kw=vfr, ir_kw=vfr), t])
    with open(root / "manifest.csv", "w", newline="") as f:
        csv.writer(f).writerows([["video_id", "camera_id", "rgb_uri", "ir_uri", "start_time"], *rows])
    # (video_id or manifest line, error_type, which file the row must name)
    expected = {
        "trunc": ("PartialPair", "trunc_rgb.mp4"), "irfps": ("PartialPair", "irfps_ir.mp4"),
        "irshort": ("PartialPair", "irshort_ir.mp4"), "irbroken": ("VideoError", "irbroken_ir.mp4"),
        "line 10": ("BadManifestRow", "manifest.csv"), "line 11": ("BadManifestRow", "manifest.csv"),
        "line 12": ("BadManifestRow", "manifest.csv"), "line 13": ("BadManifestRow", "manifest.csv"),
        "line 14": ("BadManifestRow", "manifest.csv"), "rawh264": ("VideoError", "rawh264_rgb.h264"),
        "vfr": ("PartialPair", "vfr_rgb.mp4")}
    return root, expected


def test_every_bad_input_is_reported_and_nothing_escapes(ray_cluster, hostile, tmp_path):
    root, expected = hostile
    out = tmp_path / "nested" / "out"
    result = run_job(job_config(str(root), str(out), "cluster.actors=1"))
    assert exit_status(result) == 1  # something failed: the exit status says so
    errors = [e for e in result["errors"] if e["severity"] == "error"]
    for key, (kind, file) in expected.items():
        hits = [e for e in errors if (e["video_id"] == key or e["uri"].endswith(key)) and e["error_type"] == kind]
        assert hits and all(file in e["uri"] for e in hits), (key, kind, [e for e in errors if key in str(e)])
    warnings = {(e["video_id"], e["error_type"]) for e in result["errors"] if e["severity"] == "warning"}
    assert {("irlate", "StartOffset"), ("irfps", "FpsMismatch"), ("irshort", "DurationMismatch")} <= warnings
    chunks = {(c["video_id"], c["status"]) for c in result["status"]}
    assert ("reschange", "done") in chunks and ("irlate", "done") in chunks  # handled, not failed
    frames = pq.read_table(out / "frames", partitioning=None).to_pandas()
    assert set(frames.groupby("video_id").size().loc[["good1", "good2", "reschange", "irlate"]]) == {50}
    sizes = pq.read_table(out / "detections", partitioning=None, filters=[("video_id", "=", "reschange")]).to_pandas()
    outside = [p for p in tmp_path.rglob("*") if p.is_file() and out not in p.parents]
    assert not outside, outside  # nothing written outside the output root
    assert not list(root.rglob("*.parquet")) and not (root.parent / "escaped").exists()
    rep = job_audit(str(out))
    assert not rep["duplicates"] and not rep["stray"] and not rep["incomplete"] and not rep["off_plan"]
    assert all("(reported" in p for p in rep["partial"]) and rep["partial"]
    assert sizes.empty or set(sizes["img_w"]) <= {320, 384}
    reported = sum(any((e["video_id"] == k or e["uri"].endswith(k)) for e in errors) for k in expected)
    record("every bad input", rep, bad=len(expected), reported=reported)


def test_naming_mode_keeps_same_names_in_other_folders_apart(ray_cluster, tmp_path):
    for sub in ("a", "b"):
        (tmp_path / "arch" / "cam01" / sub).mkdir(parents=True)
        write_raw(str(tmp_path / "arch" / "cam01" / sub / "dup_rgb.mp4"), n=25, size=(320, 256))
        write_raw(str(tmp_path / "arch" / "cam01" / sub / "dup_ir.mp4"), n=25, size=(160, 128), gray=True)
    result = run_job(job_config(str(tmp_path / "arch"), str(tmp_path / "out"), "input.manifest=", "cluster.actors=1"))
    assert sorted({s["video_id"] for s in result["status"]}) == ["a~dup", "b~dup"]
    assert result["chunks_done"] == 2 and exit_status(result) == 0


def test_reliability_md_rows_are_what_this_module_measured():
    check_rows(SCENARIOS)
