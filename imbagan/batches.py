"""The training set resident on the device, with batch sampling that never syncs with the host.

Images stay uint8 on the device (a quarter of float32's memory) and are converted to [-1, 1]
per batch. Every draw uses the run's one seeded ``torch.Generator``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda, then mps, then cpu; anything else as given (failing clearly if absent or malformed)."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise ValueError(f"{name!r} is not a device; use auto, cpu, mps, cuda or cuda:N.") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA GPU is visible; use device 'auto' or 'cpu'.")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device {name!r} does not exist: this machine has {torch.cuda.device_count()} CUDA GPU(s).")
    return dev


def native_bf16(device: torch.device) -> bool:
    """Whether bf16 arithmetic is native on ``device``: CUDA, or a CPU with AVX512-BF16 / AMX, where oneDNN's
    bf16 convolutions beat float32 (emulated bf16 is slower than float32)."""
    if device.type == "cuda":
        return True
    try:
        return device.type == "cpu" and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def to_float(x: Tensor) -> Tensor:
    """uint8 [0, 255] -> float [-1, 1]."""
    return x.float().div_(127.5).sub_(1.0)


def to_uint8(x: Tensor) -> Tensor:
    """float [-1, 1] -> uint8 [0, 255] (rounded, clamped)."""
    return x.detach().add(1.0).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)


class DeviceData:
    """An imbalanced training set on ``device``; labels are 0..num_classes-1."""

    def __init__(self, x: np.ndarray, y: np.ndarray, class_names: tuple[str, ...], device: torch.device,
                 generator: torch.Generator):
        if x.dtype != np.uint8 or x.ndim != 4:
            raise ValueError("DeviceData wants uint8 images shaped (N, C, H, W).")
        self.device, self.gen = device, generator
        self.class_names = tuple(class_names)
        self.num_classes = len(self.class_names)
        self.img_shape: tuple[int, int, int] = tuple(x.shape[1:])  # type: ignore[assignment]
        self.counts: list[int] = np.bincount(y, minlength=self.num_classes).astype(int).tolist()
        if min(self.counts) < 1:
            raise ValueError("Every class needs at least one training image.")
        self.x = torch.from_numpy(np.ascontiguousarray(x)).to(device)
        self.y = torch.from_numpy(y.astype(np.int64)).to(device)
        # Images sorted by class, with per-class offsets, so a batch of given labels is one gather.
        order = np.argsort(y, kind="stable")
        self._order = torch.from_numpy(order).to(device)
        self._offsets = torch.tensor(np.concatenate([[0], np.cumsum(self.counts)[:-1]]), device=device)
        self._counts = torch.tensor(self.counts, device=device)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def sample(self, n: int) -> tuple[Tensor, Tensor]:
        """n images drawn uniformly from the training set (so with its imbalance), and their labels."""
        idx = torch.randint(len(self), (n,), device=self.device, generator=self.gen)
        return to_float(self.x[idx]), self.y[idx]

    def sample_of(self, labels: Tensor) -> Tensor:
        """One random real image of each requested class (labels on the device)."""
        u = torch.rand(labels.shape[0], device=self.device, generator=self.gen)
        pos = self._offsets[labels] + (u * self._counts[labels]).long().clamp_max_(self._counts[labels] - 1)
        return to_float(self.x[self._order[pos]])

    def uniform_labels(self, n: int) -> Tensor:
        """n class labels drawn uniformly (BAGAN §4: fake images are uniform over classes)."""
        return torch.randint(self.num_classes, (n,), device=self.device, generator=self.gen)

    def randn(self, *shape: int) -> Tensor:
        return torch.randn(*shape, device=self.device, generator=self.gen)

    def chunks(self, size: int = 1024):
        """All images (float) and labels, in order, in chunks: for fitting encoders' statistics."""
        for i in range(0, len(self), size):
            yield to_float(self.x[i:i + size]), self.y[i:i + size]
