"""Issue 14 #14: a missing browser fails the run under CI, and is said loudly everywhere else.

Runs pytest on tests/test_browser.py in a subprocess with the browser pointed at a path that does not exist.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _pytest(tmp_path, ci: bool) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update(IMBAGAN_CHROMIUM=str(tmp_path / "no-chromium"), IMBAGAN_THREADS="1")
    if ci:
        env["CI"] = "true"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_browser.py"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow  # pytest in a process of its own
def test_without_a_browser_the_summary_says_so_loudly(tmp_path):
    out = _pytest(tmp_path, ci=False)
    assert out.returncode in (0, 5), out.stdout[-2000:]  # 5: this one-file run collected no other test
    assert "BROWSER TEST SKIPPED" in out.stdout
    assert "no-chromium is absent" in out.stdout


@pytest.mark.slow  # pytest in a process of its own
def test_without_a_browser_under_ci_the_run_fails(tmp_path):
    out = _pytest(tmp_path, ci=True)
    assert out.returncode not in (0, 5), out.stdout[-2000:]
    assert "CI is set" in out.stdout
