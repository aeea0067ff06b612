"""The two ways a cell is measured.

*Paper* (AGGAN's, from the official HIC-SYSU/AGGAN ``main.py``): the classifier is the GAN's own
discriminator, its auxiliary class head; every 100 iterations it is applied to the whole test set
in one batch, with D left in training mode (the script never calls ``eval()``, so batch norm uses
the test batch's own statistics), and the maximum accuracy over training is reported. That maximum
is chosen on the test set: "test-selected, as published". The paper's CN and Os+CN rows are the same
network trained as a plain classifier (AGGAN §5.1: "the same network structures are used"), on the
imbalanced set and on class-balanced batches, measured the same way.

*Honest* (imbagan's evaluation): an independent classifier with a fixed budget declared before
training, tested once on the untouched test split (``imbagan.evaluate``).

Probing needs no hook in the training loop: ``train`` writes ``checkpoint.pt`` every
``checkpoint_every`` steps, and :class:`ProbingStop` (the loop's ``should_stop``) notices a new
checkpoint at the next step and probes D from it. A killed job resumes from the checkpoint and skips
the steps already probed (they are in ``RUN/paper_probe.jsonl``).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from imbagan.train import StopFlag, load_checkpoint

PROBE_FILE = "paper_probe.jsonl"


def read_probes(path: Path) -> list[dict]:
    out = []
    try:
        with open(path) as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:  # a line cut by a kill
                    pass
    except FileNotFoundError:
        pass
    return out


def _class_logits(out: torch.Tensor, head: str, n: int) -> torch.Tensor:
    """D's class logits from its output, by spec.CLASS_HEADS' notation."""
    if head == "1:":
        return out[:, 1:]
    if head == ":n":
        return out[:, :n]
    return out


@torch.no_grad()
def head_accuracy(D: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, head: str, n: int) -> dict:
    """Accuracy of D's class head on (x, y), as the official main.py measures it: D in training mode,
    the whole set in one forward pass. D's weights are not changed (its batch-norm running averages
    are, which the official script never reads either)."""
    was = D.training
    D.train()
    pred = _class_logits(D(x), head, n).argmax(1)
    D.train(was)
    hit = (pred == y).float()
    recall = [float(hit[y == c].mean()) if bool((y == c).any()) else float("nan") for c in range(n)]
    return {"acc": float(hit.mean()), "recall": recall}


def best_of(probes: list[dict]) -> dict | None:
    """The paper protocol's number: the maximum over probes (test-selected), with where it was taken."""
    if not probes:
        return None
    best = max(probes, key=lambda p: (p["acc"], -p["step"]))  # the earliest of equal maxima
    return {"value": 100.0 * best["acc"], "selected_step": best["step"], "probes": len(probes),
            "last": 100.0 * max(probes, key=lambda p: p["step"])["acc"], "recall": best.get("recall"),
            "selection": "test-selected, as published"}


class HeadProbe:
    """Probes a run's D from its checkpoints on the run's test split; one JSON line per probed step."""

    def __init__(self, cfg, head: str, out: Path, device: torch.device):
        from imbagan.batches import DeviceData, to_float
        from imbagan.methods import METHODS
        from imbagan.splits import load_split

        test, _ = load_split(cfg, "test")
        self.n, self.head, self.out = len(test.classes), head, out
        self.x = to_float(torch.from_numpy(test.x).to(device))
        self.y = torch.from_numpy(test.y.astype(np.int64)).to(device)
        # The method is built once, on the test images (only the shapes and class count matter), and
        # each checkpoint is loaded into it.
        gen = torch.Generator(device=device).manual_seed(0)
        self.method = METHODS[cfg.method](cfg, DeviceData(test.x, test.y, test.classes, device, gen))
        self.done = {p["step"] for p in read_probes(out)}

    def __call__(self, ckpt_path: Path) -> dict | None:
        try:
            ck = load_checkpoint(ckpt_path)
        except (FileNotFoundError, ValueError):
            return None
        step = int(ck["step"])
        if step in self.done or not ck["pretrained"]:  # D is not trained during a pre-training stage
            return None
        self.method.load_state_dict(ck["method"])
        rec = {"step": step, "time": time.time(), **head_accuracy(self.method.D, self.x, self.y, self.head, self.n)}
        with open(self.out, "a") as f:
            f.write(json.dumps(rec) + "\n")
        self.done.add(step)
        return rec


class ProbingStop(StopFlag):
    """The training loop's stop flag (SIGTERM still stops it) that probes every new checkpoint."""

    def __init__(self, ckpt_path: Path, probe: HeadProbe | None):
        super().__init__()
        self.ckpt_path, self.probe, self._seen = ckpt_path, probe, None

    def __call__(self) -> bool:
        if self.probe is not None:
            try:
                mtime = os.stat(self.ckpt_path).st_mtime_ns
            except FileNotFoundError:
                mtime = None
            if mtime is not None and mtime != self._seen:
                self._seen = mtime
                self.probe(self.ckpt_path)
        return self.requested


def train_d_classifier(cfg, steps: int, probe_every: int, oversample: bool, out: Path, device: torch.device,
                       should_stop=lambda: False) -> list[dict]:
    """AGGAN's CN (``oversample``: Os+CN) under the paper protocol: the discriminator network of
    AGGAN/ACGAN (``Discriminator(..., 1 + n, norm="batch")``) trained on its class head alone with the
    GANs' optimiser, probed on the test set every ``probe_every`` steps like the GANs' D."""
    from imbagan.batches import DeviceData, to_float
    from imbagan.nets import Discriminator, adam
    from imbagan.splits import load_split

    train, _ = load_split(cfg, "train")
    test, _ = load_split(cfg, "test")
    n = len(train.classes)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    data = DeviceData(train.x, train.y, train.classes, device, gen)
    D = Discriminator(data.img_shape, 1 + n, cfg.width, norm="batch").to(device)
    opt = adam(D.parameters(), cfg)
    xt = to_float(torch.from_numpy(test.x).to(device))
    yt = torch.from_numpy(test.y.astype(np.int64)).to(device)
    out.unlink(missing_ok=True)  # a short job: a killed one starts again from scratch
    probes = []
    for step in range(1, steps + 1):
        if should_stop():
            raise InterruptedError("stopped")
        if oversample:  # random oversampling to balance = class-uniform batches
            y = data.uniform_labels(cfg.batch_size)
            x = data.sample_of(y)
        else:
            x, y = data.sample(cfg.batch_size)
        loss = F.cross_entropy(D(x)[:, 1:], y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % probe_every == 0 or step == steps:
            rec = {"step": step, "time": time.time(), "loss": float(loss), **head_accuracy(D, xt, yt, "1:", n)}
            probes.append(rec)
            with open(out, "a") as f:
                f.write(json.dumps(rec) + "\n")
    return probes
