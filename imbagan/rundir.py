"""A run is a directory: where runs live, their files, their status and the list of them (the readers' side).

    runs/<id>/config.json     written once
    runs/<id>/status.json     {"state", "pid", "step", "total", "heartbeat", "error", ...}; replaced atomically
    runs/<id>/metrics.jsonl   one JSON object per tick, appended and flushed
    runs/<id>/samples/NNNNNN.png   one row per class, fixed noise
    runs/<id>/checkpoint.pt   tensors and plain numbers; written to a temporary name, then renamed
    runs/<id>/log.txt         the worker's stdout and stderr
    runs/<id>/lock            flock'ed by the run's one worker for its whole life

Readers never fail on a bad or missing file: such a run lists as "unreadable" with the reason, and a
full disk never leaves status.json saying "running". Launching, locking, job slots, stop and resume
live in :mod:`imbagan.runs` (the supervisor), which re-exports everything here.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imbagan.config import TrainConfig

RUNS_ENV = "IMBAGAN_RUNS"
STATES = ("queued", "running", "done", "failed", "stopped")
ACTIVE = ("queued", "running")
UNREADABLE = "unreadable"  # a run whose status.json or config.json cannot be read; RunInfo.status["error"] says why
# A worker whose heartbeat is older than this is taken for dead even if its pid exists (hung, or pid reused).
STALE_AFTER_S = 60.0
HEARTBEAT_S = 2.0
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


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
    """Write-then-rename; the temporary file is removed if anything fails (a full disk, say)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        tmp.write_text(json.dumps(obj, indent=1))
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise


def read_json(path: Path, default: Any = None) -> Any:
    """The file's JSON, or ``default`` if it is missing or cannot be read or parsed (never raises)."""
    obj, _ = read_json_checked(path)
    return default if obj is None else obj


def read_json_checked(path: Path) -> tuple[Any, str | None]:
    """(the file's JSON, None), or (None, why it could not be read); never raises."""
    try:
        return json.loads(Path(path).read_bytes()), None
    except FileNotFoundError:
        return None, f"{Path(path).name} is missing"
    except IsADirectoryError:
        return None, f"{Path(path).name} is a folder, not a file"
    except OSError as e:
        return None, f"{Path(path).name} cannot be read ({os.strerror(e.errno) if e.errno else e})"
    except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return None, f"{Path(path).name} is not valid JSON ({e})"


def write_in_place(path: Path, obj: dict, keep: tuple[str, ...] = ()) -> None:
    """Overwrite ``path`` inside its existing blocks: the last resort when write-then-rename fails on a full disk.

    Compact JSON is written over the old content and the file truncated to it; if it would not fit in
    the old file's size, only the ``keep`` keys are written. Not atomic (a reader may see a torn file
    for a moment, which it reports as unreadable), so only used to record how a run ended.
    """
    data = json.dumps(obj, separators=(",", ":")).encode()
    try:
        old = path.stat().st_size
    except OSError:
        old = 0
    if len(data) > old and keep:
        data = json.dumps({k: obj[k] for k in keep if k in obj}, separators=(",", ":")).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


def disk_full(folder: Path, margin: int = 1 << 20) -> bool:
    """True when the file system holding ``folder`` has (almost) no space left for us."""
    try:
        return shutil.disk_usage(folder).free < margin
    except OSError:
        return False


def error_text(e: BaseException) -> str:
    """How a failure reads on the page: one sentence; a full disk says so plainly."""
    if isinstance(e, OSError) and e.errno == errno.ENOSPC:
        where = f" (writing {Path(e.filename).name})" if getattr(e, "filename", None) else ""
        return f"no space left on device{where}; free some disk space, then resume the run."
    return f"{type(e).__name__}: {str(e) or type(e).__name__}"


def read_metrics(d: Path) -> list[dict]:
    """All ticks so far; a half-written last line (the worker is appending) or a bad one is skipped."""
    out = []
    try:
        with open(d / "metrics.jsonl", encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if isinstance(rec, dict):
                    out.append(rec)
    except OSError:
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
    except OSError:
        return ""


# --- status ---------------------------------------------------------------------------------
def pid_alive(pid: int | str | None) -> bool:
    """Whether process ``pid`` runs (a zombie does not; our own ended child is reaped on the way)."""
    if not pid:
        return False
    pid = int(pid)
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
        return _proc_stat(pid)[0] != "Z"
    except OSError:
        return True


def _proc_stat(pid: int) -> list[str]:
    """/proc/PID/stat's fields from the third on (state, ppid, ...): after the command name, which may hold spaces."""
    with open(f"/proc/{int(pid)}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def process_start(pid: int) -> float | None:
    """When process ``pid`` started (epoch seconds, to about a second), from /proc; None where that cannot tell."""
    try:
        ticks = int(_proc_stat(pid)[19])  # field 22, starttime, in clock ticks after boot
        with open("/proc/stat") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith("btime "))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def signallable(status: dict) -> bool:
    """Whether a stop may signal the process that ``status`` names (and its process group).

    A status can outlive its process: after a crash or a reboot its pid may name another process, even the app
    itself (a shell makes the app a process-group leader, so ``killpg`` would end it). The process that wrote the
    status ran at its last heartbeat, and one that took its pid since started after that. So where /proc tells when
    a process started, only one that started by the heartbeat is signalled (a worker, an evaluation, or a bench
    script training in its own process); and never this process or its group, nor pid 1.
    """
    pid = status.get("pid") if isinstance(status, dict) else None
    try:
        pid = int(pid)
    except (TypeError, ValueError):
        return False
    if pid <= 1 or pid in (os.getpid(), os.getpgrp()):
        return False
    started, beat = process_start(pid), status.get("heartbeat")
    if started is None or not isinstance(beat, (int, float)):
        return True  # no /proc (or no such process: a signal then finds no one)
    return started <= beat + 1.5  # /proc's boot time is whole seconds


# Keys whose value must be a number (or null) for the page's arithmetic; anything else makes the file unreadable.
_NUMERIC_KEYS = ("pid", "step", "total", "heartbeat", "created", "progress", "eta_s", "steps_per_s", "img_per_s")


def _status_problem(st: Any) -> str | None:
    """Why a parsed status.json cannot be used, or None."""
    if not isinstance(st, dict):
        return f"status.json holds a {type(st).__name__}, not an object"
    if st.get("state") not in STATES:
        return f"status.json has an unknown state {st.get('state')!r}"
    for k in _NUMERIC_KEYS:
        v = st.get(k)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            return f"status.json's {k!r} is {v!r}, not a number"
    return None


def unreadable(reason: str) -> dict:
    """The status of a run whose files cannot be read: listed, with the reason, and never active."""
    return {"state": UNREADABLE, "error": reason, "step": 0, "total": None}


def _save_quietly(path: Path, st: dict) -> None:
    """A reader's correction of status.json (a dead worker): best effort; a full disk must not break reading."""
    try:
        write_json_atomic(path, st)
    except OSError:
        pass


def adversarial_step(st: dict, default: int = 0) -> int:
    """The adversarial steps a run's status says it has trained (its ``step`` less the pre-training stage's)."""
    return max(0, int(st.get("step", default) or 0) - int(st.get("pretrain_steps") or 0))


def read_status(d: Path) -> dict:
    """The run's status; a queued/running run whose worker is gone is reported (and saved) as failed.

    Never raises: a status.json that cannot be read or makes no sense gives state "unreadable" with the
    reason in "error". A worker that still holds the run's lock is alive even if its heartbeat is old
    (stopped with SIGSTOP, swapped out): it shows "not responding", not failed.
    """
    d = Path(d)
    st, why = read_json_checked(d / "status.json")
    why = why or _status_problem(st)
    if why:
        return unreadable(why)
    if st.get("state") in ACTIVE:
        age = time.time() - float(st.get("heartbeat") or 0)
        # A held lock means a live worker, unless its pid is known and gone: a killed process keeps
        # the lock for a moment while the kernel tears it down, and must show as failed at once.
        if is_locked(d) and (not st.get("pid") or pid_alive(st.get("pid"))):
            if age > STALE_AFTER_S:
                st = dict(st, not_responding=True, phase=f"not responding: no heartbeat for {age:.0f} s "
                          "(the worker still holds the run; it may be paused or swapped out)")
            return st
        if st.get("state") == "queued" and not st.get("pid") and age < STALE_AFTER_S:
            return st  # just created: its worker is being launched and has not written its pid yet
        if not pid_alive(st.get("pid")):
            # Re-read: the worker may have written its final state between the two reads.
            st2, _ = read_json_checked(d / "status.json")
            st2 = st2 if _status_problem(st2) is None else st
            if st2.get("state") in ACTIVE:
                st2.update(state="failed", error=st2.get("error") or
                           "The training process ended without saying why (killed, or out of memory). "
                           "Its files are kept; see the log.")
                _save_quietly(d / "status.json", st2)
            return st2
        if age > STALE_AFTER_S:
            st = dict(st, state="failed", error=f"No heartbeat for {age:.0f} s: the training process hangs.")
    return st


class StatusWriter:
    """The worker's side of status.json: updates under a lock, plus a heartbeat thread.

    On a full disk a final state (done, failed, stopped) is still recorded, by overwriting the file in
    place; the heartbeat just skips a beat.
    """

    FINAL_KEYS = ("state", "error", "pid", "step", "total", "heartbeat", "created", "phase")

    def __init__(self, d: Path):
        self.path = Path(d) / "status.json"
        self._lock = threading.Lock()
        st = read_json(self.path, {})
        self._st = st if isinstance(st, dict) else {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def update(self, **kw: Any) -> None:
        with self._lock:
            self._st.update(kw, heartbeat=time.time())
            try:
                write_json_atomic(self.path, self._st)
            except OSError:
                if self._st.get("state") not in ACTIVE:  # how the run ended must reach the page
                    write_in_place(self.path, self._st, self.FINAL_KEYS)
                else:
                    raise

    def start_heartbeat(self) -> None:
        def beat():
            while not self._stop.wait(HEARTBEAT_S):
                try:
                    self.update()
                except OSError:  # full disk: the main thread meets it too and records the failure
                    pass

        self._thread = threading.Thread(target=beat, name="heartbeat", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def is_locked(d: Path) -> bool:
    """True while some process holds RUN/lock, i.e. the run's worker is alive (even if frozen)."""
    try:
        fd = os.open(Path(d) / "lock", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # drops our shared lock at once


# --- listing ---------------------------------------------------------------------------------
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


def _config_problem(cfg: Any) -> str | None:
    if not isinstance(cfg, dict):
        return f"config.json holds a {type(cfg).__name__}, not an object"
    try:
        TrainConfig.from_dict(cfg)
    except Exception as e:  # wrong types give TypeError/AttributeError as well as ValueError
        return f"config.json does not describe a run ({type(e).__name__}: {e})"
    return None


def _run_info(d: Path) -> RunInfo:
    """A run's RunInfo; an unreadable config.json or status.json gives an 'unreadable' run, never an error."""
    cfg, why = read_json_checked(d / "config.json")
    why = why or _config_problem(cfg)
    if why:
        shown = {k: v for k, v in cfg.items() if k in ("method", "dataset", "imbalance") and isinstance(v, str)} \
            if isinstance(cfg, dict) else {}
        return RunInfo(d.name, d, shown, unreadable(why))
    return RunInfo(d.name, d, cfg, read_status(d))


def list_runs(root: str | os.PathLike | None = None) -> list[RunInfo]:
    """Every run in the folder, newest first; a run whose files cannot be read is listed as 'unreadable'."""
    base = runs_root(root)
    try:
        entries = list(base.iterdir())
    except OSError:
        return []
    out = []
    for d in entries:
        try:
            if d.name.startswith(".") or not d.is_dir() or not os.path.lexists(d / "config.json"):
                continue
        except OSError:
            continue
        out.append(_run_info(d))

    def newest(r: RunInfo):
        c = r.status.get("created")
        return (c if isinstance(c, (int, float)) and not isinstance(c, bool) else 0, r.id)

    out.sort(key=newest, reverse=True)
    return out


def info(run_id: str, root: str | os.PathLike | None = None) -> RunInfo:
    return _run_info(run_dir(run_id, root))
