"""Pretrained initialisation from checkpoints ultralytics itself writes (YOLO11 / YOLOv8, n and s), into every
architecture: every backbone tensor lands, the report accounts for every tensor, pickled files need trust."""

import json
from pathlib import Path

import pytest
import torch

from fusion.checkpoint import CheckpointError
from fusion.models.build import ModelConfig, build_model
from fusion.pretrained import YOLO11, load_pretrained, read_state

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    from ultralytics import YOLO

    out = tmp_path_factory.mktemp("yolo")
    paths = {}
    for name in ("yolo11n", "yolo11s", "yolov8n"):
        YOLO(f"{name}.yaml").save(out / f"{name}.pt")  # what `yolo train` writes: a pickled model
        paths[name] = out / f"{name}.pt"
    state = out / "yolo11n.state.pt"  # a plain state dict: loads with weights_only=True
    torch.save(YOLO("yolo11n.yaml").model.state_dict(), state)
    paths["state"] = state
    return paths


@pytest.mark.parametrize("arch", ["mid", "early", "decision", "rgb", "ir"])
@pytest.mark.parametrize("scale", ["n", "s"])
def test_every_backbone_and_neck_tensor_of_yolo11_lands(checkpoints, arch, scale):
    model = build_model(ModelConfig(arch=arch, scale=scale))
    before = model.state_dict()
    report = load_pretrained(model, checkpoints[f"yolo11{scale}"], arch=arch, trust=True)
    parts = set(report.loaded) | set(report.reshaped) | set(report.new)
    backbones = {m for m in parts if "backbone" in m or ".neck" in m or m.startswith("neck")}
    assert backbones and all(report.new[m] == 0 for m in backbones), report.text()
    total = sum(report.loaded.values()) + sum(report.reshaped.values()) + sum(report.new.values())
    assert total == sum(1 for k in before if not k.endswith("num_batches_tracked"))  # every tensor accounted for
    theirs, _ = read_state(checkpoints[f"yolo11{scale}"], trust=True)
    ours = model.state_dict()
    prefix = {"mid": "rgb_backbone", "decision": "rgb_detector.backbone"}.get(arch, "backbone")
    compared = 0
    for idx, name in YOLO11.items():  # every backbone tensor is the checkpoint's (the stem adapted for IR/early)
        for key, value in theirs.items():
            target = f"{prefix}.{name}.{key.removeprefix(f'model.{idx}.')}"
            if key.startswith(f"model.{idx}.") and target in ours and ours[target].shape == value.shape:
                torch.testing.assert_close(ours[target], value.to(ours[target].dtype))
                compared += 1
    assert compared >= 150
    if arch in ("mid", "decision", "ir", "early"):
        assert sum(report.reshaped.values()) >= 1  # the IR / early stem comes from the RGB stem


def test_ir_stem_is_the_mean_of_the_rgb_stem(checkpoints):
    from ultralytics import YOLO

    model = build_model(ModelConfig(arch="mid"))
    load_pretrained(model, checkpoints["yolo11n"], arch="mid", trust=True)
    rgb = YOLO(str(checkpoints["yolo11n"])).model.model[0].conv.weight.float()
    torch.testing.assert_close(model.ir_backbone.stem[0].conv.weight, rgb.mean(1, keepdim=True))
    torch.testing.assert_close(model.rgb_backbone.stem[0].conv.weight, rgb)


def test_yolov8_fills_what_fits_and_reports_the_rest(checkpoints):
    model = build_model(ModelConfig(arch="mid"))
    report = load_pretrained(model, checkpoints["yolov8n"], arch="mid", trust=True)
    assert report.family == "yolov8" and report.loaded["rgb_backbone.stem"] > 0
    assert report.new["rgb_backbone.p3"] > 0  # C2f blocks have no C3k2 counterpart: fresh, and said so
    assert "yolov8" in report.text() and "new" in report.text()


def test_pickled_checkpoints_need_trust_and_state_dicts_do_not(checkpoints):
    with pytest.raises(CheckpointError, match="pretrained_trust=true"):
        load_pretrained(build_model(ModelConfig(arch="rgb")), checkpoints["yolo11n"], arch="rgb")
    report = load_pretrained(build_model(ModelConfig(arch="rgb")), checkpoints["state"], arch="rgb")
    assert report.family == "yolo11" and report.new["backbone.p5"] == 0
    with pytest.raises(CheckpointError, match="not found"):
        load_pretrained(build_model(ModelConfig(arch="rgb")), "/nope.pt", arch="rgb")


def test_training_starts_from_the_checkpoint_and_records_the_report(checkpoints, tmp_path, capsys):
    from fusion.train import main

    out = tmp_path / "run"
    assert main([str(ROOT / "configs" / "mid_n.yaml"), "epochs=1", "data.n_train=4", "data.n_val=2", "batch=2",
                 "workers=0", "device=cpu", "data.size=[160,128]", f"out={out}",
                 f"pretrained={checkpoints['yolo11n']}", "pretrained_trust=true"]) == 0
    printed = capsys.readouterr().out
    assert "pretrained yolo11 weights" in printed and "rgb_backbone.p5" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["pretrained"]["family"] == "yolo11" and metrics["classes"] == ["person", "vehicle"]
