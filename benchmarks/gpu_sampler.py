"""GPU (SM) and NVDEC utilisation and memory, sampled by nvidia-smi while a benchmark stage runs."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time


class GpuSampler:
    """nvidia-smi every 250 ms: GPU (SM) and NVDEC utilisation, memory."""

    def __init__(self):
        self.samples: list[tuple[float, ...]] = []
        self.proc = None
        if not shutil.which("nvidia-smi"):
            return
        self.proc = subprocess.Popen(["nvidia-smi", "--query-gpu=utilization.gpu,utilization.decoder,memory.used",
                                      "--format=csv,noheader,nounits", "-lms", "250"], stdout=subprocess.PIPE,
                                     text=True)
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                self.samples.append((time.time(), *map(float, line.split(","))))
            except ValueError:
                continue

    def stop(self, t_from: float, t_to: float) -> dict:
        if self.proc is None:
            return {}
        self.proc.terminate()
        s = [x for x in self.samples if t_from <= x[0] <= t_to]
        if not s:
            return {}
        return {"gpu_util_mean": round(sum(x[1] for x in s) / len(s), 1),
                "nvdec_util_mean": round(sum(x[2] for x in s) / len(s), 1),
                "memory_MB_max": max(x[3] for x in s), "samples": len(s)}
