"""How often each engine boxes the things made to fool one camera: a backlit poster of a person (RGB only), a warm
post, a warm cabinet, a dog (LWIR). Real footage has all of them (the maintainers' real pairs: "warm poles and tree
trunks became persons"); the scenes render them but never label them, so mAP and `fusion.evaluate` cannot see
the boxes a model puts on them. This counts them.

    .venv/bin/python benchmarks/eval_confounders.py n=100 out=build/confounders.json

Held-out stills (`render_pair`, seeds from `seed`, never trained on) of each slice, 640x512 RGB + 320x256 IR, run
through the shipped ONNX models (ONNX Runtime) at the job's score threshold (`conf`). A false box (no labelled
object at IoU >= 0.5) lies on a confounder when at least half of the box is on that confounder's box; a
confounder is boxed when at least one false box lies on it.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torchvision.ops import box_area

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.adaptive_frames import MODELS, detectors  # noqa: E402  (needs ROOT on sys.path)


@dataclass(frozen=True)
class ConfounderSpec:
    n: int = 100  # stills per slice
    slices: tuple[str, ...] = ("day", "dusk", "night", "fog", "clutter")
    seed: int = 7700  # held-out: training stills use other scene seeds (dataset seed * 1_000_000 + i)
    size: tuple[int, int] = (640, 512)
    models: str = "models"
    conf: float = 0.25  # as the job's engine.conf
    out: str = "build/confounders.json"

    def __post_init__(self) -> None:
        from fusion.config import ConfigError
        from fusion.data.scene import SLICES

        if self.n < 1 or not 0 <= self.conf < 1:
            raise ConfigError("eval_confounders: n >= 1 and 0 <= conf < 1")
        if bad := [s for s in self.slices if s not in SLICES]:
            raise ConfigError(f"eval_confounders: slices {bad} are not among {list(SLICES)}")


def on_box(dets: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """(N, 4) detections x (M, 4) boxes → (N, M) share of each detection's area that lies on each box."""
    lt = torch.maximum(dets[:, None, :2], boxes[None, :, :2])
    rb = torch.minimum(dets[:, None, 2:], boxes[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    return inter / box_area(dets).clamp(min=1e-6)[:, None]


def score(out: np.ndarray, frame, conf: float) -> tuple[int, Counter, Counter]:
    """One still, one engine → (false boxes, false boxes on each confounder kind, confounders of each kind boxed)."""
    from fusion.evaluate import match

    d = torch.from_numpy(out[out[:, 4] >= conf])
    tp = match(d, torch.from_numpy(frame.boxes), torch.from_numpy(frame.classes))[:, 0] if len(d) else np.zeros(0, bool)
    false = d[torch.from_numpy(~tp)] if len(d) else d
    on, boxed = Counter(), Counter()
    if len(false) and len(frame.confounders):
        share = on_box(false[:, :4].float(), torch.from_numpy(frame.confounders))  # (false, confounders)
        best, which = share.max(1)
        for j in which[best >= 0.5].tolist():
            on[frame.confounder_kinds[j]] += 1
        for j in torch.nonzero((share >= 0.5).any(0)).flatten().tolist():
            boxed[frame.confounder_kinds[j]] += 1
    return len(false), on, boxed


def main(argv: list[str] | None = None) -> int:
    from fusion.config import cli_main, parse_args

    def run(args: list[str]) -> int:
        from benchmarks.eval_adaptive import EvalSpec
        from fusion.data.scene import SceneConfig, render_pair

        _, spec = parse_args(ConfounderSpec, args)
        # the adaptive evaluation's engines (ONNX Runtime, every box above 0.001); `score` keeps those above conf
        dets = detectors(EvalSpec(clips=1, size=spec.size, models=spec.models))
        config = SceneConfig(rgb_size=spec.size, ir_size=(spec.size[0] // 2, spec.size[1] // 2))
        result: dict = {"spec": asdict(spec), "slices": {}}
        for k, slice_ in enumerate(spec.slices):
            frames = [render_pair(spec.seed + 1000 * k + i, slice_, config) for i in range(spec.n)]
            in_view = Counter(c for f in frames for c in f.confounder_kinds)
            row: dict = {"stills": spec.n, "in_view": dict(in_view)}
            for m, det in dets.items():
                outs = [o for j in range(0, len(frames), 16)
                        for o in det([f.rgb for f in frames[j:j + 16]], [f.ir for f in frames[j:j + 16]])]
                false, on, boxed = 0, Counter(), Counter()
                for o, f in zip(outs, frames, strict=True):
                    n_false, o_on, o_boxed = score(o, f, spec.conf)
                    false, on, boxed = false + n_false, on + o_on, boxed + o_boxed
                row[m] = {"false_per_still": false / spec.n, "false_on_confounders": dict(on),
                          "boxed_share": {c: boxed[c] / in_view[c] for c in in_view}}
            result["slices"][slice_] = row
        Path(spec.out).parent.mkdir(parents=True, exist_ok=True)
        Path(spec.out).write_text(json.dumps(result, indent=1) + "\n")
        kinds = sorted({c for r in result["slices"].values() for c in r["in_view"]})
        print(f"{'slice':8} {'engine':6} {'false/still':>11}  " + "  ".join(f"{c} boxed (of n)" for c in kinds))
        for slice_, r in result["slices"].items():
            for m in MODELS:
                cells = "  ".join(f"{r[m]['boxed_share'].get(c, float('nan')):.2f} ({r['in_view'].get(c, 0)})"
                                  for c in kinds)
                print(f"{slice_:8} {m:6} {r[m]['false_per_still']:11.2f}  {cells}")
        return 0

    return cli_main(run, argv, doc=__doc__, config=ConfounderSpec)


if __name__ == "__main__":
    sys.exit(main())
