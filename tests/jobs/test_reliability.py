"""Fault injection, each scenario ending with the same audit: every planned frame written, none twice, every bad input
in the errors table with its URI. Real local Ray, the moto S3 server behind a proxy that can go down, real files.

RELIABILITY.md is generated from these results: `FUSEDET_WRITE_RELIABILITY=1 pytest tests/jobs/test_reliability.py`
rewrites it; otherwise the last test checks the committed file still says what the suite measures.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import fsspec
import psutil
import pyarrow.parquet as pq
import pytest

from fusion.config import load_config
from fusion.data.generate import ArchiveSpec, write_archive
from jobs.audit import AuditConfig, audit
from jobs.config import JobConfig
from jobs.detect import exit_status
from jobs.detect import main as run_job

from .faults import FlakyProxy, truncate, write_raw, write_resolution_change

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.ray, pytest.mark.slow]
RESULTS: dict[str, dict] = {}
ORDER = ["clean run", "actor killed mid-chunk (SIGKILL)", "node removed mid-run", "storage blips (3 s outage)",
         "storage down for a whole minute", "every bad input", "driver killed, job re-run",
         "driver interrupted (Ctrl-C)", "two runs at once", "re-run with other chunk settings",
         "same, with output.overwrite=true"]


@pytest.fixture(scope="module")
def proxy(s3_endpoint):
    return FlakyProxy(s3_endpoint)


@pytest.fixture(scope="module")
def archive(s3_endpoint):
    url = "s3://fusedet/rel-archive"
    write_archive(ArchiveSpec(out=url, clips=3, seconds=4.0, fps=25, seed=31, rgb_size=(320, 256), ir_size=(160, 128)))
    return url


def test_node_loss_mid_run_is_survived(tmp_path):
    """A GPU node dies mid-run and another joins (what an autoscaler does); the job finishes with every chunk written
    exactly once. Real Ray nodes (ray.cluster_utils.Cluster): first in this file, before its module Ray starts."""
    import ray
    from ray.cluster_utils import Cluster

    write_archive(ArchiveSpec(out=str(tmp_path / "archive"), clips=3, seconds=4.0, rgb_size=(320, 256),
                              ir_size=(160, 128)))
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "num_gpus": 0})
    workers = [cluster.add_node(num_cpus=2, num_gpus=1) for _ in range(2)]
    ray.init(address=cluster.address)
    try:
        cfg = load_config(JobConfig, ROOT / "configs" / "job.yaml", [
            f"input.archive={tmp_path}/archive", f"output.path={tmp_path}/out", "chunk.seconds=2",
            "engine.size=[320,256]", f"engine.fused_model={ROOT}/models/mid_n.onnx", "modality.mode=fused",
            "engine.threads=1", "cluster.actors=2", "cluster.gpus_per_actor=1", "cluster.cpus_per_actor=1",
            "cluster.memory_gb=1"])
        result: dict = {}
        runner = threading.Thread(target=lambda: result.update(run_job(cfg)), daemon=True)
        runner.start()
        frames = tmp_path / "out" / "frames"
        deadline = time.time() + 240
        while not list(frames.rglob("*.parquet")):  # wait until work is under way
            assert time.time() < deadline, "no chunk finished"
            time.sleep(0.2)
        done_before = len(list(frames.rglob("*.parquet")))
        cluster.remove_node(workers[1])  # a GPU node dies with its actor (and maybe an in-flight chunk)
        assert done_before < 6, "the job finished before the node was removed: nothing was tested"
        cluster.add_node(num_cpus=2, num_gpus=1)  # the replacement the autoscaler would bring
        runner.join(timeout=420)
        assert not runner.is_alive(), "job did not finish after the node loss"
        # A chunk whose files were written just before its node died comes back from Ray's retry as `skipped`
        # (its output exists): done + skipped covers the plan, and the audit below proves each key is written once.
        assert result["chunks_total"] == 6 and result["chunks_failed"] == 0 and result["chunks_partial"] == 0
        assert result["chunks_done"] + result["chunks_skipped"] == 6, result["status"]
        assert len(list(frames.rglob("*.parquet"))) == 6
        assert len(list((tmp_path / "out" / "detections").rglob("*.parquet"))) == 6
        rep = audit(str(tmp_path / "out"), AuditConfig())
        assert rep["ok"] and rep["written_frames"] == rep["expected_frames"], rep["counts"]
        record("node removed mid-run", rep)
    finally:
        ray.shutdown()
        cluster.shutdown()


def _cfg(archive: str, out: str, *overrides: str, endpoint: str | None = None, out_endpoint: str | None = None
         ) -> JobConfig:
    """Without an endpoint, s3:// goes to the moto server directly (AWS_ENDPOINT_URL); the proxy is opt-in."""
    so = [f"input.storage_options={{endpoint_url: {endpoint}}}"] if endpoint else []
    so += [f"output.storage_options={{endpoint_url: {out_endpoint}}}"] if out_endpoint else []
    return load_config(JobConfig, ROOT / "configs" / "job.yaml", [
        f"input.archive={archive}", f"output.path={out}", *so, "chunk.seconds=2", "engine.size=[320,256]",
        f"engine.fused_model={ROOT}/models/mid_n.onnx", "modality.mode=fused", "engine.threads=1",
        "cluster.actors=2", "cluster.gpus_per_actor=1", "cluster.memory_gb=1", *overrides])


def _audit(out: str, endpoint: str | None = None) -> dict:
    return audit(out, AuditConfig(storage_options={"endpoint_url": endpoint} if endpoint else {}))


def record(name: str, rep: dict, *, bad: int = 0, reported: int = 0) -> None:
    """One row of RELIABILITY.md: the audit's figures after the scenario."""
    hard = ("stray", "unreadable", "incomplete", "orphan_frames", "off_plan", "missing_chunks", "duplicates")
    unreported = [p for k in ("partial", "missing_videos") for p in rep[k] if "NOT reported" in p]
    verdict = "clean" if rep["ok"] else "PROBLEMS" if any(rep[k] for k in hard) or unreported else \
        "clean; shortfalls are the reported bad inputs"
    RESULTS[name] = {"planned": rep["chunks_planned"], "written": rep["chunks_written"],
                     "dup": len(rep["duplicates"]), "frames": f"{rep['written_frames']} / {rep['expected_frames']}",
                     "bad": bad, "reported": reported, "verdict": verdict}
    assert verdict != "PROBLEMS", {k: rep[k] for k in rep["counts"] if rep[k]}


def _assert_clean(rep: dict) -> None:
    problems = {k: rep[k] for k in rep["counts"] if rep[k]}
    assert rep["ok"], problems
    assert rep["written_frames"] == rep["expected_frames"] > 0 and not rep["duplicates"]


def test_clean_run(ray_cluster, archive, proxy):
    out = "s3://fusedet/rel/clean"
    result = run_job(_cfg(archive, out, endpoint=proxy.url, out_endpoint=proxy.url))
    assert result["chunks_done"] == 6 and exit_status(result) == 0
    rep = _audit(out, proxy.url)
    _assert_clean(rep)
    record("clean run", rep)


def _map_workers() -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["cmdline"]) if "ChunkDetector" in " ".join(p.info["cmdline"] or [])]


def test_actor_killed_mid_chunk(ray_cluster, archive, proxy, tmp_path):
    out = str(tmp_path / "out")
    cfg = _cfg(archive, out, "cluster.actors=1", "cluster.chunks_in_flight=1")
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
    rep = _audit(out)
    _assert_clean(rep)
    record("actor killed mid-chunk (SIGKILL)", rep)


@pytest.mark.parametrize(("name", "seconds"), [("storage blips (3 s outage)", 3.0),
                                               ("storage down for a whole minute", 60.0)])
def test_storage_outage_is_ridden_out(ray_cluster, archive, proxy, s3_endpoint, name, seconds):
    out = f"s3://fusedet/rel/outage{int(seconds)}"
    cfg = _cfg(archive, out, "cluster.actors=1", "cluster.chunks_in_flight=1", endpoint=proxy.url,
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
    rep = _audit(out, proxy.url)
    _assert_clean(rep)
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
    with open(root / "manifest.csv", "w", newline="") as f:
        csv.writer(f).writerows([["video_id", "camera_id", "rgb_uri", "ir_uri", "start_time"], *rows])
    # (video_id or manifest line, error_type, which file the row must name)
    expected = {
        "trunc": ("PartialPair", "trunc_rgb.mp4"), "irfps": ("PartialPair", "irfps_ir.mp4"),
        "irshort": ("PartialPair", "irshort_ir.mp4"), "irbroken": ("VideoError", "irbroken_ir.mp4"),
        "line 10": ("BadManifestRow", "manifest.csv"), "line 11": ("BadManifestRow", "manifest.csv"),
        "line 12": ("BadManifestRow", "manifest.csv"), "line 13": ("BadManifestRow", "manifest.csv"),
        "line 14": ("BadManifestRow", "manifest.csv")}
    return root, expected


def test_every_bad_input_is_reported_and_nothing_escapes(ray_cluster, hostile, tmp_path):
    root, expected = hostile
    out = tmp_path / "nested" / "out"
    result = run_job(_cfg(str(root), str(out), "cluster.actors=1"))
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
    rep = _audit(str(out))
    assert not rep["duplicates"] and not rep["stray"] and not rep["incomplete"] and not rep["off_plan"]
    assert all("(reported" in p for p in rep["partial"]) and rep["partial"]
    assert sizes.empty or set(sizes["img_w"]) <= {320, 384}
    reported = sum(any((e["video_id"] == k or e["uri"].endswith(k)) for e in errors) for k in expected)
    record("every bad input", rep, bad=len(expected), reported=reported)


def _driver(cfg_args: list[str], ray_address: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "jobs.detect", str(ROOT / "configs" / "job.yaml"),
                             f"cluster.address={ray_address}", *cfg_args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=os.environ | {"PYTHONPATH": str(ROOT)})


def _args(archive: str, out: str, *extra: str) -> list[str]:
    return [f"input.archive={archive}", f"output.path={out}", "chunk.seconds=2", "engine.size=[320,256]",
            f"engine.fused_model={ROOT}/models/mid_n.onnx", "modality.mode=fused", "engine.threads=1",
            "cluster.actors=1", "cluster.gpus_per_actor=1", "cluster.memory_gb=1", "cluster.chunks_in_flight=1",
            *extra]


def _wait_for_first_chunk(out: Path, proc: subprocess.Popen) -> None:
    deadline = time.time() + 240
    while not list((out / "frames").rglob("*.parquet")):
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        assert time.time() < deadline, "no chunk finished"
        time.sleep(0.1)


@pytest.mark.parametrize(("name", "sig"), [("driver killed, job re-run", signal.SIGKILL),
                                           ("driver interrupted (Ctrl-C)", signal.SIGINT)])
def test_driver_stopped_then_rerun(ray_cluster, archive, tmp_path, name, sig):
    address = ray_cluster.address_info["address"]
    out = tmp_path / "out"
    proc = _driver(_args(archive, str(out)), address)
    _wait_for_first_chunk(out, proc)
    proc.send_signal(sig)
    log = proc.communicate(timeout=120)[0]
    runs = list((out / "_runs").glob("*/summary.parquet"))
    if sig == signal.SIGINT:  # Ctrl-C: what finished is recorded, and the exit status says interrupted
        assert proc.returncode == 130, log[-3000:]
        summary = pq.read_table(runs[0]).to_pylist()[0]
        chunks = pq.read_table(runs[0].with_name("chunks.parquet")).to_pylist()
        assert summary["interrupted"] and len(chunks) == summary["chunks_done"] + summary["chunks_failed"]
    else:
        assert proc.returncode == -signal.SIGKILL and not runs  # killed: no chance to write anything
    result = run_job(_cfg(archive, str(out), "cluster.actors=1"))
    assert result["chunks_failed"] == 0 and result["chunks_skipped"] >= 1
    rep = _audit(str(out))
    _assert_clean(rep)
    record(name, rep)


def test_two_runs_at_once(ray_cluster, archive, tmp_path):
    address = ray_cluster.address_info["address"]
    out = tmp_path / "out"
    procs = [_driver(_args(archive, str(out)), address) for _ in range(2)]
    logs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [log[-2000:] for log in logs]
    runs = list((out / "_runs").glob("*/summary.parquet"))
    assert len(runs) == 2  # two run records: ids are unique even for runs started at once
    rep = _audit(str(out))
    _assert_clean(rep)
    record("two runs at once", rep)


def test_rerun_with_other_chunk_settings_is_refused_then_replaced(ray_cluster, archive, tmp_path):
    out = str(tmp_path / "out")
    first = run_job(_cfg(archive, out))
    assert first["chunks_done"] == 6
    other = run_job(_cfg(archive, out, "chunk.seconds=4"))
    refused = [e for e in other["errors"] if e["error_type"] == "PlanChanged"]
    assert len(refused) == 3 and other["chunks_total"] == 0 and exit_status(other) == 1
    assert "output.overwrite=true" in refused[0]["reason"]
    rep = _audit(out)
    _assert_clean(rep)
    record("re-run with other chunk settings", rep, bad=3, reported=len(refused))
    replaced = run_job(_cfg(archive, out, "chunk.seconds=4", "output.overwrite=true"))
    assert replaced["chunks_done"] == 3 and exit_status(replaced) == 0
    rep = _audit(out)
    _assert_clean(rep)
    record("same, with output.overwrite=true", rep)


def test_naming_mode_keeps_same_names_in_other_folders_apart(ray_cluster, tmp_path):
    for sub in ("a", "b"):
        (tmp_path / "arch" / "cam01" / sub).mkdir(parents=True)
        write_raw(str(tmp_path / "arch" / "cam01" / sub / "dup_rgb.mp4"), n=25, size=(320, 256))
        write_raw(str(tmp_path / "arch" / "cam01" / sub / "dup_ir.mp4"), n=25, size=(160, 128), gray=True)
    result = run_job(_cfg(str(tmp_path / "arch"), str(tmp_path / "out"), "input.manifest=", "cluster.actors=1"))
    assert sorted({s["video_id"] for s in result["status"]}) == ["a~dup", "b~dup"]
    assert result["chunks_done"] == 2 and exit_status(result) == 0


def test_reliability_md_is_what_the_suite_measured():
    if len(RESULTS) < len(ORDER):
        pytest.skip("run the whole suite to compare RELIABILITY.md")
    from .reliability_report import render

    text = render(RESULTS, ORDER)
    path = ROOT / "RELIABILITY.md"
    if os.environ.get("FUSEDET_WRITE_RELIABILITY") == "1":
        path.write_text(text)
    assert path.read_text() == text, "RELIABILITY.md differs from this run: FUSEDET_WRITE_RELIABILITY=1 to update"
