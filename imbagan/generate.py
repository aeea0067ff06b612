"""Drawing from a trained run: the balanced dataset (and its .zip) and the evaluation's pool of images.

Both load the run's checkpoint into its method and draw ``n`` images of a class in chunks from a
generator seeded with ``seed + 104729``, so the same run gives the same images wherever they are asked.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from imbagan.batches import resolve_device, to_uint8
from imbagan.config import TrainConfig

NOISE_SEED_OFFSET = 104729  # generated images never reuse the training noise stream
CHUNK = 512


class NoGenerator(Exception):
    """The run has nothing to draw with yet (no checkpoint, or stopped before adversarial training)."""


def load_trained(run_dir: Path, device: torch.device | None = None):
    """(config, method with the checkpoint's weights, device data) of a run; raises NoGenerator when
    there is nothing to draw with, ValueError when the checkpoint cannot be read."""
    from imbagan.train import build, load_checkpoint

    d = Path(run_dir)
    cfg = TrainConfig.load(d / "config.json")
    ckpt = d / "checkpoint.pt"
    if not ckpt.exists():
        raise NoGenerator("the run has no checkpoint yet: train it first")
    device = device or resolve_device(cfg.device)
    state = load_checkpoint(ckpt)
    if not state.get("pretrained"):
        raise NoGenerator("the run stopped before adversarial training began")
    method, data = build(cfg, device)
    try:
        method.load_state_dict(state["method"])
    except (RuntimeError, KeyError, ValueError) as e:
        raise ValueError(f"The checkpoint of run {d.name} does not fit its method ({type(e).__name__}: "
                         f"{str(e).splitlines()[0][:200]}).") from None
    return cfg, method, data


def draw(method, c: int, n: int, gen: torch.Generator, chunk: int = CHUNK) -> torch.Tensor:
    """``n`` uint8 images (n, C, H, W) of class ``c`` on the method's device."""
    device = method.data.device
    parts = []
    for i in range(0, n, chunk):
        m = min(chunk, n - i)
        y = torch.full((m,), c, dtype=torch.long, device=device)
        parts.append(to_uint8(method.generate(y, torch.randn(m, method.noise_dim, device=device, generator=gen))))
    return torch.cat(parts) if parts else torch.empty(0, *method.data.img_shape, dtype=torch.uint8, device=device)


def noise_generator(seed: int, device: torch.device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed + NOISE_SEED_OFFSET)


def balanced_dataset(d: Path, out: Path | None = None) -> Path:
    """Top every class up to the largest with generated images; saves x, y, generated, classes as .npz."""
    d = Path(d)
    try:
        cfg, method, data = load_trained(d)
    except NoGenerator as e:
        raise ValueError(f"Run {d.name}: {e}.") from None
    gen = noise_generator(cfg.seed, data.device)
    target = max(data.counts)
    xs, ys = [data.x.cpu().numpy()], [data.y.cpu().numpy()]
    for c in method.classes_modeled:
        need = max(0, target - data.counts[c])
        xs.append(draw(method, c, need, gen).cpu().numpy())
        ys.append(np.full(need, c, dtype=np.int64))
    x, y = np.concatenate(xs), np.concatenate(ys)
    generated = np.zeros(len(y), dtype=bool)
    generated[len(data):] = True
    out = Path(out) if out else d / "balanced.npz"
    tmp = out.with_name(f".{out.stem}.tmp.npz")
    np.savez_compressed(tmp, x=x, y=y, generated=generated, classes=np.array(data.class_names))
    os.replace(tmp, out)
    return out


def generate_pool(run_dir: Path, counts: list[int], extra: int, seed: int, device,
                  log: Callable[[str], None]) -> tuple[dict[int, np.ndarray], str | None]:
    """Generated images per modelled class: enough to fill its gap to the largest class, and at least ``extra``.

    Returns ({class: uint8 (n, C, H, W)}, None), or ({}, why there are none). Only the classes the
    method models (``classes_modeled``) are generated, so only they are topped up.
    """
    try:
        cfg, method, _ = load_trained(Path(run_dir), device)
    except NoGenerator as e:
        return {}, str(e)
    gen = noise_generator(seed, device)
    target, pool = max(counts), {}
    for c in method.classes_modeled:
        pool[int(c)] = draw(method, c, max(target - counts[c], extra, 1), gen).cpu().numpy()
    log(f"generated {sum(len(v) for v in pool.values())} images of classes {list(pool)} with the run's {cfg.method}")
    return pool, None


def balanced_zip(npz: Path, out: Path | None = None) -> Path:
    """The balanced set as a .zip of PNGs, one folder per class (ImageFolder layout); generated files say so."""
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
