"""Fault tolerance: a GPU node dies mid-run and another joins (what an autoscaler does); the job finishes with
every chunk written exactly once and no failures. Real Ray nodes via ray.cluster_utils.Cluster."""

import threading
import time
from pathlib import Path

import pytest

from fusion.config import load_config
from fusion.data.generate import ArchiveSpec, write_archive
from jobs.audit import AuditConfig, audit
from jobs.config import JobConfig
from jobs.detect import main as run_job

from .test_reliability import record

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_node_loss_mid_run_is_survived(tmp_path):
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
