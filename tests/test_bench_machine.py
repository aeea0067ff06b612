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
