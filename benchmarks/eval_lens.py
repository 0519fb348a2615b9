"""How a model holds up as people get larger: held-out stills rendered through one lens band at a time.

    .venv/bin/python benchmarks/eval_lens.py [models=[models/mid_n.pt] 'bands=[[40,66],[26,40],[16,26]]' n=100]

Real elevated street cameras carry lenses from wide to tele, so one model meets people from ~40 to ~400 px tall
at 1280x1024 (75-200 px at the model's 640x512 input for the nearer half). Each band renders the held-out scenes
(dataset seed 1500, never trained on) with the horizontal field of view drawn from that band only
(`SceneConfig.hfov`); narrower bands mean larger people. Per band and model: the people's height at the model's
input (10th / 50th / 90th percentile), mAP50 / mAP50-95, and at the job's score threshold the person recall, false
boxes per frame (and per cause: `fusion.evaluate.FALSE_CAUSES`) and how much of a person's height the matched boxes
cover (1 = the whole body).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


@dataclass(frozen=True)
class LensConfig:
    models: tuple[str, ...] = ("models/mid_n.pt",)
    bands: tuple[tuple[float, float], ...] = ((40.0, 66.0), (26.0, 40.0), (16.0, 26.0))  # degrees across
    n: int = 100  # held-out pairs per band
    seed: int = 1500
    size: tuple[int, int] = (640, 512)
    device: str = "cpu"
    workers: int = 2
    cache_dir: str = ""  # render each band once, in parallel, into this folder (fusion.data.pairs cache)
    conf: float = 0.25  # the job's engine.conf
    out: str = "benchmarks/results/lens.json"

    def __post_init__(self) -> None:
        if not self.bands or any(len(b) != 2 for b in self.bands):
            raise ValueError(f"bands={self.bands}: a list of [narrowest, widest] fields of view in degrees")


def main(argv: list[str] | None = None) -> int:
    from fusion.config import cli_main, parse_args

    def run(args: list[str]) -> int:
        from torch.utils.data import DataLoader

        from fusion.checkpoint import load_checkpoint
        from fusion.data.pairs import AugmentConfig, SyntheticPairs, TrainPairs, collate
        from fusion.evaluate import evaluate

        _, cfg = parse_args(LensConfig, args)
        models = {m: load_checkpoint(m)[:2] for m in cfg.models}
        rows = []
        for band in cfg.bands:
            src = SyntheticPairs(n=cfg.n, seed=cfg.seed, size=cfg.size, hfov=tuple(band), workers=cfg.workers,
                                cache_dir=cfg.cache_dir)
            data = TrainPairs(src, size=cfg.size, augment=AugmentConfig(enabled=False))
            heights = np.concatenate([(b[c == 0, 3] - b[c == 0, 1]).numpy()
                                      for _, _, b, c, _ in (data[i] for i in range(len(data)))])
            for path, (model, mcfg) in models.items():
                loader = DataLoader(data, batch_size=8, num_workers=cfg.workers, collate_fn=collate)
                res = evaluate(model.to(cfg.device), loader, device=cfg.device, size=cfg.size, op_conf=cfg.conf,
                               names=tuple(mcfg.class_names))["overall"]
                at = res["at_conf"]
                rows.append({"band": list(band), "model": path,
                             "person_px_p10_p50_p90": np.percentile(heights, [10, 50, 90]).round(1).tolist(),
                             "mAP50": res["mAP50"], "mAP50-95": res["mAP50-95"],
                             "person_recall": at["recall"]["person"], "false_per_frame": at["false_per_frame"],
                             "person_height_ratio": at["person_height_ratio"],
                             "false_per_frame_by_cause": at["false_per_frame_by_cause"]})
                r = rows[-1]
                print(f"{band[0]:>4g}-{band[1]:<4g} {path:24} people {r['person_px_p10_p50_p90']} px  mAP50 "
                      f"{r['mAP50']:.3f} / {r['mAP50-95']:.3f}  recall {r['person_recall']:.3f}  false "
                      f"{r['false_per_frame']:.2f}  height {r['person_height_ratio']:.3f}", flush=True)
        Path(cfg.out).parent.mkdir(parents=True, exist_ok=True)
        Path(cfg.out).write_text(json.dumps({"config": {**cfg.__dict__, "models": list(cfg.models),
                                                        "bands": [list(b) for b in cfg.bands]},
                                             "rows": rows}, indent=1) + "\n")
        return 0

    return cli_main(run, argv, doc=__doc__, config=LensConfig)


if __name__ == "__main__":
    sys.exit(main())
