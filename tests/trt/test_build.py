"""The real TensorRT-RTX builder and ONNX parser (they run without a GPU) accept our graphs."""

import json

import onnx
import pytest
from onnx import TensorProto, helper

from trt.build import BuildSpec, OnnxParseError, build_serialized, engine_for
from trt.export import export_onnx
from trt.precision import HalfIO
from trt.tensorrt_api import load_tensorrt, tensorrt_available

pytestmark = pytest.mark.skipif(not tensorrt_available(), reason="no TensorRT flavour installed")
SPEC = BuildSpec(batch=(1, 2, 4), size=(320, 256), target="SM89", workspace_gb=1.0)


def test_builds_fp32_engine_with_sidecar_and_caches_it(tmp_path, mid_onnx):
    engine = engine_for(mid_onnx, SPEC, cache_dir=tmp_path, precision="fp32")
    meta = json.loads(engine.with_suffix(".json").read_text())
    assert engine.stat().st_size > 1_000_000
    assert meta["precision"] == "fp32" and meta["compute_capability"] == "SM89"
    assert meta["profile"]["batch"] == [1, 2, 4] and len(meta["onnx_sha256"]) == 64
    assert meta["tensorrt_flavour"] == load_tensorrt().name
    mtime = engine.stat().st_mtime_ns
    again = engine_for(mid_onnx, SPEC, cache_dir=tmp_path)
    assert again == engine and again.stat().st_mtime_ns == mtime  # deserialized next time, not rebuilt
    other = engine_for(mid_onnx, BuildSpec(batch=(1, 4, 8), size=(320, 256), target="SM89"), cache_dir=tmp_path)
    assert other != engine  # the profile is part of the key


def test_builds_fp16_graph(tmp_path, mid_model):
    path = export_onnx(HalfIO(mid_model), tmp_path / "fp16.onnx", size=(320, 256))
    assert any(i.data_type == TensorProto.FLOAT16 for i in onnx.load(str(path)).graph.initializer)
    plan = build_serialized(path, SPEC)
    assert len(plan) > 500_000


def test_parse_errors_are_listed(tmp_path):
    node = helper.make_node("NoSuchOp", ["rgb"], ["pred"], domain="")
    graph = helper.make_graph([node], "bad", [helper.make_tensor_value_info("rgb", TensorProto.FLOAT, [1, 3, 32, 32])],
                              [helper.make_tensor_value_info("pred", TensorProto.FLOAT, [1, 3, 32, 32])])
    path = tmp_path / "bad.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(OnnxParseError) as info:
        build_serialized(path, SPEC)
    assert info.value.errors and "NoSuchOp" in str(info.value) and "bad.onnx" in str(info.value)


def test_build_cli_prints_the_sidecar(tmp_path, mid_onnx, capsys):
    from trt.build import main

    assert main([str(mid_onnx), "batch=[1,2,4]", "size=[320,256]", "target=SM89", f"cache_dir={tmp_path}"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["profile"]["size"] == [320, 256] and out["engine"].endswith(".engine")
    assert out["classes"] == ["person", "vehicle"]  # the names travel with the engine
    assert main([str(mid_onnx), "batch=[4,2,1]", f"cache_dir={tmp_path}"]) == 2
    assert main([str(tmp_path / "missing.onnx")]) == 2
    assert "missing.onnx" in capsys.readouterr().err
