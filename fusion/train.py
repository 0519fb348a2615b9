"""Train a paired RGB-IR detector with ultralytics' detection loss and task-aligned assigner.

    python -m fusion.train configs/mid_n.yaml [key=value ...]
    python -m fusion.train configs/mid_n.yaml epochs=1 data.n_train=16 batch=4     # a tiny CPU run

Writes `<out>/last.pt`, `<out>/best.pt` (by held-out mAP50-95) and `<out>/metrics.json`; `resume=true` continues
from `last.pt`. Mixed precision on CUDA; CPU works for tiny runs.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Literal

import torch
from torch.utils.data import DataLoader
from ultralytics.utils.loss import v8DetectionLoss

from fusion.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from fusion.config import ConfigError, cli_main, parse_args, to_dict
from fusion.data.gpu_batches import GpuBatches, PairStore
from fusion.data.layouts import read_dataset
from fusion.data.pairs import AugmentConfig, FolderPairs, SyntheticPairs, TrainPairs, collate
from fusion.data.scene import CLASS_NAMES, generator_version
from fusion.evaluate import evaluate
from fusion.models.build import ModelConfig, build_model
from fusion.pretrained import load_pretrained, summary_by_part
from fusion.progress import Steps

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataConfig:
    source: Literal["synthetic", "folder"] = "synthetic"  # generated on the fly, or an LLVIP/YOLOFuse folder
    root: str = ""  # folder: dataset URL (train split)
    val_root: str = ""  # folder: held-out dataset URL ("" = none)
    split: str = "train"
    n_train: int = 4000  # synthetic: training pairs (dataset seed `seed`)
    n_val: int = 500  # synthetic: held-out pairs (dataset seed `val_seed`, never used for training)
    seed: int = 0
    val_seed: int = 1500
    size: tuple[int, int] = (640, 512)  # model input (W, H), multiples of 32
    cache_dir: str = ""  # where decoded pairs are kept (memory-mapped): "" = <out>/cache for the gpu loader
    classes: tuple[str, ...] = ()  # class names; () = the dataset's (YOLOFuse data.yaml, LLVIP: person, synthetic:
    #                                person, vehicle). They are stored in the checkpoint and every exported model.
    loader: Literal["auto", "gpu", "workers"] = "auto"  # gpu: decode once into a uint8 store, augment on the GPU;
    #                                                     workers: CPU DataLoader processes; auto: gpu on CUDA

    def __post_init__(self) -> None:
        if any(v % 32 for v in self.size):
            raise ConfigError(f"data.size={self.size}: width and height must be multiples of 32")
        if self.source == "folder" and not self.root:
            raise ConfigError("data.root is required when data.source=folder")
        if self.seed == self.val_seed:
            raise ConfigError("data.seed and data.val_seed must differ (held-out scenes must be unseen)")


@dataclass(frozen=True)
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    epochs: int = 30
    batch: int = 32
    lr: float = 0.002  # AdamW peak learning rate, cosine decay to lr/20
    weight_decay: float = 0.0005
    warmup_epochs: float = 1.0
    box: float = 7.5  # ultralytics loss gains
    cls: float = 0.5
    dfl: float = 1.5
    amp: bool = True  # float16 autocast on CUDA (ignored on CPU)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    workers: int = 4  # DataLoader processes
    out: str = "runs/mid_n"
    seed: int = 0
    val_every: int = 5  # epochs between held-out evaluations (and always after the last)
    time_budget_min: float = 0.0  # > 0: the LR schedule follows elapsed time too, and training stops at it
    resume: bool = False  # continue from <out>/last.pt with the same config (say the config file again)
    pretrained: str = ""  # start from an ultralytics YOLO11 / YOLOv8 checkpoint (yolo11n.pt, yolov8s.pt, ...)
    pretrained_trust: bool = False  # let torch unpickle a full ultralytics model file (it runs code from the file)
    init: str = ""  # start from a fusedet checkpoint's weights (same arch and classes), e.g. models/mid_n.pt
    freeze: tuple[str, ...] = ()  # modules kept as loaded (no gradient, BatchNorm statistics fixed), e.g.
    #                               [rgb_backbone]: real-image features that training on generated scenes cannot bend

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch < 1 or self.lr <= 0:
            raise ConfigError("epochs and batch must be >= 1, lr > 0")
        if self.pretrained and self.init:
            raise ConfigError(f"pretrained={self.pretrained} and init={self.init}: start from one of them")


def _loss_fns(model: torch.nn.Module, cfg: TrainConfig) -> list[v8DetectionLoss]:
    hyp = SimpleNamespace(box=cfg.box, cls=cfg.cls, dfl=cfg.dfl)
    heads = [model.rgb_detector.head, model.ir_detector.head] if cfg.model.arch == "decision" else [model.head]
    # v8DetectionLoss reads .args, .model[-1] and .parameters() of "a model": give it exactly that view.
    return [v8DetectionLoss(SimpleNamespace(args=hyp, model=[h], parameters=h.parameters)) for h in heads]


def sources(cfg: TrainConfig):
    """→ (training source, held-out source or None, class names the data carries)."""
    d = cfg.data
    if d.source == "synthetic":
        kw = {"size": d.size, "cache_dir": d.cache_dir, "workers": max(cfg.workers, 1)}
        train_src = SyntheticPairs(n=d.n_train, seed=d.seed, **kw)
        val_src = SyntheticPairs(n=d.n_val, seed=d.val_seed, **kw) if d.n_val else None
        return train_src, val_src, CLASS_NAMES
    ds = read_dataset(d.root, split=d.split)
    train_src = FolderPairs(ds)
    val_src = FolderPairs(read_dataset(d.val_root, split="test")) if d.val_root else None
    return train_src, val_src, ds.class_names


def model_config(cfg: TrainConfig, data_names: tuple[str, ...]) -> ModelConfig:
    """The model's classes come from the data (or data.classes), never from the generator's defaults."""
    names = tuple(cfg.data.classes) or tuple(data_names)
    if names and names != tuple(cfg.model.class_names):
        log.info("classes from the data: %s", list(names))
        return replace(cfg.model, num_classes=len(names), class_names=names)
    return cfg.model


def make_loaders(cfg: TrainConfig, train_src, val_src) -> tuple[DataLoader, DataLoader | None]:
    d = cfg.data
    train = TrainPairs(train_src, size=d.size, augment=cfg.augment, seed=cfg.seed)
    kw = {"batch_size": cfg.batch, "num_workers": cfg.workers, "collate_fn": collate,
          "persistent_workers": cfg.workers > 0}
    train_dl = DataLoader(train, shuffle=True, drop_last=len(train) > cfg.batch, **kw)
    val_dl = None
    if val_src is not None:
        val = TrainPairs(val_src, size=d.size, augment=AugmentConfig(enabled=False))
        val_dl = DataLoader(val, shuffle=False, **kw)
    return train_dl, val_dl


def train_step(model, losses, opt, scaler, batch: dict, *, device: torch.device, amp: bool) -> torch.Tensor:
    """One optimisation step on a batch (rgb, ir + ultralytics targets); → the loss (detached, on the device)."""
    rgb, ir = batch["rgb"].to(device, non_blocking=True), batch["ir"].to(device, non_blocking=True)
    with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
        preds = model(rgb, ir)
    preds = preds if isinstance(preds, tuple) else (preds,)
    loss = sum(fn(p, batch)[0].sum() for fn, p in zip(losses, preds, strict=True))  # (box, cls, dfl) summed
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.unscale_(opt)
    torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
    scaler.step(opt)
    scaler.update()
    return loss.detach()


def _data_key(cfg: TrainConfig) -> str:
    d = cfg.data
    return f"synthetic:{d.seed}:{d.n_train}:{generator_version()}" if d.source == "synthetic" else \
        f"folder:{d.root}:{d.split}"


def _init_weights(path: str | Path, mcfg: ModelConfig, *, key: str) -> tuple[dict, ModelConfig, dict]:
    """The state dict of a fusedet checkpoint made for the same model, `mcfg` with that checkpoint's
    `ultralytics_exact` (not in the weights, part of what they compute) and the whole checkpoint; CheckpointError
    naming the file otherwise."""
    _model, init_cfg, ckpt = load_checkpoint(path)
    ours = (mcfg.arch, mcfg.scale, mcfg.family, list(mcfg.class_names))
    theirs = (init_cfg.arch, init_cfg.scale, init_cfg.family, list(init_cfg.class_names))
    if ours != theirs:
        raise CheckpointError(f"{key}={path}: made for {'/'.join(map(str, theirs))}, not {'/'.join(map(str, ours))} "
                              "(arch/scale/family/classes)")
    state = {k: v.float() if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    return state, replace(mcfg, ultralytics_exact=init_cfg.ultralytics_exact), ckpt


def freeze(model: torch.nn.Module, names: tuple[str, ...]) -> list[torch.nn.Module]:
    """Stop gradients into the named modules (dotted names, e.g. rgb_backbone or backbone.stem); → those modules,
    which the training loop keeps in eval mode so their BatchNorm statistics stay the loaded ones."""
    modules = dict(model.named_modules())
    for name in names:
        if not name or name not in modules:
            tops = sorted({n.split(".")[0] for n in modules if n})
            raise ConfigError(f"freeze: this model has no module {name!r} (top-level modules: {', '.join(tops)})")
    for name in names:
        modules[name].requires_grad_(False)
    return [modules[name] for name in names]


def train(cfg: TrainConfig) -> dict:
    torch.manual_seed(cfg.seed)
    torch.backends.cudnn.benchmark = True  # fixed input size: let cuDNN pick the fastest kernels
    device = torch.device("cuda" if cfg.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if cfg.device == "auto" else cfg.device))
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    train_src, val_src, data_names = sources(cfg)
    mcfg = model_config(cfg, data_names)
    resuming = cfg.resume and (out / "last.pt").exists()
    weights, ckpt = None, {}  # the fusedet state dict to start from (init=, or last.pt when resuming)
    if resuming:
        weights, mcfg, ckpt = _init_weights(out / "last.pt", mcfg, key="resume")
    elif cfg.init:
        weights, mcfg, _ = _init_weights(cfg.init, mcfg, key="init")
    elif cfg.pretrained:
        mcfg = replace(mcfg, ultralytics_exact=True)  # the loaded layers compute what they computed in ultralytics
    model = build_model(mcfg)
    report = None
    if cfg.pretrained and not resuming:
        report = load_pretrained(model, cfg.pretrained, arch=mcfg.arch, trust=cfg.pretrained_trust)
        print(report.text())
    if weights is not None:
        model.load_state_dict(weights)
        log.info("weights from %s", out / "last.pt" if resuming else cfg.init)
    frozen = freeze(model, cfg.freeze)
    model = model.to(device)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr,
                            weight_decay=cfg.weight_decay)
    use_amp = cfg.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    start_epoch, best, history = 0, -1.0, []
    if resuming:  # last.pt, read once above
        opt.load_state_dict(ckpt["optimizer"])
        start_epoch, best, history = ckpt["epoch"] + 1, ckpt["best"], json.loads(ckpt["history"])
        log.info("resumed from %s at epoch %d", out / "last.pt", start_epoch)
    losses = _loss_fns(model, cfg)
    train_dl, val_dl = make_loaders(cfg, train_src, val_src)
    gpu = (cfg.data.loader == "gpu" or (cfg.data.loader == "auto" and device.type == "cuda"))
    if gpu:  # decoded once (the deployment's letterbox), augmented on the device: no CPU augmentation per step
        store = PairStore.build(train_src, size=cfg.data.size, root=cfg.data.cache_dir or out / "cache",
                                key=_data_key(cfg), workers=max(cfg.workers, 1))
        batches = GpuBatches(store, batch=cfg.batch, augment=cfg.augment, device=device, seed=cfg.seed)
    n_steps = len(batches) if gpu else len(train_dl)
    steps = cfg.epochs * n_steps
    warm = max(int(cfg.warmup_epochs * n_steps), 1)

    t_start = time.time()

    def progress(step: int) -> float:
        p = (step - warm) / max(steps - warm, 1)
        if cfg.time_budget_min > 0:
            p = max(p, (time.time() - t_start) / (60 * cfg.time_budget_min))
        return min(max(p, 0.0), 1.0)

    def lr_at(step: int) -> float:
        if step < warm:
            return cfg.lr * (step + 1) / warm
        return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress(step))))

    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        for module in frozen:
            module.eval()
        train_dl.dataset.epoch = epoch  # new augmentation draws each epoch, reproducible
        bar = Steps(n_steps, f"epoch {epoch + 1}/{cfg.epochs}", unit="batch")
        t0, total = time.time(), 0.0
        for i, batch in enumerate(batches.epoch(epoch) if gpu else train_dl):
            for g in opt.param_groups:
                g["lr"] = lr_at(epoch * n_steps + i)
            total += float(train_step(model, losses, opt, scaler, batch, device=device, amp=use_amp))
            bar.advance(1, loss=f"{total / (i + 1):.3f}")
        bar.close()
        seconds = time.time() - t0
        record = {"epoch": epoch, "loss": total / max(n_steps, 1), "seconds": seconds,
                  "pairs_per_s": n_steps * cfg.batch / max(seconds, 1e-9)}
        last = epoch + 1 == cfg.epochs or progress((epoch + 1) * n_steps) >= 1.0
        if val_dl is not None and ((epoch + 1) % cfg.val_every == 0 or last):
            record.update(evaluate(model, val_dl, device=device, size=cfg.data.size,
                                   names=tuple(mcfg.class_names))["overall"])
        history.append(record)
        log.info("epoch %d: %s", epoch + 1, {k: round(v, 4) if isinstance(v, float) else v for k, v in record.items()})
        extra = {"optimizer": opt.state_dict(), "epoch": epoch, "history": json.dumps(history),
                 "train_config": json.dumps(to_dict(cfg))}
        score = record.get("mAP50-95", -1.0)
        if score > best:  # best.pt: fp16 weights + config only (small enough to ship)
            best = score
            save_checkpoint(out / "best.pt", model=model, model_config=mcfg, half=True, best=best,
                            epoch=epoch, history=extra["history"], train_config=extra["train_config"])
        save_checkpoint(out / "last.pt", model=model, model_config=mcfg, best=best, **extra)
        if last:
            break
    (out / "metrics.json").write_text(json.dumps({"history": history, "best_mAP50-95": best, "classes": list(
        mcfg.class_names), "pretrained": None if report is None else {"source": report.source, "family": report.family,
                                                                      **summary_by_part(report)}}, indent=2))
    return {"history": history, "best": best}


def main(argv: list[str] | None = None) -> int:
    def run(args: list[str]) -> int:
        if not args:
            print("fusion.train: no config given — training the built-in defaults (python -m fusion.train --help "
                  "lists every key; configs/mid_n.yaml is the shipped recipe)", file=sys.stderr)
        _, cfg = parse_args(TrainConfig, args, config_file=True)
        result = train(cfg)
        print(f"trained {cfg.model.arch} for {len(result['history'])} epoch(s): best mAP50-95 {result['best']:.4f}; "
              f"wrote {cfg.out}/best.pt, {cfg.out}/last.pt, {cfg.out}/metrics.json")
        print(json.dumps({"out": cfg.out, "best_mAP50-95": result["best"]}))
        return 0

    from fusion.checkpoint import CheckpointError
    from fusion.data.layouts import DatasetError

    return cli_main(run, argv, doc=__doc__, config=TrainConfig, errors=(CheckpointError, DatasetError))

if __name__ == "__main__":
    sys.exit(main())
