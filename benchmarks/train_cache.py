"""Render the training and held-out pairs once into `data.cache_dir` (and the GPU loader's letterboxed store), so
several `fusion.train` processes started next share them instead of each rendering its own.

    python benchmarks/train_cache.py configs/mid_n.yaml data.cache_dir=/tmp/cache data.n_train=6000 workers=16
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str]) -> int:
    from fusion.config import parse_args
    from fusion.data.gpu_batches import PairStore
    from fusion.train import TrainConfig, _data_key, sources

    t = time.time()
    _, cfg = parse_args(TrainConfig, argv, config_file=True)
    train_src, _val, _ = sources(cfg)  # renders both sets into the cache
    PairStore.build(train_src, size=cfg.data.size, root=cfg.data.cache_dir, key=_data_key(cfg),
                    workers=max(cfg.workers, 1))
    print(f"{cfg.data.n_train} + {cfg.data.n_val} pairs rendered and letterboxed in {time.time() - t:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
