"""Progress of a long step, for a terminal and for a log: a tqdm bar when stderr is a terminal, otherwise a log
line every `every_s` seconds (and at the end) with done / total, rate and ETA. Used by training, evaluation,
dataset generation and the job."""

from __future__ import annotations

import logging
import sys
import time

log = logging.getLogger("fusedet.progress")


def eta(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):  # NaN / unknown
        return "?"
    m, s = divmod(int(seconds + 0.5), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


class Steps:
    """Generic counter: `Steps(total, "epoch 3", unit="batch")`, `.advance(n, **postfix)`, `.close()`."""

    def __init__(self, total: int, what: str, *, unit: str = "it", every_s: float = 10.0,
                 interactive: bool | None = None):
        self.total, self.what, self.unit, self.every_s = total, what, unit, every_s
        self.done = 0
        self.t0 = self._last = time.perf_counter()
        interactive = sys.stderr.isatty() if interactive is None else interactive
        self.bar = None
        if interactive:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=what, unit=unit, leave=False)

    def advance(self, n: int = 1, **postfix: object) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            if postfix:
                self.bar.set_postfix(postfix, refresh=False)
            return
        now = time.perf_counter()
        if now - self._last >= self.every_s or self.done >= self.total:
            self._last = now
            rate = self.done / max(now - self.t0, 1e-9)
            extra = " ".join(f"{k}={v}" for k, v in postfix.items())
            log.info("%s: %d/%d %s (%.1f %s/s, ETA %s) %s", self.what, self.done, self.total, self.unit, rate,
                     self.unit, eta((self.total - self.done) / rate if rate else float("inf")), extra)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
