"""One self-contained HTML page per run: what was processed, how fast, what went wrong, and what was seen.

    python -m jobs.report demo-output/detections [run_id] [storage_options={...}] [thumbnails=6]

Written next to the run record (`<output>/_runs/run_id=<id>/report.html`); plots and thumbnails are embedded, so
the page is one file that can be mailed or attached to a ticket. Sections: summary, per-camera detections over
time, modality and brightness per video, the errors table, and the busiest frames with their boxes.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import json
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import duckdb
import fsspec

from fusion.config import ConfigError, cli_main, load_config
from fusion.data.video import VideoError, VideoReader
from jobs.paths import Layout
from jobs.query import connect

CSS = """
body{font:14px/1.45 -apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
header{background:#1d2330;color:#fff;padding:22px 32px}header h1{margin:0;font-size:22px;font-weight:600}
header p{margin:4px 0 0;color:#b9c0cf}main{max-width:1180px;margin:0 auto;padding:20px 32px 40px}
section{background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.08);padding:18px 22px;margin:18px 0}
h2{font-size:16px;margin:0 0 12px;color:#2a3344}.cards{display:grid;grid-template-columns:repeat(auto-fill,
minmax(160px,1fr));gap:12px}.card{background:#f7f8fa;border-radius:6px;padding:12px 14px}.card b{display:block;
font-size:22px;font-weight:600}.card span{color:#5b6478;font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.ok b{color:#1f8a4c}.bad b{color:#c0392b}.warn b{color:#b7791f}img.plot{width:100%;border:1px solid #e3e6eb;
border-radius:4px}table{border-collapse:collapse;width:100%;font-size:12.5px}th,td{text-align:left;padding:6px 8px;
border-bottom:1px solid #eceef2;vertical-align:top}th{background:#f7f8fa;font-weight:600}td.reason{max-width:520px;
word-break:break-word}.sev-error{color:#c0392b;font-weight:600}.sev-warning{color:#b7791f;font-weight:600}
.thumbs{display:grid;grid-template-columns:repeat(2,1fr);gap:14px}.thumbs figure{margin:0}.thumbs img{width:100%;
border-radius:4px}figcaption{font-size:12px;color:#5b6478;margin-top:4px}.muted{color:#5b6478}
"""


@dataclass(frozen=True)
class ReportConfig:
    thumbnails: int = 6  # annotated thumbnails of the busiest frames (0 = none)
    max_errors: int = 200  # rows of the errors table shown (all are in errors.parquet)
    storage_options: dict[str, str] = field(default_factory=dict)  # fsspec options for the output and the archive


def _img(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _plots(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    from jobs.plots import plot

    with tempfile.TemporaryDirectory() as tmp:
        return {Path(p).stem: _img(Path(p).read_bytes(), "image/png") for p in plot(con, tmp)}


def _thumbnails(con, n: int, storage_options: dict) -> list[tuple[str, str]]:
    from jobs.render import annotate, class_names, find_pair

    # The busiest frame of each video first, then the second busiest of each, ...: the page shows the archive, not
    # n neighbouring frames of one clip.
    rows = con.sql(f"SELECT video_id, frame_idx, detections, modality, timestamp FROM ("
                   f"SELECT *, row_number() OVER (PARTITION BY video_id ORDER BY detections DESC, frame_idx) AS r "
                   f"FROM frames) ORDER BY r, detections DESC, timestamp LIMIT {int(n)}").fetchall()
    classes = class_names(con)
    out = []
    for vid, idx, count, mode, ts in rows:
        try:
            pair, so = find_pair(con, vid, "", storage_options)
            with VideoReader.open(pair.rgb_uri, storage_options=so) as r:
                t = idx / r.fps
                rgb = next(r.frames(t, t + 0.5 / r.fps + 1e-3), (None, None))[1]
            with VideoReader.open(pair.ir_uri, storage_options=so, gray=True) as r:
                ir = next(r.frames(t, t + 0.5 / r.fps + 1e-3), (None, None))[1]
        except (ConfigError, VideoError, OSError):
            continue  # the archive moved or is not readable from here: the page says so by its absence
        if rgb is None:
            continue
        dets = con.execute("SELECT class_id, score, x1, y1, x2, y2 FROM detections WHERE video_id = ? AND "
                           "frame_idx = ? ORDER BY score DESC", [vid, idx]).fetchall()
        img = annotate(rgb, ir, dets, mode=mode, classes=classes, title=f"{vid}  frame {idx}")
        scale = 900 / img.shape[1]
        img = cv2.resize(img, (900, round(img.shape[0] * scale)), interpolation=cv2.INTER_AREA)
        _ok, jpg = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 82])
        out.append((_img(jpg.tobytes(), "image/jpeg"), f"{vid} · frame {idx} · {ts:%Y-%m-%d %H:%M:%S} UTC · "
                                                       f"{count} detection{'' if count == 1 else 's'} · engine {mode}"))
    return out


def _card(label: str, value: str, kind: str = "") -> str:
    return f'<div class="card {kind}"><b>{html.escape(value)}</b><span>{html.escape(label)}</span></div>'


def build(output: str, run_id: str | None, cfg: ReportConfig) -> tuple[str, str]:
    """→ (the page, the run id)."""
    con = connect(output, cfg.storage_options)
    runs = con.sql("SELECT * FROM runs ORDER BY started DESC").fetchall() if _has(con, "runs") else []
    cols = [d[0] for d in con.sql("SELECT * FROM runs LIMIT 0").description] if runs else []
    runs = [dict(zip(cols, r, strict=True)) for r in runs]
    if not runs:
        raise ConfigError(f"{output}: no run record yet (_runs/*/summary.parquet)")
    run = next((r for r in runs if r["run_id"] == run_id), None) if run_id else runs[0]
    if run is None:
        raise ConfigError(f"run_id {run_id!r} not in {output}; runs: {[r['run_id'] for r in runs[:5]]}")
    config = json.loads(run["config"])
    errors = con.execute("SELECT severity, error_type, video_id, chunk_id, uri, reason FROM errors WHERE run_id = ? "
                         "ORDER BY severity, video_id, chunk_id", [run["run_id"]]).fetchall() if _has(
        con, "errors") else []
    n_err = sum(e[0] == "error" for e in errors)
    cards = [_card("frames processed", f"{run['frames']:,}"), _card("detections", f"{run['detections']:,}"),
             _card("pairs / s", f"{run['pairs_per_s']:.1f}"), _card("wall time", f"{run['seconds']:.0f} s"),
             _card("chunks done", f"{run['chunks_done']} / {run['chunks_total']}",
                   "ok" if run["chunks_done"] + run["chunks_skipped"] == run["chunks_total"] else "warn"),
             _card("chunks skipped (done before)", str(run["chunks_skipped"])),
             _card("partial / failed chunks", f"{run['chunks_partial']} / {run['chunks_failed']}",
                   "bad" if run["chunks_failed"] else "warn" if run["chunks_partial"] else "ok"),
             _card("inputs that could not run", str(run["videos_failed"]), "bad" if run["videos_failed"] else "ok"),
             _card("problems reported", str(n_err), "bad" if n_err else "ok")]
    plots = _plots(con)
    thumbs = _thumbnails(con, cfg.thumbnails, cfg.storage_options) if cfg.thumbnails else []
    err_rows = "".join(
        f'<tr><td class="sev-{html.escape(s)}">{html.escape(s)}</td><td>{html.escape(t)}</td><td>{html.escape(v)}'
        f'</td><td>{c if c >= 0 else ""}</td><td>{html.escape(u)}</td><td class="reason">{html.escape(r)}</td></tr>'
        for s, t, v, c, u, r in errors[:cfg.max_errors])
    started = run["started"].astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if run["started"] else "?"
    eng = config.get("engine", {})
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>fusedet run {html.escape(
        run['run_id'])}</title><meta name="viewport" content="width=device-width,initial-scale=1"><style>{CSS}</style>
</head><body><header><h1>fusedet · detection run {html.escape(run['run_id'])}</h1>
<p>{started} · archive {html.escape(config.get('input', {}).get('archive', '?'))} → {html.escape(output)} ·
engine {html.escape(str(eng.get('backend')))} {html.escape(str(eng.get('precision')))} · modality
{html.escape(str(config.get('modality', {}).get('mode')))} · {run['actors']} actor(s){' · INTERRUPTED'
if run['interrupted'] else ''}</p></header><main>
<section><h2>Summary</h2><div class="cards">{''.join(cards)}</div>
<p class="muted">Planning (reading every video's header) took {run['plan_seconds']:.1f} s of the
{run['seconds']:.0f} s. Timelines below show all frames in this output.</p></section>
<section><h2>Detections over time, per camera</h2><img class="plot" alt="detections per camera"
src="{plots['detections_over_time']}"></section>
<section><h2>Modality and brightness, per video</h2><p class="muted">Background: the engine the policy chose for each
frame (RGB-only, fused, IR-only); grey lines: brightness where its routes change engine (none: every frame fused);
blue: detections per frame.</p>
<img class="plot" alt="modality timelines" src="{plots['modality_timeline']}"></section>
<section><h2>Problems ({len(errors)})</h2>{'<p class="muted">None: every input paired and every chunk written.</p>'
if not errors else f'<table><tr><th>severity</th><th>type</th><th>video</th><th>chunk</th><th>file</th><th>reason</th>'
f'</tr>{err_rows}</table>'}</section>
<section><h2>Busiest frames</h2>{'<div class="thumbs">' + ''.join(
        f'<figure><img alt="{html.escape(c)}" src="{s}"><figcaption>{html.escape(c)}</figcaption></figure>'
        for s, c in thumbs) + '</div>' if thumbs else '<p class="muted">No thumbnails (archive not readable).</p>'}
</section></main></body></html>"""
    return page, run["run_id"]


def _has(con: duckdb.DuckDBPyConnection, view: str) -> bool:
    return bool(con.sql(f"SELECT count(*) FROM duckdb_views() WHERE view_name = '{view}'").fetchall()[0][0])


def write_report(output: str, run_id: str | None = None, cfg: ReportConfig | None = None) -> str:
    cfg = cfg or ReportConfig()
    page, rid = build(output, run_id, cfg)
    fs, base = fsspec.core.url_to_fs(output, **cfg.storage_options)
    path = Layout(base).run(rid, "report").replace(".parquet", ".html")
    with fs.open(path, "wb") as f:
        f.write(io.BytesIO(page.encode()).getvalue())
    return path if "://" not in output else f"{output.split('://', 1)[0]}://{path}"


def main(argv: list[str] | None = None) -> int:
    return cli_main(_run, argv, doc=__doc__, config=ReportConfig)


def _run(args: list[str]) -> int:
    pos = [a for a in args if "=" not in a]
    if not 1 <= len(pos) <= 2:
        raise ConfigError("usage: python -m jobs.report <output> [run_id] [key=value ...]")
    cfg = load_config(ReportConfig, None, [a for a in args if "=" in a])
    print(f"wrote {write_report(pos[0], pos[1] if len(pos) > 1 else None, cfg)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
