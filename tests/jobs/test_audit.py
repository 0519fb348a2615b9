"""`python -m jobs.audit` on a real output (written by the real actor code, without Ray) and on the same output
after each kind of damage an operator may find: it must be clean first and name every problem after."""

import json
import shutil
from pathlib import Path

import pytest

from fusion.config import load_config, to_dict
from fusion.data.generate import ArchiveSpec, write_archive
from jobs.audit import main as audit_main
from jobs.config import JobConfig
from jobs.detect import plan

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def output(tmp_path_factory):
    """A complete output of a 2-clip archive: plan on the driver, each chunk through ChunkDetector.process."""
    from jobs.actor import ChunkDetector

    root = tmp_path_factory.mktemp("audit")
    write_archive(ArchiveSpec(out=str(root / "archive"), clips=2, seconds=2.0, rgb_size=(320, 256),
                              ir_size=(160, 128), seed=3))
    cfg = load_config(JobConfig, ROOT / "configs" / "job.yaml", [
        f"input.archive={root}/archive", f"output.path={root}/out", "chunk.seconds=1", "engine.size=[320,256]",
        f"engine.fused_model={ROOT}/models/mid_n.onnx", "modality.mode=fused", "engine.threads=1"])
    chunks, errors, failed = plan(cfg, "r1")
    assert len(chunks) == 4 and not errors and not failed
    actor = ChunkDetector(cfg=to_dict(cfg), run_id="r1")
    assert {actor.process(c)["status"] for c in chunks} == {"done"}
    actor.close()
    return root


def _damaged(output, tmp_path, damage) -> Path:
    out = tmp_path / "out"
    shutil.copytree(output / "out", out)
    damage(out)
    return out


def _frames_files(out):
    return sorted((out / "frames").rglob("*.parquet"))


@pytest.mark.parametrize(("name", "damage", "problem"), [
    ("clean", lambda out: None, None),
    ("stray", lambda out: (_frames_files(out)[0].parent / "notes.txt").write_text("x"), "stray"),
    ("tmp leftover", lambda out: (_frames_files(out)[0].parent / "a.parquet.1f2e.tmp").write_bytes(b"x"), "stray"),
    ("unreadable", lambda out: _frames_files(out)[0].write_bytes(b"PAR1 not really"), "unreadable"),
    ("cut short", lambda out: _frames_files(out)[1].unlink(), "incomplete"),
    ("duplicate keys", lambda out: shutil.copy(
        _frames_files(out)[0], _frames_files(out)[0].with_name(_frames_files(out)[0].name.replace(
            ".00000000-", ".00000001-"))), "duplicates"),
    ("missing video", lambda out: [p.unlink() for p in (out / "_plans").rglob("*.json")][:1], "missing_videos"),
])
def test_audit_is_clean_then_names_each_damage(output, tmp_path, capsys, name, damage, problem):
    out = _damaged(output, tmp_path, damage)
    report = tmp_path / "audit.json"
    rc = audit_main([str(out), f"archive={output}/archive", f"out={report}"])
    rep = json.loads(report.read_text())
    text = capsys.readouterr().out
    if problem is None:
        assert rc == 0 and rep["ok"] and rep["written_frames"] == rep["expected_frames"] == 100, text
        assert "OK" in text
    else:
        assert rc == 1 and rep[problem], (problem, rep["counts"])
        assert "PROBLEMS FOUND" in text


def test_audit_of_a_missing_folder_is_a_one_line_usage_error(tmp_path, capsys):
    assert audit_main([str(tmp_path / "nope")]) == 2
    assert "no such output folder" in capsys.readouterr().err
