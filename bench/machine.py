"""The machine a bench ran on, for the line printed beside every figure."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    for line in _cpuinfo():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "?"


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


class Busy:
    """``n`` other processes that each keep one core busy (a Python busy loop), started on entry and stopped on
    exit: the "machine that is never idle" of issue 22, started and stopped by the benchmark itself."""

    CODE = "while True:\n    pass\n"

    def __init__(self, n: int = 1):
        self.n, self.procs = n, []

    def __enter__(self) -> "Busy":
        import subprocess
        import sys
        import time

        self.procs = [subprocess.Popen([sys.executable, "-c", self.CODE]) for _ in range(self.n)]
        time.sleep(0.3 if self.n else 0)  # they are running before anything is timed
        return self

    def __exit__(self, *exc) -> None:
        for p in self.procs:
            p.kill()
        for p in self.procs:
            p.wait()
        self.procs = []
