"""Why a clip of the adaptive evaluation loses accuracy under an engine: what each engine finds and misses there, at
the job's score threshold, per brightness bin, and frames drawn with the ground truth.

    .venv/bin/python benchmarks/explain_clip.py seed=4242 clip=5 seconds=15 "frames=[20,270]" plot=build/clip5.png

The clip is rendered exactly as `eval_adaptive.py` renders it (clip k of seed s: `adaptive_frames.render_clip`), and
the shipped engines run on it through ONNX Runtime. Per engine and bin (and overall): mAP50, recall per class and
false boxes per frame at `conf` (the job's `engine.conf`), each false box by cause (`fusion.evaluate.operating_point`:
a second box, misplaced, frame-filling, touching the frame edge, background), and how many targets touch the frame
edge (objects cut by the frame). The plot shows `frames`, one row each: ground truth as thin white boxes, each
engine's boxes at `conf`, the IR frame beside the fused one.
"""

from __future__ import annotations

import itertools
import json
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.adaptive_frames import MODELS, Clip, detect_clip, detectors, match_rows, render_clip  # noqa: E402


@dataclass(frozen=True)
class ExplainSpec:
    seed: int = 4242  # eval_adaptive's test seed (its validation seed: 5151)
    clip: int = 5  # clip k of `seed`: day→night for even k, night→day for odd
    seconds: float = 15.0
    fps: int = 25
    size: tuple[int, int] = (640, 512)
    models: str = "models"  # the folder of mid_n, rgb_n, ir_n .onnx
    conf: float = 0.25  # as the job's engine.conf
    edges: tuple[float, ...] = (0.0, 0.06, 0.1, 0.14, 0.2, 0.28, 1.0)  # brightness bins, as eval_adaptive's
    frames: tuple[int, ...] = ()  # frame indices to draw
    plot: str = ""  # PNG of `frames` (needs frames)
    out: str = ""  # JSON of the table

    def __post_init__(self) -> None:
        from fusion.config import ConfigError

        if self.clip < 0 or self.seconds <= 0 or not 0 <= self.conf < 1:
            raise ConfigError("explain_clip: clip >= 0, seconds > 0 and 0 <= conf < 1")
        if self.plot and not self.frames:
            raise ConfigError("explain_clip: plot needs frames=[...] to draw")


def explain(spec: ExplainSpec) -> tuple[dict, dict, Clip]:
    """→ ({"classes": the models' names, "bins": bin → counts and per engine its figures}, drawn: frame → engine →
    (N, 6) boxes at conf, the clip)."""
    from benchmarks.eval_adaptive import EvalSpec
    from fusion.evaluate import operating_point, summarize, summarize_operating_point, touches_edge
    from jobs.modality import brightness

    ev = EvalSpec(clips=1, seconds=spec.seconds, fps=spec.fps, size=spec.size, models=spec.models)
    with tempfile.TemporaryDirectory() as tmp:
        clip = render_clip(ev, spec.seed, spec.clip, tmp)
    if bad := [i for i in spec.frames if not 0 <= i < len(clip.rgb)]:
        from fusion.config import ConfigError

        raise ConfigError(f"explain_clip: frames {bad} are not in the clip's {len(clip.rgb)} frames")
    dets = detectors(ev)
    names = dets["fused"].classes  # the models' own class names
    outs = detect_clip(dets, clip)
    bright = [brightness(img).mean for _, img in clip.rgb]
    bins = [("overall", 0.0, 1.0 + 1e-9)] + [(f"{lo:.2f}-{hi:.2f}", lo, hi)
                                             for lo, hi in itertools.pairwise(spec.edges)]
    table: dict = {}
    for name, lo, hi in bins:
        idx = [i for i, b in enumerate(bright) if lo <= b < hi]
        if not idx:
            continue
        targets = [clip.targets(i) for i in idx]
        row = {"frames": len(idx), "t": [clip.rgb[idx[0]][0], clip.rgb[idx[-1]][0]],
               "targets": sum(len(c) for _, c in targets),
               "targets_at_edge": sum(touches_edge(tuple(b.tolist()), spec.size) for bx, _ in targets for b in bx)}
        for m in MODELS:
            ops = [operating_point(torch.from_numpy(outs[m][i]), bx, c, conf=spec.conf, n=len(names), size=spec.size)
                   for i, (bx, c) in zip(idx, targets, strict=True)]
            rows = [match_rows({m: outs[m][i]}, bx, c)[m] for i, (bx, c) in zip(idx, targets, strict=True)]
            row[m] = summarize_operating_point(ops, spec.conf, names) | {
                "mAP50": summarize(rows)["mAP50"] if row["targets"] else float("nan")}
        table[name] = row
    drawn = {i: {m: outs[m][i][outs[m][i][:, 4] >= spec.conf] for m in MODELS} for i in spec.frames}
    return {"classes": list(names), "bins": table}, drawn, clip


def plot(spec: ExplainSpec, drawn: dict, clip: Clip, names: list[str]) -> None:
    import cv2

    from jobs.render import annotate

    rows = []
    for i, per_engine in drawn.items():
        bgr = clip.rgb[i][1].copy()  # decoded as OpenCV frames are: BGR
        bx, _ = clip.targets(i)
        for x1, y1, x2, y2 in bx.tolist():  # 3 px outside the box, so a detection on it leaves it visible
            cv2.rectangle(bgr, (int(x1) - 3, int(y1) - 3), (int(x2) + 3, int(y2) + 3), (255, 255, 255), 1)
        tiles = []
        for m in ("fused", "rgb"):
            dets = [(int(c), float(s), x1, y1, x2, y2) for x1, y1, x2, y2, s, c in per_engine[m].tolist()]
            title = (f"clip {spec.clip} of seed {spec.seed}, frame {i} ({clip.rgb[i][0]:.1f} s), ground truth white"
                     if m == "fused" else f"frame {i}")
            tiles.append(annotate(bgr, clip.ir[i] if m == "fused" else None, dets, mode=m, title=title,
                                  classes=dict(enumerate(names))))
        rows.append(np.hstack(tiles))
    img = np.vstack(rows)
    if img.shape[1] > 1200:  # a README-sized figure
        img = cv2.resize(img, (1200, round(img.shape[0] * 1200 / img.shape[1])), interpolation=cv2.INTER_AREA)
    Path(spec.plot).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(spec.plot, img)


def main(argv: list[str] | None = None) -> int:
    from fusion.config import cli_main, parse_args

    def run(args: list[str]) -> int:
        _, spec = parse_args(ExplainSpec, args)
        result, drawn, clip = explain(spec)
        if spec.plot:
            plot(spec, drawn, clip, result["classes"])
        if spec.out:
            Path(spec.out).parent.mkdir(parents=True, exist_ok=True)
            Path(spec.out).write_text(json.dumps({"spec": asdict(spec)} | result, indent=1, default=float) + "\n")
        first = result["classes"][0]
        print(f"{'bin':10} {'frames':>6} {'targets':>7} {'at edge':>7}  engine: mAP50, {first} recall, false/frame "
              f"(of them at the edge)")
        for name, r in result["bins"].items():
            cells = "  ".join(f"{m} {r[m]['mAP50']:.3f} {r[m]['recall'][first]:.3f} {r[m]['false_per_frame']:.2f} "
                              f"({r[m]['false_per_frame_by_cause']['at_edge']:.2f})" for m in MODELS)
            print(f"{name:10} {r['frames']:6d} {r['targets']:7d} {r['targets_at_edge']:7d}  {cells}")
        return 0

    return cli_main(run, argv, doc=__doc__, config=ExplainSpec)


if __name__ == "__main__":
    sys.exit(main())
