"""Draw a run's detections on the RGB (and IR) frames of one video, as PNG frames or a short MP4 clip.

    python -m jobs.render demo-output/detections cam00_20260601T180000 start=2 end=4 out=demo-output/clip.mp4
    archive=demo-output/archive   (where the videos are; default: the job's input.archive in its run summary)
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from fusion.config import ConfigError, cli_main, parse_args
from fusion.data.video import VideoReader, write_video
from jobs.manifest import list_pairs
from jobs.query import connect

PALETTE = [(60, 200, 60), (0, 160, 255), (255, 120, 40), (200, 80, 220), (40, 220, 220), (90, 90, 255)]
MODE_COLOURS = {"rgb": (40, 160, 240), "fused": (60, 170, 60), "ir": (190, 90, 140)}


@dataclass(frozen=True)
class RenderConfig:
    start: float = 0.0  # seconds from the video start
    end: float = 4.0
    out: str = "demo-output/render.mp4"  # .mp4 = one clip; a folder = PNG frames
    archive: str = ""  # "" = the archive recorded in the latest run's config
    side_by_side: bool = True  # append the IR frame (registered to the RGB size) to the right, boxes on both
    storage_options: dict[str, str] = field(default_factory=dict)  # fsspec options for the output and the archive


def colour(class_id: int) -> tuple[int, int, int]:
    return PALETTE[int(class_id) % len(PALETTE)]


def annotate(rgb: np.ndarray, ir: np.ndarray | None, dets: list[tuple], *, mode: str, title: str,
             classes: dict[int, str]) -> np.ndarray:
    """BGR frame (+ IR) with boxes and labels on both halves, the engine's mode and a class legend.

    dets: (class_id, score, x1, y1, x2, y2[, track_id]) in RGB pixels.
    """
    img = rgb.copy()
    halves = [img]
    if ir is not None:
        halves.append(cv2.cvtColor(cv2.resize(ir, img.shape[1::-1], interpolation=cv2.INTER_LINEAR),
                                   cv2.COLOR_GRAY2BGR))
    scale = max(img.shape[1] / 640, 0.6)
    for half in halves:
        for d in dets:
            cls, score, x1, y1, x2, y2 = d[:6]
            c = colour(cls)
            p1, p2 = (int(x1), int(y1)), (int(x2), int(y2))
            cv2.rectangle(half, p1, p2, c, max(int(2 * scale), 1))
            label = f"{classes.get(int(cls), cls)} {score:.2f}" + (f" #{d[6]}" if len(d) > 6 and d[6] >= 0 else "")
            _text(half, label, (p1[0], max(p1[1] - 4, 12)), 0.45 * scale, c)
    out = np.hstack(halves)
    bar = np.zeros((int(28 * scale), out.shape[1], 3), np.uint8)
    _text(bar, title, (8, int(19 * scale)), 0.55 * scale, (255, 255, 255))
    x = bar.shape[1] - int(8 * scale)
    for cid, name in sorted(classes.items(), reverse=True):
        w = int(len(name) * 9 * scale + 22 * scale)
        x -= w
        cv2.rectangle(bar, (x, int(8 * scale)), (x + int(12 * scale), int(20 * scale)), colour(cid), -1)
        _text(bar, name, (x + int(16 * scale), int(19 * scale)), 0.45 * scale, (230, 230, 230))
    mc = MODE_COLOURS.get(mode, (128, 128, 128))
    label = f"engine: {mode or 'not processed'}"
    cv2.rectangle(bar, (x - int(150 * scale), int(5 * scale)), (x - int(12 * scale), int(23 * scale)), mc, -1)
    cv2.putText(bar, label, (x - int(146 * scale), int(19 * scale)), cv2.FONT_HERSHEY_SIMPLEX, 0.45 * scale,
                (255, 255, 255), 1, cv2.LINE_AA)
    return np.vstack([bar, out])


def _text(img: np.ndarray, text: str, org: tuple[int, int], size: float, colour_: tuple[int, int, int]) -> None:
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, size, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, size, colour_, 1, cv2.LINE_AA)


def find_pair(con, video_id: str, archive: str, storage_options: dict):
    """The video's pair, from the archive recorded in the latest run (or `archive`)."""
    job = json.loads(con.execute("SELECT config FROM runs ORDER BY started DESC LIMIT 1").fetchall()[0][0])
    from fusion.config import from_dict
    from jobs.config import InputConfig, RetryConfig

    inp = from_dict(InputConfig, job["input"] | ({"archive": archive} if archive else {})
                    | ({"storage_options": storage_options} if storage_options else {}))
    pair = next((p for p in list_pairs(inp, RetryConfig(attempts=3))[0] if p.video_id == video_id), None)
    if pair is None:
        raise ConfigError(f"video_id {video_id!r} is not in the archive {inp.archive}")
    return pair, inp.storage_options


def class_names(con) -> dict[int, str]:
    return dict(con.sql("SELECT DISTINCT class_id, class_name FROM detections").fetchall())


def render(output: str, video_id: str, cfg: RenderConfig) -> str:
    con = connect(output, cfg.storage_options)
    pair, so = find_pair(con, video_id, cfg.archive, cfg.storage_options)
    dets = con.execute("SELECT frame_idx, class_id, score, x1, y1, x2, y2 FROM detections WHERE video_id = ? "
                       "ORDER BY frame_idx, score DESC", [video_id]).fetchall()
    modes = dict(con.execute("SELECT frame_idx, modality FROM frames WHERE video_id = ?", [video_id]).fetchall())
    classes = class_names(con)
    by_frame: dict[int, list] = {}
    for row in dets:
        by_frame.setdefault(row[0], []).append(row[1:])
    with VideoReader.open(pair.rgb_uri, storage_options=so) as rgb, VideoReader.open(
            pair.ir_uri, storage_options=so, gray=True) as ir:
        fps = rgb.fps
        ir_frames = dict(ir.frames(cfg.start, cfg.end))
        frames = []
        for t, img in rgb.frames(cfg.start, cfg.end):
            idx = round(t * fps)
            near = min(ir_frames, key=lambda s: abs(s - t)) if ir_frames else None
            frames.append(annotate(img, ir_frames[near] if cfg.side_by_side and near is not None else None,
                                   by_frame.get(idx, []), mode=modes.get(idx, ""), classes=classes,
                                   title=f"{video_id}  frame {idx}  t={t:.2f}s"))
    if not frames:
        raise ConfigError(f"{video_id}: no frames between start={cfg.start} and end={cfg.end} s")
    if cfg.out.endswith(".mp4"):
        write_video(cfg.out, frames, fps=round(fps))
    else:
        Path(cfg.out).mkdir(parents=True, exist_ok=True)
        for i, f in enumerate(frames):
            cv2.imwrite(f"{cfg.out}/{video_id}_{i:05d}.png", f)
    return cfg.out


def main(argv: list[str] | None = None) -> int:
    def run(args: list[str]) -> int:
        (output, video_id), cfg = parse_args(RenderConfig, args, positional=2)
        print(f"wrote {render(output, video_id, cfg)}")
        return 0

    return cli_main(run, argv, doc=__doc__, config=RenderConfig)

if __name__ == "__main__":
    sys.exit(main())
