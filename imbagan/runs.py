"""A run is a directory; this module creates, lists, reads, starts, stops and resumes them.

    runs/<id>/config.json     written once
    runs/<id>/status.json     {"state", "pid", "step", "total", "heartbeat", "error", ...}; replaced atomically
    runs/<id>/metrics.jsonl   one JSON object per tick, appended and flushed
    runs/<id>/samples/NNNNNN.png   one row per class, fixed noise
    runs/<id>/checkpoint.pt   tensors and plain numbers; written to a temporary name, then renamed
    runs/<id>/log.txt         the worker's stdout and stderr

Training runs in its own process (``python -m imbagan worker RUN_DIR``) in a new session, so
neither a Streamlit rerun nor an app restart touches it; the page only reads these files.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imbagan.config import TrainConfig

RUNS_ENV = "IMBAGAN_RUNS"
STATES = ("queued", "running", "done", "failed", "stopped")
ACTIVE = ("queued", "running")
# A worker whose heartbeat is older than this is taken for dead even if its pid exists (hung, or pid reused).
STALE_AFTER_S = 60.0
HEARTBEAT_S = 2.0
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_PROJECT_ROOT = Path(__file__).resolve().parent.parent


def runs_root(root: str | os.PathLike | None = None) -> Path:
    """The folder holding runs: ``root``, else $IMBAGAN_RUNS, else ./runs."""
    return Path(root or os.environ.get(RUNS_ENV) or "runs").resolve()


def run_dir(run_id: str, root: str | os.PathLike | None = None) -> Path:
    """The directory of an existing run; refuses ids that could escape the runs folder."""
    if not _ID_RE.match(run_id or ""):
        raise ValueError(f"{run_id!r} is not a run id.")
    d = runs_root(root) / run_id
    if not (d / "config.json").is_file():
        raise FileNotFoundError(f"No run {run_id!r} in {runs_root(root)}.")
    return d


# --- small file helpers ---------------------------------------------------------------------
def write_json_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return default


def read_metrics(d: Path) -> list[dict]:
    """All ticks so far; a half-written last line (the worker is appending) is skipped."""
    out = []
    try:
        with open(d / "metrics.jsonl") as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
    except FileNotFoundError:
        pass
    return out


def sample_paths(d: Path) -> list[Path]:
    """Sample grids, oldest first."""
    return sorted((d / "samples").glob("[0-9]*.png"))


def log_tail(d: Path, lines: int = 30) -> str:
    try:
        with open(d / "log.txt", "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


# --- status ---------------------------------------------------------------------------------
def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:  # reap it if it is our own child, so a zombie does not look alive
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except OSError as e:
        return e.errno == errno.EPERM
    try:  # a zombie that is not our child
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def read_status(d: Path) -> dict:
    """The run's status; a queued/running run whose worker is gone is reported (and saved) as failed."""
    st = read_json(d / "status.json", None) or {"state": "failed", "error": "status.json is missing or unreadable."}
    if st.get("state") in ACTIVE:
        age = time.time() - float(st.get("heartbeat") or 0)
        if st.get("state") == "queued" and not st.get("pid") and age < STALE_AFTER_S:
            return st  # just created: its worker is being launched and has not written its pid yet
        if not _pid_alive(st.get("pid")):
            # Re-read: the worker may have written its final state between the two reads.
            st2 = read_json(d / "status.json", st)
            if st2.get("state") in ACTIVE:
                st2.update(state="failed", error=st2.get("error") or
                           "The training process ended without saying why (killed, or out of memory). "
                           "Its files are kept; see the log.")
                write_json_atomic(d / "status.json", st2)
            return st2
        if age > STALE_AFTER_S:
            st = dict(st, state="failed", error=f"No heartbeat for {age:.0f} s: the training process hangs.")
    return st


class StatusWriter:
    """The worker's side of status.json: updates under a lock, plus a heartbeat thread."""

    def __init__(self, d: Path):
        self.path = d / "status.json"
        self._lock = threading.Lock()
        self._st = read_json(self.path, {}) or {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def update(self, **kw: Any) -> None:
        with self._lock:
            self._st.update(kw, heartbeat=time.time())
            write_json_atomic(self.path, self._st)

    def start_heartbeat(self) -> None:
        def beat():
            while not self._stop.wait(HEARTBEAT_S):
                self.update()

        self._thread = threading.Thread(target=beat, name="heartbeat", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


# --- lifecycle ------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunInfo:
    id: str
    dir: Path
    config: dict
    status: dict

    @property
    def state(self) -> str:
        return self.status.get("state", "failed")

    @property
    def progress(self) -> float:
        total = self.status.get("total") or 0
        return min(1.0, (self.status.get("step") or 0) / total) if total else 0.0


def create(cfg: TrainConfig, root: str | os.PathLike | None = None) -> Path:
    """A new run directory holding config.json and a 'queued' status."""
    base = runs_root(root)
    base.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_id = f"{stamp}-{cfg.method}-{cfg.dataset}-{secrets.token_hex(2)}"
    d = base / run_id
    (d / "samples").mkdir(parents=True)
    cfg.save(d / "config.json")
    write_json_atomic(d / "status.json", {"state": "queued", "pid": None, "step": 0, "total": None,
                                          "heartbeat": time.time(), "error": None, "created": time.time()})
    return d


def launch_cli(args: list[str], log_path: Path) -> int:
    """Run ``python -m imbagan ARGS`` in the background, in its own session; returns its pid.

    Training workers, evaluations and balanced-set builds all start here, so none of them is a
    child of a Streamlit script run (a rerun or an app restart does not touch them).
    """
    env = dict(os.environ)
    # The worker must import this very package, wherever the app was started from.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_PROJECT_ROOT), env.get("PYTHONPATH")]))
    env.setdefault("PYTHONUNBUFFERED", "1")
    with open(log_path, "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "imbagan", *args], stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True, close_fds=True).pid


def start_evaluation(run_dir: str | os.PathLike, config: dict | None = None) -> None:
    """Launch ``python -m imbagan evaluate RUN_DIR`` in its own session; it writes RUN_DIR/eval/.

    ``config``: the evaluation's settings (an EvalConfig as a dict), saved as eval/config.json; None
    keeps a saved one (or the defaults). What runs after training is launched here, not imported by
    the training loop.
    """
    d = Path(run_dir).resolve()
    if not (d / "config.json").is_file():
        raise FileNotFoundError(f"{d} is not a run directory (no config.json).")
    if read_status(d).get("state") in ACTIVE:
        raise ValueError(f"Run {d.name} is still training; evaluate it when it has finished.")
    ev = d / "eval"
    if (ev / "status.json").exists() and read_status(ev).get("state") in ACTIVE:
        raise ValueError(f"Run {d.name} is already being evaluated.")
    ev.mkdir(exist_ok=True)
    if config is not None:
        write_json_atomic(ev / "config.json", config)
    args = ["evaluate", str(d), "--no-log-file"]
    if (ev / "config.json").exists():
        args += ["--config", str(ev / "config.json")]
    pid = launch_cli(args, ev / "log.txt")
    # 'queued' is written with the child's pid, after it exists, so that a reader never meets a queued
    # evaluation without a live pid (read_status would call it dead); unless the child wrote first.
    st = read_json(ev / "status.json", {}) or {}
    if st.get("pid") != pid:
        write_json_atomic(ev / "status.json", {"state": "queued", "pid": pid, "progress": 0.0,
                                               "phase": "queued", "heartbeat": time.time(), "error": None})


def _launch(d: Path, resume: bool) -> int:
    return launch_cli(["worker", str(d)] + (["--resume"] if resume else []), d / "log.txt")


def start(cfg: TrainConfig, root: str | os.PathLike | None = None) -> str:
    """Create a run and launch its worker in the background; returns the run id."""
    d = create(cfg, root)
    pid = _launch(d, resume=False)
    st = read_json(d / "status.json", {})
    if st.get("state") == "queued":  # the worker may already have written 'running'
        st.update(pid=pid, heartbeat=time.time())
        write_json_atomic(d / "status.json", st)
    return d.name


def stop(run_id: str, root: str | os.PathLike | None = None, timeout: float = 10.0) -> dict:
    """Ask the worker to stop (it checkpoints first); kill it if it has not ended within ``timeout``."""
    d = run_dir(run_id, root)
    st = read_status(d)
    if st.get("state") not in ACTIVE:
        return st
    pid = st.get("pid")
    if pid:
        try:
            os.killpg(pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
        deadline = time.time() + timeout
        while time.time() < deadline and _pid_alive(pid):
            time.sleep(0.1)
        if _pid_alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            time.sleep(0.2)
            _pid_alive(pid)  # reap
    st = read_json(d / "status.json", {})
    if st.get("state") in ACTIVE:
        st.update(state="stopped", heartbeat=time.time())
        write_json_atomic(d / "status.json", st)
    return st


def resume(run_id: str, root: str | os.PathLike | None = None) -> None:
    """Continue a stopped or failed run from its last checkpoint (or from the start if it has none)."""
    d = run_dir(run_id, root)
    st = read_status(d)
    if st.get("state") in ACTIVE:
        raise ValueError(f"Run {run_id} is still {st['state']}; stop it before resuming.")
    if st.get("state") == "done":
        raise ValueError(f"Run {run_id} has finished; there is nothing to resume.")
    st.update(state="queued", error=None, heartbeat=time.time(), pid=None)
    write_json_atomic(d / "status.json", st)
    pid = _launch(d, resume=True)
    st = read_json(d / "status.json", {})
    if st.get("state") == "queued":
        st.update(pid=pid, heartbeat=time.time())
        write_json_atomic(d / "status.json", st)


def list_runs(root: str | os.PathLike | None = None) -> list[RunInfo]:
    """Every run in the folder, newest first; unreadable folders are skipped."""
    base = runs_root(root)
    if not base.is_dir():
        return []
    out = []
    for d in base.iterdir():
        cfg = read_json(d / "config.json") if d.is_dir() else None
        if isinstance(cfg, dict):
            out.append(RunInfo(d.name, d, cfg, read_status(d)))
    out.sort(key=lambda r: (r.status.get("created") or 0, r.id), reverse=True)
    return out


def info(run_id: str, root: str | os.PathLike | None = None) -> RunInfo:
    d = run_dir(run_id, root)
    return RunInfo(d.name, d, read_json(d / "config.json", {}), read_status(d))


def eta_text(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "—"
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def delete_run(run_id: str, root: str | os.PathLike | None = None) -> None:
    """Delete a run's directory and everything in it; refuses a run that is training or being evaluated.

    Raises ValueError (still running, or a bad id) or FileNotFoundError (no such run).
    """
    import shutil

    d = run_dir(run_id, root)
    st = read_status(d)
    if st.get("state") in ACTIVE:
        raise ValueError(f"Run {run_id} is still {st['state']}; stop it before deleting it.")
    if (d / "eval" / "status.json").exists() and read_status(d / "eval").get("state") in ACTIVE:
        raise ValueError(f"Run {run_id} is being evaluated; stop the evaluation before deleting it.")
    # Renamed first, so a half-deleted folder never shows up as a broken run.
    trash = d.with_name(f".deleting-{d.name}-{secrets.token_hex(2)}")
    os.replace(d, trash)
    shutil.rmtree(trash, ignore_errors=True)
