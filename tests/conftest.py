"""Shared fixtures: tiny device-resident data, tiny configs, and isolated runs/cache folders; the slow marks."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from imbagan import evaluate, runs
from imbagan.batches import DeviceData
from imbagan.config import TrainConfig

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")  # the app's entry point, for streamlit.testing's AppTest
TIMEOUT = 60  # seconds an AppTest run may take (pages that read runs and plots, under CI's load)

# A configuration every method can train on CPU in well under a second per step.
TINY = dict(dataset="digits", imbalance="none", batch_size=8, width=8, latent_dim=16, ae_steps=3, steps=6,
            tick_every=2, sample_every=3, checkpoint_every=3, samples_per_class=4, device="cpu",
            quality_curve="off")  # tests/test_convergence.py turns the quality curve on


@pytest.fixture(scope="session")
def _reference_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("reference")


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory, monkeypatch, _reference_dir):
    """No test writes into the user's home or the working directory."""
    # The quality curve's reference network is trained once per session (per dataset), not once per test.
    monkeypatch.setenv("IMBAGAN_REFERENCE_DIR", str(_reference_dir))
    monkeypatch.setenv("IMBAGAN_CACHE", str(tmp_path_factory.mktemp("cache")))
    root = tmp_path_factory.mktemp("runs")
    monkeypatch.setenv("IMBAGAN_RUNS", str(root))
    monkeypatch.setenv("IMBAGAN_THREADS", "1")  # background workers too: CI has 2 cores, tests share them
    torch.set_num_threads(1)
    yield
    stop_background(root)


def stop_background(root) -> None:
    """Stop the workers a test left running in ``root``: trainings, and evaluations (an evaluation launched with a
    training outlives a stopped training by design, to judge its last checkpoint)."""
    for r in runs.list_runs(root):  # a test's fake status may name this process: stop never signals it (signallable)
        if r.state in runs.ACTIVE:
            runs.stop(r.id, root)
        evaluate.stop_evaluation(r.dir)


def make_data(num_classes: int = 3, size: int = 16, channels: int = 1, per_class=(12, 6, 3), seed: int = 0) -> DeviceData:
    """Random images whose brightness depends on the class, so classes are learnable."""
    rng = np.random.default_rng(seed)
    per_class = list(per_class)[:num_classes] + [4] * max(0, num_classes - len(per_class))
    y = np.concatenate([np.full(n, c) for c, n in enumerate(per_class)])
    base = (y[:, None, None, None] * 200 // max(1, num_classes - 1)).astype(np.int64)
    x = np.clip(base + rng.integers(0, 55, size=(len(y), channels, size, size)), 0, 255).astype(np.uint8)
    g = torch.Generator().manual_seed(seed)
    return DeviceData(x, y, tuple(f"c{c}" for c in range(num_classes)), torch.device("cpu"), g)


def tiny_config(**kw) -> TrainConfig:
    return TrainConfig.from_dict({**TINY, **kw})


@pytest.fixture
def tiny_data():
    return make_data()


# --- the slow tier ---------------------------------------------------------------------------------
# `make test` runs every test; `make test-fast` (pytest -m "not slow") leaves out the ones marked
# @pytest.mark.slow in their file (pytestmark for a whole file): those that start processes (workers, the CLI
# in a fresh interpreter, job runners), drive the app's pages through AppTest, use a browser, or take tens of
# seconds. Each mark says why.


def pytest_terminal_summary(terminalreporter):
    """A skipped browser test is easy to miss as one 's' among many: say it loudly at the end."""
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if "test_browser.py" in str(r.nodeid)
               and "readme_screenshots" not in str(r.nodeid)]  # README's pictures are taken on request only
    if not skipped:
        return
    reason = skipped[0].longrepr[2] if isinstance(skipped[0].longrepr, tuple) else str(skipped[0].longrepr)
    terminalreporter.write_sep("!", "BROWSER TEST SKIPPED", red=True, bold=True)
    terminalreporter.write_line(f"The end-to-end browser test did not run: {reason.removeprefix('Skipped: ')}", red=True)
    terminalreporter.write_line("The app was NOT checked in a real browser. With the CI environment variable set, "
                                "this fails the run.", red=True)
    terminalreporter.write_sep("!", red=True, bold=True)


def wait_for(pred, timeout: float = 120.0, every: float = 0.1):
    """Poll ``pred`` until it returns something truthy (returned), or fail after ``timeout`` seconds."""
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(every)
    raise AssertionError("timed out")


def load_bench(name: str):
    """A script under bench/ (not a package) as a module, for the tests of its helpers."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
