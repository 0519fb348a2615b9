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


@pytest.mark.parametrize("arch", ["mid", "rgb"])
def test_every_backbone_and_neck_tensor_of_yolov8_lands_in_the_yolov8_family(checkpoints, arch):
    model = build_model(ModelConfig(arch=arch, family="yolov8"))
    report = load_pretrained(model, checkpoints["yolov8n"], arch=arch, trust=True)
    parts = set(report.loaded) | set(report.reshaped) | set(report.new)
    backbones = {m for m in parts if "backbone" in m or "neck" in m}
    assert len(backbones) >= 6 and all(report.new[m] == 0 for m in backbones), report.text()
    assert report.family == "yolov8"


def _trained_like(model: torch.nn.Module) -> torch.nn.Module:
    """Random BatchNorm statistics, as training leaves them: fresh ones (1, 0) would fold into equal biases, which
    the ONNX exporter shares, and keep activations so small that a missing activation hides in the tolerance."""
    torch.manual_seed(0)
    for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.normal_(0, 0.1)
        bn.running_mean.normal_(0, 0.1)
        bn.running_var.uniform_(0.5, 1.5)
    return model


@pytest.fixture(scope="module")
def yolov8_onnx(tmp_path_factory):
    """A YOLOv8n exported the way ultralytics exports (BatchNorm folded into biased convolutions, parameter names
    kept as initializer names), with the model that wrote it."""
    from ultralytics import YOLO

    model = _trained_like(YOLO("yolov8n.yaml").model).fuse().eval()
    path = tmp_path_factory.mktemp("onnx") / "yolov8n.onnx"
    torch.onnx.export(model, (torch.zeros(1, 3, 128, 160),), str(path), input_names=["images"], dynamo=False,
                      opset_version=17)
    return path, model


def _same_features(model, theirs, detect: int) -> None:
    """Our backbone + neck against what ultralytics' Detect (layer `detect`) receives, on one random batch."""
    x = torch.rand(2, 3, 128, 160)
    seen = []  # P3, P4, P5 from the layers before Detect
    hook = theirs.model[detect].register_forward_pre_hook(lambda _m, inputs: seen.extend(t.clone() for t in inputs[0]))
    with torch.no_grad():
        theirs.eval()(x)
        ours = model.eval().neck(model.backbone(x))
    hook.remove()
    for a, b in zip(ours, seen, strict=True):  # (B, C, H/s, W/s) at strides 8, 16, 32
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)  # exact but for float rounding (folded BatchNorm)


def test_an_ultralytics_onnx_export_computes_the_same_features_in_the_yolov8_family(yolov8_onnx):
    path, theirs = yolov8_onnx
    model = build_model(ModelConfig(arch="rgb", family="yolov8", ultralytics_exact=True))
    report = load_pretrained(model, path, arch="rgb")
    assert report.family == "yolov8" and report.new["backbone.p5"] == 0 and report.new["neck.bu5"] == 0
    _same_features(model, theirs, detect=22)


def test_a_yolo11_checkpoint_computes_the_same_features_with_ultralytics_layer_details(tmp_path):
    from ultralytics import YOLO

    theirs = _trained_like(YOLO("yolo11n.yaml").model)
    path = tmp_path / "yolo11n.state.pt"
    torch.save(theirs.state_dict(), path)
    model = build_model(ModelConfig(arch="rgb", ultralytics_exact=True))
    assert "ultralytics_exact" not in load_pretrained(model, path, arch="rgb").text()
    _same_features(model, theirs, detect=23)
    legacy = build_model(ModelConfig(arch="rgb"))  # the shipped models' SPPF and BatchNorm eps: not ultralytics'
    assert "built without model.ultralytics_exact" in load_pretrained(legacy, path, arch="rgb").text()  # said
    with pytest.raises(AssertionError):
        _same_features(legacy, theirs, detect=23)


def test_building_an_ultralytics_yolov8_leaves_our_yolo11_head_alone(checkpoints):
    from fusion.checkpoint import load_checkpoint

    assert checkpoints["yolov8n"]  # ultralytics has built a YOLOv8 (its parser sets Detect.legacy on the class)
    load_checkpoint(ROOT / "models" / "mid_n.pt")  # a YOLO11-family head still has the shipped weights' shape


def test_an_unreadable_onnx_file_is_a_checkpoint_error(tmp_path):
    bad = tmp_path / "weights.onnx"
    bad.write_bytes(b"not a protobuf at all")
    with pytest.raises(CheckpointError, match=r"weights\.onnx"):
        load_pretrained(build_model(ModelConfig(arch="rgb")), bad, arch="rgb")


def test_a_frozen_backbone_stays_as_loaded_and_unknown_modules_are_named(yolov8_onnx, tmp_path):
    from fusion.checkpoint import load_checkpoint
    from fusion.config import ConfigError
    from fusion.train import TrainConfig, freeze, main

    with pytest.raises(ConfigError, match=r"pretrained=.*init=.*one of them"):
        TrainConfig(pretrained="yolo11n.pt", init="models/mid_n.pt")
    with pytest.raises(ConfigError, match=r"no module 'rgb_bakbone'.*rgb_backbone"):
        freeze(build_model(ModelConfig(arch="mid")), ("rgb_bakbone",))
    out = tmp_path / "run"
    assert main([str(ROOT / "configs" / "mid_n.yaml"), "epochs=1", "data.n_train=4", "data.n_val=2", "batch=2",
                 "workers=0", "device=cpu", "data.size=[160,128]", f"out={out}", "model.family=yolov8",
                 f"pretrained={yolov8_onnx[0]}", "freeze=[rgb_backbone]"]) == 0
    loaded = build_model(ModelConfig(arch="mid", family="yolov8"))
    load_pretrained(loaded, yolov8_onnx[0], arch="mid")
    trained, trained_cfg, _ = load_checkpoint(out / "last.pt")
    assert trained_cfg.ultralytics_exact  # pretrained= gives ultralytics' layer details; the checkpoint keeps them
    before, after = loaded.state_dict(), trained.state_dict()
    frozen = [k for k in before if k.startswith("rgb_backbone.") and not k.endswith("num_batches_tracked")]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)  # weights and BatchNorm statistics
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("ir_backbone."))
