"""bench/machine.py: the machine line printed beside every figure names the CPU's vector unit, since bf16 speed
depends on it (two "AMD EPYC" machines differed 15x)."""

from __future__ import annotations

import pytest

from tests.conftest import load_bench


@pytest.mark.parametrize("flags, isa", [
    ("fpu sse2 avx avx2 fma", "AVX2"),
    ("avx avx2 avx512f avx512bw", "AVX-512"),
    ("avx2 avx512f avx512_bf16 amx_bf16", "AVX512-BF16"),
    ("sse2", ""),
])
def test_cpu_model_names_the_vector_unit(monkeypatch, flags, isa):
    m = load_bench("machine")
    monkeypatch.setattr(m, "_cpuinfo", lambda: ["processor\t: 0", "model name\t: AMD EPYC", f"flags\t\t: {flags}"])
    assert m.vector_isa() == isa
    assert m.cpu_model() == (f"AMD EPYC ({isa})" if isa else "AMD EPYC")


def test_cpu_model_without_cpuinfo(monkeypatch):
    m = load_bench("machine")
    monkeypatch.setattr(m, "_cpuinfo", lambda: [])
    assert m.vector_isa() == "" and m.cpu_model()


def test_machine_names_the_gpu_when_the_figures_come_from_one(monkeypatch):
    """A figure trained on a GPU is labelled with the GPU, not with the host CPU that fed it (bench/gpu_session.sh's
    rows sit in the same CSVs as the CPU rows)."""
    import torch

    m = load_bench("machine")
    monkeypatch.setattr(m, "_cpuinfo", lambda: ["model name\t: Xeon", "flags\t\t: avx2"])
    host = f"Xeon (AVX2), {m.os.cpu_count()} cores"
    assert m.machine("cpu") == host
    if not torch.cuda.is_available():
        assert m.machine("auto") == host  # auto resolves to the CPU here
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda dev=None: "NVIDIA H200")
    assert m.machine("cuda") == f"NVIDIA H200 (CUDA {torch.version.cuda}), host {host}"
