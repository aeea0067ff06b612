"""The supervisor of runs: creates them, launches their workers and evaluations, holds their locks and job
slots, stops, resumes and deletes them. A run's files, status and listing are :mod:`imbagan.rundir`'s; this
module re-exports them, so ``runs.read_status`` and friends keep working.

    runs/.slots/              job slots (flock'ed files) and the queue of jobs waiting for one

Training runs in its own process (``python -m imbagan worker RUN_DIR``) in a new session, so
neither a Streamlit rerun nor an app restart touches it; the page only reads the run's files.

Safety rules: one worker per run (the lock; ``start``/``resume`` take it before launching and hand
it to the child), and at most ``max_jobs()`` background trainings and evaluations at once (the rest
wait as "queued" with their place in line).
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from imbagan.config import TrainConfig
from imbagan.rundir import (  # re-exported: the readers' side of a run
    RUNS_ENV, STATES, ACTIVE, UNREADABLE, STALE_AFTER_S, HEARTBEAT_S,
    runs_root, run_dir, write_json_atomic, read_json, read_json_checked, write_in_place,
    disk_full, error_text, read_metrics, sample_paths, log_tail, pid_alive, process_start, signallable,
    unreadable, read_status, adversarial_step, StatusWriter, is_locked, RunInfo, list_runs,
    info,
    _save_quietly,
)


MAX_JOBS_ENV = "IMBAGAN_MAX_JOBS"
LOCK_FD_ENV = "IMBAGAN_RUN_LOCK_FD"  # the run lock's file descriptor, handed from launcher to worker
SLOTS_DIR = ".slots"
_PROJECT_ROOT = Path(__file__).resolve().parent.parent


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


def _note_pid(status: Path, pid: int) -> None:
    """Put a just-launched job's pid into its 'queued' status (unless the child has written its own already)."""
    st = read_json(status, {})
    if isinstance(st, dict) and st.get("state") == "queued" and not st.get("pid"):
        st.update(pid=pid, heartbeat=time.time())
        _save_quietly(status, st)


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
    _note_pid(ev / "status.json", launch_cli(args, ev / "log.txt"))


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
    _note_pid(d / "status.json", pid)
    return pid


def start(cfg: TrainConfig, root: str | os.PathLike | None = None) -> str:
    """Create a run and launch its worker in the background; returns the run id.

    With ``cfg.evaluate_after`` its evaluation (default settings) is launched now too, alongside the
    training: the classifiers that need no generated images train while the GAN does, the GAN's once it
    has finished. It is launched first, so the worker knows it shares the CPU (:func:`cores.sharing_start`).
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
    if signallable(st):  # a stale status may name a reused pid: mark it stopped without signalling anyone
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


def continues(d: Path) -> dict | None:
    """Which run the run in ``d`` continues and from which step (``{"run", "step", "steps"}``, written by
    ``extend``), or None for a run that started from scratch or whose record cannot be read."""
    parent = read_json(d / "continues.json")
    return parent if isinstance(parent, dict) and parent.get("run") else None


FINISHED = ("done", "stopped")  # the states whose checkpoint is final: extend, judge or draw from it


def finished_config(d: Path) -> TrainConfig:
    """The config of the finished (done or stopped) run in ``d``; ValueError saying why ``d`` is not one."""
    d = Path(d)
    if not (d / "config.json").exists():
        raise ValueError(f"{d}: not a run folder (no config.json).")
    state = read_status(d).get("state")
    if state not in FINISHED:
        raise ValueError(f"{d}: {state}, not a finished run: wait for it, or resume it.")
    return TrainConfig.load(d / "config.json")


def extend(run_id: str, steps: int, root: str | os.PathLike | None = None) -> str:
    """Train a finished or stopped run further, as a new run that starts from its checkpoint; returns its id.

    The run itself stays as it is (its images, its evaluation); the new one copies its checkpoint, curves
    and grids, asks for ``steps`` adversarial steps in all, and records where it came from in
    ``continues.json``. A run that stopped because it converged trains the new steps whatever its curve
    does (stop_when="steps"): a user who asks for more steps gets them.
    """
    d = run_dir(run_id, root)
    st = read_status(d)
    if st.get("state") not in FINISHED:
        hint = " resume it instead" if st.get("state") == "failed" else " wait for it to end, or stop it"
        raise ValueError(f"Run {run_id} is {st.get('state')}; only a finished or stopped run can be trained "
                         f"longer:{hint}.")
    if not (d / "checkpoint.pt").exists():
        raise ValueError(f"Run {run_id} has no checkpoint to start from; train it again instead.")
    cfg = TrainConfig.load(d / "config.json")
    if int(steps) <= cfg.steps:
        raise ValueError(f"Run {run_id} was asked for {cfg.steps:,} adversarial steps; ask for more than that "
                         "to train it longer.")
    changes: dict[str, Any] = {"steps": int(steps), "evaluate_after": False}
    if st.get("converged_step") is not None:
        changes["stop_when"] = "steps"
    new = create(cfg.replace(**changes), d.parent)
    for name in ("checkpoint.pt", "metrics.jsonl", "quality.jsonl"):
        if (d / name).exists():
            shutil.copy2(d / name, new / name)
    for png in sample_paths(d):
        shutil.copy2(png, new / "samples" / png.name)
    write_json_atomic(new / "continues.json", {"run": d.name, "step": st.get("step"), "steps": cfg.steps})
    with open(new / "log.txt", "a") as f:
        f.write(f"continues run {d.name} from its checkpoint (step {st.get('step')}), to {int(steps):,} "
                "adversarial steps\n")
    _launch(new, resume=True)
    return new.name


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


# This module's names and the readers' side it re-exports from imbagan.rundir.
__all__ = [
    "MAX_JOBS_ENV", "LOCK_FD_ENV", "SLOTS_DIR", "RunBusy", "try_lock", "hold_run_lock", "create",
    "launch_cli", "start_evaluation", "start", "evaluated_final", "evaluating_alongside", "evaluation_idle",
    "gpu_count", "max_jobs", "wait_for_slot", "release_slot", "stop", "resume", "extend", "delete_run",
    "RUNS_ENV", "STATES", "ACTIVE", "UNREADABLE", "STALE_AFTER_S", "HEARTBEAT_S", "runs_root", "run_dir",
    "write_json_atomic", "read_json", "read_json_checked", "write_in_place", "disk_full", "error_text",
    "read_metrics", "sample_paths", "log_tail", "pid_alive", "process_start", "signallable", "unreadable", "read_status", "adversarial_step", "StatusWriter",
    "is_locked", "RunInfo", "list_runs", "info",
]
