"""ImageSet: the one type every loader returns, images (uint8, N x C x H x W) with labels and class names.

Its own module so that the dataset registry (data.py) and the image-folder reader (folders.py) share it
without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ImageSet:
    """Images ``x`` (uint8, N x C x H x W), labels ``y`` (int64, N) and class names."""

    x: np.ndarray
    y: np.ndarray
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.x, np.ndarray) or self.x.dtype != np.uint8 or self.x.ndim != 4:
            raise ValueError("ImageSet.x must be a uint8 array of shape (N, C, H, W).")
        y = np.asarray(self.y)
        if y.ndim != 1 or len(y) != len(self.x) or (y.size and y.dtype.kind not in "iu"):
            raise ValueError(
                f"ImageSet.y must be one integer label per image; got shape {y.shape} "
                f"for {len(self.x)} images."
            )
        object.__setattr__(self, "y", y.astype(np.int64, copy=False))
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))
        if y.size and (y.min() < 0 or y.max() >= len(self.classes)):
            raise ValueError(
                f"ImageSet labels must lie in 0..{len(self.classes) - 1} "
                f"(one per class name); found {int(y.min())}..{int(y.max())}."
            )

    def __len__(self) -> int:
        return len(self.y)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Shape of one image, (C, H, W)."""
        _, c, h, w = self.x.shape
        return (c, h, w)

    def counts(self) -> list[int]:
        """Number of images per class, indexed like ``classes``."""
        return np.bincount(self.y, minlength=len(self.classes)).tolist()
