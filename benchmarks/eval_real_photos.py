"""A sim-to-real smoke test: do the shipped models find people in real photographs?

    .venv/bin/python benchmarks/eval_real_photos.py [out=benchmarks/results/real_photos.json plot=docs/real_photos.png]

The only real images this project may use are the two that ship inside the ultralytics package (`bus.jpg`: four
people and a bus at street level, `zidane.jpg`: two people from the waist up), boxed by hand below. They are RGB
only, so they test the RGB stream: the RGB-only model as it is, and the mid-fusion model with an IR frame that
carries no information (uniform grey, what a washed-out thermal camera gives). Neither photo is a surveillance
view, and six people are no accuracy figure: a model that misses the people standing in full view here has
learnt the renderer, not people. A box counts when it overlaps a hand box of its class at IoU >= 0.5.
`shrink=[1,3]` also runs each photo in the corner of a grey frame 3x its size, where the people are 40-140 px tall
at the model's 640x512 input, as far people are in a surveillance view.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# (class, x1, y1, x2, y2) in source pixels, boxed by hand (every person at least half visible, and the bus).
PHOTOS = {
    "bus.jpg": [("person", 48, 399, 245, 903), ("person", 221, 407, 344, 857), ("person", 670, 380, 810, 876),
                ("person", 0, 550, 63, 873), ("vehicle", 17, 230, 801, 768)],
    "zidane.jpg": [("person", 747, 41, 1141, 712), ("person", 123, 193, 714, 719)],
}


@dataclass(frozen=True)
class RealPhotosConfig:
    out: str = "benchmarks/results/real_photos.json"
    models: tuple[str, ...] = ("models/rgb_n.pt", "models/mid_n.pt")  # .pt: the torch engine (fp32 on the CPU)
    device: str = "cpu"
    conf: float = 0.25  # the job's engine.conf
    shrink: tuple[int, ...] = (1, 3)  # each photo also in the corner of a grey frame this many times its size
    plot: str = ""  # a PNG with every model's boxes on both photos, at the first shrink factor ("" = none)

    def __post_init__(self) -> None:
        if not self.shrink or min(self.shrink) < 1:
            raise ValueError(f"shrink={list(self.shrink)}: one or more whole factors >= 1")


def photos() -> dict[str, np.ndarray]:
    import cv2
    import ultralytics

    assets = Path(ultralytics.__file__).parent / "assets"
    return {name: cv2.imread(str(assets / name)) for name in PHOTOS}


def score(det: np.ndarray, gt: list, classes: tuple[str, ...], size: tuple[int, int]) -> dict:
    """det (N, 6) x1,y1,x2,y2,score,class on a (W, H) = `size` image → per class: hand boxes, found, false boxes;
    and, for the first class, detected / true box height. The matching is `fusion.evaluate.operating_point`'s (the
    held-out tables' own)."""
    from fusion.evaluate import operating_point

    n = len(classes)
    boxes = torch.tensor([b[1:] for b in gt], dtype=torch.float32).reshape(-1, 4)
    cls = torch.tensor([classes.index(b[0]) for b in gt])
    d = torch.from_numpy(det).float().reshape(-1, 6)
    op = operating_point(d, boxes, cls, conf=0.0, n=n, size=size)  # det is already thresholded at the job's conf
    res = {}
    for c, name in enumerate(classes):
        found = int(op[c])
        ratio = op[2 * n + 1] / found if c == 0 and found else None
        res[name] = {"true": int(op[n + c]), "found": found, "false": int((d[:, 5] == c).sum()) - found,
                     "height_ratio": None if ratio is None else round(float(ratio), 3)}
    return res


def _panel(bgr: np.ndarray, det: np.ndarray, label: str) -> np.ndarray:
    import cv2

    vis = bgr.copy()
    for x1, y1, x2, y2, _, c in det:
        cv2.rectangle(vis, (int(x1), int(y1)), (int(x2), int(y2)), (0, 255, 0) if c == 0 else (0, 140, 255), 4)
    cv2.putText(vis, label, (10, 50), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (255, 255, 255), 4)
    return cv2.resize(vis, (int(vis.shape[1] * 300 / vis.shape[0]), 300))


def main(argv: list[str] | None = None) -> int:
    from fusion.config import cli_main, parse_args

    def run(args: list[str]) -> int:
        import cv2

        from trt.detector import Detector
        from trt.engine import EngineSpec, load_engine

        _, cfg = parse_args(RealPhotosConfig, args)
        photos_, results, panels = photos(), {}, []
        for model in cfg.models:
            det = Detector(load_engine(EngineSpec(backend="torch", model=model, device=cfg.device)), conf=cfg.conf)
            for f in cfg.shrink:
                for name, photo in photos_.items():
                    H, W = photo.shape[:2]
                    bgr = np.full((H * f, W * f, 3), 90, np.uint8)
                    bgr[:H, :W] = photo
                    flat_ir = np.full(bgr.shape[:2], 128, np.uint8)  # no thermal information
                    out = det([bgr], [flat_ir])[0]
                    r = score(out, PHOTOS[name], det.classes, (bgr.shape[1], bgr.shape[0]))
                    results.setdefault(model, {}).setdefault(f"shrink{f}", {})[name] = r
                    print(f"{model:28} x{f} {name:11} " + "  ".join(
                        f"{c}: {v['found']}/{v['true']} found, {v['false']} false" for c, v in r.items()))
                    if f == cfg.shrink[0]:
                        panels.append(_panel(bgr, out, Path(model).stem))
        totals = {m: {s_: {k: sum(r[p]["person"][k] for p in r) for k in ("true", "found", "false")}
                      for s_, r in by_shrink.items()} for m, by_shrink in results.items()}
        Path(cfg.out).parent.mkdir(parents=True, exist_ok=True)
        Path(cfg.out).write_text(json.dumps({"config": {**cfg.__dict__, "models": list(cfg.models)},
                                             "persons": totals, "photos": results}, indent=1) + "\n")
        if cfg.plot:
            n = len(photos_)
            rows = [np.hstack(panels[i:i + n]) for i in range(0, len(panels), n)]
            cv2.imwrite(cfg.plot, np.vstack([cv2.resize(r, (rows[0].shape[1], r.shape[0])) for r in rows]))
        for m, by_shrink in totals.items():
            for s_, t in by_shrink.items():
                print(f"{m} {s_}: {t['found']} of {t['true']} people found, {t['false']} false person boxes")
        return 0

    return cli_main(run, argv, doc=__doc__, config=RealPhotosConfig)


if __name__ == "__main__":
    sys.exit(main())
