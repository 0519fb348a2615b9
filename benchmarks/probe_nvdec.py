"""What one decoded frame costs to hand to torch, and what the decoder alone gives, on one GPU (device machine).

    python benchmarks/probe_nvdec.py [out=benchmarks/results/probe_nvdec.json]

Renders one 1280x1024 clip, decodes it with PyNvVideoCodec and times, per frame: `torch.from_dlpack(frame)` (torch
negotiates the DLPack signature: it tries the 1.0 one first) against one `frame.__dlpack__(stream=)` call (what
fusion.data.decode does), and whether the library accepts the 1.0 signature at all. Frames must be equal both ways.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


@dataclass(frozen=True)
class ProbeConfig:
    out: str = "benchmarks/results/probe_nvdec.json"
    seconds: float = 4.0
    repeats: int = 5  # decodes of the whole clip per variant


def run(cfg: ProbeConfig) -> dict:
    import PyNvVideoCodec as nvc
    import torch

    from fusion.data.generate import write_clip
    from fusion.data.scene import Illumination, SceneConfig

    tmp = Path(tempfile.mkdtemp())
    rgb = str(tmp / "p_rgb.mp4")
    write_clip(rgb_url=rgb, ir_url=str(tmp / "p_ir.mp4"), gt_url=str(tmp / "gt.parquet"), seed=3,
               seconds=cfg.seconds, fps=25, config=SceneConfig(rgb_size=(1280, 1024), ir_size=(640, 512)),
               light_from=Illumination(0.4), light_to=Illumination(0.4))
    stream = torch.cuda.Stream()
    dec = nvc.SimpleDecoder(rgb, gpu_id=0, cuda_stream=stream.cuda_stream, use_device_memory=True,
                            output_color_type=nvc.OutputColorType.RGBP, decoder_cache_size=1)
    ptr = torch.cuda.current_stream().cuda_stream or 1
    first = dec.get_batch_frames(1)[0]
    try:
        first.__dlpack__(max_version=(1, 0), stream=ptr)
        v1 = "accepted"
    except TypeError as exc:
        v1 = f"TypeError: {str(exc).splitlines()[0][:160]}"
    res: dict = {"gpu": torch.cuda.get_device_name(), "dlpack_1_0_signature": v1}
    variants = {"torch.from_dlpack(frame)": lambda f: torch.from_dlpack(f),
                "torch.from_dlpack(frame.__dlpack__(stream=))": lambda f: torch.from_dlpack(f.__dlpack__(stream=ptr))}
    sums = {}
    for name, export in variants.items():
        export_s, n, total = 0.0, 0, 0.0
        for _ in range(cfg.repeats):
            dec.seek_to_index(0)
            got = dec.get_batch_frames(32)
            acc = 0
            while got:
                t0 = time.perf_counter()
                planes = [export(f) for f in got]
                export_s += time.perf_counter() - t0
                acc += int(torch.stack(planes).sum(dtype=torch.int64))
                n += len(got)
                got = dec.get_batch_frames(32)
            total = acc
        sums[name] = total
        res[name] = {"frames": n, "us_per_frame": round(export_s / n * 1e6, 1)}
    res["same_frames"] = len(set(sums.values())) == 1
    Path(cfg.out).parent.mkdir(parents=True, exist_ok=True)
    Path(cfg.out).write_text(json.dumps(res, indent=1) + "\n")
    return res


def main(argv: list[str] | None = None) -> int:
    from fusion.config import cli_main, parse_args

    def go(args: list[str]) -> int:
        _, cfg = parse_args(ProbeConfig, args)
        print(json.dumps(run(cfg), indent=1))
        return 0

    return cli_main(go, argv, doc=__doc__)


if __name__ == "__main__":
    sys.exit(main())
