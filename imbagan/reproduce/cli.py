"""The ``reproduce`` sub-command: list specs, run one (locally or on Ray), or (internally) one job."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

from imbagan import runs
from imbagan.reproduce.spec import BUDGETS


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", help="a spec (see --list)")
    p.add_argument("--list", action="store_true", help="list the specs and exit")
    p.add_argument("--budget", choices=BUDGETS, default="quick",
                   help="quick: minutes on a CPU; paper: the paper's own training length (default: quick)")
    p.add_argument("--repeats", type=int, default=None, help="repeats per cell (default: the spec's)")
    p.add_argument("--datasets", nargs="+", default=None, metavar="NAME", help="only these datasets")
    p.add_argument("--settings", nargs="+", default=None, metavar="KEY", help="only these settings (e.g. mnist-ir100)")
    p.add_argument("--rows", nargs="+", default=None, metavar="KEY", help="only these rows (e.g. cn aggan)")
    p.add_argument("--jobs", type=int, default=1, help="jobs run at once on this machine (default: 1)")
    p.add_argument("--ray", default=None, metavar="ADDRESS",
                   help="run the jobs as Ray tasks: 'auto' (an existing cluster), host:port, or 'local' "
                        "(start Ray here)")
    p.add_argument("--out", default=None, help="reproduction folder (default: RUNS/reproduce/NAME-BUDGET)")
    p.add_argument("--data-root", default=None, help="folder holding the data (default: $IMBAGAN_DATA or ./data)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps (default: auto)")
    p.add_argument("--plan", action="store_true", help="write the folder and the job list, run nothing")
    p.add_argument("--background", action="store_true", help="run the driver in the background and return")
    p.add_argument("--job", default=None, help=argparse.SUPPRESS)


def _list() -> int:
    from imbagan.reproduce import SPECS

    for name, s in SPECS.items():
        print(f"{name:14s} {s.title}")
        print(f"{'':14s} {s.where}; {len(s.settings)} settings x {len(s.rows)} rows, {s.repeats} repeats; "
              f"protocols: {', '.join(s.protocols)}")
        print(f"{'':14s} datasets: {', '.join(sorted({x.dataset for x in s.settings}))}; "
              f"settings: {' '.join(x.key for x in s.settings)}")
        print(f"{'':14s} rows: {' '.join(r.key for r in s.rows)}")
    return 0


def plan(a) -> tuple[Path, list[dict]]:
    """Narrow the spec, expand its jobs, write the folder; returns (folder, jobs)."""
    from imbagan.reproduce import SPECS, store
    from imbagan.reproduce import jobs as J

    if a.name not in SPECS:
        raise ValueError(f"No spec {a.name!r}; choose one of {', '.join(SPECS)} (see --list).")
    spec = SPECS[a.name].narrow(a.datasets, a.rows, a.settings)
    repeats = a.repeats or spec.repeats
    if repeats < 1 or a.jobs < 1:
        raise ValueError("--repeats and --jobs must be at least 1.")
    folder = Path(a.out).resolve() if a.out else store.default_folder(spec.name, a.budget, a.runs)
    # An absolute data folder: job processes and Ray workers do not share the caller's working directory.
    data_root = str(Path(a.data_root).resolve()) if a.data_root else None
    jobs = J.expand(spec, a.budget, repeats, data_root=data_root, device=a.device, full_rows=SPECS[a.name].rows)
    budget = spec.budgets[a.budget]
    store.prepare(folder, spec.to_dict(), jobs, {"budget": a.budget, "budget_note": budget.note, "repeats": repeats,
                                                "runs_root": str(runs.runs_root(a.runs))})
    return folder, jobs


def run(a) -> int:
    from imbagan.reproduce import store, table

    root = runs.runs_root(a.runs)
    if a.list:
        return _list()
    if a.job:
        if not a.out:
            raise ValueError("--job needs --out.")
        return store.run_one(Path(a.out).resolve(), a.job, root)
    if not a.name:
        raise ValueError("Name a spec (see `reproduce --list`).")
    folder, jobs = plan(a)
    todo = [j for j in store.read_jobs(folder) if store.read_cell(folder, j) is None]
    print(f"{a.name}: {len(jobs)} job(s) for this selection, {len(todo)} of the folder's not finished; folder {folder}")
    table.write(folder)
    if a.plan:
        return 0
    if a.background:
        pid = launch_background(folder, a.name, a.budget, jobs=a.jobs, device=a.device, repeats=a.repeats,
                                data_root=a.data_root, ray=a.ray, datasets=a.datasets, settings=a.settings,
                                rows=a.rows, runs_root=root)
        print(f"running in the background (pid {pid}); log: {folder / 'log.txt'}; table: {folder / 'table.md'}")
        return 0
    t0 = time.time()
    driver = store.Driver(folder, root, on_cell=lambda: table.write(folder),
                          log=lambda m: print(f"[{time.strftime('%H:%M:%S')}] {m}", flush=True))

    def on_term(signum, frame):
        driver.stop_requested = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    rc = driver.run_ray(a.ray) if a.ray else driver.run_local(a.jobs)
    print(f"wall time {time.time() - t0:.0f} s; table: {folder / 'table.md'}")
    sys.stdout.write((folder / "table.md").read_text())
    return rc


def launch_background(folder: Path, name: str, budget: str, *, jobs: int = 1, device: str = "auto",
                      repeats: int | None = None, data_root: str | None = None, ray: str | None = None,
                      datasets=None, settings=None, rows=None, runs_root=None) -> int:
    """Start the driver of ``name`` at ``budget`` into ``folder`` as its own process; returns its pid.

    The Train-like Launch of the Reproduce page and ``reproduce --background`` both come here, so the driver's
    command line and driver.json are written in one place."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    args = ["--runs", str(runs.runs_root(runs_root)), "reproduce", name, "--budget", budget, "--out", str(folder),
            "--jobs", str(jobs), "--device", device]
    for flag, v in (("--repeats", repeats), ("--data-root", data_root), ("--ray", ray or None)):
        if v is not None:
            args += [flag, str(v)]
    for flag, v in (("--datasets", datasets), ("--settings", settings), ("--rows", rows)):
        if v:
            args += [flag, *v]
    pid = runs.launch_cli(args, folder / "log.txt")
    if (runs.read_json(folder / "driver.json", {}) or {}).get("pid") != pid:  # unless the driver wrote first
        runs.write_json_atomic(folder / "driver.json", {"state": "running", "pid": pid, "started": time.time(),
                                                        "heartbeat": time.time()})
    return pid


def driver_state(folder: Path) -> tuple[bool, str]:
    """(whether the folder's driver runs, its state in words): a driver whose process is gone says so."""
    drv = runs.read_json(Path(folder) / "driver.json", {}) or {}
    state = drv.get("state", "not launched")
    running = state == "running" and runs.pid_alive(drv.get("pid"))
    if state == "running" and not running:
        state = "ended (the driver is gone; launch again to continue)"
    return running, state


def stop(folder: Path) -> None:
    """Ask a background driver to stop: it passes SIGTERM to its jobs, which checkpoint."""
    st = runs.read_json(folder / "driver.json", {}) or {}
    if st.get("state") == "running" and st.get("pid"):
        try:
            os.kill(int(st["pid"]), signal.SIGTERM)
        except ProcessLookupError:
            pass
