"""Parameters, fp16 weight size and GFLOPs (one pair at 640x512) of every architecture at scales n and s.

    .venv/bin/python benchmarks/model_stats.py     # writes benchmarks/results/model_stats.json
"""

import json
from pathlib import Path

from fusion.models.build import ModelConfig, build_model, model_stats


def main() -> None:
    rows = []
    for scale in ("n", "s"):
        for arch in ("early", "mid", "decision", "rgb", "ir"):
            s = model_stats(build_model(ModelConfig(arch=arch, scale=scale)), size=(640, 512))
            rows.append({"arch": arch, "scale": scale, **{k: round(v, 2) for k, v in s.items()}})
            print(f"{arch:9} {scale}  {s['params_M']:6.2f} M  {s['fp16_MB']:6.1f} MB  {s['GFLOPs']:6.1f} GFLOPs")
    out = Path(__file__).parent / "results" / "model_stats.json"
    out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
