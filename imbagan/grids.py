"""Sample grids: fixed noise, one row per class, class names and counts drawn into the PNG itself.

:func:`compose_png` lays out uint8 images with numpy and PIL only, so the app's process can draw a
grid of real images without importing torch; the tensor helpers import torch when they are called.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def grid_noise(cfg, noise_dim: int, num_classes: int, device):
    """Fixed labels and noise for sample grids, from their own seed so frames compare across steps."""
    import torch

    g = torch.Generator().manual_seed(cfg.seed + 7919)
    k = cfg.samples_per_class
    noise = torch.randn(k, noise_dim, generator=g).repeat(num_classes, 1)  # same noise on every row
    labels = torch.arange(num_classes).repeat_interleave(k)
    return labels.to(device), noise.to(device)


def sample_grid(method, labels, noise):
    """Images for a grid, one row per class; rows of classes the method does not model are grey."""
    import torch

    with torch.no_grad():
        # Rows of classes not modelled are hatched (light diagonal stripes on white), never the flat grey an
        # untrained generator draws for the classes it does model (issue 23, 10).
        c, h, w = method.data.img_shape
        ii, jj = torch.meshgrid(torch.arange(h, device=labels.device), torch.arange(w, device=labels.device),
                                indexing="ij")
        hatch = torch.where((ii + jj) % 4 == 0, 0.5, 1.0).expand(c, h, w)
        out = hatch.expand(labels.shape[0], c, h, w).clone()
        modeled = torch.zeros(method.data.num_classes, dtype=torch.bool, device=labels.device)
        modeled[list(method.classes_modeled)] = True
        pick = modeled[labels]
        if bool(pick.all()):
            return method.generate(labels, noise)
        out[pick] = method.generate(labels[pick], noise[pick])
        return out


def tile(images: np.ndarray, per_row: int, padding: int = 1, pad_value: int = 255) -> np.ndarray:
    """(N, C, H, W) uint8 -> one (H', W', 3) uint8 picture, ``per_row`` images a row, white gaps.

    The same layout as torchvision's ``make_grid(nrow=per_row, padding=1, pad_value=1.0)``.
    """
    x = np.asarray(images)
    if x.dtype != np.uint8 or x.ndim != 4:
        raise ValueError(f"tile expects (N, C, H, W) uint8 images, got {x.dtype} {x.shape}.")
    if x.shape[1] == 1:
        x = np.repeat(x, 3, axis=1)
    n, c, h, w = x.shape
    cols = min(per_row, n)
    rows = -(-n // per_row)
    out = np.full((rows * (h + padding) + padding, cols * (w + padding) + padding, c), pad_value, dtype=np.uint8)
    for i in range(n):
        r, k = divmod(i, per_row)
        top, left = r * (h + padding) + padding, k * (w + padding) + padding
        out[top:top + h, left:left + w] = x[i].transpose(1, 2, 0)
    return out


def compose_png(images: np.ndarray, path: Path, per_row: int, labels: list[str] | None = None,
                marked: list[int] | None = None) -> None:
    """One composite PNG of uint8 images: upscaled so small images stay legible, a label per row
    (``marked`` rows in red with a drawn star), written atomically."""
    side = images.shape[-1]
    scale = max(1, 64 // side)  # 16 px -> x4, 32 px -> x2
    pic = Image.fromarray(tile(images, per_row))
    pic = pic.resize((pic.width * scale, pic.height * scale), Image.NEAREST)
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
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    pic.save(tmp, format="PNG")
    os.replace(tmp, path)


def to_uint8(images) -> np.ndarray:
    """A (N, C, H, W) tensor in [-1, 1] as uint8 pixels."""
    return images.detach().float().cpu().add(1).div(2).clamp(0, 1).mul(255).round().byte().numpy()


def save_grid(images, path: Path, per_row: int, labels: list[str] | None = None,
              marked: list[int] | None = None) -> None:
    """:func:`compose_png` for generated images: a (N, C, H, W) tensor in [-1, 1]."""
    compose_png(to_uint8(images), path, per_row, labels, marked)
