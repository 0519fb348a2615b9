"""Classes belong to the model: a person-only model writes only `person` rows, a 3-class model its own three names,
and models of one run that disagree are refused before anything starts."""

from pathlib import Path

import pytest

from fusion.checkpoint import save_checkpoint
from fusion.config import load_config, to_dict
from fusion.data.generate import write_clip
from fusion.data.scene import Illumination, SceneConfig
from fusion.models.build import ModelConfig, build_model
from jobs.config import JobConfig
from jobs.preflight import PreflightError, preflight
from trt.export import ExportConfig, export_checkpoint

ROOT = Path(__file__).resolve().parents[2]


def _model(folder: Path, name: str, arch: str, classes: tuple[str, ...]) -> str:
    ckpt = folder / f"{name}.pt"
    save_checkpoint(ckpt, model=build_model(ModelConfig(arch=arch, num_classes=len(classes), class_names=classes)),
                    model_config=ModelConfig(arch=arch, num_classes=len(classes), class_names=classes))
    export_checkpoint(ckpt, ExportConfig(out=str(ckpt.with_suffix(".onnx")), size=(320, 256), dynamic_hw=True))
    return str(ckpt.with_suffix(".onnx"))


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    root = tmp_path_factory.mktemp("cls")
    (root / "a" / "camC").mkdir(parents=True)
    write_clip(rgb_url=str(root / "a/camC/v_rgb.mp4"), ir_url=str(root / "a/camC/v_ir.mp4"),
               gt_url=str(root / "gt.parquet"), seed=2, seconds=1, fps=25,
               config=SceneConfig(rgb_size=(320, 256), ir_size=(160, 128)), light_from=Illumination(0.6),
               light_to=Illumination(0.6))
    return root


@pytest.mark.parametrize("classes", [("person",), ("person", "car", "bicycle")])
def test_rows_carry_the_names_of_the_model_that_ran(clip, tmp_path, classes):
    import pyarrow.parquet as pq

    from jobs.actor import ChunkDetector
    from jobs.detect import plan

    model = _model(tmp_path, "m", "mid", classes)
    cfg = load_config(JobConfig, ROOT / "configs" / "job.yaml", [
        f"input.archive={clip}/a", "input.manifest=", f"output.path={tmp_path}/out", "modality.mode=fused",
        f"engine.fused_model={model}", "engine.size=[320,256]", "engine.conf=0.00001", "tracking.enabled=false"])
    assert preflight(cfg)[0] == classes
    chunks, _, _ = plan(cfg, "c")
    actor = ChunkDetector(cfg=to_dict(cfg), run_id="c")
    assert all(actor.process(c)["status"] == "done" for c in chunks)
    actor.close()
    rows = pq.read_table(tmp_path / "out" / "detections", partitioning=None).to_pylist()
    assert rows  # an untrained head at a tiny threshold still finds boxes: names are exercised
    assert {r["class_name"] for r in rows} <= set(classes)
    assert all(r["class_name"] == classes[r["class_id"]] for r in rows)


def test_models_of_one_run_must_agree_on_classes(tmp_path):
    fused = _model(tmp_path, "f", "mid", ("person",))
    rgb = _model(tmp_path, "r", "rgb", ("person", "vehicle"))
    cfg = load_config(JobConfig, ROOT / "configs" / "job.yaml", [
        f"output.path={tmp_path}/out", f"engine.fused_model={fused}", f"engine.rgb_model={rgb}",
        f"engine.ir_model={fused}", "modality.mode=adaptive"])
    with pytest.raises(PreflightError, match="classes"):
        preflight(cfg)
