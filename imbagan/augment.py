"""DiffAugment: differentiable augmentation of every image the discriminator sees (Zhao et al. 2020,
"Differentiable Augmentation for Data-Efficient GAN Training", arXiv:2006.10738).

D is shown T(x) for real images and T(G(z)) for generated ones, with the same random family T in D's
update and in G's; T is differentiable, so G's gradient flows back through it. D then cannot memorise
a few dozen real images, and G is not pushed to reproduce the augmentation (it applies to both sides).

The policy "color,translation,cutout" is the paper's choice for small data (§4, DiffAugment's code):
  color        brightness + U(-0.5, 0.5); saturation x U(0, 2) around the pixel's channel mean;
               contrast x U(0.5, 1.5) around the image mean (one draw per image each)
  translation  a shift of up to 1/8 of the side in each direction, whole pixels, zero padding
  cutout       a square of half the side, centred uniformly on the image, set to zero
Images are in [-1, 1], so "zero" is mid-grey, as in the paper's code. On grey images saturation
changes nothing (each pixel equals its channel mean) but still draws its numbers.

Every draw comes from the ``torch.Generator`` passed in (the run's one generator, so a resumed run
repeats an uninterrupted one), on the images' device; nothing reads a value back to the host.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

TRANSLATION_RATIO = 1 / 8  # DiffAugment: ±1/8 of the side
CUTOUT_RATIO = 1 / 2  # DiffAugment: a square of half the side


def _uniform(x: Tensor, gen: torch.Generator | None) -> Tensor:
    """One U[0, 1) number per image, shaped to broadcast over (C, H, W)."""
    return torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype, generator=gen)


def color(x: Tensor, gen: torch.Generator | None = None) -> Tensor:
    """Brightness, then saturation, then contrast, each with its own per-image factor."""
    x = x + (_uniform(x, gen) - 0.5)
    mean_c = x.mean(dim=1, keepdim=True)
    x = (x - mean_c) * (_uniform(x, gen) * 2) + mean_c
    mean_img = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean_img) * (_uniform(x, gen) + 0.5) + mean_img


def translation(x: Tensor, gen: torch.Generator | None = None, ratio: float = TRANSLATION_RATIO) -> Tensor:
    """Shift each image by whole pixels, up to ``ratio`` of its side in each direction; the gap is zero."""
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    if sh == 0 and sw == 0:
        return x
    dy = torch.randint(-sh, sh + 1, (n, 1), device=x.device, generator=gen)
    dx = torch.randint(-sw, sw + 1, (n, 1), device=x.device, generator=gen)
    # Output pixel (i, j) reads input pixel (i - dy, j - dx) of the zero-padded image: a gather, so
    # the gradient reaches the input pixels that were kept.
    padded = torch.nn.functional.pad(x, (sw, sw, sh, sh))
    rows = torch.arange(h, device=x.device) + sh - dy  # (n, h), indices into the padded height
    cols = torch.arange(w, device=x.device) + sw - dx  # (n, w)
    batch = torch.arange(n, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # (n, h, w, c)
    return out.permute(0, 3, 1, 2)


def cutout(x: Tensor, gen: torch.Generator | None = None, ratio: float = CUTOUT_RATIO) -> Tensor:
    """Zero a square of ``ratio`` of the side, its centre uniform over the image (clipped at the borders)."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h, (n, 1), device=x.device, generator=gen)
    cx = torch.randint(0, w, (n, 1), device=x.device, generator=gen)
    top, left = cy - ch // 2, cx - cw // 2
    r, c = torch.arange(h, device=x.device), torch.arange(w, device=x.device)
    in_rows = (r >= top) & (r < top + ch)  # (n, h)
    in_cols = (c >= left) & (c < left + cw)  # (n, w)
    keep = ~(in_rows[:, :, None] & in_cols[:, None, :])
    return x * keep[:, None].to(x.dtype)


_OPS: dict[str, Callable[[Tensor, torch.Generator | None], Tensor]] = {
    "color": color, "translation": translation, "cutout": cutout}


def diff_augment(x: Tensor, policy: str, gen: torch.Generator | None = None) -> Tensor:
    """T(x) for a comma-separated ``policy`` (applied in the order written); "none" returns ``x`` itself."""
    if policy == "none":
        return x
    for name in policy.split(","):
        x = _OPS[name](x, gen)
    return x


def make(policy: str, gen: torch.Generator | None) -> Callable[[Tensor], Tensor]:
    """The augmentation a method applies before D: ``x -> T(x)`` drawing from ``gen``, or the identity
    for "none". The policies offered to users are ``imbagan.config.DIFFAUGMENT_POLICIES``."""
    unknown = [name for name in policy.split(",") if name not in _OPS] if policy != "none" else []
    if unknown:
        raise ValueError(f"Unknown DiffAugment transform {', '.join(unknown)}: use none or a comma-separated "
                         f"list of {', '.join(_OPS)}.")
    if policy == "none":
        return lambda x: x
    return lambda x: diff_augment(x, policy, gen)
