"""One worker per run, a cap on concurrent jobs with a visible queue, and a stop during start-up (issue 11).

Real background processes on the digits set with a handful of steps; each test takes seconds.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from imbagan import runs
from tests.conftest import tiny_config, wait_for

ROOT = Path(__file__).resolve().parent.parent




def _dead(pid: int) -> bool:
    return not runs.pid_alive(pid)


def _holder(d: Path) -> subprocess.Popen:
    """A stand-in for a frozen worker: a process that holds the run's lock (RUN/lock, flock) and does nothing."""
    fd = os.open(d / "lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return subprocess.Popen(["sleep", "60"], pass_fds=(fd,))
    finally:
        os.close(fd)


def _failed_run(root: Path) -> Path:
    d = runs.create(tiny_config(), root)
    st = runs.read_json(d / "status.json")
    runs.write_json_atomic(d / "status.json", {**st, "state": "failed", "error": "killed"})
    return d


# --- 2. one worker per run ------------------------------------------------------------------------------------
@pytest.mark.slow  # worker processes
def test_a_frozen_worker_that_holds_its_run_is_not_responding_not_failed(tmp_path):
    d = runs.create(tiny_config(), tmp_path)
    frozen = _holder(d)
    try:
        st = runs.read_json(d / "status.json")
        runs.write_json_atomic(d / "status.json", {**st, "state": "running", "pid": frozen.pid,
                                                   "heartbeat": time.time() - 3 * runs.STALE_AFTER_S})
        got = runs.read_status(d)
        assert got["state"] == "running" and got["not_responding"]
        assert got["phase"].startswith("not responding")
        with pytest.raises(ValueError, match="still running"):
            runs.resume(d.name, tmp_path)
        # Even if status.json claims the worker died, a held lock keeps resume from starting a second one.
        runs.write_json_atomic(d / "status.json", {**st, "state": "failed", "pid": frozen.pid})
        with pytest.raises(ValueError, match="already has a worker process"):
            runs.resume(d.name, tmp_path)
    finally:
        frozen.kill()
        frozen.wait()


@pytest.mark.slow  # worker processes
def test_two_resumes_at_the_same_instant_launch_one_worker(tmp_path, monkeypatch):
    d = _failed_run(tmp_path)
    launched = []

    def fake_launch(args, log_path, lock_fd=None):
        # Like a real worker: the child keeps the handed-down lock for its life.
        p = subprocess.Popen(["sleep", "30"], pass_fds=() if lock_fd is None else (lock_fd,))
        launched.append(p)
        return p.pid

    monkeypatch.setattr(runs, "launch_cli", fake_launch)
    real_status = runs.read_status

    def slow_status(d):  # widen the window between checking the state and launching, as a busy machine does
        st = real_status(d)
        time.sleep(0.2)
        return st

    monkeypatch.setattr(runs, "read_status", slow_status)
    gate = threading.Barrier(2)
    errors = []

    def go():
        gate.wait()
        try:
            runs.resume(d.name, tmp_path)
        except ValueError as e:
            errors.append(str(e))

    for _ in range(5):
        ts = [threading.Thread(target=go) for _ in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        try:
            assert len(launched) == 1, f"{len(launched)} workers launched"
            assert len(errors) == 1
        finally:
            for p in launched:
                p.kill()
                p.wait()
        launched.clear()
        errors.clear()
        runs.write_json_atomic(d / "status.json", {**runs.read_json(d / "status.json"), "state": "failed"})


@pytest.mark.slow  # worker processes
def test_a_second_worker_on_a_running_run_refuses_in_one_line(tmp_path):
    d = runs.create(tiny_config(), tmp_path)
    frozen = _holder(d)
    try:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        p = subprocess.run([sys.executable, "-m", "imbagan", "worker", str(d)], capture_output=True, text=True,
                           env=env, timeout=120)
        assert p.returncode != 0
        lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and "already has a worker" in lines[0], p.stderr
        assert "Traceback" not in p.stdout + p.stderr
        assert runs.read_json(d / "status.json")["state"] == "queued"  # untouched
        assert not runs.read_metrics(d)
    finally:
        frozen.kill()
        frozen.wait()


# --- 1. a cap on concurrent jobs, with a visible queue ---------------------------------------------------------
def test_max_jobs_setting_and_gpu_default(monkeypatch):
    monkeypatch.setenv("IMBAGAN_MAX_JOBS", "3")
    assert runs.max_jobs() == 3
    monkeypatch.delenv("IMBAGAN_MAX_JOBS")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    assert runs.max_jobs() == 2
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    assert runs.max_jobs() == 4  # one per GPU
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert runs.max_jobs() == 2  # no GPU: 2 on the CPU


@pytest.mark.slow  # worker processes
def test_runs_beyond_the_cap_wait_queued_with_their_place_and_start_when_a_slot_frees(tmp_path, monkeypatch):
    monkeypatch.setenv("IMBAGAN_MAX_JOBS", "1")
    slots = tmp_path / runs.SLOTS_DIR
    slots.mkdir()
    busy = os.open(slots / "slot-0", os.O_RDWR | os.O_CREAT)  # a job already running holds the only slot
    fcntl.flock(busy, fcntl.LOCK_EX)
    try:
        a = runs.start(tiny_config(steps=2, tick_every=1), tmp_path)
        da = runs.run_dir(a, tmp_path)
        wait_for(lambda: runs.read_status(da).get("queue_position") == 1)
        b = runs.start(tiny_config(steps=2, tick_every=1), tmp_path)
        db = runs.run_dir(b, tmp_path)
        st_b = wait_for(lambda: (s := runs.read_status(db)).get("queue_position") == 2 and s)
        assert st_b["state"] == "queued" and "#2 in line" in st_b["phase"]
        time.sleep(1.5)  # nobody may start while the slot is taken
        assert runs.read_status(da)["state"] == "queued" and not runs.read_metrics(da)
    finally:
        os.close(busy)  # the running job ends
    st = wait_for(lambda: (s := runs.read_status(da))["state"] not in runs.ACTIVE and s, timeout=120)
    assert st["state"] == "done", runs.log_tail(da)
    st = wait_for(lambda: (s := runs.read_status(db))["state"] not in runs.ACTIVE and s, timeout=120)
    assert st["state"] == "done", runs.log_tail(db)
    # They ran one after the other: b started after a had finished.
    assert runs.read_metrics(db)[0]["time"] >= runs.read_metrics(da)[-1]["time"]
    assert not list((slots / "queue").iterdir())


@pytest.mark.slow  # worker processes
def test_a_queued_run_can_be_stopped(tmp_path, monkeypatch):
    monkeypatch.setenv("IMBAGAN_MAX_JOBS", "1")
    slots = tmp_path / runs.SLOTS_DIR
    slots.mkdir()
    busy = os.open(slots / "slot-0", os.O_RDWR | os.O_CREAT)
    fcntl.flock(busy, fcntl.LOCK_EX)
    try:
        rid = runs.start(tiny_config(), tmp_path)
        d = runs.run_dir(rid, tmp_path)
        wait_for(lambda: runs.read_status(d).get("queue_position") == 1)
        assert runs.stop(rid, tmp_path, timeout=10)["state"] == "stopped"
        assert runs.read_status(d)["state"] == "stopped"
    finally:
        os.close(busy)


# --- 11. SIGTERM during start-up ------------------------------------------------------------------------------
@pytest.mark.parametrize("delay", [0.0, 0.05, 0.3])
@pytest.mark.slow  # worker processes
def test_sigterm_during_start_up_leaves_the_run_stopped(tmp_path, delay):
    rid = runs.start(tiny_config(steps=10_000), tmp_path)
    d = runs.run_dir(rid, tmp_path)
    pid = runs.read_json(d / "status.json")["pid"]
    time.sleep(delay)
    os.kill(pid, signal.SIGTERM)  # not runs.stop(): nobody is there to tidy up after the worker
    wait_for(lambda: _dead(pid), timeout=60)
    st = runs.read_status(d)
    assert st["state"] == "stopped", (st, runs.log_tail(d))
