"""The training loop: data on the device, ticks, sample grids, checkpoints, stop requests.

The loop owns everything but the method's own update: it draws nothing itself inside a step, keeps
per-step metrics as device tensors and reads them to the host once per tick.
"""

from __future__ import annotations

import errno
import json
import math
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from imbagan import convergence, cores, runs
from imbagan.batches import DeviceData, native_bf16, resolve_device
from imbagan.config import TrainConfig
from imbagan.grids import grid_noise, sample_grid, save_grid
from imbagan.imbalance import minority_classes
from imbagan.methods import METHODS
from imbagan.splits import load_split


class StopRequested(Exception):
    """Raised by the SIGTERM handler while the worker is not yet inside the loop."""


# A tick whose mean loss is not finite or beyond this is a diverged run (normal GAN losses are O(1)-O(100)).
DIVERGED_LOSS = 1e6


class Diverged(RuntimeError):
    """The losses blew up; the run stops with its last good checkpoint (saved only after a good tick)."""


def check_losses(values: dict, step: int, lr: float) -> None:
    """Raise Diverged if a tick's loss means (already on the host) are not finite or explode."""
    for k, v in values.items():
        if "loss" in k and isinstance(v, float) and not (math.isfinite(v) and abs(v) <= DIVERGED_LOSS):
            raise Diverged(f"diverged at step {step} ({k} {v:.3g}); the last good checkpoint is kept. "
                           f"Try a lower learning rate than {lr:g}.")


def drop_metrics_after(d: Path, step: int, name: str = "metrics.jsonl") -> int:
    """On resume: keep ``name``'s records up to the checkpoint's step, so curves do not zigzag.

    Returns how many records were dropped; the file is rewritten atomically.
    """
    path = d / name
    try:
        lines = path.read_text().splitlines(keepends=True)
    except FileNotFoundError:
        return 0
    keep = []
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # a line half-written when the worker died
        if isinstance(rec, dict) and isinstance(rec.get("step"), (int, float)) and rec["step"] <= step:
            keep.append(line if line.endswith("\n") else line + "\n")
    if len(keep) != len(lines):
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text("".join(keep))
        os.replace(tmp, path)
    return len(lines) - len(keep)


class StopFlag:
    """Set by a signal; inside the loop it is polled between steps, before the loop it interrupts."""

    def __init__(self):
        self.requested = False
        self.in_loop = False

    def __call__(self) -> bool:
        return self.requested

    def request(self) -> None:
        self.requested = True
        if not self.in_loop:
            raise StopRequested()


def build(cfg: TrainConfig, device: torch.device | None = None):
    """The method and its device-resident data, seeded: the same config gives the same start."""
    device = device or resolve_device(cfg.device)
    train_set, _ = load_split(cfg, "train")
    torch.manual_seed(cfg.seed)  # network initialisation
    gen = torch.Generator(device=device)
    gen.manual_seed(cfg.seed)
    data = DeviceData(train_set.x, train_set.y, train_set.classes, device, gen)
    return METHODS[cfg.method](cfg, data), data


def save_checkpoint(path: Path, method, step: int, pretrained: bool, gen: torch.Generator) -> None:
    state = {"method": method.state_dict(), "step": step, "pretrained": pretrained,
             "rng": gen.get_state(), "cpu_rng": torch.get_rng_state()}
    if gen.device.type == "cuda":  # dropout draws from the device's global generator
        state["cuda_rng"] = torch.cuda.get_rng_state(gen.device)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)  # the previous checkpoint stays whole
        # torch.save reports a full disk as a RuntimeError ("file write failed"): say what it is.
        if isinstance(e, RuntimeError) and runs.disk_full(path.parent):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from e
        raise


def load_checkpoint(path: Path) -> dict:
    """Loaded on the CPU: RNG states must stay there, and modules/optimisers copy onto their device.

    A file that is not a checkpoint (truncated, or another format) raises a ValueError that says so.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as e:  # truncated zip, unpickling refused by weights_only, wrong format
        raise ValueError(f"{path} is not a readable checkpoint ({type(e).__name__}: "
                         f"{str(e).splitlines()[0][:200] if str(e) else 'unreadable'}).") from None
    if not isinstance(state, dict) or not {"method", "step", "pretrained"} <= set(state):
        raise ValueError(f"{path} is not an imbagan checkpoint (its keys are not method, step, pretrained).")
    return state


class _Ticker:
    """Per-step metric tensors kept on the device; one host read per tick."""

    def __init__(self):
        self.acc: dict[str, list] = {}
        self.t0 = time.perf_counter()
        self.steps = 0

    def add(self, out: dict) -> None:
        for k, v in out.items():
            self.acc.setdefault(k, []).append(v)
        self.steps += 1

    def read(self) -> tuple[dict, float, int]:
        tensors = {k: v for k, v in self.acc.items() if v and isinstance(v[0], torch.Tensor)}
        values: dict = {}
        if tensors:
            stacked = torch.stack([torch.stack([t.float() for t in v]).mean() for v in tensors.values()])
            values = dict(zip(tensors, stacked.tolist()))  # the tick's one sync
        for k, v in self.acc.items():
            if k not in tensors and v:
                values[k] = v[-1] if isinstance(v[-1], str) else float(np.mean(v))
        dt, n = time.perf_counter() - self.t0, self.steps
        self.acc, self.t0, self.steps = {}, time.perf_counter(), 0
        return values, dt, n


def eta_seconds(phase_time: dict[str, list[float]], step: int, pre: int, total: int
                ) -> tuple[float | None, float | None]:
    """(time left for the whole run, time left in the current stage) from each stage's own pace.

    Pre-training steps (an autoencoder) are several times faster than adversarial ones, so one
    average over both would promise too early an end. While the adversarial pace is unknown (still
    pre-training) the whole run's ETA is None and only the stage's is given.
    """
    def per_step(name: str) -> float | None:
        secs, n = phase_time[name]
        return secs / n if n else None

    left_pre, left_adv = max(0, pre - step), total - max(step, pre)
    t_pre, t_adv = per_step("pretrain"), per_step("adversarial")
    if step < pre:
        stage = left_pre * t_pre if t_pre is not None else None
        whole = stage + left_adv * t_adv if stage is not None and t_adv is not None else None
        return whole, stage
    whole = left_adv * t_adv if t_adv is not None else None
    return whole, whole


def uses_bf16(cfg: TrainConfig, method, device: torch.device) -> bool:
    """Whether the run's steps run under bf16 autocast (parameters, optimiser state and checkpoints stay
    float32): asked for, or precision "auto" on a CPU with native bf16 for a method measured in it."""
    if cfg.precision != "auto":
        return cfg.precision == "bf16"
    return device.type == "cpu" and bool(getattr(method, "bf16_measured", False)) and native_bf16(device)


def train(d: Path, resume: bool = False, should_stop: Callable[[], bool] = lambda: False,
          status: runs.StatusWriter | None = None, log: Callable[[str], None] = print) -> str:
    """Train the run in directory ``d``; returns the final state ('done' or 'stopped')."""
    cfg = TrainConfig.load(d / "config.json")
    status = status or runs.StatusWriter(d)
    sharing = runs.evaluating_alongside(d)
    # Half the cores while the evaluation computes beside us, then whatever the free cores allow (cores.py).
    threads = cores.ThreadPolicy(start=cores.sharing_start(sharing=sharing))
    device = resolve_device(cfg.device)
    status.update(state="running", pid=os.getpid(), phase="loading data", device=str(device))
    method, data = build(cfg, device)
    pre = int(method.pretrain_steps)
    total = pre + cfg.steps
    bf16 = uses_bf16(cfg, method, device)

    def autocast():
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16)
    labels, noise = grid_noise(cfg, method.noise_dim, data.num_classes, device)
    ckpt_path = d / "checkpoint.pt"
    step, pretrained = 0, False
    if resume and ckpt_path.exists():
        ck = load_checkpoint(ckpt_path)
        method.load_state_dict(ck["method"])
        step, pretrained = int(ck["step"]), bool(ck["pretrained"])
        data.gen.set_state(ck["rng"])
        torch.set_rng_state(ck["cpu_rng"])
        if "cuda_rng" in ck and device.type == "cuda":
            torch.cuda.set_rng_state(ck["cuda_rng"], device)
        log(f"resumed from step {step}")
    elif resume:
        log("no checkpoint yet: starting from the beginning")
    if resume and (dropped := drop_metrics_after(d, step)):
        log(f"dropped {dropped} metric record(s) logged after the checkpoint")
    if resume:
        drop_metrics_after(d, step, "quality.jsonl")
    status.update(step=step, total=total, precision="bf16" if bf16 else "fp32", counts=data.counts, threads=threads.threads,
                  classes=list(data.class_names), classes_modeled=list(method.classes_modeled), pretrain_steps=pre,
                  phase="pretrain" if step < pre else "adversarial")
    log(f"{cfg.method} on {cfg.dataset} ({len(data)} images, counts {data.counts}) on {device}"
        f"{' (bf16 autocast)' if bf16 else ''}: {pre} pretraining + {cfg.steps} adversarial steps"
        + (f"; {threads.describe()}" if device.type == "cpu" else ""))
    metrics_f = open(d / "metrics.jsonl", "a")
    tick = _Ticker()
    phase_time: dict[str, list[float]] = {"pretrain": [0.0, 0], "adversarial": [0.0, 0]}

    def do_tick(phase: str) -> None:
        nonlocal sharing
        values, dt, n = tick.read()
        rate = n / dt if dt > 0 else 0.0
        phase_time[phase][0] += dt
        phase_time[phase][1] += n
        eta, stage_eta = eta_seconds(phase_time, step, pre, total)
        rec = {"step": step, "time": time.time(), "phase": phase, **values,
               "steps_per_s": rate, "img_per_s": rate * cfg.batch_size}
        metrics_f.write(json.dumps(rec) + "\n")
        metrics_f.flush()
        check_losses(values, step, cfg.lr)  # before this step's checkpoint: the last one stays good
        status.update(step=step, phase=phase, steps_per_s=rate, img_per_s=rate * cfg.batch_size, eta_s=eta,
                      stage_eta_s=stage_eta)
        if sharing and runs.evaluation_idle(d):
            # The evaluation has trained its baselines and now only waits for us (or it ended): its cores are
            # idle, so take them at once rather than after two checks. One status read per tick.
            sharing = False
            threads.hint(threads.cores)
            log(f"the evaluation is waiting for this run: training on {threads.threads} threads from step {step}")
        elif (n := threads.check()) is not None:
            log(f"the free cores changed: training on {n} thread(s) from step {step}")
            status.update(threads=n)

    row_labels = [f"{name} ({n:,})" for name, n in zip(data.class_names, data.counts)]
    marked = minority_classes(data.counts)

    def grid() -> None:
        save_grid(sample_grid(method, labels, noise), d / "samples" / f"{step:06d}.png", cfg.samples_per_class,
                  row_labels, marked)
        if quality_due():
            snapshot()

    judge: list = []  # the convergence judge, built at the first snapshot (after the first grid is on disk)
    # The curve so far: a resumed run's rule reads the snapshots before the checkpoint too.
    earlier = convergence.read_curve(d) if resume else []
    trained_before = float(earlier[-1].get("train_s") or 0.0) if earlier else 0.0  # train_s counts every session
    curve: tuple[list[int], list[float]] = (
        [r.get("adv_step", r["step"] - pre) for r in earlier],
        [r["fid_mean"] if r.get("fid_mean") is not None else float("nan") for r in earlier])
    converged_at: list[int] = []
    cost = {"last": 0.0, "trained_at": 0.0}  # the last snapshot's seconds; training seconds when it was taken

    def quality_due() -> bool:
        """Every grid when on; when auto, only once the training since the last snapshot is 9x its cost."""
        if cfg.quality_curve == "off":
            return False
        trained = phase_time["adversarial"][0] - cost["trained_at"]
        return cfg.quality_curve == "on" or not judge or trained * convergence.MAX_SHARE >= cost["last"] * (1 - convergence.MAX_SHARE)

    def snapshot() -> None:
        """Per-class image quality of this grid's step (imbagan.convergence), one record in quality.jsonl."""
        from imbagan.judge import Judge  # torch-side judge, only for runs that measure their curve

        t0 = time.perf_counter()
        if not judge:  # the reference network may be trained here, once per dataset: not a snapshot's cost
            judge.append(Judge(cfg, device, method.classes_modeled, method.noise_dim, log))
        t = time.perf_counter()
        rec = judge[0](method).record(marked)  # float32, as the grids and the balanced set draw
        adv = step - pre
        curve[0].append(adv)
        curve[1].append(rec["fid_mean"] if rec["fid_mean"] is not None else float("nan"))
        conv = convergence.converged_step(*curve)
        rec.update(step=step, adv_step=adv, time=time.time(), train_s=trained_before + phase_time["adversarial"][0],
                   quality_s=time.perf_counter() - t, converged_step=conv,
                   candidate_step=convergence.candidate_step(*curve),
                   fid_ref=[judge[0].fid_ref.get(c) for c in range(data.num_classes)])
        cost.update(last=rec["quality_s"], trained_at=phase_time["adversarial"][0])
        tick.t0 += time.perf_counter() - t0  # the step rate, the ETA and train_s count training alone
        with open(d / "quality.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")
        if conv is not None and cfg.stop_when == "converged" and not converged_at:
            converged_at.append(conv)
            log(f"converged at adversarial step {conv} (quality curve confirmed at {adv}): stopping")

    if isinstance(should_stop, StopFlag):
        should_stop.in_loop = True
        if should_stop.requested:  # asked while loading: stop at once, nothing to save
            raise StopRequested()
    try:
        while step < total and not should_stop() and not converged_at:
            if step < pre:
                with autocast():
                    tick.add(method.pretrain_step())
                phase = "pretrain"
            else:
                if not pretrained:
                    method.finish_pretrain()  # e.g. BAGAN §4b: fit class latents, seed D from E
                    pretrained = True
                    grid()  # the generator as initialised, before adversarial training
                with autocast():
                    tick.add(method.train_step())
                phase = "adversarial"
            step += 1
            last = step == total
            if step % cfg.tick_every == 0 or step % cfg.checkpoint_every == 0 or last or should_stop():
                do_tick(phase)
            if step > pre and ((step - pre) % cfg.sample_every == 0 or last):
                grid()
            if step % cfg.checkpoint_every == 0 or last or should_stop() or converged_at:
                save_checkpoint(ckpt_path, method, step, pretrained, data.gen)
        if tick.steps:
            do_tick("pretrain" if step <= pre else "adversarial")
        if step > 0 and not (step % cfg.checkpoint_every == 0 or step == total):
            save_checkpoint(ckpt_path, method, step, pretrained, data.gen)
    finally:
        metrics_f.close()
    state = "done" if step >= total or converged_at else "stopped"
    status.update(state=state, step=step, phase=state, eta_s=0 if state == "done" else None,
                  **({"converged_step": converged_at[0]} if converged_at else {}))
    log(f"{state} at step {step}/{total}")
    return state


def worker_main(d: Path, resume: bool = False, foreground: bool = False) -> int:
    """Entry point of the background process: signals, status, errors written where the page reads them.

    The run's lock is taken first: a second worker on the same run exits with one line (RunBusy).
    ``foreground``: the CLI's own `train`; an error is one line on stderr, its traceback goes to log.txt.
    """
    d = Path(d)
    runs.hold_run_lock(d)
    status = runs.StatusWriter(d)
    flag = StopFlag()

    def on_term(signum, frame):
        flag.request()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    state = "running"
    try:
        status.update(state="running", pid=os.getpid(), error=None)
        status.start_heartbeat()
        state = train(d, resume=resume, should_stop=flag, status=status)
        flag.in_loop = False
        cfg = TrainConfig.load(d / "config.json")
        if state == "done" and cfg.evaluate_after and not runs.evaluated_final(d):
            # The evaluation is its own background process (eval/status.json), launched by runs: usually
            # with the training (runs.start), here when there was none (a foreground or resumed run). A
            # failure to launch it leaves the training done.
            try:
                runs.start_evaluation(d)
                print("evaluation launched in the background; see eval/log.txt")
            except (OSError, ValueError) as e:
                print(f"evaluation could not be launched: {e}")
        return 0
    except StopRequested:
        if state != "done":
            status.update(state="stopped")
        return 0
    except Exception as e:  # the page shows this sentence and the log's tail
        error = str(e) if isinstance(e, Diverged) else runs.error_text(e)
        status.update(state="failed", error=error)  # first: printing may fail too on a full disk
        try:
            if foreground:
                with open(d / "log.txt", "a") as f:
                    traceback.print_exc(file=f)
                print(f"error: {error} (the traceback is in {d / 'log.txt'})", file=sys.stderr)
            else:
                traceback.print_exc()  # stdout is the run's log.txt
        except OSError:
            pass
        return 1
    finally:
        status.close()


# --- balanced dataset -------------------------------------------------------------------------
