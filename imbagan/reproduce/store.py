"""The reproduction folder, and the two ways its jobs are run.

    <runs>/reproduce/<name>-<budget>/     (or --out DIR)
      spec.json          the spec as run (narrowed), the budget and repeats
      jobs.json          every job, fully resolved (TrainConfig and EvalConfig as dicts)
      jobs/<id>.json     a job's state: {"state", "pid", "run_id", "host", "started", "error"}
      jobs/<id>.log      a job's log (local backend)
      cells/<id>.json    a finished job's numbers; its presence is what "finished" means
      driver.json        the driver: {"state", "pid", "backend", "jobs", "started", "finished"}
      table.csv, table.md  rewritten whenever a cell lands (table.md with the honest protocol's verdict)
      verdict.csv        each GAN row against CN and the best cheap fix (imbagan.reproduce.table.verdicts)
      log.txt            the driver's log (when launched in the background)

Re-running a reproduction skips every job whose cell exists and continues the others (a GAN job
resumes its run from the last checkpoint). A job still running from an earlier, killed driver is
waited for, not started twice.

Local backend: each job is ``python -m imbagan reproduce --job ID --out DIR``, a background process in
its own session, at most ``jobs`` at a time; each writes its own cell.

Ray backend: each job is a Ray task (``num_gpus=1`` when the cluster has GPUs). The task returns its
cell to the driver, which writes it here: results travel back through Ray, so no shared storage is
needed for the table. The run directories are written under the worker's runs folder (the same path
as the driver's): on one machine, or with a shared runs folder, the app shows them; otherwise they
stay on the node that trained them. Workers must have imbagan importable (same code, same data root).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Callable

from imbagan import runs


def default_folder(name: str, budget: str, root: str | os.PathLike | None = None) -> Path:
    return runs.runs_root(root) / "reproduce" / f"{name}-{budget}"


def list_folders(root: str | os.PathLike | None = None) -> list[Path]:
    base = runs.runs_root(root) / "reproduce"
    return sorted(p.parent for p in base.glob("*/spec.json")) if base.is_dir() else []


def prepare(folder: Path, spec_dict: dict, jobs: list[dict], meta: dict) -> None:
    """Write spec.json and jobs.json; jobs already listed keep their place, new ones are appended."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cells").mkdir(exist_ok=True)
    (folder / "jobs").mkdir(exist_ok=True)
    old = {j["id"]: j for j in read_jobs(folder)}
    merged = dict(old)
    merged.update({j["id"]: j for j in jobs})
    runs.write_json_atomic(folder / "jobs.json", list(merged.values()))
    saved = runs.read_json(folder / "spec.json", {}) or {}
    spec_dict = dict(spec_dict, **meta)
    if saved:  # a narrower or wider re-run: the table covers everything this folder has seen
        for key in ("settings", "rows"):
            old_items = list(saved.get(key, []))
            have = {x["key"] for x in old_items}
            spec_dict[key] = old_items + [x for x in spec_dict[key] if x["key"] not in have]
        seen = {(p["row"], p["setting"]) for p in spec_dict["published"]}
        spec_dict["published"] = list(spec_dict["published"]) + [
            p for p in saved.get("published", []) if (p["row"], p["setting"]) not in seen]
        spec_dict["repeats"] = max(spec_dict["repeats"], saved.get("repeats", 0))
    runs.write_json_atomic(folder / "spec.json", spec_dict)


def read_jobs(folder: Path) -> list[dict]:
    return runs.read_json(folder / "jobs.json", []) or []


def read_cell(folder: Path, job: dict) -> dict | None:
    """The job's cell, if it was computed for this very job (same fingerprint); else None."""
    cell = runs.read_json(folder / "cells" / f"{job['id']}.json")
    return cell if cell and cell.get("hash") == job.get("hash") else None


def write_cell(folder: Path, cell: dict) -> None:
    (folder / "cells").mkdir(parents=True, exist_ok=True)
    runs.write_json_atomic(folder / "cells" / f"{cell['job']}.json", cell)


def job_state(folder: Path, job: dict) -> dict:
    """A job's state, with a job whose process is gone (killed) reported as stopped."""
    if read_cell(folder, job) is not None:
        return {"state": "done"}
    st = runs.read_json(folder / "jobs" / f"{job['id']}.json", {}) or {}
    if st.get("state") == "running" and not runs.pid_alive(st.get("pid")):
        st = dict(st, state="stopped")
    return st or {"state": "queued"}


# --- one job, in this process (the local backend's worker) ----------------------------------------
def run_one(folder: Path, job_id: str, root: Path) -> int:
    from imbagan.reproduce import jobs as J

    job = next((j for j in read_jobs(folder) if j["id"] == job_id), None)
    if job is None:
        print(f"error: no job {job_id!r} in {folder / 'jobs.json'}", file=sys.stderr)
        return 2
    try:
        cell = J.execute(job, folder, root, log=lambda m: print(m, flush=True))
    except InterruptedError as e:
        print(e)
        return 0
    write_cell(folder, cell)
    return 0


# --- the driver ------------------------------------------------------------------------------------
class Driver:
    """Runs the unfinished jobs of a folder, locally or on Ray, and rewrites the table as cells land."""

    def __init__(self, folder: Path, root: Path, on_cell: Callable[[], None], log: Callable[[str], None] = print):
        self.folder, self.root, self.on_cell, self.log = folder, root, on_cell, log
        self.stop_requested = False

    def pending(self) -> list[dict]:
        return [j for j in read_jobs(self.folder) if read_cell(self.folder, j) is None]

    def _status(self, **kw) -> None:
        st = runs.read_json(self.folder / "driver.json", {}) or {}
        st.update(kw, heartbeat=time.time())
        runs.write_json_atomic(self.folder / "driver.json", st)

    def run_local(self, n_jobs: int, poll_s: float = 0.5) -> int:
        todo = self.pending()
        self._status(state="running", pid=os.getpid(), backend="local", jobs=n_jobs, started=time.time(),
                     finished=None, total=len(read_jobs(self.folder)), error=None)
        self.log(f"{len(todo)} job(s) to run, {n_jobs} at a time")
        running: dict[str, int] = {}
        by_id = {j["id"]: j for j in todo}
        # Adopt jobs still running from a previous driver (killed): wait for them, do not start them twice.
        for j in list(todo):
            st = job_state(self.folder, j)
            if st.get("state") == "running":
                running[j["id"]] = int(st["pid"])
                todo.remove(j)
                self.log(f"{j['id']}: still running (pid {st['pid']}) from an earlier start; waiting for it")
        failed = 0
        while (todo or running) and not self.stop_requested:
            while todo and len(running) < n_jobs:
                j = todo.pop(0)
                log = self.folder / "jobs" / f"{j['id']}.log"
                pid = runs.launch_cli(["--runs", str(self.root), "reproduce", "--job", j["id"], "--out",
                                       str(self.folder)], log)
                # Written here too, so that a driver killed right now still sees the job as running.
                st = runs.read_json(self.folder / "jobs" / f"{j['id']}.json", {}) or {}
                if st.get("state") != "running" or not runs.pid_alive(st.get("pid")):
                    runs.write_json_atomic(self.folder / "jobs" / f"{j['id']}.json",
                                           dict(st, state="running", pid=pid, started=time.time()))
                running[j["id"]] = pid
                self.log(f"{j['id']}: started (pid {pid})")
            time.sleep(poll_s)
            for jid, pid in list(running.items()):
                if runs.pid_alive(pid):
                    continue
                del running[jid]
                if read_cell(self.folder, by_id[jid]) is not None:
                    self.log(f"{jid}: done")
                    self.on_cell()
                else:
                    failed += 1
                    st = job_state(self.folder, by_id[jid])
                    self.log(f"{jid}: ended without a result ({st.get('error') or 'see jobs/' + jid + '.log'})")
            self._status()
        if self.stop_requested:
            for pid in running.values():
                try:
                    os.killpg(pid, signal.SIGTERM)  # each job checkpoints and stops
                except (ProcessLookupError, PermissionError):
                    pass
        self.on_cell()
        state = "stopped" if self.stop_requested else ("failed" if failed else "done")
        self._status(state=state, finished=time.time(), failed=failed)
        return 1 if failed else 0

    def run_ray(self, address: str) -> int:
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            raise ValueError("--ray needs the ray package: pip install ray (requirements.txt lists it).")
        from imbagan.reproduce import ray_backend

        todo = self.pending()
        self._status(state="running", pid=os.getpid(), backend=f"ray {address}", started=time.time(),
                     finished=None, total=len(read_jobs(self.folder)), error=None)
        failed = 0
        for cell_or_error in ray_backend.run(todo, self.folder, self.root, address, self.log):
            if isinstance(cell_or_error, dict):
                write_cell(self.folder, cell_or_error)
                self.log(f"{cell_or_error['job']}: done on {cell_or_error.get('host')}")
                self.on_cell()
            else:
                failed += 1
                self.log(str(cell_or_error))
            self._status()
            if self.stop_requested:
                break
        self.on_cell()
        self._status(state="stopped" if self.stop_requested else ("failed" if failed else "done"),
                     finished=time.time(), failed=failed)
        return 1 if failed else 0
