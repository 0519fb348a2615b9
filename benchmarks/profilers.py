"""Profilers a benchmark stage runs on its own process: py-spy (who holds the GIL, where every thread is) and
torch.profiler's CUDA kernels (where the GPU's time goes)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


def py_spy(folder: str, name: str) -> list[subprocess.Popen]:
    """py-spy on this process for 8 s: who holds the GIL (--gil), and where every thread is (--idle); [] without
    py-spy. Wait for the returned processes before reading their files."""
    exe = shutil.which("py-spy")
    if not exe:
        return []
    Path(folder).mkdir(parents=True, exist_ok=True)
    common = [exe, "record", "--pid", str(os.getpid()), "--duration", "8", "--rate", "200", "--format", "raw",
              "--nonblocking"]
    return [subprocess.Popen([*common, "--gil", "-o", f"{folder}/{name}_gil.txt"]),
            subprocess.Popen([*common, "--idle", "--threads", "-o", f"{folder}/{name}_threads.txt"])]


def kernel_profiler():
    """CUDA activity of the whole process (CUPTI sees every thread's kernels); CPU ops where there is no GPU."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    return profile(activities=[ProfilerActivity.CUDA if torch.cuda.is_available() else ProfilerActivity.CPU])


def write_kernels(prof, path: Path, header: str) -> None:
    """The 40 kernels (or CPU ops) with the most self time, as torch.profiler's table."""
    import torch

    key = "self_cuda_time_total" if torch.cuda.is_available() else "self_cpu_time_total"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{header}\n{prof.key_averages().table(sort_by=key, row_limit=40, max_name_column_width=90)}")
