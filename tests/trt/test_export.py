import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from fusion.config import ConfigError
from fusion.models.build import ModelConfig, build_model
from trt.export import ExportConfig, export_onnx, read_metadata


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.mark.parametrize("arch", ["mid", "early", "decision", "rgb", "ir"])
def test_onnx_matches_torch_at_another_shape(tmp_path, arch):
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch=arch)).eval()
    path = export_onnx(model, tmp_path / f"{arch}.onnx", size=(320, 256), dynamic_hw=True)
    m = onnx.load(str(path))
    onnx.checker.check_model(m, full_check=True)
    assert m.opset_import[0].version >= 17
    assert not m.graph.value_info  # onnxslim's repeated shape annotations (2.2 MB of mid_n) are not shipped
    expected_inputs = {"rgb": ["rgb"], "ir": ["ir"]}.get(arch, ["rgb", "ir"])
    assert [i.name for i in m.graph.input] == expected_inputs
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rgb, ir = torch.rand(3, 3, 192, 416), torch.rand(3, 1, 192, 416)  # batch 3, 416x192: not the export shape
    with torch.no_grad():
        ref = model(rgb, ir)
    refs = ref if isinstance(ref, tuple) else (ref,)
    feeds = {k: v.numpy() for k, v in (("rgb", rgb), ("ir", ir)) if k in expected_inputs}
    outs = sess.run(None, feeds)
    assert len(outs) == len(refs)
    for o, r in zip(outs, refs, strict=True):
        assert o.shape == tuple(r.shape)
        assert _rel(o, r.numpy()) < 1e-4


def test_fixed_shape_export_records_metadata(tmp_path, mid_model):
    path = export_onnx(mid_model, tmp_path / "m.onnx", size=(320, 256), metadata={"fusedet.precision": "fp32"})
    meta = read_metadata(path)
    assert meta["outputs"] == ("pred",) and meta["precision"] == "fp32"
    dims = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and dims[2].dim_value == 256 and dims[3].dim_value == 320


def test_fp16_storage_halves_the_file_and_keeps_outputs(tmp_path, mid_model):
    a = export_onnx(mid_model, tmp_path / "a.onnx", size=(320, 256))
    b = export_onnx(mid_model, tmp_path / "b.onnx", size=(320, 256), fp16_storage=True)
    assert b.stat().st_size < 0.6 * a.stat().st_size
    rng = np.random.default_rng(0)
    x = {"rgb": rng.random((1, 3, 256, 320), np.float32), "ir": rng.random((1, 1, 256, 320), np.float32)}
    oa = ort.InferenceSession(str(a), providers=["CPUExecutionProvider"]).run(None, x)[0]
    ob = ort.InferenceSession(str(b), providers=["CPUExecutionProvider"]).run(None, x)[0]
    assert _rel(ob, oa) < 1e-3  # BN folded into conv weights is not fp16-exact, but close


@pytest.mark.parametrize(("kwargs", "match"), [({"opset": 13}, "opset"), ({"size": (100, 64)}, "multiples of 32")])
def test_export_config_validation(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        ExportConfig(**kwargs)
