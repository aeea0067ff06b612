"""The machine a bench ran on, for the line printed beside every figure."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's name and its widest vector unit: two machines both called "AMD EPYC" differ 15x in bf16 speed
    when only one has AVX512-BF16 (measured here: bagan_gp on digits, 0.165 against 2.5 steps/s in float32)."""
    name = next((line.split(":", 1)[1].strip() for line in _cpuinfo() if line.startswith("model name")),
                platform.processor() or platform.machine() or "?")
    isa = vector_isa()
    return f"{name} ({isa})" if isa else name


def machine(device: str = "cpu") -> str:
    """The machine a bench's figures come from, for its ``machine`` column: the GPU's name first where ``device``
    resolves to CUDA (the host CPU then only feeds it), else the CPU's name and its cores."""
    host = f"{cpu_model()}, {os.cpu_count()} cores"
    if device == "cpu":
        return host
    import torch

    from imbagan.batches import resolve_device

    dev = resolve_device(device)
    if dev.type == "cuda":
        return f"{torch.cuda.get_device_name(dev)} (CUDA {torch.version.cuda}), host {host}"
    return host if dev.type == "cpu" else f"{dev.type.upper()} GPU, host {host}"


def vector_isa() -> str:
    """The widest of AVX512-BF16 / AMX, AVX-512, AVX2 that /proc/cpuinfo lists ("" when it lists none)."""
    flags = set(next((line.split(":", 1)[1].split() for line in _cpuinfo() if line.startswith("flags")), []))
    for isa, need in (("AVX512-BF16", {"avx512_bf16"}), ("AMX-BF16", {"amx_bf16"}), ("AVX-512", {"avx512f"}),
                      ("AVX2", {"avx2"})):
        if need <= flags:
            return isa
    return ""


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
