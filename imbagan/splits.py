"""A run's data: its imbalanced training split, its untouched test split, the full set, and the preview.

This sits beside ``imbagan.data`` (which loads whole datasets) and ``imbagan.imbalance`` (which picks
the indices); it joins the two for a run's config.
"""

from __future__ import annotations

import numpy as np

from imbagan import data as datasets
from imbagan import imbalance as imb


def load_split(cfg, split: str = "train") -> tuple[datasets.ImageSet, tuple[int, ...]]:
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


def imbalance_preview(cfg) -> tuple[list[str], list[int], list[int]]:
    """(class names, images available per class, images kept per class) for the config's imbalance."""
    y, classes = datasets.load_labels(cfg.dataset, "train", root=cfg.data_root)
    available = np.bincount(y, minlength=len(classes)).astype(int).tolist()
    channels = cfg.channels or datasets.DATASETS[cfg.dataset].channels
    kept = imb.target_counts(cfg.imbalance_spec(), available, channels=channels)
    return list(classes), available, list(kept)



def full_set(run_cfg, kept: tuple[int, ...]) -> datasets.ImageSet:
    """The run's dataset without imbalance, restricted to the run's classes (binary keeps its two)."""
    full, kept_full = load_split(run_cfg.replace(imbalance="none"), "train")
    lut = np.full(max(max(kept_full), max(kept)) + 1, -1, dtype=np.int64)
    lut[list(kept)] = np.arange(len(kept))
    y = lut[np.asarray(kept_full)[full.y]]
    keep = y >= 0
    names = tuple(full.classes[i] for i, c in enumerate(kept_full) if c in kept)
    return datasets.ImageSet(full.x[keep], y[keep], names)
