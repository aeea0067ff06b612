"""The classifiers the evaluation trains: a small CNN and torchvision's ResNet-18 for small images.

Every condition of an evaluation trains the same architecture from the same initial weights, with
the same number of optimiser steps and the same batch order seed, so that differences between
conditions come from the training data alone. The data lives on the device as uint8 and batches
are gathered there (like ``imbagan.batches``); the loop never syncs with the host between reports.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

from imbagan import budgets
from imbagan.batches import native_bf16, to_float

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
        seed: int, class_weight: Tensor | None = None, logit_offset: Tensor | None = None, plain_steps: int = 0,
        report_every: int = 0, on_report: Callable[[int, Tensor], None] | None = None) -> Classifier:
    """Train a classifier on uint8 images ``x`` (N, C, H, W) and labels ``y``, both on the device.

    Batches walk through seeded permutations of the set (one epoch after another) for exactly
    ``steps`` AdamW updates with a cosine learning-rate decay. No augmentation: a random flip would
    blur the difference between the "mirror" baseline and the others. Every ``report_every`` steps
    ``on_report(step, mean_loss_tensor)`` is called; reading the tensor there is the only host sync.
    ``class_weight``, ``logit_offset`` and ``plain_steps`` mean what :class:`Job`'s fields do. This is
    the one-model-at-a-time reference that :func:`fit_many` must reproduce.
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
        logits = logits.float() if logit_offset is None else logits.float() + logit_offset
        loss = F.cross_entropy(logits, y[idx], weight=class_weight if step > plain_steps else None)
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


def logits(model: Classifier, x: Tensor, batch: int = 1024) -> Tensor:
    """Class logits (N, k) for uint8 images on the device, in float32."""
    return _batched(model, x, model, batch)


def predict(model: Classifier, x: Tensor, batch: int = 1024) -> Tensor:
    """Predicted labels for uint8 images on the device (a device tensor; the caller moves it once)."""
    return _batched(model, x, model, batch).argmax(1)


def features(model: Classifier, x: Tensor, batch: int = 1024) -> Tensor:
    """Penultimate-layer features (N, feature_dim) for uint8 images on the device."""
    return _batched(model, x, model.features, batch)


# --- many classifiers at once ---------------------------------------------------------------------
# The evaluation's step budget and its cap are torch-free, in imbagan.budgets (the app's process reads them).
STEP_CAP = budgets.STEP_CAP
budget_steps = budgets.budget_steps


@dataclass(frozen=True, eq=False)
class Job:
    """One classifier of :func:`fit_many`: its training set, its seed, and how its loss treats the classes.

    Each evaluation condition is one line, for example (``w`` balanced class weights, ``k`` classes)::

        Job(x, y, seed)                                          # imbalanced, oversample, smote, full, ...
        Job(x, y, seed, class_weight=w)                          # class-weighted loss
        Job(x, y, seed, logit_offset=log_prior(y, k))            # logit-adjusted loss, tau = 1 (Menon et al. 2021)
        Job(x, y, seed, class_weight=w, plain_steps=int(0.8 * steps))  # deferred re-weighting (Cao et al. 2019)
        Job(x, y, seed, augment=shift)                           # the set with augmentation
    """

    x: Tensor  # uint8 images (N, C, H, W), on the training device
    y: Tensor  # int64 labels (N,) in 0..k-1, on the same device
    seed: int = 0  # initial weights (torch.manual_seed before building) and batch order (its own Generator)
    class_weight: Tensor | None = None  # (k,) per-class loss weights, as F.cross_entropy's ``weight``
    logit_offset: Tensor | None = None  # (k,) added to the logits in training only: CE(logits + offset)
    plain_steps: int = 0  # the first plain_steps updates ignore class_weight (DRW's deferred switch)
    augment: Callable[[Tensor, torch.Generator], Tensor] | None = None  # float (B, C, H, W) batch -> same shape
    name: str = ""  # for the caller's logs only


def log_prior(y: Tensor, num_classes: int, tau: float = 1.0) -> Tensor:
    """tau * log(class frequency): the logit adjustment of Menon et al. 2021 (the offset of their loss)."""
    counts = torch.bincount(y, minlength=num_classes).float().clamp_min(1)
    return tau * (counts / counts.sum()).log()


def job_losses(logits: Tensor, y: Tensor, weight: Tensor, offset: Tensor) -> Tensor:
    """Each job's cross-entropy: logits (M, B, K), labels (M, B), class weights (M, K), offsets (M, 1, K) -> (M,).

    CE(logits + offset) with F.cross_entropy's weighted mean, sum(w_y * nll) / sum(w_y), per job.
    """
    nll = -torch.log_softmax(logits + offset, dim=2).gather(2, y[..., None])[..., 0]  # (M, B)
    w = weight.gather(1, y)
    return (w * nll).sum(1) / w.sum(1)


class _Stacked(nn.Module):
    """M classifiers of one architecture as one wide network: every conv gets ``groups * M``.

    Job m's images are channel block m of the input (B, M*C, H, W). Convolutions with ``groups=M`` and
    per-channel batch norm never mix the blocks, so this is exactly M separate networks, batch norm's
    running statistics included (which vmap cannot keep); the heads are one batched matmul. On a CPU
    oneDNN runs grouped convs in channels-last about as fast per model as single ones; on a GPU one
    wide kernel replaces M small launches.
    """

    def __init__(self, models: Sequence[Classifier]):
        super().__init__()
        self.m = len(models)
        self._template = [copy.deepcopy(models[0]).cpu()]  # a list: not a submodule, not trained
        trunk = copy.deepcopy(models[0].trunk)
        for name, mod in list(trunk.named_modules()):
            if isinstance(mod, nn.Conv2d):
                new: nn.Module = nn.Conv2d(mod.in_channels * self.m, mod.out_channels * self.m, mod.kernel_size,
                                           mod.stride, mod.padding, mod.dilation, mod.groups * self.m,
                                           mod.bias is not None, mod.padding_mode)
            elif isinstance(mod, nn.BatchNorm2d):
                new = nn.BatchNorm2d(mod.num_features * self.m, mod.eps, mod.momentum, mod.affine,
                                     mod.track_running_stats)
            elif isinstance(mod, (nn.Linear, nn.GroupNorm, nn.LayerNorm, nn.BatchNorm1d)):
                raise ValueError(f"fit_many cannot widen a {type(mod).__name__} inside the trunk.")
            else:
                continue
            parent, _, leaf = name.rpartition(".")
            setattr(trunk.get_submodule(parent) if parent else trunk, leaf, new)
        states = [m.trunk.state_dict() for m in models]
        # Every trunk tensor has its channels first (conv weights, batch-norm vectors): stack = concatenate.
        trunk.load_state_dict({k: torch.cat([s[k] for s in states]) if v.ndim else v
                               for k, v in states[0].items()})
        self.trunk = trunk
        self.head_w = nn.Parameter(torch.stack([m.head.weight.detach() for m in models]))  # (M, K, F)
        self.head_b = nn.Parameter(torch.stack([m.head.bias.detach() for m in models]))  # (M, K)

    def forward(self, x: Tensor) -> Tensor:
        """(B, M*C, H, W) -> logits (M, B, K)."""
        h = self.trunk(x).view(x.shape[0], self.m, -1)
        return torch.einsum("bmf,mkf->mbk", h, self.head_w) + self.head_b[:, None]

    def unstack(self) -> list[Classifier]:
        """The M networks as ordinary :class:`Classifier` modules, in eval mode."""
        state = self.trunk.state_dict()
        out = []
        for i in range(self.m):
            net = copy.deepcopy(self._template[0]).to(self.head_w.device)
            net.trunk.load_state_dict({k: v.chunk(self.m)[i].clone() if v.ndim else v.clone()
                                       for k, v in state.items()})
            net.head.weight.data.copy_(self.head_w.detach()[i])
            net.head.bias.data.copy_(self.head_b.detach()[i])
            out.append(net.to(memory_format=torch.contiguous_format).eval())
        return out


def _batch_order(n: int, bs: int, steps: int, seed: int, device: torch.device) -> Tensor:
    """(steps, bs) indices: the batches :func:`fit` draws, from seeded epoch-wise permutations."""
    gen = torch.Generator(device=device).manual_seed(seed)
    per_epoch = n // bs  # the last partial batch of each epoch is dropped, as in fit
    perms = [torch.randperm(n, device=device, generator=gen)[:per_epoch * bs] for _ in range(-(-steps // per_epoch))]
    return torch.cat(perms)[:steps * bs].view(steps, bs)


def fit_many(jobs: Sequence[Job], num_classes: int, *, arch: str = "cnn", width: int = 32, steps: int,
             batch_size: int, lr: float, precision: str = "auto", max_models: int = 16, report_every: int = 0,
             on_report: Callable[[int, int, Tensor], None] | None = None) -> list[Classifier]:
    """Train one classifier per job, together: the same models :func:`fit` trains one by one.

    Every job gets the initial weights and the batch order ``fit(..., seed=job.seed)`` would give it;
    the M networks run as one wide network (:class:`_Stacked`), and one AdamW steps all their
    parameters. AdamW is elementwise, so on stacked parameters it is exactly M separate optimisers
    (same lr, cosine schedule and weight decay). The loss is the sum of the jobs' own (weighted)
    cross-entropies; no parameter is shared, so each model gets its own gradient.

    All training sets are concatenated into one device tensor with offsets, and each step gathers
    (M, B, C, H, W) in one index op; nothing syncs with the host in the loop. ``precision``: "fp32",
    "bf16" (autocast; parameters and the loss stay float32) or "auto" (bf16 on CUDA and on CPUs with
    native bf16, like AVX512-BF16 or AMX; otherwise fp32). Jobs go through in passes of at most
    ``max_models``, grouped by batch size (a set smaller than ``batch_size`` uses batches of its size,
    as in fit). ``on_report(step, total, losses)`` every ``report_every`` steps of a pass: ``step``
    counts on across passes up to ``total`` (steps x passes), ``losses`` is a device tensor of the
    pass's jobs' mean losses since the last report (reading it is the host sync). Returns the models
    in the order of ``jobs``, in eval mode.

    Measured on 2 CPU cores (bench/eval_speed.py): the CPU is compute-bound, so batching by itself
    saves nothing there (grouped convs, vmap and one model after another all cost the same per
    model-step in float32); what this path gains on a CPU comes from channels-last with bf16
    autocast: 1.6-1.8x wall and CPU time at equal steps on digits and MNIST. On a GPU, where one
    small classifier cannot fill the device, the M-wide kernels replace M launches (not measured: the
    GPU sessions of 2026-12-04 timed GAN training only; bench/gpu_session.sh's phase 1b times this).
    """
    if not jobs:
        return []
    if precision not in ("auto", "fp32", "bf16"):
        raise ValueError(f"precision must be auto, fp32 or bf16 (got {precision!r}).")
    for j in jobs:
        if int(j.x.shape[0]) < 2:
            raise ValueError("A classifier needs at least two training images.")
    groups: dict[int, list[int]] = {}
    for i, j in enumerate(jobs):
        groups.setdefault(min(batch_size, int(j.x.shape[0])), []).append(i)
    passes = [(bs, ids[i:i + max_models]) for bs, ids in groups.items() for i in range(0, len(ids), max_models)]
    out: list[Classifier | None] = [None] * len(jobs)
    for p, (bs, ids) in enumerate(passes):
        def report(step: int, losses: Tensor, _base: int = p * steps) -> None:
            if on_report is not None:
                on_report(_base + step, steps * len(passes), losses)

        models = _fit_pass([jobs[i] for i in ids], num_classes, arch, width, steps, bs, lr, precision,
                           report_every, report)
        for i, m in zip(ids, models):
            out[i] = m
    return out  # type: ignore[return-value]


def trains_in_bf16(precision: str, device: torch.device) -> bool:
    """Whether ``fit`` trains under bf16 autocast: asked for, or "auto" on a device with native bf16."""
    return precision == "bf16" or (precision == "auto" and native_bf16(device))


def _fit_pass(jobs: Sequence[Job], k: int, arch: str, width: int, steps: int, bs: int, lr: float,
              precision: str, report_every: int, on_report: Callable[[int, Tensor], None]) -> list[Classifier]:
    device = jobs[0].x.device
    m = len(jobs)
    c, h, w = (int(s) for s in jobs[0].x.shape[1:])
    nets = []
    for j in jobs:
        torch.manual_seed(j.seed)  # the initial weights fit(seed=j.seed) starts from
        nets.append(build_classifier(arch, c, k, width))
    model = _Stacked(nets).to(device).to(memory_format=torch.channels_last)
    model.train()
    bf16 = trains_in_bf16(precision, device)
    # One set on the device, with offsets; (steps, M, B) global indices of every batch of every job.
    x_all = torch.cat([j.x for j in jobs])
    y_all = torch.cat([j.y for j in jobs])
    offsets = [0]
    for j in jobs[:-1]:
        offsets.append(offsets[-1] + int(j.x.shape[0]))
    order = torch.stack([_batch_order(int(j.x.shape[0]), bs, steps, j.seed, device) + o
                         for j, o in zip(jobs, offsets)], dim=1)
    ones = torch.ones(k, device=device)
    weights = [j.class_weight.to(device).float() if j.class_weight is not None else ones for j in jobs]
    offset = torch.stack([j.logit_offset.to(device).float() if j.logit_offset is not None else torch.zeros_like(ones)
                          for j in jobs])[:, None]  # (M, 1, K)
    switches = sorted({j.plain_steps for j in jobs if j.class_weight is not None and j.plain_steps > 0})
    aug_gens = [torch.Generator(device=device).manual_seed(j.seed + 7919) if j.augment else None for j in jobs]

    def class_weights(step: int) -> Tensor:
        return torch.stack([wt if step > j.plain_steps else ones for j, wt in zip(jobs, weights)])

    cw = class_weights(1)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)  # as fit's
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    running = torch.zeros(m, device=device)
    for step in range(1, steps + 1):
        if step - 1 in switches:  # DRW: a job's class weights start after its plain steps
            cw = class_weights(step)
        idx = order[step - 1]  # (M, B)
        xb = to_float(x_all[idx])  # (M, B, C, H, W)
        if any(aug_gens):
            xb = torch.stack([j.augment(xb[i], g) if g is not None else xb[i]
                              for i, (j, g) in enumerate(zip(jobs, aug_gens))])
        xb = xb.permute(1, 0, 2, 3, 4).reshape(bs, m * c, h, w).contiguous(memory_format=torch.channels_last)
        yb = y_all[idx]  # (M, B)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(xb)
        losses = job_losses(logits.float(), yb, cw, offset)
        opt.zero_grad(set_to_none=True)
        losses.sum().backward()
        opt.step()
        sched.step()
        running += losses.detach()
        if report_every and (step % report_every == 0 or step == steps):
            on_report(step, running / (step % report_every or report_every))
            running = torch.zeros(m, device=device)
    return model.unstack()
