"""Adaptive modality vs always-fused / always-rgb / always-ir on generated day↔night clips with ground truth.

    .venv/bin/python benchmarks/eval_adaptive.py [clips=4 seconds=10]
    → benchmarks/results/adaptive.json, docs/adaptive_timeline.png

Each engine (fused, rgb-only, ir-only; ONNX Runtime CPU, shipped models) runs once over every frame; a policy
is then a per-frame choice among those outputs, with the mode sequence produced by the job's own ModePolicy on
the decoded frames (the actor's per-frame modality column is tested to equal exactly that sequence).
GPU time per policy = frames per mode × the H100 per-pair engine time measured by `trt.bench` (batch 32,
torch fp16 + CUDA graphs; benchmarks/results/bench_h100_*.json). CPU time is measured here.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch

from fusion.config import load_config, split_cli
from fusion.data.generate import write_clip
from fusion.data.scene import Illumination, SceneConfig
from fusion.data.video import VideoReader
from fusion.evaluate import match, summarize
from jobs.config import ModalityConfig
from jobs.modality import ModePolicy, brightness
from trt.detector import Detector
from trt.runtime_onnx import OnnxRuntimeEngine

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = "adaptive (default)"


@dataclass(frozen=True)
class EvalSpec:
    clips: int = 4  # alternating day→night and night→day
    seconds: float = 10.0
    fps: int = 25
    seed: int = 4242
    size: tuple[int, int] = (640, 512)
    out: str = "benchmarks/results/adaptive.json"
    plot: str = "docs/adaptive_timeline.png"


def gpu_ms_per_pair() -> dict[str, float]:
    rows = json.loads((ROOT / "benchmarks/results/bench_h100_mid_n.json").read_text())["rows"]
    rows += json.loads((ROOT / "benchmarks/results/bench_h100_single.json").read_text())["rows"]

    def pick(model: str, size: list[int]) -> float:
        r = next(r for r in rows if r["model"] == model and r["size"] == size and r["backend"] == "torch-compile"
                 and r["batch"] == 32)
        return r["p50_ms"] / 32

    return {"fused": pick("mid_n", [640, 512]), "rgb": pick("rgb_n", [640, 512]), "ir": pick("ir_n", [640, 512]),
            "rgb_small": pick("rgb_n", [320, 256])}


# name → (policy, engine used for "rgb" frames). The first is the job's default; fixed modes are baselines.
VARIANTS = {
    "adaptive (default)": (ModalityConfig(), "rgb"),
    "adaptive, rgb at 320x256": (ModalityConfig(), "rgb_small"),
    "adaptive, no ir-only": (ModalityConfig(dark_below=0.0), "rgb"),
    "rgb to dusk, no ir-only, rgb 320x256": (ModalityConfig(dark_below=0.0, bright_above=0.16,
                                                            min_contrast_rgb=0.18), "rgb_small"),
    "always fused": (ModalityConfig(mode="fused"), "rgb"),
    "always rgb": (ModalityConfig(mode="rgb"), "rgb"),
    "always ir": (ModalityConfig(mode="ir"), "rgb"),
}


def slice_of(light: float) -> str:
    return "day" if light >= 0.5 else ("dusk" if light >= 0.1 else "night")


def main(argv: list[str] | None = None) -> int:
    path, overrides = split_cli(sys.argv[1:] if argv is None else argv)
    spec = load_config(EvalSpec, path, overrides)
    small = (spec.size[0] // 2, spec.size[1] // 2)
    detectors = {m: Detector(OnnxRuntimeEngine(ROOT / f"models/{name}.onnx"), size=size, conf=0.001, iou=0.6)
                 for m, name, size in (("fused", "mid_n", spec.size), ("rgb", "rgb_n", spec.size),
                                       ("ir", "ir_n", spec.size), ("rgb_small", "rgb_n", small))}
    cpu_s = dict.fromkeys(detectors, 0.0)
    frames_all: list[dict] = []
    clips = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(spec.clips):
            day, night = Illumination(0.9), Illumination(0.02)
            lf, lt = (day, night) if k % 2 == 0 else (night, day)
            p = {x: f"{tmp}/c{k}_{x}" for x in ("rgb.mp4", "ir.mp4", "gt.parquet")}
            write_clip(rgb_url=p["rgb.mp4"], ir_url=p["ir.mp4"], gt_url=p["gt.parquet"], seed=spec.seed + k,
                       seconds=spec.seconds, fps=spec.fps, config=SceneConfig(rgb_size=spec.size, ir_size=(320, 256)),
                       light_from=lf, light_to=lt)
            rgb = list(VideoReader(p["rgb.mp4"]).frames())
            ir = [f for _, f in VideoReader(p["ir.mp4"], gray=True).frames()]
            gt = pq.read_table(p["gt.parquet"]).to_pydict()
            lights = dict(zip(gt["frame_idx"], gt["light"], strict=True))
            outs = {}
            for mode, det in detectors.items():
                t = time.perf_counter()
                outs[mode] = det([f for _, f in rgb], ir)
                cpu_s[mode] += time.perf_counter() - t
            policies_k = {name: ModePolicy(cfg) for name, (cfg, _) in VARIANTS.items()}
            for i, (t, img) in enumerate(rgb):
                b = brightness(img)
                modes = {name: p.update(t, b.mean, b.p90 - b.p10) for name, p in policies_k.items()}
                idx = np.array(gt["frame_idx"]) == i
                boxes = torch.tensor(np.stack([np.array(gt[c])[idx] for c in ("x1", "y1", "x2", "y2")], 1))
                cls = torch.tensor(np.array(gt["class_id"])[idx])
                frames_all.append({"clip": k, "i": i, "brightness": b.mean, "modes": modes,
                                   "slice": slice_of(lights.get(i, lf.light)), "boxes": boxes.float(), "cls": cls,
                                   "dets": {m: torch.from_numpy(outs[m][i]) for m in outs}})
            clips.append({"clip": k, "switch_times_s": {n: p.switches for n, p in policies_k.items()},
                          "min_gap_s": {n: min(np.diff(p.switches), default=None) for n, p in policies_k.items()}})
    gpu = gpu_ms_per_pair()

    def chooser(name: str, rgb_engine: str):
        def choose(f: dict) -> str:
            mode = f["modes"][name]
            return rgb_engine if mode == "rgb" else mode
        return choose

    policies = {name: chooser(name, rgb_engine) for name, (_, rgb_engine) in VARIANTS.items()}
    result: dict = {"spec": spec.__dict__, "gpu_ms_per_pair_h100": gpu, "clips": clips, "policies": {}}
    for name, choose in policies.items():
        res = {}
        for sl in ("overall", "day", "dusk", "night"):
            sel = [f for f in frames_all if sl == "overall" or f["slice"] == sl]
            rows = []
            for f in sel:
                d = f["dets"][choose(f)]
                rows.append((match(d, f["boxes"], f["cls"]), d[:, 4].numpy(), d[:, 5].numpy(), f["cls"].numpy()))
            res[sl] = summarize(rows) | {"frames": len(sel)}
        counts = {m: sum(choose(f) == m for f in frames_all) for m in gpu}
        res["frames_per_mode"] = counts
        res["gpu_ms"] = sum(counts[m] * gpu[m] for m in counts)
        res["cpu_s_onnxruntime"] = sum(counts[m] * cpu_s[m] / len(frames_all) for m in counts)
        result["policies"][name] = res
    fused_gpu = result["policies"]["always fused"]["gpu_ms"]
    fused_map = result["policies"]["always fused"]["overall"]["mAP50"]
    for res in result["policies"].values():
        res["gpu_saving_vs_fused"] = 1 - res["gpu_ms"] / fused_gpu
        res["mAP50_loss_pt_vs_fused"] = 100 * (fused_map - res["overall"]["mAP50"])
    Path(spec.out).write_text(json.dumps(result, indent=1, default=float) + "\n")
    _plot(frames_all, spec)
    print(f"{'policy':38} {'mAP50':>6} {'50-95':>6} {'day':>6} {'dusk':>6} {'night':>6} {'GPU ms':>7} {'saving':>7} "
          f"{'loss pt':>7}")
    for name, r in result["policies"].items():
        print(f"{name:38} {r['overall']['mAP50']:6.3f} {r['overall']['mAP50-95']:6.3f} {r['day']['mAP50']:6.3f} "
              f"{r['dusk']['mAP50']:6.3f} {r['night']['mAP50']:6.3f} {r['gpu_ms']:7.1f} "
              f"{100 * r['gpu_saving_vs_fused']:6.1f}% {r['mAP50_loss_pt_vs_fused']:7.2f}")
    for c in clips:
        print(f"clip {c['clip']}: default policy switches at {[round(t, 2) for t in c['switch_times_s'][DEFAULT]]} s")
    return 0


def _plot(frames: list[dict], spec: EvalSpec) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    clip = [f | {"mode": f["modes"][DEFAULT]} for f in frames if f["clip"] == 0]
    t = np.array([f["i"] / spec.fps for f in clip])
    fig, ax = plt.subplots(figsize=(9, 3))
    ax.plot(t, [f["brightness"] for f in clip], color="black", lw=1, label="brightness")
    colours = {"rgb": "tab:orange", "fused": "tab:green", "ir": "tab:purple"}
    for m, c in colours.items():
        sel = [f for f in clip if f["mode"] == m]
        ax.scatter([f["i"] / spec.fps for f in sel], [f["brightness"] for f in sel], s=8, color=c, label=f"mode {m}")
    ax2 = ax.twinx()
    ax2.plot(t, [int((f["dets"][f["mode"]][:, 4] > 0.25).sum()) for f in clip], color="tab:blue", lw=0.8)
    ax2.plot(t, [len(f["boxes"]) for f in clip], color="tab:blue", lw=0.8, ls=":")
    ax2.set_ylim(bottom=0)
    ax2.set_ylabel("detections (score > 0.25)", color="tab:blue")
    ax.set(xlabel="seconds", ylabel="brightness", title="adaptive modality on a day→night clip")
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    fig.savefig(spec.plot, dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
