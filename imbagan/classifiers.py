"""The classifiers the evaluation trains: a small CNN and torchvision's ResNet-18 for small images.

Every condition of an evaluation trains the same architecture from the same initial weights, with
the same number of optimiser steps and the same batch order seed, so that differences between
conditions come from the training data alone. The data lives on the device as uint8 and batches
are gathered there (like ``imbagan.batches``); the loop never syncs with the host between reports.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

from imbagan.batches import to_float

ARCHS = ("cnn", "resnet18")


class Classifier(nn.Module):
    """``trunk`` maps images to penultimate features, ``head`` (one linear layer) to class logits."""

    def __init__(self, trunk: nn.Module, feature_dim: int, num_classes: int):
        super().__init__()
        self.trunk, self.feature_dim = trunk, feature_dim
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: Tensor) -> Tensor:
        return self.trunk(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.trunk(x))


def _block(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


def small_cnn(in_channels: int, num_classes: int, width: int = 32) -> Classifier:
    """A VGG-style CNN for 16-64 px images: 2x(conv-conv-pool), a third conv, global average pooling.

    Global pooling makes it independent of the image side; at 16 px the last conv block sees 4x4 maps.
    """
    trunk = nn.Sequential(
        *_block(in_channels, width), *_block(width, width), nn.MaxPool2d(2),
        *_block(width, 2 * width), *_block(2 * width, 2 * width), nn.MaxPool2d(2),
        *_block(2 * width, 4 * width), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
    )
    return Classifier(trunk, 4 * width, num_classes)


def resnet18_small(in_channels: int, num_classes: int, width: int = 64) -> Classifier:
    """torchvision's ResNet-18 (BAGAN §5.1's classifier) adapted to small images.

    The usual CIFAR adaptation: the 7x7 stride-2 stem and the max-pool would shrink a 16-32 px image
    to 4-8 px before the first residual stage, so the stem becomes a 3x3 stride-1 conv and the
    max-pool is removed; ``in_channels`` takes grey images without copying them to RGB. ``width``
    is accepted for a uniform signature; torchvision's ResNet-18 is always 64 channels wide.
    """
    net = torchvision.models.resnet18(weights=None, num_classes=num_classes)
    net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    feature_dim = net.fc.in_features
    net.fc = nn.Identity()  # the trunk ends at the pooled 512-d features; the head is Classifier's
    return Classifier(net, feature_dim, num_classes)


BUILDERS: dict[str, Callable[..., Classifier]] = {"cnn": small_cnn, "resnet18": resnet18_small}


def build_classifier(arch: str, in_channels: int, num_classes: int, width: int = 32) -> Classifier:
    if arch not in BUILDERS:
        raise ValueError(f"Unknown classifier {arch!r}; choose one of {', '.join(BUILDERS)}.")
    return BUILDERS[arch](in_channels, num_classes, width=width)


def _autocast(device: torch.device):
    # bf16 autocast on CUDA roughly halves the step time; CPU stays in float32 (bf16 is slower there).
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def fit(x: Tensor, y: Tensor, num_classes: int, *, arch: str, width: int = 32, steps: int, batch_size: int, lr: float,
        seed: int, class_weight: Tensor | None = None, report_every: int = 0,
        on_report: Callable[[int, Tensor], None] | None = None) -> Classifier:
    """Train a classifier on uint8 images ``x`` (N, C, H, W) and labels ``y``, both on the device.

    Batches walk through seeded permutations of the set (one epoch after another) for exactly
    ``steps`` AdamW updates with a cosine learning-rate decay. No augmentation: a random flip would
    blur the difference between the "mirror" baseline and the others. Every ``report_every`` steps
    ``on_report(step, mean_loss_tensor)`` is called; reading the tensor there is the only host sync.
    """
    device = x.device
    n = int(x.shape[0])
    if n < 2:
        raise ValueError("A classifier needs at least two training images.")
    torch.manual_seed(seed)  # identical initial weights for every condition
    model = build_classifier(arch, int(x.shape[1]), num_classes, width).to(device)
    model.train()
    gen = torch.Generator(device=device).manual_seed(seed)
    # Weight decay and a cosine schedule: the standard recipe for short supervised runs.
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    bs = min(batch_size, n)
    perm, pos = torch.empty(0, dtype=torch.long, device=device), n
    running = torch.zeros((), device=device)
    for step in range(1, steps + 1):
        if pos + bs > n:  # next epoch; the last partial batch is dropped (BatchNorm and equal batches)
            perm, pos = torch.randperm(n, device=device, generator=gen), 0
        idx = perm[pos:pos + bs]
        pos += bs
        with _autocast(device):
            logits = model(to_float(x[idx]))
        loss = F.cross_entropy(logits.float(), y[idx], weight=class_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        running += loss.detach()
        if on_report is not None and report_every and (step % report_every == 0 or step == steps):
            k = step % report_every or report_every
            on_report(step, running / k)
            running = torch.zeros((), device=device)
    model.eval()
    return model


@torch.inference_mode()
def _batched(model: Classifier, x: Tensor, fn: Callable[[Tensor], Tensor], batch: int) -> Tensor:
    model.eval()
    out = []
    for i in range(0, int(x.shape[0]), batch):
        with _autocast(x.device):
            out.append(fn(to_float(x[i:i + batch])).float())
    return torch.cat(out) if out else torch.empty(0, device=x.device)


def predict(model: Classifier, x: Tensor, batch: int = 1024) -> Tensor:
    """Predicted labels for uint8 images on the device (a device tensor; the caller moves it once)."""
    return _batched(model, x, model, batch).argmax(1)


def features(model: Classifier, x: Tensor, batch: int = 1024) -> Tensor:
    """Penultimate-layer features (N, feature_dim) for uint8 images on the device."""
    return _batched(model, x, model.features, batch)
