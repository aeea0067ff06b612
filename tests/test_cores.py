"""The thread policy (issue 22 §1): threads follow the cores the other processes leave free."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from imbagan import cores


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def fake_load(busy_per_s: list[float], own_per_s: list[float], clock: Clock, dt: float = 1.0,
              loadavg=None, proc=True) -> cores.OthersLoad:
    """An OthersLoad whose machine busy time and own CPU time grow by the given cores per second, interval by
    interval (the clock advances ``dt`` at each reading)."""
    state = {"busy": 0.0, "own": 0.0, "i": 0}

    def busy():
        return state["busy"] if proc else None

    def own():
        return state["own"]

    load = cores.OthersLoad(busy=busy, own=own, clock=clock, loadavg=loadavg)

    def advance():
        i = min(state["i"], len(busy_per_s) - 1)
        state["busy"] += busy_per_s[i] * dt
        state["own"] += own_per_s[i] * dt
        state["i"] += 1
        clock.t += dt
    load.advance = advance
    return load


def test_the_others_load_is_the_machine_busy_time_less_our_own():
    clock = Clock()
    load = fake_load([2.0, 1.0], [1.0, 1.0], clock)
    load.advance()
    assert load.read() == pytest.approx(1.0)  # 2 cores busy, 1 of them ours: another process holds one
    load.advance()
    assert load.read() == pytest.approx(0.0)  # only we are busy
    assert load.source == "/proc/stat"


def test_without_proc_stat_the_load_average_less_our_use_is_the_signal():
    clock = Clock()
    load = fake_load([0.0], [1.0], clock, loadavg=lambda: 2.1, proc=False)
    assert load.source == "load average"
    load.advance()
    assert load.read() == pytest.approx(1.1)


def test_a_reading_too_soon_after_the_last_waits_for_a_longer_interval():
    clock = Clock()
    load = fake_load([2.0], [1.0], clock, dt=0.2)
    load.advance()
    assert load.read() is None  # 0.2 s: too coarse for /proc/stat's 10 ms ticks
    load.advance(), load.advance()
    assert load.read() == pytest.approx(1.0)  # 0.6 s accumulated


@pytest.mark.parametrize("others, cores_, want", [(0.0, 2, 2), (0.2, 2, 2), (1.0, 2, 1), (0.67, 2, 1), (0.45, 2, 1),
                                                  (1.9, 2, 1), (5.0, 2, 1), (2.2, 8, 6), (1.2, 8, 7), (0.0, 1, 1)])
def test_threads_fit_the_free_cores_at_least_one(others, cores_, want):
    assert cores.threads_for(others, cores_) == want


def policy(monkeypatch, load, start=None, cores_=2):
    monkeypatch.delenv(cores.ENV, raising=False)
    monkeypatch.setattr(cores, "usable_cores", lambda: cores_)
    box = {"n": cores_}
    p = cores.ThreadPolicy(start=start, load=load, get=lambda: box["n"], set_=lambda n: box.update(n=n))
    return p, box


def test_the_policy_shrinks_when_another_process_takes_a_core_and_grows_back_when_it_ends(monkeypatch):
    clock = Clock()
    # quiet, then a busy process beside our 2 threads (each gets 2/3 of a core), then quiet again at 1 thread
    load = fake_load([2.0, 2.0, 2.0, 2.0, 1.0, 1.0], [2.0, 2.0, 4 / 3, 4 / 3, 1.0, 1.0], clock)
    p, box = policy(monkeypatch, load)
    seen = []
    for _ in range(6):
        load.advance()
        p.check()
        seen.append(box["n"])
    # a change needs two readings that agree: one noisy interval does not make the pool flap
    assert seen == [2, 2, 2, 1, 1, 2]
    assert [n for _, n in p.changes] == [1, 2]


def test_one_disagreeing_reading_changes_nothing(monkeypatch):
    clock = Clock()
    load = fake_load([2.0, 2.0, 2.0], [2.0, 1.0, 2.0], clock)
    p, box = policy(monkeypatch, load)
    for _ in range(3):
        load.advance()
        p.check()
    assert box["n"] == 2 and not p.changes


def test_imbagan_threads_fixes_the_count_and_turns_the_policy_off(monkeypatch):
    monkeypatch.setenv(cores.ENV, "3")
    box = {"n": 8}
    p = cores.ThreadPolicy(get=lambda: box["n"], set_=lambda n: box.update(n=n))
    assert box["n"] == 3 and p.load is None and p.check() is None
    p.hint(8)
    assert box["n"] == 3
    assert "fixed by $IMBAGAN_THREADS" in p.describe()


def test_a_start_value_and_a_hint_apply_at_once(monkeypatch):
    clock = Clock()
    p, box = policy(monkeypatch, fake_load([0.0], [0.0], clock), start=1, cores_=4)
    assert box["n"] == 1
    p.hint(99)
    assert box["n"] == 4  # never more than the usable cores


def test_the_real_signals_read_on_this_machine():
    assert cores.usable_cores() >= 1
    busy = cores.machine_busy_seconds()
    if sys.platform.startswith("linux"):
        assert busy is not None and busy > 0
    load = cores.OthersLoad()
    time.sleep(cores.MIN_INTERVAL_S + 0.05)
    v = load.read()
    assert v is None or v >= 0.0


@pytest.mark.skipif(not sys.platform.startswith("linux") or cores.usable_cores() < 2, reason="needs /proc/stat, 2 cores")
@pytest.mark.slow  # a busy child process for 5 s
def test_a_busy_process_beside_us_is_seen_as_about_one_core():
    """The measurement itself, not a fake: one busy loop in a child process reads as roughly one core of others'
    load while this process sleeps (loose bounds: CI machines are shared)."""
    child = subprocess.Popen([sys.executable, "-c", "import time\nt=time.time()\nwhile time.time()-t<5: pass"])
    try:
        time.sleep(0.3)
        load = cores.OthersLoad()
        time.sleep(1.0)
        v = load.read()
    finally:
        child.kill()
        child.wait()
    assert v is not None and 0.6 <= v <= os.cpu_count() + 0.2


def test_the_first_reading_replaces_the_starting_guess_at_once(monkeypatch):
    clock = Clock()
    load = fake_load([2.0, 2.0], [1.0, 1.0], clock)  # a busy process holds one of 2 cores from the start
    p, box = policy(monkeypatch, load)
    load.advance()
    assert p.check() == 1 and box["n"] == 1


def test_the_start_halves_the_cores_only_when_training_and_evaluation_share_them(monkeypatch):
    monkeypatch.delenv(cores.ENV, raising=False)
    monkeypatch.setattr(cores, "usable_cores", lambda: 8)
    assert cores.sharing_start(True) == 4
    assert cores.sharing_start(False) is None
    monkeypatch.setattr(cores, "usable_cores", lambda: 1)
    assert cores.sharing_start(True) == 1
    monkeypatch.setenv(cores.ENV, "3")
    assert cores.sharing_start(True) == cores.sharing_start(False) == 3


def test_after_a_hint_the_next_reading_applies_at_once(monkeypatch):
    """The training beside an evaluation ends: it takes every core at once (hint), and if a busy process still
    holds one, the very next reading gives it back rather than waiting for two (measured: 20 s on 2 threads
    beside a busy process before this)."""
    clock = Clock()
    load = fake_load([2.0, 2.0], [4 / 3, 4 / 3], clock)
    p, box = policy(monkeypatch, load, start=1)
    p.hint(2)
    assert box["n"] == 2
    load.advance()
    assert p.check() == 1 and box["n"] == 1


def test_settling_reads_one_interval_and_takes_what_the_others_leave(monkeypatch):
    clock = Clock()
    load = fake_load([1.0], [0.0], clock)  # we sleep; a busy process holds one core
    monkeypatch.setattr(cores.time, "sleep", lambda s: load.advance())
    p, box = policy(monkeypatch, load, start=1)
    assert p.settle() == 1 and box["n"] == 1
    load2 = fake_load([0.0], [0.0], clock)  # quiet
    monkeypatch.setattr(cores.time, "sleep", lambda s: load2.advance())
    p2, box2 = policy(monkeypatch, load2, start=1)
    assert p2.settle() == 2 and box2["n"] == 2
