"""A run is a directory; this module creates, lists, reads, starts, stops and resumes them.

    runs/<id>/config.json     written once
    runs/<id>/status.json     {"state", "pid", "step", "total", "heartbeat", "error", ...}; replaced atomically
    runs/<id>/metrics.jsonl   one JSON object per tick, appended and flushed
    runs/<id>/samples/NNNNNN.png   one row per class, fixed noise
    runs/<id>/checkpoint.pt   tensors and plain numbers; written to a temporary name, then renamed
    runs/<id>/log.txt         the worker's stdout and stderr
    runs/<id>/lock            flock'ed by the run's one worker for its whole life
    runs/.slots/              job slots (flock'ed files) and the queue of jobs waiting for one

Training runs in its own process (``python -m imbagan worker RUN_DIR``) in a new session, so
neither a Streamlit rerun nor an app restart touches it; the page only reads these files.

Safety rules: one worker per run (the lock; ``start``/``resume`` take it before launching and hand
it to the child), at most ``max_jobs()`` background trainings and evaluations at once (the rest wait
as "queued" with their place in line), and readers never fail on a bad or missing file: such a run
lists as "unreadable" with the reason, and a full disk never leaves status.json saying "running".
"""

from __future__ import annotations

import errno
import fcntl
import json
import math
import os
import re
import secrets
import shutil
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
UNREADABLE = "unreadable"  # a run whose status.json or config.json cannot be read; RunInfo.status["error"] says why
MAX_JOBS_ENV = "IMBAGAN_MAX_JOBS"
LOCK_FD_ENV = "IMBAGAN_RUN_LOCK_FD"  # the run lock's file descriptor, handed from launcher to worker
SLOTS_DIR = ".slots"
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
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


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


# --- one worker per run -----------------------------------------------------------------------
class RunBusy(ValueError):
    """The run already has a worker (it holds RUN/lock)."""


def _busy(d: Path) -> RunBusy:
    st = read_json(d / "status.json", {})
    pid = st.get("pid") if isinstance(st, dict) else None
    return RunBusy(f"Run {d.name} already has a worker process{f' (pid {pid})' if pid else ''}; "
                   "stop it, or wait for it to end.")


def try_lock(d: Path, tries: int = 25) -> int | None:
    """Take RUN/lock exclusively; the open descriptor, or None if another process holds it.

    Retries for about half a second: a reader's is_locked() holds a shared lock for microseconds, and
    a worker that was just killed keeps the lock while the kernel tears it down (~0.1 s).
    """
    fd = os.open(Path(d) / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    for i in range(tries):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if i + 1 < tries:
                time.sleep(0.02)
    os.close(fd)
    return None


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


_HELD: dict[str, int] = {}  # run dir -> lock descriptor this process holds for its lifetime


def hold_run_lock(d: Path) -> int:
    """The worker's claim on its run, kept until the process exits; raises RunBusy if another worker has it.

    A launcher (start/resume) takes the lock first and passes the descriptor in $IMBAGAN_RUN_LOCK_FD, so
    there is no moment between launch and worker at which a second launch could slip in.
    """
    d = Path(d).resolve()
    if str(d) in _HELD:
        return _HELD[str(d)]
    inherited = os.environ.pop(LOCK_FD_ENV, None)
    fd = None
    if inherited and inherited.isdigit():
        try:
            mine, want = os.fstat(int(inherited)), os.stat(d / "lock")
            if (mine.st_dev, mine.st_ino) == (want.st_dev, want.st_ino):
                fcntl.flock(int(inherited), fcntl.LOCK_EX | fcntl.LOCK_NB)  # ours already: succeeds
                fd = int(inherited)
        except OSError:
            fd = None
    if fd is None:
        fd = try_lock(d)
    if fd is None:
        raise _busy(d)
    _HELD[str(d)] = fd
    return fd


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


def launch_cli(args: list[str], log_path: Path, lock_fd: int | None = None) -> int:
    """Run ``python -m imbagan ARGS`` in the background, in its own session; returns its pid.

    Training workers, evaluations and balanced-set builds all start here, so none of them is a
    child of a Streamlit script run (a rerun or an app restart does not touch them). The process
    starts as ``python -m imbagan.slots``: a training worker (``worker DIR``) or an evaluation
    (``evaluate DIR``) first waits there for one of ``max_jobs()`` slots, shown as "queued" with its
    place in line. ``lock_fd`` (a held run lock) is handed down to the worker. SIGTERM is blocked
    across the launch, so a stop that arrives before the child can handle it waits instead of
    killing it unrecorded; the child unblocks it once its handler is in place.
    """
    env = dict(os.environ)
    # The worker must import this very package, wherever the app was started from.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_PROJECT_ROOT), env.get("PYTHONPATH")]))
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.pop(LOCK_FD_ENV, None)
    if lock_fd is not None:
        env[LOCK_FD_ENV] = str(lock_fd)
    queue: list[str] = []
    if len(args) >= 2 and args[0] in ("worker", "evaluate"):
        d = Path(args[1]).resolve()
        status = d / "status.json" if args[0] == "worker" else d / "eval" / "status.json"
        queue = ["--status", str(status), "--slots", str(d.parent / SLOTS_DIR)]
    cmd = [sys.executable, "-m", "imbagan.slots", *queue, "--", *args]
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        with open(log_path, "ab") as log:
            return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True, close_fds=True,
                                    pass_fds=() if lock_fd is None else (lock_fd,)).pid
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def start_evaluation(run_dir: str | os.PathLike, config: dict | None = None, alongside: bool = False) -> None:
    """Launch ``python -m imbagan evaluate RUN_DIR`` in its own session; it writes RUN_DIR/eval/.

    ``config``: the evaluation's settings (an EvalConfig as a dict), saved as eval/config.json; None
    keeps a saved one (or the defaults). What runs after training is launched here, not imported by
    the training loop. ``alongside``: the run may still be queued or training; the evaluation then
    trains the classifiers that need no generated images at once, and waits for the GAN for the rest.
    """
    d = Path(run_dir).resolve()
    if not (d / "config.json").is_file():
        raise FileNotFoundError(f"{d} is not a run directory (no config.json).")
    if not alongside and read_status(d).get("state") in ACTIVE:
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
    # 'queued' before the launch (a just-created job without a pid counts as launching), so that the child's
    # start-up and its wait for a job slot already have a status to report in; the pid follows.
    write_json_atomic(ev / "status.json", {"state": "queued", "pid": None, "progress": 0.0, "phase": "queued",
                                           "heartbeat": time.time(), "error": None})
    pid = launch_cli(args, ev / "log.txt")
    st = read_json(ev / "status.json", {})
    if isinstance(st, dict) and st.get("state") == "queued" and not st.get("pid"):
        st.update(pid=pid, heartbeat=time.time())
        _save_quietly(ev / "status.json", st)


def _launch(d: Path, resume: bool) -> int:
    """Launch the run's worker holding its lock; RunBusy if another worker has it."""
    fd = try_lock(d)
    if fd is None:
        raise _busy(d)
    try:
        st = read_json(d / "status.json", {})
        st = st if isinstance(st, dict) else {}
        if resume:
            if st.get("state") == "done":
                raise ValueError(f"Run {d.name} has finished; there is nothing to resume.")
            # No other worker can exist now (we hold the lock): whatever status.json says is stale.
            st.update(state="queued", error=None, heartbeat=time.time(), pid=None, phase="queued")
            write_json_atomic(d / "status.json", st)
        pid = launch_cli(["worker", str(d)] + (["--resume"] if resume else []), d / "log.txt", lock_fd=fd)
    finally:
        os.close(fd)  # the child holds the lock now (the same open file)
    st = read_json(d / "status.json", {})
    if isinstance(st, dict) and st.get("state") == "queued" and not st.get("pid"):
        st.update(pid=pid, heartbeat=time.time())
        _save_quietly(d / "status.json", st)
    return pid


def start(cfg: TrainConfig, root: str | os.PathLike | None = None) -> str:
    """Create a run and launch its worker in the background; returns the run id.

    With ``cfg.evaluate_after`` its evaluation (default settings) is launched now too, alongside the
    training: the classifiers that need no generated images train while the GAN does, the GAN's once it
    has finished. It is launched first, so the worker knows it shares the CPU (:func:`cpu_threads`).
    """
    d = create(cfg, root)
    if cfg.evaluate_after:
        start_evaluation(d, None, alongside=True)
    _launch(d, resume=False)
    return d.name


def evaluated_final(d: Path) -> bool:
    """Whether the run's evaluation (finished or under way) covers its generator as training left it."""
    if evaluating_alongside(d):
        return True
    m = read_json(Path(d) / "eval" / "metrics.json", {})
    return isinstance(m, dict) and (m.get("run") or {}).get("training_state") == "done"


def evaluating_alongside(d: Path) -> bool:
    """Whether an evaluation of run ``d`` is queued or running (so that it shares the machine with its training)."""
    ev = Path(d) / "eval"
    return (ev / "status.json").exists() and read_status(ev).get("state") in ACTIVE


def evaluation_idle(d: Path) -> bool:
    """Whether run ``d``'s evaluation leaves the CPU to the training: it has ended (or never started), or it
    runs but only waits for the training to end (``evaluate.wait_for_training`` marks that in its status as
    ``waiting_for_training``). Queued counts as busy: it is starting up, or about to run."""
    st = read_status(Path(d) / "eval")
    state = st.get("state")
    if state not in ACTIVE:
        return True
    return state == "running" and bool(st.get("waiting_for_training"))


def cpu_threads(sharing: bool) -> int | None:
    """CPU intra-op threads for a worker: $IMBAGAN_THREADS if set; else half the cores when a run's training and
    its evaluation share the machine (two processes each taking every core is far slower than each taking
    half); else None (torch's default)."""
    v = os.environ.get("IMBAGAN_THREADS", "").strip()
    if v.isdigit() and int(v) >= 1:
        return int(v)
    return max(1, (os.cpu_count() or 2) // 2) if sharing else None


# --- job slots --------------------------------------------------------------------------------
def gpu_count() -> int:
    """GPUs this machine offers, found without importing torch: $CUDA_VISIBLE_DEVICES, else nvidia-smi."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([v for v in visible.split(",") if v.strip() and not v.strip().startswith("-")])
    if not shutil.which("nvidia-smi"):
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def max_jobs() -> int:
    """How many background trainings and evaluations run at once: $IMBAGAN_MAX_JOBS, else 1 per GPU, else 2."""
    v = os.environ.get(MAX_JOBS_ENV, "").strip()
    if v:
        try:
            if int(v) >= 1:
                return int(v)
        except ValueError:
            pass
        print(f"{MAX_JOBS_ENV}={v!r} is not a whole number of at least 1; using the default", file=sys.stderr)
    return gpu_count() or 2


_SLOT_FD: int | None = None  # held until this process exits


def _mark_queued(status: Path, **kw: Any) -> None:
    st = read_json(status, {})
    if isinstance(st, dict) and st.get("state") in ACTIVE:
        st.update(kw, state="queued", pid=os.getpid(), heartbeat=time.time())
        _save_quietly(status, st)


def wait_for_slot(status: Path, slots: Path, poll_s: float = 0.5) -> int:
    """Block until one of ``max_jobs()`` slot locks in ``slots`` is ours; returns its number.

    Waiting jobs form a queue (ticket files named by arrival time); the first ``max_jobs()`` of it
    may take a free slot, so jobs start in about the order they were launched. While waiting, the
    job's status.json says "queued", its place in line and a fresh heartbeat.
    """
    global _SLOT_FD
    queue = slots / "queue"
    queue.mkdir(parents=True, exist_ok=True)
    ticket = queue / f"{time.time_ns():020d}-{os.getpid()}"
    ticket.touch()
    try:
        while True:
            n = max_jobs()
            waiting = []
            for t in sorted(queue.iterdir()):
                pid = t.name.rpartition("-")[2]
                if t != ticket and not (pid.isdigit() and pid_alive(int(pid))):
                    t.unlink(missing_ok=True)  # a waiter that died
                else:
                    waiting.append(t)
            place = waiting.index(ticket) if ticket in waiting else 0
            if place < n:
                for i in range(n):
                    fd = os.open(slots / f"slot-{i}", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        os.close(fd)
                        continue
                    _SLOT_FD = fd
                    return i
            _mark_queued(status, queue_position=place + 1,
                         phase=f"queued: #{place + 1} in line for one of {n} job slots ({MAX_JOBS_ENV})")
            time.sleep(poll_s)
    finally:
        ticket.unlink(missing_ok=True)


def release_slot() -> bool:
    """Give back this process's job slot (held since :func:`wait_for_slot`); True if it held one.

    An evaluation waiting for its run's training to end holds no slot, so that the training it waits
    for can never be queued behind it."""
    global _SLOT_FD
    if _SLOT_FD is None:
        return False
    os.close(_SLOT_FD)
    _SLOT_FD = None
    return True


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
        while time.time() < deadline and pid_alive(pid):
            time.sleep(0.1)
        if pid_alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            time.sleep(0.2)
            pid_alive(pid)  # reap
    st = read_json(d / "status.json", {})
    st = st if isinstance(st, dict) else {}
    if st.get("state") in ACTIVE:
        st.update(state="stopped", heartbeat=time.time())
        try:
            write_json_atomic(d / "status.json", st)
        except OSError:
            write_in_place(d / "status.json", st, StatusWriter.FINAL_KEYS)
    return st


def resume(run_id: str, root: str | os.PathLike | None = None) -> None:
    """Continue a stopped or failed run from its last checkpoint (or from the start if it has none).

    Atomic: the run's lock is taken before anything is written, so two resumes at the same instant
    launch one worker, and a worker that is alive but not responding is never joined by a second one.
    """
    d = run_dir(run_id, root)
    st = read_status(d)
    if st.get("state") == UNREADABLE:
        raise ValueError(f"Run {run_id} cannot be resumed: {st.get('error')}.")
    if st.get("state") in ACTIVE:
        raise ValueError(f"Run {run_id} is still {st.get('state')} (its worker is alive); stop it before resuming.")
    if st.get("state") == "done":
        raise ValueError(f"Run {run_id} has finished; there is nothing to resume.")
    _launch(d, resume=True)  # RunBusy (a ValueError) if a worker still holds the run, e.g. a second resume


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
