"""Training throughput on one GPU: the CPU data loader (what bounded training) against the GPU data path.

    python benchmarks/bench_train.py [out=benchmarks/results/bench_train.json pairs=12000 work=/tmp/fusedet-train]

One run: generate an LLVIP-layout dataset (JPEG pairs, 640x512, the project's generator), then time mid_n training
steps (AdamW, fp16 autocast, batch `batch`) fed by (1) the DataLoader with `workers` processes decoding and
augmenting JPEGs on the CPU, (2) the GPU path (decoded once into a uint8 store, augmented on the GPU; the one-off
store build is timed apart), (3) random tensors already on the GPU (the model's own ceiling).
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


@dataclass(frozen=True)
class BenchTrainConfig:
    out: str = "benchmarks/results/bench_train.json"
    work: str = "/tmp/fusedet-train"
    pairs: int = 12000
    size: tuple[int, int] = (640, 512)
    batch: int = 64
    steps: int = 60  # timed steps per variant (after warm-up steps)
    warmup: int = 8
    workers: int = 14  # DataLoader processes for the CPU baseline
    store_pairs: int = 0  # the GPU path's store from the first N pairs only (0 = all): steps/s do not depend on it
    variants: tuple[str, ...] = ("cpu_dataloader", "gpu_path", "model_only")


def _timed(step, batches, cfg: BenchTrainConfig) -> dict:
    import torch

    it = iter(batches)
    for _ in range(cfg.warmup):
        step(next(it))
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(cfg.steps):
        step(next(it))
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    return {"steps": cfg.steps, "batch": cfg.batch, "seconds": round(dt, 2),
            "pairs_per_s": round(cfg.steps * cfg.batch / dt, 1)}


def main(argv: list[str] | None = None) -> int:
    from fusion.config import cli_main, parse_args

    def run(args: list[str]) -> int:
        import torch
        from torch.utils.data import DataLoader

        from fusion.data.generate import DatasetSpec, write_dataset
        from fusion.data.gpu_batches import GpuBatches, PairStore
        from fusion.data.layouts import read_dataset
        from fusion.data.pairs import AugmentConfig, FolderPairs, TrainPairs, collate
        from fusion.models.build import ModelConfig, build_model
        from fusion.train import TrainConfig, _loss_fns, train_step

        _, cfg = parse_args(BenchTrainConfig, args)
        res: dict = {"machine": {"gpu": torch.cuda.get_device_name(), "cpus": os.cpu_count(),
                                 "torch": torch.__version__}, "config": asdict(cfg)}
        root = Path(cfg.work) / "llvip"
        t0 = time.perf_counter()
        if not (root / "slices.csv").exists():
            write_dataset(DatasetSpec(out=str(root), n=cfg.pairs, layout="llvip", rgb_size=cfg.size,
                                      ir_size=cfg.size, workers=os.cpu_count() or 4))
        res["dataset"] = {"pairs": cfg.pairs, "layout": "llvip (JPEG)", "generate_s": round(time.perf_counter() - t0)}
        device = torch.device("cuda")
        tcfg = TrainConfig(batch=cfg.batch)
        model = build_model(ModelConfig(arch="mid")).to(device)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        scaler = torch.amp.GradScaler("cuda")
        losses = _loss_fns(model, tcfg)
        model.train()

        def step(batch):
            train_step(model, losses, opt, scaler, batch, device=device, amp=True)

        src = FolderPairs(read_dataset(str(root), split="train"))
        dl = DataLoader(TrainPairs(src, size=cfg.size, augment=AugmentConfig(), seed=0), batch_size=cfg.batch,
                        shuffle=True, num_workers=cfg.workers, collate_fn=collate, pin_memory=True,
                        persistent_workers=True, drop_last=True)
        if "cpu_dataloader" in cfg.variants:
            res["cpu_dataloader"] = _timed(step, dl, cfg) | {"workers": cfg.workers}
            print("cpu dataloader", res["cpu_dataloader"], flush=True)
        del dl
        if cfg.store_pairs:
            src.samples = src.samples[:cfg.store_pairs]
        t0 = time.perf_counter()
        store = PairStore.build(src, size=cfg.size, root=Path(cfg.work) / "store", key=str(root),
                                workers=os.cpu_count() or 4)
        res["store_build_s"] = round(time.perf_counter() - t0, 1)
        res["store_pairs"] = len(src)
        gb = GpuBatches(store, batch=cfg.batch, augment=AugmentConfig(), device=device, seed=0)

        def gpu_batches():
            epoch = 0
            while True:
                yield from gb.epoch(epoch)
                epoch += 1

        res["gpu_path"] = _timed(step, gpu_batches(), cfg)
        print("gpu path", res["gpu_path"], flush=True)
        fixed = next(gb.epoch(99))

        def same():
            while True:
                yield fixed

        res["model_only"] = _timed(step, same(), cfg)
        res["hours_per_100_epochs_12k_pairs"] = round(100 * 12000 / res["gpu_path"]["pairs_per_s"] / 3600, 2)
        Path(cfg.out).parent.mkdir(parents=True, exist_ok=True)
        Path(cfg.out).write_text(json.dumps(res, indent=1) + "\n")
        print(f"{'data path':34} {'pairs/s':>9}")
        for k in cfg.variants:
            print(f"{k:34} {res[k]['pairs_per_s']:9.1f}")
        print(f"store build (once): {res['store_build_s']} s; 100 epochs of 12k pairs: "
              f"{res['hours_per_100_epochs_12k_pairs']} h")
        return 0

    return cli_main(run, argv, doc=__doc__, config=BenchTrainConfig)


if __name__ == "__main__":
    sys.exit(main())
