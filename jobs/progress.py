"""The job's progress from chunk status rows (see `fusion.progress.Steps` for the terminal / log behaviour)."""

from __future__ import annotations

import time

from fusion.progress import Steps


class Progress:
    """The job's progress from chunk status rows: chunks done / total, frames, pairs/s, ETA."""

    def __init__(self, total: int, *, every_s: float = 10.0, interactive: bool | None = None):
        self.steps = Steps(total, "chunks", unit="chunk", every_s=every_s, interactive=interactive)
        self.frames = 0
        self.failed = 0

    def update(self, row: dict) -> None:
        if row["status"] in ("done", "partial"):
            self.frames += int(row["frames"])
        self.failed += row["status"] == "failed"
        rate = self.frames / max(time.perf_counter() - self.steps.t0, 1e-9)
        self.steps.advance(1, frames=self.frames, pairs_per_s=f"{rate:.1f}", failed=self.failed)
        if self.steps.done >= self.steps.total:
            self.steps.close()
