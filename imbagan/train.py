"""The training loop: data on the device, ticks, sample grids, checkpoints, stop requests.

The loop owns everything but the method's own update: it draws nothing itself inside a step, keeps
per-step metrics as device tensors and reads them to the host once per tick.
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
import traceback
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torchvision.utils import make_grid

from imbagan import data as datasets
from imbagan import imbalance as imb
from imbagan import runs
from imbagan.batches import DeviceData, to_uint8
from imbagan.config import TrainConfig, resolve_device
from imbagan.methods import METHODS


class StopRequested(Exception):
    """Raised by the SIGTERM handler while the worker is not yet inside the loop."""


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


def load_split(cfg: TrainConfig, split: str = "train") -> tuple[datasets.ImageSet, tuple[int, ...]]:
    """The run's data: the imbalanced training set, or the untouched test set, with labels 0..k-1.

    Returns the set and the original class ids kept (all, except for the binary profile).
    """
    full_train = datasets.load(cfg.dataset, "train", root=cfg.data_root, image_size=cfg.image_size,
                               channels=cfg.channels)
    channels = full_train.shape[0]
    idx, kept = imb.select(cfg.imbalance_spec(), full_train.y, cfg.seed, channels=channels)
    if split == "train":
        x, y = full_train.x[idx], imb.remap(full_train.y[idx], kept)
    else:
        test = datasets.load(cfg.dataset, split, root=cfg.data_root, image_size=cfg.image_size,
                             channels=cfg.channels)
        t = imb.test_indices(test.y, kept)
        x, y = test.x[t], imb.remap(test.y[t], kept)
    names = tuple(full_train.classes[c] for c in kept)
    return datasets.ImageSet(x=x, y=y, classes=names), kept


def imbalance_preview(cfg: TrainConfig) -> tuple[list[str], list[int], list[int]]:
    """(class names, images available per class, images kept per class) for the config's imbalance."""
    y, classes = datasets.load_labels(cfg.dataset, "train", root=cfg.data_root)
    available = np.bincount(y, minlength=len(classes)).astype(int).tolist()
    channels = cfg.channels or datasets.DATASETS[cfg.dataset].channels
    kept = imb.target_counts(cfg.imbalance_spec(), available, channels=channels)
    return list(classes), available, list(kept)


def build(cfg: TrainConfig, device: torch.device | None = None):
    """The method and its device-resident data, seeded: the same config gives the same start."""
    device = device or resolve_device(cfg.device)
    train_set, _ = load_split(cfg, "train")
    torch.manual_seed(cfg.seed)  # network initialisation
    gen = torch.Generator(device=device)
    gen.manual_seed(cfg.seed)
    data = DeviceData(train_set.x, train_set.y, train_set.classes, device, gen)
    return METHODS[cfg.method](cfg, data), data


def grid_noise(cfg: TrainConfig, noise_dim: int, num_classes: int, device: torch.device):
    """Fixed labels and noise for sample grids, from their own seed so frames compare across steps."""
    g = torch.Generator().manual_seed(cfg.seed + 7919)
    k = cfg.samples_per_class
    noise = torch.randn(k, noise_dim, generator=g).repeat(num_classes, 1)  # same noise on every row
    labels = torch.arange(num_classes).repeat_interleave(k)
    return labels.to(device), noise.to(device)


@torch.no_grad()
def sample_grid(method, labels: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Images for a grid, one row per class; rows of classes the method does not model are grey."""
    out = torch.zeros(labels.shape[0], *method.data.img_shape, device=labels.device)
    modeled = torch.zeros(method.data.num_classes, dtype=torch.bool, device=labels.device)
    modeled[list(method.classes_modeled)] = True
    pick = modeled[labels]
    if bool(pick.all()):
        return method.generate(labels, noise)
    out[pick] = method.generate(labels[pick], noise[pick])
    return out


def minority_classes(counts: list[int]) -> list[int]:
    """Classes with fewer than half the largest class's images: the rows a grid marks with a star."""
    top = max(counts)
    return [c for c, n in enumerate(counts) if n < top / 2]


def save_grid(images: torch.Tensor, path: Path, per_row: int, labels: list[str] | None = None,
              marked: list[int] | None = None) -> None:
    """One composite PNG: upscaled so small images stay legible, a label per row, written atomically."""
    grid = make_grid(images.detach().float().cpu().add(1).div(2).clamp(0, 1), nrow=per_row, padding=1, pad_value=1.0)
    side = images.shape[-1]
    scale = max(1, 64 // side)  # 16 px -> x4, 32 px -> x2
    pic = Image.fromarray(grid.mul(255).round().byte().permute(1, 2, 0).numpy().squeeze())
    pic = pic.convert("RGB").resize((pic.width * scale, pic.height * scale), Image.NEAREST)
    if labels:
        font = ImageFont.load_default(size=max(11, min(18, (side + 1) * scale // 3)))
        dot = max(4, font.size // 3)  # a drawn marker: the bundled font has no star glyph
        margin = 2 * dot + 12 + max(int(font.getlength(t)) for t in labels) + 12
        canvas = Image.new("RGB", (pic.width + margin, pic.height), "white")
        canvas.paste(pic, (margin, 0))
        draw = ImageDraw.Draw(canvas)
        row_h = (side + 1) * scale
        for i, text in enumerate(labels):
            mid, star = i * row_h + row_h // 2, marked is not None and i in marked
            if star:
                draw.regular_polygon((6 + dot, mid, dot), 5, rotation=90, fill=(200, 30, 30))
            draw.text((2 * dot + 12, mid), text, anchor="lm", font=font, fill=(200, 30, 30) if star else (40, 40, 40))
        pic = canvas
    tmp = path.with_name(f".{path.name}.tmp")
    pic.save(tmp, format="PNG")
    os.replace(tmp, path)


def save_checkpoint(path: Path, method, step: int, pretrained: bool, gen: torch.Generator) -> None:
    state = {"method": method.state_dict(), "step": step, "pretrained": pretrained,
             "rng": gen.get_state(), "cpu_rng": torch.get_rng_state()}
    if gen.device.type == "cuda":  # dropout draws from the device's global generator
        state["cuda_rng"] = torch.cuda.get_rng_state(gen.device)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, device: torch.device | None = None) -> dict:
    """Loaded on the CPU: RNG states must stay there, and modules/optimisers copy onto their device.

    ``device`` is accepted for symmetry and ignored.
    """
    return torch.load(path, map_location="cpu", weights_only=True)


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


def train(d: Path, resume: bool = False, should_stop: Callable[[], bool] = lambda: False,
          status: runs.StatusWriter | None = None, log: Callable[[str], None] = print) -> str:
    """Train the run in directory ``d``; returns the final state ('done' or 'stopped')."""
    cfg = TrainConfig.load(d / "config.json")
    status = status or runs.StatusWriter(d)
    if os.environ.get("IMBAGAN_THREADS"):  # CPU intra-op threads; small nets run faster on fewer
        torch.set_num_threads(max(1, int(os.environ["IMBAGAN_THREADS"])))
    device = resolve_device(cfg.device)
    status.update(state="running", pid=os.getpid(), phase="loading data", device=str(device))
    method, data = build(cfg, device)
    pre = int(method.pretrain_steps)
    total = pre + cfg.steps
    labels, noise = grid_noise(cfg, method.noise_dim, data.num_classes, device)
    ckpt_path = d / "checkpoint.pt"
    step, pretrained = 0, False
    if resume and ckpt_path.exists():
        ck = load_checkpoint(ckpt_path, device)
        method.load_state_dict(ck["method"])
        step, pretrained = int(ck["step"]), bool(ck["pretrained"])
        data.gen.set_state(ck["rng"])
        torch.set_rng_state(ck["cpu_rng"])
        if "cuda_rng" in ck and device.type == "cuda":
            torch.cuda.set_rng_state(ck["cuda_rng"], device)
        log(f"resumed from step {step}")
    elif resume:
        log("no checkpoint yet: starting from the beginning")
    status.update(step=step, total=total, counts=data.counts, classes=list(data.class_names),
                  classes_modeled=list(method.classes_modeled), pretrain_steps=pre,
                  phase="pretrain" if step < pre else "adversarial")
    log(f"{cfg.method} on {cfg.dataset} ({len(data)} images, counts {data.counts}) on {device}: "
        f"{pre} pretraining + {cfg.steps} adversarial steps")
    metrics_f = open(d / "metrics.jsonl", "a")
    tick, t_start, start_step = _Ticker(), time.perf_counter(), step

    def do_tick(phase: str) -> None:
        values, dt, n = tick.read()
        rate = n / dt if dt > 0 else 0.0
        done_steps = step - start_step
        elapsed = time.perf_counter() - t_start
        eta = (total - step) * elapsed / done_steps if done_steps else None
        rec = {"step": step, "time": time.time(), "phase": phase, **values,
               "steps_per_s": rate, "img_per_s": rate * cfg.batch_size}
        metrics_f.write(json.dumps(rec) + "\n")
        metrics_f.flush()
        status.update(step=step, phase=phase, steps_per_s=rate, img_per_s=rate * cfg.batch_size, eta_s=eta)

    row_labels = [f"{name} ({n:,})" for name, n in zip(data.class_names, data.counts)]
    marked = minority_classes(data.counts)

    def grid() -> None:
        save_grid(sample_grid(method, labels, noise), d / "samples" / f"{step:06d}.png", cfg.samples_per_class,
                  row_labels, marked)

    if isinstance(should_stop, StopFlag):
        should_stop.in_loop = True
        if should_stop.requested:  # asked while loading: stop at once, nothing to save
            raise StopRequested()
    try:
        while step < total and not should_stop():
            if step < pre:
                tick.add(method.pretrain_step())
                phase = "pretrain"
            else:
                if not pretrained:
                    method.finish_pretrain()  # e.g. BAGAN §4b: fit class latents, seed D from E
                    pretrained = True
                    grid()  # the generator as initialised, before adversarial training
                tick.add(method.train_step())
                phase = "adversarial"
            step += 1
            last = step == total
            if step % cfg.tick_every == 0 or step % cfg.checkpoint_every == 0 or last or should_stop():
                do_tick(phase)
            if step > pre and ((step - pre) % cfg.sample_every == 0 or last):
                grid()
            if step % cfg.checkpoint_every == 0 or last or should_stop():
                save_checkpoint(ckpt_path, method, step, pretrained, data.gen)
        if tick.steps:
            do_tick("pretrain" if step <= pre else "adversarial")
        if step > 0 and not (step % cfg.checkpoint_every == 0 or step == total):
            save_checkpoint(ckpt_path, method, step, pretrained, data.gen)
    finally:
        metrics_f.close()
    state = "done" if step >= total else "stopped"
    status.update(state=state, step=step, phase=state, eta_s=0 if state == "done" else None)
    log(f"{state} at step {step}/{total}")
    return state


def worker_main(d: Path, resume: bool = False) -> int:
    """Entry point of the background process: signals, status, errors written where the page reads them."""
    d = Path(d)
    status = runs.StatusWriter(d)
    flag = StopFlag()

    def on_term(signum, frame):
        flag.request()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    status.update(state="running", pid=os.getpid(), error=None)
    status.start_heartbeat()
    state = "running"
    try:
        state = train(d, resume=resume, should_stop=flag, status=status)
        flag.in_loop = False
        cfg = TrainConfig.load(d / "config.json")
        if state == "done" and cfg.evaluate_after:
            try:
                from imbagan import evaluate
            except ImportError:
                print("evaluation is not available in this version; skipped")
            else:
                status.update(phase="evaluating")
                try:
                    evaluate.evaluate_run(d, log=print)
                except Exception as e:  # the training stays done; eval/status.json holds the error
                    print(f"evaluation failed: {type(e).__name__}: {e}")
                status.update(phase="done")
        return 0
    except StopRequested:
        if state != "done":  # a stop during the evaluation leaves the training done
            status.update(state="stopped")
        else:
            status.update(phase="evaluation stopped")
        return 0
    except Exception as e:  # the page shows this sentence and the log's tail
        traceback.print_exc()
        msg = str(e) or type(e).__name__
        status.update(state="failed", error=f"{type(e).__name__}: {msg}")
        return 1
    finally:
        status.close()


# --- balanced dataset -------------------------------------------------------------------------
def balanced_dataset(d: Path, out: Path | None = None, chunk: int = 512) -> Path:
    """Top every class up to the largest with generated images; saves x, y, generated, classes as .npz."""
    d = Path(d)
    cfg = TrainConfig.load(d / "config.json")
    ckpt = d / "checkpoint.pt"
    if not ckpt.exists():
        raise FileNotFoundError(f"Run {d.name} has no checkpoint yet: train it first.")
    device = resolve_device(cfg.device)
    method, data = build(cfg, device)
    state = load_checkpoint(ckpt, device)
    method.load_state_dict(state["method"])
    if not state["pretrained"]:
        raise ValueError(f"Run {d.name} stopped before adversarial training began; nothing to generate with.")
    gen = torch.Generator(device=device).manual_seed(cfg.seed + 104729)
    target = max(data.counts)
    xs, ys = [data.x.cpu().numpy()], [data.y.cpu().numpy()]
    n_gen = 0
    for c in method.classes_modeled:
        need = target - data.counts[c]
        for i in range(0, need, chunk):
            n = min(chunk, need - i)
            y = torch.full((n,), c, dtype=torch.long, device=device)
            img = method.generate(y, torch.randn(n, method.noise_dim, device=device, generator=gen))
            xs.append(to_uint8(img).cpu().numpy())
            ys.append(np.full(n, c, dtype=np.int64))
        n_gen += max(0, need)
    x, y = np.concatenate(xs), np.concatenate(ys)
    generated = np.zeros(len(y), dtype=bool)
    generated[len(data):] = True
    out = Path(out) if out else d / "balanced.npz"
    tmp = out.with_name(f".{out.stem}.tmp.npz")
    np.savez_compressed(tmp, x=x, y=y, generated=generated, classes=np.array(data.class_names))
    os.replace(tmp, out)
    return out


def balanced_zip(npz: Path, out: Path | None = None) -> Path:
    """The balanced set as a .zip of PNGs, one folder per class (ImageFolder layout); generated files say so."""
    import io
    import zipfile

    npz = Path(npz)
    out = Path(out) if out else npz.with_suffix(".zip")
    tmp = out.with_name(f".{out.name}.tmp")
    with np.load(npz) as z, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
        names = [str(c) for c in z["classes"]]
        for i, (img, label, gen) in enumerate(zip(z["x"], z["y"], z["generated"])):
            buf = io.BytesIO()
            Image.fromarray(img.transpose(1, 2, 0).squeeze(-1) if img.shape[0] == 1 else img.transpose(1, 2, 0)).save(
                buf, format="PNG")
            safe = "".join(ch if ch.isalnum() or ch in "-_ " else "_" for ch in names[label]).strip() or str(label)
            zf.writestr(f"{safe}/{'gen' if gen else 'real'}_{i:06d}.png", buf.getvalue())
    os.replace(tmp, out)
    return out


def eta_text(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "—"
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
