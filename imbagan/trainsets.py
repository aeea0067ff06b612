"""The training sets an evaluation compares, built from a run's imbalanced training set.

Each builder takes uint8 images (N, C, H, W) and labels 0..k-1 and returns a new set; nothing here
trains anything. The classic baselines use imbalanced-learn; the GAN top-up uses the run's generator.
"""

from __future__ import annotations

import numpy as np


def oversample(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random oversampling to the largest class (AGGAN's "Os+CN"); resamples indices, not pixels."""
    from imblearn.over_sampling import RandomOverSampler

    idx, y2 = RandomOverSampler(random_state=seed).fit_resample(np.arange(len(y))[:, None], y)
    return x[idx[:, 0]], y2


def mirror(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """BAGAN §5.2's baseline: add horizontally mirrored minority images until balanced or each is mirrored once."""
    rng = np.random.default_rng(seed)
    counts = np.bincount(y)
    xs, ys = [x], [y]
    for c, n in enumerate(counts):
        need = min(int(counts.max()) - int(n), int(n))
        if need > 0:
            take = rng.permutation(np.flatnonzero(y == c))[:need]
            xs.append(np.ascontiguousarray(x[take][..., ::-1]))
            ys.append(np.full(need, c, dtype=y.dtype))
    return np.concatenate(xs), np.concatenate(ys)


def smote(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """SMOTE on flattened pixels up to the largest class; returns the set and a note on what was done.

    k_neighbors = min(5, smallest grown class − 1) so tiny classes work; a class with a single
    image has no neighbour to interpolate with and is randomly oversampled instead.
    """
    from imblearn.over_sampling import SMOTE

    counts = np.bincount(y)
    target = int(counts.max())
    grow = [c for c, n in enumerate(counts) if 0 < n < target]
    singles = [c for c in grow if counts[c] == 1]
    interp = [c for c in grow if counts[c] >= 2]
    xs, ys, notes = [x], [y], []
    if interp:
        k = min(5, int(min(counts[c] for c in interp)) - 1)
        # SMOTE interpolates within a class only, so it sees the grown classes plus one image of the
        # largest (imblearn wants two classes); imblearn returns the inputs first, then the new images.
        sub = np.concatenate([np.flatnonzero(np.isin(y, interp)), np.flatnonzero(y == counts.argmax())[:1]])
        flat = x[sub].reshape(len(sub), -1).astype(np.float32)
        sm = SMOTE(sampling_strategy={int(c): target for c in interp}, k_neighbors=k, random_state=seed)
        xr, yr = sm.fit_resample(flat, y[sub])
        xs.append(np.clip(np.rint(xr[len(sub):]), 0, 255).astype(np.uint8).reshape(-1, *x.shape[1:]))
        ys.append(yr[len(sub):].astype(y.dtype))
        notes.append(f"k_neighbors={k}")
    for c in singles:
        xs.append(np.repeat(x[y == c], target - 1, axis=0))
        ys.append(np.full(target - 1, c, dtype=y.dtype))
    if singles:
        notes.append(f"class(es) {singles} have one image: randomly oversampled instead of SMOTE")
    return np.concatenate(xs), np.concatenate(ys), "; ".join(notes)


def class_weights(y: np.ndarray, num_classes: int) -> np.ndarray:
    """scikit-learn's "balanced" weights n / (k * n_c), for the class-weighted loss."""
    from sklearn.utils.class_weight import compute_class_weight

    return compute_class_weight("balanced", classes=np.arange(num_classes), y=y)


def gan_topup(x: np.ndarray, y: np.ndarray, pool: dict[int, np.ndarray], ratio: float
              ) -> tuple[np.ndarray, np.ndarray, int]:
    """The imbalanced set plus generated images filling ``ratio`` of each modelled class's gap (BAGAN §5.2).

    Returns the set and the number of generated images added (they follow the real ones).
    """
    counts = np.bincount(y, minlength=max(pool, default=0) + 1)
    add = {c: int(round(ratio * (counts.max() - counts[c]))) for c in pool}
    xs = [x] + [pool[c][:n] for c, n in add.items()]
    ys = [y] + [np.full(n, c, dtype=y.dtype) for c, n in add.items()]
    return np.concatenate(xs), np.concatenate(ys), sum(add.values())


# --- standard augmentation (the "augment" condition) ---------------------------------------------
# Datasets whose classes survive a horizontal flip. Digits never do (a mirrored 2 or 7 is no digit);
# shoes, shirts and bags do, and so do CIFAR-10's objects.
HFLIP_DATASETS = ("fashion_mnist", "cifar10")


def shift_and_flip(max_shift: int, flip: bool):
    """An augmentation for classifier batches: a random translation of up to ``max_shift`` pixels in
    each direction (edges replicated), plus a horizontal flip with probability ½ when ``flip``.

    Returns ``augment(x, gen)`` for float batches (B, C, H, W) on any device, drawing from ``gen``.
    """
    import torch
    import torch.nn.functional as F

    def augment(x, gen):
        b, _, h, w = x.shape
        p = max_shift
        if p > 0:
            padded = F.pad(x, (p, p, p, p), mode="replicate")
            sy = torch.randint(0, 2 * p + 1, (b,), device=x.device, generator=gen)
            sx = torch.randint(0, 2 * p + 1, (b,), device=x.device, generator=gen)
            iy = (torch.arange(h, device=x.device)[None, :] + sy[:, None])[:, :, None]  # (B, H, 1)
            ix = (torch.arange(w, device=x.device)[None, :] + sx[:, None])[:, None, :]  # (B, 1, W)
            x = padded[torch.arange(b, device=x.device)[:, None, None], :, iy, ix].permute(0, 3, 1, 2)
        if flip:
            mirror = torch.rand(b, device=x.device, generator=gen) < 0.5
            x = torch.where(mirror[:, None, None, None], x.flip(-1), x)
        return x

    return augment


def augmentation_for(dataset: str, side: int):
    """The ``augment`` condition's augmentation: shifts of 1/8 of the side (2 px at 16 px, 4 px at 32 px),
    flips only where HFLIP_DATASETS allows them."""
    return shift_and_flip(max(1, side // 8), dataset in HFLIP_DATASETS)
