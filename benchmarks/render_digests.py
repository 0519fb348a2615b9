"""Does this machine render the same clips as another? Digests of two generated clips, each rendered `repeats` times:
the raw frames handed to the encoder, the encoded MP4 files, the ground-truth Parquet file and its content.

    .venv/bin/python benchmarks/render_digests.py out=build/render_digests.json

Run it on two machines and compare the JSON: equal frame digests = the scene renderer (NumPy, OpenCV) draws the same
pixels; equal MP4 digests = the encoder (x264 in PyAV) writes the same bytes; a Parquet file whose bytes differ but
whose content digest is equal differs only in its metadata (pyarrow writes its version into the file). The library
versions and whether the CPU has AVX-512 (see `fusion.data.video`) are recorded beside them.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


@dataclass(frozen=True)
class DigestSpec:
    repeats: int = 3  # renders of each clip (run-to-run differences show within one machine)
    out: str = ""


# (name, seed, seconds, RGB (W, H), IR (W, H)): a small clip, and test clip 5's seed at the evaluation's size.
CLIPS = (("small", 21, 0.6, (160, 128), (320, 256)), ("seed4247", 4247, 2.0, (640, 512), (320, 256)))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


def digests(spec: DigestSpec) -> dict:
    import av
    import cv2
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    import fusion.data.generate as generate
    from fusion.data.scene import Illumination, SceneConfig

    frames: dict[str, str] = {}
    encode = generate.write_video

    def digest_then_encode(url: str, clip_frames, **kw):
        # write_clip hands its rendered frames (H, W, 3) uint8 to write_video: digest them on the way.
        clip_frames = list(clip_frames)
        frames[Path(url).name] = _sha(b"".join(f.tobytes() for f in clip_frames))
        return encode(url, iter(clip_frames), **kw)

    out = {"versions": {"numpy": np.__version__, "opencv": cv2.__version__, "av": av.__version__,
                        "pyarrow": pa.__version__},
           "avx512": bool(re.search(r"\bavx512f\b", Path("/proc/cpuinfo").read_text()))
           if Path("/proc/cpuinfo").exists() else None,
           "clips": {}}
    generate.write_video = digest_then_encode
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for name, seed, seconds, rgb_size, ir_size in CLIPS:
                runs = []
                for k in range(spec.repeats):
                    paths = {x: f"{tmp}/{name}{k}_{x}" for x in ("rgb.mp4", "ir.mp4", "gt.parquet")}
                    generate.write_clip(rgb_url=paths["rgb.mp4"], ir_url=paths["ir.mp4"], gt_url=paths["gt.parquet"],
                                        seed=seed, seconds=seconds, fps=25,
                                        config=SceneConfig(rgb_size=rgb_size, ir_size=ir_size),
                                        light_from=Illumination(0.02), light_to=Illumination(0.9))
                    table = pq.read_table(paths["gt.parquet"])
                    runs.append({
                        "frames_rgb": frames[f"{name}{k}_rgb.mp4"], "frames_ir": frames[f"{name}{k}_ir.mp4"],
                        **{x: _sha(Path(p).read_bytes()) for x, p in paths.items()},
                        "gt_content": _sha(table.to_pandas().to_csv().encode()),
                    })
                out["clips"][name] = {"runs": runs, "same_every_run": all(r == runs[0] for r in runs)}
    finally:
        generate.write_video = encode
    return out


def main(argv: list[str] | None = None) -> int:
    from fusion.config import cli_main, parse_args

    def run(args: list[str]) -> int:
        _, spec = parse_args(DigestSpec, args)
        result = {"spec": asdict(spec)} | digests(spec)
        text = json.dumps(result, indent=1) + "\n"
        if spec.out:
            Path(spec.out).parent.mkdir(parents=True, exist_ok=True)
            Path(spec.out).write_text(text)
        print(text, end="")
        return 0

    return cli_main(run, argv, doc=__doc__, config=DigestSpec)


if __name__ == "__main__":
    sys.exit(main())
