"""Draw a run's detections on the RGB (and IR) frames of one video, as PNG frames or a short MP4 clip.

    python -m jobs.render demo-output/detections cam00_20260601T180000 start=2 end=4 out=demo-output/clip.mp4
    archive=demo-output/archive   (where the videos are; default: the job's input.archive in its run summary)
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

import cv2
import numpy as np

from fusion.config import ConfigError, cli_main, parse_args
from fusion.data.video import VideoReader, write_video
from jobs.manifest import list_pairs
from jobs.query import connect

COLOURS = {0: (0, 220, 0), 1: (0, 160, 255)}


@dataclass(frozen=True)
class RenderConfig:
    start: float = 0.0  # seconds from the video start
    end: float = 4.0
    out: str = "demo-output/render.mp4"  # .mp4 = one clip; a folder = PNG frames
    archive: str = ""  # "" = the archive recorded in the latest run's config
    side_by_side: bool = True  # append the IR frame to the right


def render(output: str, video_id: str, cfg: RenderConfig) -> str:
    con = connect(output)
    job = json.loads(con.execute("SELECT config FROM runs ORDER BY started DESC LIMIT 1").fetchall()[0][0])
    from fusion.config import from_dict
    from jobs.config import InputConfig, RetryConfig

    inp = from_dict(InputConfig, job["input"] | ({"archive": cfg.archive} if cfg.archive else {}))
    pair = next((p for p in list_pairs(inp, RetryConfig())[0] if p.video_id == video_id), None)
    if pair is None:
        raise ConfigError(f"video_id {video_id!r} is not in the archive {inp.archive}")
    dets = con.execute("SELECT frame_idx, class_id, score, x1, y1, x2, y2, modality FROM detections "
                       "WHERE video_id = ? ORDER BY frame_idx", [video_id]).fetchall()
    by_frame: dict[int, list] = {}
    for row in dets:
        by_frame.setdefault(row[0], []).append(row[1:])
    so = inp.storage_options
    with VideoReader.open(pair.rgb_uri, storage_options=so) as rgb, VideoReader.open(
            pair.ir_uri, storage_options=so, gray=True) as ir:
        fps = rgb.fps
        ir_frames = dict(ir.frames(cfg.start, cfg.end))
        frames = []
        for t, img in rgb.frames(cfg.start, cfg.end):
            img = img.copy()
            idx = round(t * fps)
            for cls, score, x1, y1, x2, y2, _mode in by_frame.get(idx, []):
                cv2.rectangle(img, (int(x1), int(y1)), (int(x2), int(y2)), COLOURS.get(cls, (255, 255, 255)), 2)
                cv2.putText(img, f"{score:.2f}", (int(x1), max(int(y1) - 3, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                            COLOURS.get(cls, (255, 255, 255)), 1)
            mode = by_frame[idx][0][-1] if idx in by_frame else ""
            cv2.putText(img, f"{video_id} f{idx} {mode}", (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
            if cfg.side_by_side and ir_frames:
                near = min(ir_frames, key=lambda s: abs(s - t))
                irc = cv2.cvtColor(cv2.resize(ir_frames[near], img.shape[1::-1]), cv2.COLOR_GRAY2BGR)
                img = np.hstack([img, irc])
            frames.append(img)
    if cfg.out.endswith(".mp4"):
        write_video(cfg.out, frames, fps=round(fps))
    else:
        import os

        os.makedirs(cfg.out, exist_ok=True)
        for i, f in enumerate(frames):
            cv2.imwrite(f"{cfg.out}/{video_id}_{i:05d}.png", f)
    return cfg.out


def main(argv: list[str] | None = None) -> int:
    def run(args: list[str]) -> int:
        (output, video_id), cfg = parse_args(RenderConfig, args, positional=2)
        print(render(output, video_id, cfg))
        return 0

    return cli_main(run, argv, doc=__doc__)

if __name__ == "__main__":
    sys.exit(main())
