"""Sample grids: fixed noise, one row per class, class names and counts drawn into the PNG itself."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont
from torchvision.utils import make_grid


def grid_noise(cfg, noise_dim: int, num_classes: int, device: torch.device):
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
