"""The judge of a run's snapshots: per-class domain FID, class accuracy and SSIM of a fixed noise batch.

What it measures and against which real images is imbagan.convergence's docstring; this module holds
the torch side: the cached reference CNN and the per-snapshot measurement.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from imbagan import classifiers
from imbagan import data as datasets
from imbagan import folders
from imbagan import imbalance as imb
from imbagan.batches import to_uint8
from imbagan.convergence import (GEN_PER_CLASS, MIN_HELDOUT, REAL_PER_CLASS, REFERENCE_EPOCHS, REFERENCE_STEPS,
                                 REFERENCE_VERSION, REFERENCE_WIDTH, SSIM_PAIRS)
from imbagan.quality import frechet_distance, mean_pair_ssim


REFERENCE_ENV = "IMBAGAN_REFERENCE_DIR"  # where reference networks are cached, if not $IMBAGAN_CACHE/reference


# --- the reference network -----------------------------------------------------------------------
def _cache_root() -> Path:
    """$IMBAGAN_REFERENCE_DIR, else ``reference/`` in the datasets' cache folder (never a data folder)."""
    if os.environ.get(REFERENCE_ENV):
        return Path(os.path.expanduser(os.environ[REFERENCE_ENV]))
    return folders.cache_dirs(Path("."))[0] / "reference"


def reference_path(dataset: str, size: int, channels: int, data_root: str | None) -> Path:
    root = str(datasets.data_root(data_root).resolve()) if dataset == "imagefolder" else None
    key = json.dumps({"dataset": dataset, "size": size, "channels": channels, "v": REFERENCE_VERSION, "root": root,
                      "steps": REFERENCE_STEPS, "width": REFERENCE_WIDTH})
    digest = hashlib.sha1(key.encode()).hexdigest()[:10]
    return _cache_root() / f"{dataset}-{size}px-{channels}ch-{digest}.pt"


def reference_network(full: datasets.ImageSet, path: Path, device: torch.device, log=print):
    """The cached reference CNN for the dataset whose whole training split is ``full``; trained when missing."""
    k = len(full.classes)
    c = int(full.x.shape[1])
    if path.is_file():
        try:
            model = classifiers.build_classifier("cnn", c, k, REFERENCE_WIDTH)
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            return model.to(device).eval()
        except Exception as e:  # a stale or truncated cache file is trained again
            log(f"reference network at {path} unreadable ({type(e).__name__}); training it again")
    steps = max(50, min(REFERENCE_STEPS, REFERENCE_EPOCHS * math.ceil(len(full.y) / 128)))
    log(f"training the reference network for quality curves ({steps} steps on {len(full.y):,} images; "
        f"once per dataset, cached in {path.parent})")
    x = torch.from_numpy(full.x).to(device)
    y = torch.from_numpy(full.y).to(device)
    model = classifiers.fit(x, y, k, arch="cnn", width=REFERENCE_WIDTH, steps=steps, batch_size=128,
                            lr=1e-3, seed=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(model.state_dict(), tmp)
    os.replace(tmp, path)
    return model.eval()


# --- the judge -----------------------------------------------------------------------------------
@dataclass
class Snapshot:
    """One snapshot's numbers; lists are indexed by the run's class (None where a class is not modelled)."""

    fid: list
    class_acc: list
    ssim: list

    def record(self, minority: list[int]) -> dict:
        def mean(vals, which=None):
            v = [x for i, x in enumerate(vals) if x is not None and x == x and (which is None or i in which)]
            return float(np.mean(v)) if v else None

        modeled = [i for i, v in enumerate(self.fid) if v is not None]
        majority = [i for i in modeled if i not in minority]
        return {"fid": self.fid, "class_acc": self.class_acc, "ssim": self.ssim, "minority": list(minority),
                "fid_mean": mean(self.fid), "class_acc_mean": mean(self.class_acc), "ssim_mean": mean(self.ssim),
                "fid_minority": mean(self.fid, set(minority)), "fid_majority": mean(self.fid, set(majority)),
                "class_acc_minority": mean(self.class_acc, set(minority)),
                "class_acc_majority": mean(self.class_acc, set(majority))}


class Judge:
    """Per-class FID, class accuracy and SSIM of a method's images at a snapshot, for one run's config."""

    def __init__(self, cfg, device: torch.device, classes_modeled, noise_dim: int, log=print):
        full = datasets.load(cfg.dataset, "train", root=cfg.data_root, image_size=cfg.image_size,
                             channels=cfg.channels)
        self.device = device
        size, channels = int(full.x.shape[-1]), int(full.x.shape[1])
        self.net = reference_network(full, reference_path(cfg.dataset, size, channels, cfg.data_root), device, log)
        idx, kept = imb.select(cfg.imbalance_spec(), full.y, cfg.seed, channels=channels)
        self.kept = [int(c) for c in kept]
        in_run = np.zeros(len(full.y), dtype=bool)
        in_run[idx] = True
        rng = np.random.default_rng([cfg.seed, 31])
        self.classes = [int(c) for c in classes_modeled]
        self.real_feats: dict[int, np.ndarray] = {}
        self.fid_ref: dict[int, str] = {}
        for c in self.classes:
            orig = self.kept[c]
            removed = np.flatnonzero((full.y == orig) & ~in_run)
            ref = "heldout"
            if len(removed) < MIN_HELDOUT:
                removed, ref = np.flatnonzero((full.y == orig) & in_run), "train"
            pick = np.sort(rng.choice(removed, min(REAL_PER_CLASS, len(removed)), replace=False))
            self.real_feats[c] = self._features(full.x[pick])
            self.fid_ref[c] = ref
        g = torch.Generator(device="cpu").manual_seed(cfg.seed + 15485863)  # the same z at every snapshot
        self.noise = torch.randn(GEN_PER_CLASS, noise_dim, generator=g).to(device)
        self.num_classes = len(self.kept)
        self.ssim_seed = cfg.seed

    @torch.no_grad()
    def _features(self, x: np.ndarray) -> np.ndarray:
        return classifiers.features(self.net, torch.from_numpy(x).to(self.device)).cpu().numpy()

    @torch.no_grad()
    def __call__(self, method) -> Snapshot:

        fid, acc, ssim = [None] * self.num_classes, [None] * self.num_classes, [None] * self.num_classes
        rng = np.random.default_rng(self.ssim_seed)
        for c in self.classes:
            y = torch.full((GEN_PER_CLASS,), c, dtype=torch.long, device=self.device)
            with method.eval_mode():
                imgs = to_uint8(method.generate(y, self.noise).float())
            feats = classifiers.features(self.net, imgs)
            pred = self.net.head(feats).argmax(1)
            acc[c] = float((pred == self.kept[c]).float().mean())
            fid[c] = frechet_distance(self.real_feats[c], feats.cpu().numpy())
            ssim[c] = mean_pair_ssim(imgs.cpu().numpy(), SSIM_PAIRS, rng)
        return Snapshot(fid, acc, ssim)
