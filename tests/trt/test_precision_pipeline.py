import json

import onnx
import pytest

from trt.pipeline import PipelineConfig, run_pipeline
from trt.precision import calibration_manifest
from trt.tensorrt_api import tensorrt_available


def test_calibration_manifest_is_stratified_and_reproducible(tmp_path):
    a = calibration_manifest(tmp_path / "c.json", n=20)
    assert [it["slice"] for it in a["items"]].count("night") == 4
    assert calibration_manifest(tmp_path / "c.json", n=20) == a  # a re-run calibrates on the same pairs
    assert json.loads((tmp_path / "c.json").read_text()) == a
    b = calibration_manifest(tmp_path / "c.json", n=10)  # another calib_n is never answered with the old set
    assert len(b["items"]) == 10 and json.loads((tmp_path / "c.json").read_text()) == b


@pytest.mark.slow
def test_pipeline_fp32_fp16_int8_accuracy_and_engines(tmp_path):
    cfg = PipelineConfig(out=str(tmp_path), size=(320, 256), n_eval=20, calib_n=10, target="SM89", batch=(1, 2, 4),
                         max_map50_drop_fp16=0.02, max_map50_drop_int8=0.1)
    report = run_pipeline("models/mid_n.pt", cfg)
    p = report["precisions"]
    assert set(p) == {"fp32", "fp16", "int8"}
    assert p["fp32"]["eval"]["overall"]["mAP50"] > 0.55  # 320x256: far people are a few pixels tall (0.93 at 640)
    int8 = onnx.load(p["int8"]["onnx"])
    ops = {n.op_type for n in int8.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    quantized = {n.name.split("/")[1] for n in int8.graph.node if n.op_type == "QuantizeLinear" and "/" in n.name}
    assert {"rgb_backbone", "ir_backbone"} <= quantized and not quantized & {"neck", "head"}  # int8_keep_float
    zero_points = [i for i in int8.graph.initializer if i.name.endswith("_zero_point")]
    assert zero_points and all(not any(onnx.numpy_helper.to_array(z).ravel()) for z in zero_points)  # symmetric
    assert all(c["ok"] for c in report["checks"].values()), report["checks"]
    if tensorrt_available():
        assert report["engines"]["fp32"]["ok"] and report["engines"]["fp16"]["ok"]
        assert "int8" in report["engines"]  # outcome recorded either way
