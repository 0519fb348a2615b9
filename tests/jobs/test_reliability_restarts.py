"""Fault injection around runs: a node lost mid-run, the driver killed or interrupted and the job re-run, two runs at
once, a re-run with other chunk settings. Each ends with the same audit as test_reliability.py, whose helpers and
RELIABILITY.md rows it shares (tests/jobs/reliability.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from fusion.data.generate import ArchiveSpec, write_archive
from jobs.detect import exit_status
from jobs.detect import main as run_job

from .reliability import ROOT, assert_clean, check_rows, job_args, job_audit, job_config, record

pytestmark = [pytest.mark.ray, pytest.mark.slow]
SCENARIOS = ["node removed mid-run", "driver killed, job re-run", "driver interrupted (Ctrl-C)", "two runs at once",
             "re-run with other chunk settings", "same, with output.overwrite=true"]


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
        cfg = job_config(f"{tmp_path}/archive", f"{tmp_path}/out", "cluster.cpus_per_actor=1")
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
        rep = job_audit(str(tmp_path / "out"))
        assert rep["ok"] and rep["written_frames"] == rep["expected_frames"], rep["counts"]
        record("node removed mid-run", rep)
    finally:
        ray.shutdown()
        cluster.shutdown()


def _driver(cfg_args: list[str], ray_address: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "jobs.detect", str(ROOT / "configs" / "job.yaml"),
                             f"cluster.address={ray_address}", *cfg_args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=os.environ | {"PYTHONPATH": str(ROOT)})


def _args(archive: str, out: str, *extra: str) -> list[str]:
    return job_args(archive, out, "cluster.actors=1", "cluster.chunks_in_flight=1", *extra)


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
    result = run_job(job_config(archive, str(out), "cluster.actors=1"))
    assert result["chunks_failed"] == 0 and result["chunks_skipped"] >= 1
    rep = job_audit(str(out))
    assert_clean(rep)
    record(name, rep)


def test_two_runs_at_once(ray_cluster, archive, tmp_path):
    address = ray_cluster.address_info["address"]
    out = tmp_path / "out"
    procs = [_driver(_args(archive, str(out)), address) for _ in range(2)]
    logs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [log[-2000:] for log in logs]
    runs = list((out / "_runs").glob("*/summary.parquet"))
    assert len(runs) == 2  # two run records: ids are unique even for runs started at once
    rep = job_audit(str(out))
    assert_clean(rep)
    record("two runs at once", rep)


def test_rerun_with_other_chunk_settings_is_refused_then_replaced(ray_cluster, archive, tmp_path):
    out = str(tmp_path / "out")
    first = run_job(job_config(archive, out))
    assert first["chunks_done"] == 6
    other = run_job(job_config(archive, out, "chunk.seconds=4"))
    refused = [e for e in other["errors"] if e["error_type"] == "PlanChanged"]
    assert len(refused) == 3 and other["chunks_total"] == 0 and exit_status(other) == 1
    assert "output.overwrite=true" in refused[0]["reason"]
    rep = job_audit(out)
    assert_clean(rep)
    record("re-run with other chunk settings", rep, bad=3, reported=len(refused))
    replaced = run_job(job_config(archive, out, "chunk.seconds=4", "output.overwrite=true"))
    assert replaced["chunks_done"] == 3 and exit_status(replaced) == 0
    rep = job_audit(out)
    assert_clean(rep)
    record("same, with output.overwrite=true", rep)


def test_reliability_md_rows_are_what_this_module_measured():
    check_rows(SCENARIOS)
