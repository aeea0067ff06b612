"""CPU threads sized to the cores that are free, re-checked while a process computes (issue 22 §1).

Why: torch takes one intra-op thread per core. When another process holds one of two cores, the two
OpenMP threads wait for each other at every parallel region: acgan on digits went from 21.5 to 290 ms a
step on a 2-core machine beside one busy process, while one thread stayed at 33 ms. So a process that
trains asks, once per tick, how many cores the *other* processes used since the last tick, and keeps
its thread count at what is left (at least 1, at most the cores it may run on).

How the others' use is found (torch-free, no extra dependency):

1. Linux: ``/proc/stat``'s busy time of the whole machine, minus this process's own CPU time
   (``time.process_time``, all its threads), over the interval since the last check.
2. Elsewhere (macOS, BSD): the 1-minute load average minus the cores this process used over the
   interval. It lags by about a minute, so the policy follows slowly, but the direction is right.
3. No signal at all: every usable core (torch's default), as before.

Usable cores are ``os.sched_getaffinity`` where it exists (a container or ``taskset`` limit), else
``os.cpu_count()``. ``$IMBAGAN_THREADS`` fixes the count and turns the policy off. Another imbagan
process is load like any other: two trainings started together each measure the other and settle on
half the cores. The first reading replaces the starting guess at once; after that a change needs two
readings in a row that agree, so one noisy interval does not make the pool flap.
"""

from __future__ import annotations

import os
import time
from typing import Callable

ENV = "IMBAGAN_THREADS"
MIN_INTERVAL_S = 0.5  # shorter intervals are too coarse for /proc/stat's 10 ms ticks; they accumulate instead
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") and "SC_CLK_TCK" in os.sysconf_names else 100


def usable_cores() -> int:
    """Cores this process may run on: its affinity mask where the OS has one, else every core."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def override() -> int | None:
    """$IMBAGAN_THREADS as a whole number of at least 1, else None."""
    v = os.environ.get(ENV, "").strip()
    return int(v) if v.isdigit() and int(v) >= 1 else None


def sharing_start(sharing: bool) -> int | None:
    """A worker's first thread count, before any reading: $IMBAGAN_THREADS if set; else half the usable cores
    when a run's training and its evaluation start together (two processes each taking every core is far
    slower than each taking half); else None (every core, torch's default). The policy corrects it later."""
    if (n := override()) is not None:
        return n
    return max(1, usable_cores() // 2) if sharing else None


def machine_busy_seconds(path: str = "/proc/stat") -> float | None:
    """Core-seconds the whole machine has spent busy since boot (Linux), or None where there is no such file."""
    try:
        with open(path) as f:
            parts = f.readline().split()
    except OSError:
        return None
    if not parts or parts[0] != "cpu" or len(parts) < 5:
        return None
    v = [int(x) for x in parts[1:9]]  # user nice system idle iowait irq softirq steal (guest is inside user)
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return (sum(v) - idle) / _CLK_TCK


class OthersLoad:
    """Cores used by other processes over the interval since the previous reading."""

    def __init__(self, busy: Callable[[], float | None] = machine_busy_seconds,
                 loadavg: Callable[[], float] | None = None, clock: Callable[[], float] = time.monotonic,
                 own: Callable[[], float] = time.process_time):
        self._busy, self._clock, self._own = busy, clock, own
        self._loadavg = loadavg if loadavg is not None else (
            (lambda: os.getloadavg()[0]) if hasattr(os, "getloadavg") else None)
        self.source = "/proc/stat" if busy() is not None else ("load average" if self._loadavg else "none")
        self.restart()

    def restart(self) -> None:
        """Start a new interval now."""
        self._t, self._b, self._o = self._clock(), self._busy(), self._own()

    def read(self) -> float | None:
        """Cores the others used since the last reading; None when the interval is too short or nothing is known."""
        t = self._clock()
        dt = t - self._t
        if dt < MIN_INTERVAL_S:
            return None
        b, o = self._busy(), self._own()
        ours = max(0.0, (o - self._o) / dt)
        if b is not None and self._b is not None:
            val = max(0.0, (b - self._b) / dt - ours)
        elif self._loadavg is not None:
            try:
                val = max(0.0, self._loadavg() - ours)
            except OSError:
                val = None
        else:
            val = None
        self._t, self._b, self._o = t, b, o
        return val


# A core counts as taken once the others use more than this much of it. Below one half on purpose: beside our spinning
# OpenMP threads a busy process gets only part of its core (2/3 beside 2 threads on 2 cores, measured as low as
# 0.5), and rounding that to the nearest core would keep the threads that stall each other.
TAKEN = 0.3


def threads_for(others: float, cores: int) -> int:
    """Threads that fit the cores the others leave (a core is taken once they use more than TAKEN of it), at
    least 1, at most ``cores``."""
    return max(1, min(cores, int(cores - others + TAKEN)))


class ThreadPolicy:
    """Keeps ``torch``'s intra-op threads at the free cores. Call :meth:`check` once per tick (cheap: one
    small file read); it returns the new thread count when it changed it, else None."""

    def __init__(self, start: int | None = None, load: OthersLoad | None = None,
                 get: Callable[[], int] | None = None, set_: Callable[[int], None] | None = None):
        if get is None or set_ is None:
            import torch
            get, set_ = get or torch.get_num_threads, set_ or torch.set_num_threads
        self._get, self._set = get, set_
        self.cores = usable_cores()
        self.fixed = override()
        self.load = None if self.fixed else (load or OthersLoad())
        first = self.fixed or min(self.cores, start or self.cores)
        if first != get():
            set_(first)
        self._pending: int | None = None
        self._measured = False  # the start count is a guess until the first reading
        self.changes: list[tuple[float, int]] = []  # (time, threads) of every change, for reports

    @property
    def threads(self) -> int:
        return self._get()

    @property
    def source(self) -> str:
        return f"${ENV}" if self.fixed else self.load.source

    def check(self) -> int | None:
        if self.load is None:
            return None
        others = self.load.read()
        if others is None:
            return None
        want = threads_for(others, self.cores)
        if want == self._get():
            self._pending, self._measured = None, True
            return None
        if self._pending != want and self._measured:  # a reading that disagrees: wait for a second one
            self._pending = want
            return None
        self._apply(want, measured=True)  # (the very first reading replaces a guess, so it applies at once)
        return want

    def _apply(self, n: int, measured: bool) -> None:
        """Set ``n`` threads (if that changes them) and record it; ``measured``: a reading backs the count, so a
        later disagreeing reading must be confirmed; otherwise the count is a guess the next reading replaces."""
        self._pending, self._measured = None, measured
        if n != self._get():
            self._set(n)
            self.changes.append((time.time(), n))

    def hint(self, n: int) -> None:
        """Set ``n`` threads at once (unless $IMBAGAN_THREADS fixes them): for a known event, such as the process
        that shared the cores ending; the next checks correct it if others still hold some."""
        n = max(1, min(self.cores, n))
        if self.fixed or n == self._get():
            return
        self._apply(n, measured=False)  # a guess again: the next reading applies at once
        if self.load is not None:
            self.load.restart()  # the interval before the change says nothing about the new count

    def settle(self) -> int:
        """Between two stages, while this process computes nothing: read the others' load over one short interval
        (MIN_INTERVAL_S of sleep) and take the threads it leaves, at once. For a known event such as the process
        that shared the cores ending, when a busy process may still hold one of them. Returns the threads."""
        if self.load is None:
            return self._get()
        self.load.restart()
        time.sleep(MIN_INTERVAL_S)
        others = self.load.read()
        if others is None:  # no signal: every usable core, as torch would take
            self.hint(self.cores)
            return self._get()
        want = threads_for(others, self.cores)
        self._apply(want, measured=True)
        return want

    def describe(self) -> str:
        return (f"{self.threads} thread(s) of {self.cores} usable core(s), "
                + (f"fixed by ${ENV}" if self.fixed else f"following the free cores ({self.source})"))
