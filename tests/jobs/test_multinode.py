"""The local multi-node recipe (cluster/local_multinode.sh): a head and two worker nodes with one logical GPU each;
`ray job submit` (the CLI) runs the job there: one GPU-pinned actor per node, chunks spread evenly."""

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from fusion.data.generate import ArchiveSpec, write_archive

ROOT = Path(__file__).resolve().parents[2]
RAY = str(Path(sys.executable).with_name("ray"))
pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def multinode():
    env = os.environ | {"RAY_AUTH_MODE": "token"}  # the script finds the project's Ray in .venv itself
    try:
        subprocess.run([str(ROOT / "cluster" / "local_multinode.sh"), "start", "2", "1", "6390"], check=True,
                       env=env, timeout=180)
        yield "http://127.0.0.1:6391"
    finally:
        stop = subprocess.run([str(ROOT / "cluster" / "local_multinode.sh"), "stop", "6390"], env=env, timeout=120,
                              capture_output=True, text=True)
        assert stop.returncode == 0 and "stopped" in stop.stdout, stop.stderr


def test_ray_job_submit_cli_one_actor_per_gpu_node(multinode, tmp_path):
    write_archive(ArchiveSpec(out=str(tmp_path / "archive"), clips=2, seconds=4.0, rgb_size=(320, 256),
                              ir_size=(160, 128)))
    out = tmp_path / "out"
    # Exactly the README's command: the project ships as the job's working dir (configs and models by relative
    # path) with the runtime env of cluster/runtime_env.yaml.
    cmd = [RAY, "job", "submit", "--address", multinode, "--working-dir", ".", "--runtime-env",
           "cluster/runtime_env.yaml", "--",
           sys.executable, "-m", "jobs.detect", "configs/job.yaml", "cluster.address=auto",
           "cluster.actors=2", "cluster.gpus_per_actor=1", "engine.threads=1", f"input.archive={tmp_path}/archive",
           f"output.path={out}", "chunk.seconds=2", "engine.size=[320,256]", "modality.mode=fused"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT,
                         env=os.environ | {"RAY_AUTH_MODE": "token"})
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    chunks = pq.read_table(next((out / "_runs").glob("*/chunks.parquet"))).to_pylist()
    assert len(chunks) == 4 and all(c["status"] == "done" for c in chunks)
    per_node = {}
    for c in chunks:
        per_node.setdefault(c["node_id"], set()).add(c["pid"])
    assert len(per_node) == 2  # both GPU nodes worked ...
    assert all(len(pids) == 1 for pids in per_node.values())  # ... each with exactly one actor (its GPU)
    assert sorted(sum(c["node_id"] == n for c in chunks) for n in per_node) == [2, 2]  # evenly
