"""mAP50 and mAP50-95 overall and per illumination slice, with ultralytics' matching and AP (not hand-written).

    python -m fusion.evaluate runs/mid_n/best.pt [n=500 seed=1500 size=[640,512] plot=runs/mid_n/pr.png]
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from ultralytics.engine.validator import BaseValidator
from ultralytics.utils.metrics import ap_per_class, box_iou

from fusion.config import ConfigError, cli_main, parse_args
from fusion.models.postprocess import postprocess

IOU_THRESHOLDS = torch.linspace(0.5, 0.95, 10)


def match(dets: torch.Tensor, boxes: torch.Tensor, classes: torch.Tensor) -> np.ndarray:
    """(N, 10) bool: is detection i a true positive at IoU threshold j (ultralytics' greedy matching)."""
    if len(dets) == 0:
        return np.zeros((0, 10), bool)
    if len(boxes) == 0:
        return np.zeros((len(dets), 10), bool)
    iou = box_iou(boxes.float(), dets[:, :4].float())
    matcher = SimpleNamespace(iouv=IOU_THRESHOLDS)
    return BaseValidator.match_predictions(matcher, dets[:, 5], classes.float(), iou).cpu().numpy()


def summarize(stats: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]], *,
              plot: str | None = None, names: dict[int, str] | None = None) -> dict[str, float]:
    tp, conf, pred_cls, target_cls = (np.concatenate(x, 0) for x in zip(*stats, strict=True))
    if len(target_cls) == 0:
        return {"mAP50": float("nan"), "mAP50-95": float("nan"), "targets": 0}
    kw = {}
    if plot:
        Path(plot).parent.mkdir(parents=True, exist_ok=True)
        kw = {"plot": True, "save_dir": Path(plot).parent, "prefix": Path(plot).stem + "_", "names": names}
    ap = ap_per_class(tp, conf, pred_cls, target_cls, **kw)[5]  # (classes present, 10)
    return {"mAP50": float(ap[:, 0].mean()), "mAP50-95": float(ap.mean()), "targets": len(target_cls)}


FALSE_CAUSES = ("duplicate", "misplaced", "frame_filling", "at_edge", "background")


def operating_point(dets: torch.Tensor, boxes: torch.Tensor, classes: torch.Tensor, *, conf: float, n: int,
                    size: tuple[int, int]) -> np.ndarray:
    """What a user of the job sees at score threshold `conf`, for one (W, H) = `size` image of an `n`-class model
    → (2n + 2 + len(FALSE_CAUSES),): [matched targets per class..., targets per class..., false boxes, sum of
    matched class-0 height ratios, false boxes per cause...] (IoU >= 0.5, ultralytics' matching; height ratio =
    detected / true box height: 1 = the whole body). Each false box gets the first cause that fits: `duplicate`, a
    second box on an object another box found (IoU >= 0.3); `misplaced`, on an object of its class but IoU < 0.5
    (e.g. head-to-torso); `frame_filling`, a quarter of the image or more; `at_edge`, touching the border (objects
    cut by the frame); `background`, the rest."""
    out = np.zeros(2 * n + 2 + len(FALSE_CAUSES))
    d = dets[dets[:, 4] >= conf]
    tp = match(d, boxes, classes)[:, 0] if len(d) else np.zeros(0, bool)
    for c in range(n):
        out[c] = tp[d[:, 5].numpy() == c].sum() if len(d) else 0
        out[n + c] = (classes == c).sum()
    out[2 * n] = (~tp).sum()
    iou = box_iou(boxes.float(), d[:, :4].float()) if len(boxes) and len(d) else torch.zeros(len(boxes), len(d))
    same = classes[:, None] == d[:, 5][None, :].long()  # (targets, detections)
    found = torch.zeros(len(boxes), dtype=torch.bool)  # targets some detection matched
    if tp.any():
        best = iou[:, torch.from_numpy(tp)].argmax(0)  # the target each matched detection found
        ratio = (d[tp, 3] - d[tp, 1]) / (boxes[best, 3] - boxes[best, 1]).clamp(min=1e-6)
        out[2 * n + 1] = float(ratio[d[tp, 5] == 0].sum())
        found[best] = True
    W, H = size
    for j in np.flatnonzero(~tp):
        on_own = iou[:, j] * same[:, j]  # (targets,) IoU with the targets of this box's class
        x1, y1, x2, y2 = d[j, :4].tolist()
        if bool(((on_own >= 0.3) & found).any()):
            cause = "duplicate"
        elif bool((on_own >= 0.1).any()):
            cause = "misplaced"
        elif (x2 - x1) * (y2 - y1) >= 0.25 * W * H:
            cause = "frame_filling"
        elif touches_edge((x1, y1, x2, y2), size):
            cause = "at_edge"
        else:
            cause = "background"
        out[2 * n + 2 + FALSE_CAUSES.index(cause)] += 1
    return out


def touches_edge(box: tuple[float, float, float, float], size: tuple[int, int]) -> bool:
    """Whether an x1 y1 x2 y2 box reaches within 1 % of the larger side of a (W, H) image's border (cut off)."""
    W, H = size
    edge = 0.01 * max(W, H)
    return min(box[0], box[1]) <= edge or box[2] >= W - edge or box[3] >= H - edge


def summarize_operating_point(rows: list[np.ndarray], conf: float, names: tuple[str, ...]) -> dict:
    t = np.sum(rows, 0)
    n = len(names)
    recall = {names[c]: float(t[c] / t[n + c]) if t[n + c] else float("nan") for c in range(n)}
    causes = {k: float(t[2 * n + 2 + i] / len(rows)) for i, k in enumerate(FALSE_CAUSES)}
    return {"conf": conf, "recall": recall, "false_per_frame": float(t[2 * n] / len(rows)),
            f"{names[0]}_height_ratio": float(t[2 * n + 1] / t[0]) if t[0] else float("nan"),
            "false_per_frame_by_cause": causes}


@torch.inference_mode()
def evaluate(model: Callable[[torch.Tensor, torch.Tensor], Any], loader: DataLoader, *,
             device: torch.device | str = "cpu", size: tuple[int, int] = (640, 512), conf: float = 0.001,
             iou: float = 0.6, plot: str | None = None, op_conf: float = 0.25,
             names: tuple[str, ...] = ("person", "vehicle")) -> dict[str, dict[str, float]]:
    """Run `model` (a detector module, or any engine of `trt`) over `loader` (batches from
    `fusion.data.pairs.collate`) → {"overall": {...}, "<slice>": {...}}: mAP (scores down to `conf`) and, at the
    job's score threshold `op_conf`, recall per class, false boxes per frame and how much of a person's height the
    matched boxes cover."""
    is_module = isinstance(model, torch.nn.Module)
    was_training = is_module and model.training
    if is_module:
        model.eval()
    per_slice: dict[str, list] = defaultdict(list)
    op: dict[str, list] = defaultdict(list)
    for batch in loader:
        out = model(batch["rgb"].to(device), batch["ir"].to(device))
        dets = postprocess(out, conf=conf, iou=iou, size=size)
        for d, boxes, classes, slice_ in zip(dets, batch["boxes"], batch["classes"], batch["slices"],
                                             strict=True):
            d = d.cpu()
            row = (match(d, boxes, classes), d[:, 4].numpy(), d[:, 5].numpy(), classes.numpy())
            at = operating_point(d, boxes, classes, conf=op_conf, n=len(names), size=size)
            for k in ("overall", slice_) if slice_ else ("overall",):
                per_slice[k].append(row)
                op[k].append(at)
    if is_module:
        model.train(was_training)
    return {k: summarize(v, plot=plot if k == "overall" else None)
            | {"at_conf": summarize_operating_point(op[k], op_conf, names)}
            for k, v in per_slice.items()}


@dataclass(frozen=True)
class EvalConfig:
    n: int = 500  # held-out synthetic pairs
    seed: int = 1500  # dataset seed of the held-out set (training uses others)
    size: tuple[int, int] = (640, 512)
    batch: int = 16
    workers: int = 2
    root: str = ""  # evaluate an LLVIP/YOLOFuse folder instead of synthetic pairs
    cache_dir: str = ""  # synthetic pairs: reuse (or fill) the renders `fusion.train data.cache_dir=` made
    split: str = "test"
    device: str = "auto"
    plot: str = ""  # PNG path prefix for PR curves ("" = none)
    op_conf: float = 0.25  # score threshold of the recall / false-box figures (the job's engine.conf)
    iou: float = 0.6  # NMS IoU threshold (the job's engine.iou)
    out: str = ""  # JSON results path ("" = print only)

    def __post_init__(self) -> None:
        if not 0 < self.op_conf < 1 or not 0 < self.iou < 1:
            raise ConfigError("op_conf and iou must be in (0, 1)")


def main(argv: list[str] | None = None) -> int:
    from fusion.checkpoint import CheckpointError
    from fusion.data.layouts import DatasetError

    return cli_main(_run, argv, doc=__doc__, config=EvalConfig, errors=(CheckpointError, DatasetError))


def _run(args: list[str]) -> int:
    from fusion.checkpoint import load_checkpoint
    from fusion.data.layouts import read_dataset
    from fusion.data.pairs import AugmentConfig, FolderPairs, SyntheticPairs, TrainPairs, collate

    (ckpt,), cfg = parse_args(EvalConfig, args, positional=1)
    device = "cuda" if cfg.device == "auto" and torch.cuda.is_available() else (
        "cpu" if cfg.device == "auto" else cfg.device)
    model, _mcfg, _ = load_checkpoint(ckpt)
    src = FolderPairs(read_dataset(cfg.root, split=cfg.split)) if cfg.root else SyntheticPairs(
        n=cfg.n, seed=cfg.seed, size=cfg.size, cache_dir=cfg.cache_dir, workers=max(cfg.workers, 1))
    loader = DataLoader(TrainPairs(src, size=cfg.size, augment=AugmentConfig(enabled=False)),
                        batch_size=cfg.batch, num_workers=cfg.workers, collate_fn=collate)
    res = evaluate(model.to(device), loader, device=device, size=cfg.size, plot=cfg.plot or None,
                   op_conf=cfg.op_conf, iou=cfg.iou, names=tuple(_mcfg.class_names))
    text = json.dumps(res, indent=2)
    if cfg.out:
        Path(cfg.out).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
