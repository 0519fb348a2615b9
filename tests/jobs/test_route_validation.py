"""An operator validates the adaptive routes on labelled pairs from their own cameras and stamps their copies of
the models (`benchmarks/eval_adaptive.py val_data=...`): the figures land in the models' metadata, the job's
preflight reads them back, and the shipped models are left alone."""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from fusion.data.generate import DatasetSpec, write_dataset

ROOT = Path(__file__).resolve().parents[2]


def test_validating_on_your_own_pairs_stamps_your_models(tmp_path):
    sys.path.insert(0, str(ROOT))
    from benchmarks.eval_adaptive import main
    from jobs.preflight import model_meta

    data = tmp_path / "cams"
    write_dataset(DatasetSpec(out=str(data), n=12, layout="llvip", split="test", seed=9, rgb_size=(320, 256),
                              ir_size=(160, 128), workers=1))
    models = tmp_path / "models"
    models.mkdir()
    for name in ("mid_n", "rgb_n", "ir_n"):
        for ext in (".pt", ".onnx"):
            shutil.copy(ROOT / "models" / f"{name}{ext}", models / f"{name}{ext}")
    shipped = (ROOT / "models" / "mid_n.onnx").read_bytes()
    out = tmp_path / "routes.json"
    assert main([f"val_data={data}", "clips=0", "stamp=true", f"models={models}", f"out={out}", "group=4",
                 "resamples=20", "min_clips=2", "size=[320,256]"]) == 0
    result = json.loads(out.read_text())
    fused, rgb = result["validated"]["fused"], result["validated"]["rgb"]
    assert sum(fused["frames"]) == 12 and max(fused["clips"]) <= 3  # 12 pairs in groups of 4
    assert len(rgb["loss_upper"]) == len(fused["edges"]) - 1 and "loss_upper" not in fused
    assert all(m == "fused" for r in result["routes"].values() for m in r["modes"])  # 12 pairs prove nothing
    runs = set()
    for f in (models / "mid_n.onnx", models / "mid_n.pt", models / "rgb_n.onnx", models / "ir_n.pt"):
        _, validated = model_meta(f)
        assert validated["frames"] == fused["frames"] and str(data) in validated["source"]
        assert validated["generated"] is False  # your own pairs: the job routes by them by default
        runs.add(validated["run"])
    assert len(runs) == 1 and runs != {None}  # one run id: the bounds hold beside this fused model only
    assert (ROOT / "models" / "mid_n.onnx").read_bytes() == shipped


def test_nothing_to_validate_on_is_a_one_line_error(tmp_path, capsys):
    sys.path.insert(0, str(ROOT))
    from benchmarks.eval_adaptive import main

    assert main(["clips=0"]) == 2
    assert "nothing to validate on" in capsys.readouterr().err
    assert main([f"val_data={tmp_path}/nope", "clips=0"]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{tmp_path}/nope" in err and len(err.splitlines()) == 1


def test_clip_cache_is_per_clip_and_reused_by_larger_and_shifted_sets(tmp_path, monkeypatch):
    """Validation sets grow by clips scored elsewhere: clip k of seed s is clip k - 2 of seed s + 2 (same seed,
    same day/night direction), so only clips never scored are run; a cached clip is renumbered for its set."""
    sys.path.insert(0, str(ROOT))
    from benchmarks import adaptive_frames as af
    from benchmarks import eval_adaptive as ev

    spec = ev.EvalSpec(clips=2, seconds=0.2, fps=5, size=(160, 128), cache=str(tmp_path / "c" / "clip"))
    run = af.clip_parts
    ran = []
    monkeypatch.setattr(af, "clip_parts", lambda s, seed, ks, tmp: ran.append((seed, ks)) or run(s, seed, ks, tmp))
    first = af.cached_clips(spec, 10, 2, str(tmp_path))
    assert ran == [(10, [0, 1])] and {f["clip"] for f in first} == {0, 1}
    more = af.cached_clips(spec, 10, 3, str(tmp_path))
    assert ran[1:] == [(10, [2])]
    shifted = af.cached_clips(spec, 12, 2, str(tmp_path))  # seeds 12 (clip 2 above) and 13 (new, night->day)
    assert ran[2:] == [(12, [1])]
    same = [f for f in more if f["clip"] == 2]
    assert [f["clip"] for f in shifted[:len(same)]] == [0] * len(same)
    assert [f["brightness"] for f in shifted[:len(same)]] == [f["brightness"] for f in same]
    assert len(list((tmp_path / "c").glob("clip.*.pt"))) == 4


def test_a_run_cut_short_keeps_the_clips_it_finished(tmp_path, monkeypatch):
    """A device call has a time limit: each clip is cached as soon as it is scored, not when the set is done."""
    sys.path.insert(0, str(ROOT))
    from benchmarks import adaptive_frames as af
    from benchmarks import eval_adaptive as ev

    spec = ev.EvalSpec(clips=2, seconds=0.2, fps=5, size=(160, 128), cache=str(tmp_path / "c" / "clip"))
    clip = af._clip_args

    def second_fails(args):
        if args[2] == 1:
            raise TimeoutError("cut short")
        return clip(args)

    monkeypatch.setattr(af, "_clip_args", second_fails)
    with pytest.raises(TimeoutError):
        af.cached_clips(spec, 10, 2, str(tmp_path))
    assert [p.name.split(".")[1] for p in (tmp_path / "c").glob("clip.*.pt")] == ["10"]


def test_torch_backend_scores_as_onnx_runtime_and_caches_apart(tmp_path):
    """backend=torch (device=cuda on a GPU machine) scores validation clips in a fraction of the CPU time; it runs the
    checkpoints beside the ONNX graphs, so its matches are ONNX Runtime's, and its cache files are its own."""
    sys.path.insert(0, str(ROOT))
    from benchmarks import adaptive_frames as af
    from benchmarks import eval_adaptive as ev

    common = dict(clips=1, seconds=0.2, fps=5, size=(160, 128), cache=str(tmp_path / "c" / "clip"))
    frames = {b: af.cached_clips(ev.EvalSpec(backend=b, **common), 10, 1, str(tmp_path))
              for b in ("onnxruntime", "torch")}
    assert len(list((tmp_path / "c").glob("clip.*.pt"))) == 2
    for a, b in zip(frames["onnxruntime"], frames["torch"], strict=True):
        for m in af.MODELS:
            (tp_a, s_a, _, _), (tp_b, s_b, _, _) = a["rows"][m], b["rows"][m]
            ka, kb = s_a > 0.05, s_b > 0.05  # low-score boxes may trade places at the NMS cut; scored ones agree
            # the ONNX graph folds BatchNorm into the convolutions before storing fp16; the checkpoint stores both
            # in fp16: scores differ by up to ~0.005
            assert np.allclose(np.sort(s_a[ka]), np.sort(s_b[kb]), atol=0.01)
            assert tp_a[ka, 0].sum() == tp_b[kb, 0].sum()  # the same true positives at IoU 0.5


def test_the_policies_are_scored_per_bin_and_per_clip_on_the_test_clips(tmp_path):
    """Where a route loses is in a bin or a clip, not the overall figure: each policy carries mAP50 per brightness bin
    and per test clip, and always-fused's per bin is the test clips' own fused figure per bin (validate's figures)."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.eval_adaptive import main

    out = tmp_path / "a.json"
    assert main(["clips=2", "val_clips=3", "seconds=0.6", "fps=5", "size=[160,128]", f"out={out}",
                 f"plot={tmp_path / 'a.png'}", "resamples=5"]) == 0
    result = json.loads(out.read_text())
    bins = len(result["spec"]["edges"]) - 1
    for name, policy in result["policies"].items():
        assert len(policy["mAP50_by_bin"]) == bins and len(policy["mAP50_by_clip"]) == 2, name
    fused = result["policies"]["always fused"]
    np.testing.assert_allclose(fused["mAP50_by_bin"], result["test_by_bin"]["fused"]["mAP50"], atol=1e-4)
    assert result["policies"]["adaptive, the job's defaults"]["mAP50_by_clip"] == fused["mAP50_by_clip"]
    assert any(v == v for v in fused["mAP50_by_bin"]) and all(v == v for v in fused["mAP50_by_clip"])  # scored


def test_explain_clip_scores_the_clip_eval_adaptive_scores_and_counts_objects_cut_by_the_frame(tmp_path):
    """`explain_clip.py` renders clip k of a seed as the evaluation does: its overall mAP50 per engine is the
    evaluation's own on that clip (another code path), its bins add up, and a box reaching the border is 'at edge'."""
    sys.path.insert(0, str(ROOT))
    from benchmarks import adaptive_frames as af
    from benchmarks import eval_adaptive as ev
    from benchmarks.explain_clip import main
    from fusion.evaluate import touches_edge

    assert touches_edge((0, 10, 50, 60), (640, 512)) and touches_edge((10, 10, 635, 60), (640, 512))
    assert not touches_edge((10, 10, 600, 500), (640, 512))
    common = dict(seconds=0.6, fps=5, size=(160, 128))
    out = tmp_path / "e.json"
    assert main(["seed=20", "clip=1", *(f"{k}={v}" for k, v in common.items() if k != "size"), "size=[160,128]",
                 f"out={out}", "frames=[0,2]", f"plot={tmp_path / 'e.png'}"]) == 0
    bins = json.loads(out.read_text())["bins"]
    frames = af.run_clips(ev.EvalSpec(clips=1, **common), 20, [1], str(tmp_path))
    for m in af.MODELS:
        np.testing.assert_allclose(bins["overall"][m]["mAP50"], ev._mAP50([f["rows"][m] for f in frames]), atol=1e-9)
    parts = [b for name, b in bins.items() if name != "overall"]
    assert sum(b["frames"] for b in parts) == bins["overall"]["frames"] == len(frames) == 3
    assert sum(b["targets"] for b in parts) == bins["overall"]["targets"] > 0
    assert 0 <= bins["overall"]["targets_at_edge"] <= bins["overall"]["targets"]
    assert (tmp_path / "e.png").stat().st_size > 0
    assert main(["seed=20", "clip=1", "seconds=0.6", "fps=5", "size=[160,128]", "frames=[3]"]) == 2  # 3 frames: 0-2
