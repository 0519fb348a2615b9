"""How much do the rendered scenes look like real streets, to a detector that has only seen real photographs?

    .venv/bin/python benchmarks/eval_realism.py detector=build/real/centernet.onnx [n=200 out=... plot=...]

The shipped models learn people and vehicles from the renderer, and a model that learnt the renderer's figures
misses real people (README: Real photos). This measures the renderer itself instead: a COCO detector trained on
real photographs (`real_detector.py` makes its ONNX) looks at `n` held-out stills (seed 1500, the held-out
tables' scenes, the five slices in turn, 1280x1024) and at the real photos of `eval_real_photos.py`. The share of
rendered people and vehicles it finds, next to the share of real ones it finds, says how person- and car-like the
figures are to features learnt from real images: a figure it cannot see is one whose looks a model trained on it
cannot carry over to real footage. It is a proxy, not accuracy on real footage; it tells which parts of the scenes
to make more real, and shows by how much a renderer change did.

COCO person → person; car, bus, truck → vehicle; other COCO classes (bicycles, motorbikes, traffic lights...) are
left out (not counted as false boxes). A box counts when it overlaps a labelled box of its class at IoU >= 0.5
(`eval_real_photos.score`, the held-out tables' matching). The detector takes the frame stretched to its square
input, as TF.js users run it.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.eval_real_photos import PHOTOS, photos, score  # noqa: E402

COCO_TO_OURS = {0: 0, 2: 1, 5: 1, 7: 1}  # COCO person → person; car, bus, truck → vehicle
BANDS = ((0.0, 0.1, "small (< 10 % of the frame's height)"), (0.1, 0.25, "medium (10-25 %)"),
         (0.25, 9.9, "large (> 25 %)"))


@dataclass(frozen=True)
class RealismConfig:
    detector: str = "build/real/centernet.onnx"  # real_detector.py's ONNX: (1, S, S, 3) RGB 0..255 → (1, K, 6)
    n: int = 200  # held-out stills
    seed: int = 1500  # dataset seed of the stills (the held-out tables')
    conf: float = 0.3  # the detector's score threshold
    workers: int = 2  # processes rendering the stills
    out: str = "benchmarks/results/realism.json"
    plot: str = ""  # a PNG of the first 6 stills: labels (green person, cyan vehicle), the detector's boxes (red)

    def __post_init__(self) -> None:
        if self.n < 1 or not 0 < self.conf < 1 or self.workers < 1:
            raise ValueError(f"n={self.n}, conf={self.conf}, workers={self.workers}: n, workers >= 1, 0 < conf < 1")


class RealDetector:
    """The ONNX of `real_detector.py` on one BGR image → (N, 6) x1, y1, x2, y2, score, our class (image pixels)."""

    def __init__(self, path: str, conf: float):
        import onnxruntime as ort

        if not Path(path).is_file():
            raise FileNotFoundError(f"detector={path}: no such file (benchmarks/real_detector.py makes it)")
        self.session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        shape = self.session.get_inputs()[0].shape  # (1, S, S, 3)
        self.size, self.conf = int(shape[1]), conf

    def __call__(self, bgr: np.ndarray) -> np.ndarray:
        import cv2

        H, W = bgr.shape[:2]
        x = cv2.resize(bgr[:, :, ::-1], (self.size, self.size)).astype(np.float32)[None]  # (1, S, S, 3) RGB
        det = self.session.run(None, {self.session.get_inputs()[0].name: x})[0][0]  # (K, 6) in S x S pixels
        det = det[(det[:, 4] >= self.conf) & np.isin(det[:, 5], list(COCO_TO_OURS))]
        det[:, [0, 2]] *= W / self.size
        det[:, [1, 3]] *= H / self.size
        det[:, 5] = [COCO_TO_OURS[int(c)] for c in det[:, 5]]
        return det.astype(np.float32)


def _still(seed: int):
    from fusion.data.scene import SLICES, render_pair, scene_seed

    base, i = divmod(seed, 1 << 20)
    f = render_pair(scene_seed(base, i), SLICES[i % len(SLICES)])
    return f.rgb, f.boxes, f.classes, SLICES[i % len(SLICES)]


def _add(tally: dict, key: str, r: dict) -> None:
    t = tally.setdefault(key, {"true": 0, "found": 0, "false": 0})
    for k in t:
        t[k] += r[k]


def _share(tally: dict) -> dict:
    return {k: {**v, "found_share": round(v["found"] / v["true"], 3) if v["true"] else None} for k, v in tally.items()}


def main(argv: list[str] | None = None) -> int:
    from fusion.config import cli_main, parse_args

    def run(args: list[str]) -> int:
        import cv2

        from fusion.data.scene import CLASS_NAMES
        from fusion.parallel import spawn_map

        _, cfg = parse_args(RealismConfig, args)
        det = RealDetector(cfg.detector, cfg.conf)
        real: dict = {}
        for name, bgr in photos().items():
            r = score(det(bgr), PHOTOS[name], CLASS_NAMES, (bgr.shape[1], bgr.shape[0]))
            for c in CLASS_NAMES:
                _add(real, c, r[c])
        rendered: dict = {c: {} for c in CLASS_NAMES}
        tiles = []
        stills = spawn_map(_still, [(cfg.seed << 20) + i for i in range(cfg.n)], workers=cfg.workers)
        for i, (rgb, boxes, classes, slice_) in enumerate(stills):
            out = det(rgb)
            H, W = rgb.shape[:2]
            for c, name in enumerate(CLASS_NAMES):
                mine = out[out[:, 5] == c]
                for lo, hi, band in BANDS:
                    h = (boxes[:, 3] - boxes[:, 1]) / H
                    sel = (classes == c) & (h >= lo) & (h < hi)
                    gt = [(name, *b) for b in boxes[sel].tolist()]
                    r = score(mine, gt, CLASS_NAMES, (W, H))[name]
                    _add(rendered[name], band, {**r, "false": 0})  # false boxes: once per still, below
                gt = [(name, *b) for b in boxes[classes == c].tolist()]
                r = score(mine, gt, CLASS_NAMES, (W, H))[name]
                _add(rendered[name], "all", r)
                _add(rendered[name], slice_, {**r, "false": 0})
            if cfg.plot and i < 6:
                vis = rgb.copy()
                for b, c in zip(boxes.astype(int), classes, strict=True):
                    cv2.rectangle(vis, tuple(b[:2]), tuple(b[2:]), (0, 255, 0) if c == 0 else (255, 255, 0), 2)
                for b in out[:, :4].astype(int):
                    cv2.rectangle(vis, tuple(b[:2]), tuple(b[2:]), (0, 0, 255), 3)
                cv2.putText(vis, slice_, (12, 44), cv2.FONT_HERSHEY_SIMPLEX, 1.4, (255, 255, 255), 3)
                tiles.append(cv2.resize(vis, (640, 512)))
        result = {"config": cfg.__dict__, "real_photos": _share(real),
                  "rendered": {c: _share(t) for c, t in rendered.items()},
                  "false_boxes_per_still": {c: round(t["all"]["false"] / cfg.n, 3) for c, t in rendered.items()}}
        Path(cfg.out).parent.mkdir(parents=True, exist_ok=True)
        Path(cfg.out).write_text(json.dumps(result, indent=1) + "\n")
        if tiles:
            rows = [np.hstack(tiles[k:k + 3]) for k in range(0, len(tiles) - len(tiles) % 3 or 1, 3)]
            cv2.imwrite(cfg.plot, np.vstack(rows))
        for c in CLASS_NAMES:
            r = result["real_photos"][c]
            print(f"{c:8} real photos: {r['found']} of {r['true']} found")
            for key, t in result["rendered"][c].items():
                print(f"{c:8} rendered, {key:38}: {t['found']:4} of {t['true']:4} found ({t['found_share']})")
        return 0

    return cli_main(run, argv, doc=__doc__, config=RealismConfig)


if __name__ == "__main__":
    sys.exit(main())
