"""The README's commands point at real modules and its configs load (Polygraphy-style README checks)."""

import importlib
import re
from pathlib import Path

import pytest

from fusion.config import load_config
from fusion.train import TrainConfig
from jobs.config import JobConfig

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_every_python_module_command_exists():
    modules = sorted(set(re.findall(r"python -m ([a-z_.]+)", README)))
    assert {"jobs.detect", "jobs.query", "fusion.train", "trt.build", "trt.pipeline"} <= set(modules)
    for name in modules:
        mod = importlib.import_module(name)
        assert callable(getattr(mod, "main", None) or getattr(mod, "cli", None)), name


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_load(path):
    cls = JobConfig if path.name.startswith("job") else TrainConfig
    cfg = load_config(cls, path)
    assert cfg == load_config(cls, path)  # frozen, deterministic


def test_referenced_files_exist():
    for rel in re.findall(r"`((?:configs|cluster|models|docs|benchmarks)/[\w./-]+\.\w+)`", README):
        assert (ROOT / rel).exists(), rel
    assert "make demo" in README and "make test" in README
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("make test")
