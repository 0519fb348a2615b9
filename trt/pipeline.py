"""One command per model version: export → FP16 → INT8 (fixed calibration manifest) → accuracy on ONNX Runtime
→ TensorRT engine build when a TensorRT flavour is installed → report.

    python -m trt.pipeline models/mid_n.pt [out=build/mid_n n_eval=250 calib_n=100 target=SM89]

The calibration manifest (`calibration.json`) and the held-out evaluation set are fixed by seeds, so reports of
two model versions compare like with like.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from torch.utils.data import DataLoader

from fusion.config import ConfigError, cli_main, parse_args
from fusion.data.pairs import AugmentConfig, SyntheticPairs, TrainPairs, collate
from fusion.evaluate import evaluate
from trt.export import ExportConfig, export_checkpoint
from trt.precision import calibration_manifest, folder_manifest, quantize_int8
from trt.runtime_onnx import OnnxRuntimeEngine
from trt.tensorrt_api import TensorRTUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PipelineConfig:
    out: str = "build/model"  # output folder
    size: tuple[int, int] = (640, 512)  # (W, H)
    n_eval: int = 250  # held-out synthetic pairs for the accuracy check (50 per slice)
    eval_seed: int = 1500  # same held-out seed as training's validation
    calib_n: int = 100  # calibration pairs, stratified across slices (synthetic) or brightness bins (folder)
    calib_source: Literal["synthetic", "folder"] = "synthetic"  # folder: your own LLVIP / YOLOFuse dataset
    calib_root: str = ""  # folder: the dataset's URL (its train split is sampled)
    calib_seed: int = 1700  # calibration scenes: neither training nor evaluation
    calib_method: str = "percentile"  # minmax | percentile | entropy (percentile/entropy need more memory)
    int8: bool = True
    int8_keep_float: tuple[str, ...] = ("neck", "head")  # modules left fp32 in the INT8 graph ([] = all INT8)
    max_map50_drop_fp16: float = 0.002  # fraction (0.2 pt)
    max_map50_drop_int8: float = 0.01  # fraction (1 pt)
    build_engines: bool = True  # when a TensorRT flavour is installed
    target: str = "current"  # compute capability for engine builds ("current" = this GPU; e.g. SM89 on CPU)
    batch: tuple[int, int, int] = (1, 32, 128)

    def __post_init__(self) -> None:
        if self.calib_source == "folder" and not self.calib_root:
            raise ConfigError("calib_root is required with calib_source=folder")
        if self.calib_method not in ("minmax", "percentile", "entropy"):
            raise ConfigError(f"calib_method={self.calib_method!r}: minmax, percentile or entropy")


def run_pipeline(checkpoint: str | Path, cfg: PipelineConfig) -> dict:
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    paths = {prec: export_checkpoint(checkpoint, ExportConfig(out=str(out / f"model.{prec}.onnx"), size=cfg.size),
                                     half=prec == "fp16") for prec in ("fp32", "fp16")}
    if cfg.int8:
        manifest = (folder_manifest(out / "calibration.json", cfg.calib_root, n=cfg.calib_n, seed=cfg.calib_seed)
                    if cfg.calib_source == "folder" else
                    calibration_manifest(out / "calibration.json", n=cfg.calib_n, seed=cfg.calib_seed))
        paths["int8"] = quantize_int8(paths["fp32"], out / "model.int8.onnx", manifest=manifest, size=cfg.size,
                                      method=cfg.calib_method, keep_float=cfg.int8_keep_float)
    loader = DataLoader(TrainPairs(SyntheticPairs(n=cfg.n_eval, seed=cfg.eval_seed, size=cfg.size), size=cfg.size,
                                   augment=AugmentConfig(enabled=False)), batch_size=8, collate_fn=collate)
    report: dict = {"checkpoint": str(checkpoint), "config": asdict(cfg), "precisions": {}}
    for prec, path in paths.items():
        t = time.perf_counter()
        engine = OnnxRuntimeEngine(path)
        acc = evaluate(engine, loader, size=cfg.size, names=engine.classes)
        report["precisions"][prec] = {"onnx": str(path), "bytes": path.stat().st_size, "eval": acc,
                                      "eval_seconds": round(time.perf_counter() - t, 1)}
        log.info("%s: mAP50 %.4f mAP50-95 %.4f", prec, acc["overall"]["mAP50"], acc["overall"]["mAP50-95"])
    base = report["precisions"]["fp32"]["eval"]["overall"]["mAP50"]
    checks = {}
    for prec, limit in (("fp16", cfg.max_map50_drop_fp16), ("int8", cfg.max_map50_drop_int8)):
        if prec in report["precisions"]:
            drop = base - report["precisions"][prec]["eval"]["overall"]["mAP50"]
            checks[prec] = {"mAP50_drop": round(drop, 5), "limit": limit, "ok": drop <= limit}
    report["checks"] = checks
    report["engines"] = _build_engines(paths, cfg) if cfg.build_engines else {}
    report["seconds"] = round(time.perf_counter() - t0, 1)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def _build_engines(paths: dict[str, Path], cfg: PipelineConfig) -> dict:
    from trt.build import BuildSpec, engine_for

    results = {}
    for prec, path in paths.items():
        try:
            engine = engine_for(path, BuildSpec(batch=cfg.batch, target=cfg.target, size=cfg.size),
                                cache_dir=Path(cfg.out) / "engines", precision=prec)
            results[prec] = {"ok": True, "engine": str(engine), "bytes": engine.stat().st_size}
        except TensorRTUnavailable as exc:
            return {"skipped": str(exc)}
        except Exception as exc:  # record the outcome (e.g. INT8 unsupported by this TensorRT flavour) and go on
            results[prec] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000]}
    return results


def main(argv: list[str] | None = None) -> int:
    from fusion.checkpoint import CheckpointError

    return cli_main(_run, argv, doc=__doc__, config=PipelineConfig, errors=(CheckpointError,))


def _run(args: list[str]) -> int:
    (ckpt,), cfg = parse_args(PipelineConfig, args, positional=1)
    report = run_pipeline(ckpt, cfg)
    print(f"{'precision':10} {'MB':>6} {'mAP50':>7} {'mAP50-95':>9}  engine")
    for prec, r in report["precisions"].items():
        e = report["engines"].get(prec, {})
        status = "built" if e.get("ok") else ("failed" if e else "-")
        print(f"{prec:10} {r['bytes'] / 2**20:6.1f} {r['eval']['overall']['mAP50']:7.4f} "
              f"{r['eval']['overall']['mAP50-95']:9.4f}  {status}")
    print(json.dumps(report["checks"]))
    print(f"wrote {cfg.out}/report.json and the graphs and engines beside it")
    return 0 if all(c["ok"] for c in report["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
