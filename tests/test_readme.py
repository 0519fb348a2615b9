"""The README, checked the way a newcomer meets it: every command in its bash blocks runs as written, in order, in a
copy of the project (its tracked files and the installed .venv), and its configs and file references hold."""

import importlib
import re
import shutil
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from fusion.config import load_config
from fusion.train import TrainConfig
from jobs.config import JobConfig

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
NOT_RUN = {"make test": "this suite is what it runs"}


def readme_commands() -> list[str]:
    """Commands of the ```bash blocks: comments dropped, `\\`-continued lines joined."""
    out = []
    for block in re.findall(r"```bash\n(.*?)```", README, re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            cmd = re.split(r"\s{2,}#|^\s*#", line)[0].strip()
            if cmd:
                out.append(cmd)
    return out


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A copy of the tracked files (times kept, so make sees the install stamp as current) + the installed .venv."""
    dst = tmp_path_factory.mktemp("readme") / "fusedet"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    for f in filter(None, files):
        target = dst / f.decode()
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f.decode(), target)
    (dst / ".venv").symlink_to(ROOT / ".venv")
    return dst


@pytest.mark.slow
@pytest.mark.ray
def test_every_readme_command_runs_as_written(project):
    ran, failures = [], []
    for cmd in readme_commands():
        if cmd in NOT_RUN:
            continue
        run = subprocess.run(["bash", "-c", cmd], cwd=project, capture_output=True, text=True, timeout=900)
        ran.append(cmd)
        if run.returncode != 0:
            failures.append(f"$ {cmd}\n(exit {run.returncode})\n{(run.stdout + run.stderr)[-2500:]}")
        if cmd.startswith("make demo"):  # the demo ends with commands to try next: they run as printed, too
            hints = re.findall(r"^  \$ (.+)$", run.stdout, re.M)
            failures += [] if hints else ["make demo printed no commands to try next"]
            for hint in hints:
                h = subprocess.run(["bash", "-c", hint], cwd=project, capture_output=True, text=True, timeout=300)
                if h.returncode != 0:
                    failures.append(f"$ {hint}  (printed by make demo)\n(exit {h.returncode})\n{h.stderr[-1500:]}")
    assert not failures, "\n\n".join(failures)
    assert any(c.startswith("make demo") for c in ran) and any("ray job submit" in c for c in ran)
    # What the commands promise: the demo's output, a report, a clip, and one actor per GPU node on the cluster.
    out = project / "demo-output"
    assert list((out / "detections" / "detections").rglob("*.parquet"))
    assert list((out / "detections" / "_runs").glob("*/report.html")) and (out / "clip.mp4").exists()
    chunks = pq.read_table(next((out / "cluster-out" / "_runs").glob("*/chunks.parquet"))).to_pylist()
    per_node: dict[str, set] = {}
    for c in chunks:
        per_node.setdefault(c["node_id"], set()).add(c["pid"])
    assert len(per_node) == 2 and all(len(p) == 1 for p in per_node.values())


def test_help_is_the_config_and_mistakes_are_one_line():
    from jobs.detect import cli

    run = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-m", "jobs.detect", "--help"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "engine.fused_model = models/mid_n.onnx" in run.stdout
    assert "modality.max_loss" in run.stdout and "storage.attempts" in run.stdout
    for bad, key in (("cluster.actors=0", "cluster.actors"), ("engine.batch=x", "engine.batch"),
                     ("nope.key=1", "nope"), ("output.run_id=../x", "output.run_id")):
        result = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-m", "jobs.detect", "configs/job.yaml",
                                 bad], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert result.returncode == 2 and key in result.stderr, (bad, result.stderr)
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert cli(["configs/job.yaml", "engine.fused_model=/nope/m.onnx", "output.path=/tmp/fusedet-x"]) == 2


@pytest.mark.parametrize("module", ["jobs.detect", "jobs.query", "jobs.render", "jobs.report", "jobs.audit",
                                    "fusion.train", "fusion.evaluate", "fusion.data.generate", "trt.export",
                                    "trt.pipeline", "trt.build", "trt.bench"])
def test_every_command_explains_itself(module, capsys):
    mod = importlib.import_module(module)
    main = getattr(mod, "cli", None) or mod.main  # what `python -m` calls
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    assert f"python -m {module}" in text and "Keys" in text


def test_every_python_module_command_exists():
    modules = sorted(set(re.findall(r"python -m ([a-z_.]+)", README)))
    assert {"jobs.detect", "jobs.query", "fusion.train", "trt.build", "trt.pipeline", "jobs.report"} <= set(modules)
    for name in modules:
        mod = importlib.import_module(name)
        assert callable(getattr(mod, "main", None) or getattr(mod, "cli", None)), name


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_load(path):
    cls = JobConfig if path.name.startswith("job") else TrainConfig
    cfg = load_config(cls, path)
    assert cfg == load_config(cls, path)  # frozen, deterministic


def test_referenced_files_exist():
    for rel in re.findall(r"`((?:configs|cluster|models|docs|benchmarks|jobs|fusion|trt)/[\w./-]+\.\w+)`", README):
        assert (ROOT / rel).exists(), rel
    assert "make demo" in README and "make test" in README
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("make test")
    assert (ROOT / "RELIABILITY.md").exists() and (ROOT / "DEVELOPERS.md").exists()
