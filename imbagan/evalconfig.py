"""What an evaluation is asked: EvalConfig, its command-line flags, and the automatic choices per device.

Light to import (no torch): the Evaluate page, the CLI's --help and the reproduce jobs read it.
The classifier budget is fixed here, before anything is trained: ``epochs`` passes over a set balanced at
the largest class, at most STEP_CAP steps, the same for every condition.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imbagan import budgets, runs
from imbagan.conditions import CONDITIONS, gan_name, help_text
from imbagan.config import documented

STEP_CAP = budgets.STEP_CAP  # classifier steps at most (flat test accuracy past ~350 on MNIST 5 vs 6)
# conditions=() (automatic) on a CPU: what the verdict needs (the untreated classifier, the cheapest fixes, the
# GAN, the ceiling) and what fits the default path's minute; on a GPU every condition (CONDITIONS).
CPU_CONDITIONS = ("imbalanced", "logit_adjust", "la_loss", "gan", "full")
CPU_REPEATS = 2  # repeats=0 (auto): classifier seeds per condition on a CPU; 3 on a GPU
CLASSIFIERS = ("cnn", "resnet18")  # keys of imbagan.classifiers.BUILDERS (kept here so the config imports light)


@dataclass(frozen=True)
class EvalConfig:
    classifier: str = documented("cnn", "cnn (small, fast) | resnet18 (BAGAN §5.1's, stem adapted to small images)")
    width: int = documented(32, "cnn: channels of its first block (then x2, x4); resnet18 ignores it")
    epochs: int = documented(15, "budget in epochs of the balanced set; every condition gets the same number of steps")
    batch_size: int = documented(128, "images per classifier step")
    lr: float = documented(1e-3, "AdamW learning rate, cosine-decayed to 0 over the budget")
    seed: int = documented(0, "initial weights, batch order, resampling, generated noise, subsampling")
    conditions: tuple[str, ...] = documented((), "training sets to compare (see the module docstring); empty: "
                                             "all of them on a GPU, on a CPU " + ", ".join(CPU_CONDITIONS))
    blend: tuple[float, ...] = documented((1.0,), "gan: fractions of each class's gap filled; 1.0 -> \"gan\", 0.5 -> \"gan_0.5\"")
    repeats: int = documented(0, "classifier seeds per condition, for the verdict's spread; 0: 3 on a GPU, 2 on a CPU")
    tsne_points: int = documented(3000, "points in the t-SNE plots (0: no t-SNE)")
    quality_images: int = documented(500, "generated images per class for class accuracy and domain FID (0: no quality)")
    ssim_pairs: int = documented(200, "per class: image couples for SSIM diversity, and queries for nearest-neighbour SSIM")
    device: str = documented("auto", "auto (cuda, then mps, then cpu) | cuda | cuda:N | mps | cpu")

    def __post_init__(self) -> None:
        def bad(msg: str) -> None:
            raise ValueError(msg)

        if self.classifier not in CLASSIFIERS:
            bad(f"classifier must be one of {', '.join(CLASSIFIERS)} (got {self.classifier!r}).")
        if self.width < 1:
            bad(f"width must be at least 1 (got {self.width}).")
        if self.epochs < 1 or self.batch_size < 2:
            bad("epochs must be at least 1 and batch_size at least 2 (batch norm needs two images).")
        if not 0 < self.lr < 1:
            bad(f"lr must be between 0 and 1 (got {self.lr}).")
        if self.seed < 0:
            bad(f"seed cannot be negative (got {self.seed}).")
        unknown = [c for c in self.conditions if c not in CONDITIONS]
        if unknown or len(set(self.conditions)) != len(self.conditions):
            bad(f"conditions must be distinct names among {', '.join(CONDITIONS)} (got {self.conditions}).")
        if not self.blend or any(not 0 < r <= 1 for r in self.blend) or len(set(self.blend)) != len(self.blend):
            bad(f"blend ratios must be distinct fractions in (0, 1] (got {self.blend}).")
        if self.repeats < 0 or self.repeats > 20:
            bad(f"repeats must be between 0 (automatic) and 20 (got {self.repeats}).")
        if self.tsne_points != 0 and self.tsne_points < 10:
            bad(f"tsne_points must be 0 (no t-SNE) or at least 10 (got {self.tsne_points}).")
        if self.quality_images < 0 or self.ssim_pairs < 0:
            bad("quality_images and ssim_pairs cannot be negative.")
        if not (self.device in ("auto", "cpu", "mps", "cuda") or re.fullmatch(r"cuda:\d+", self.device or "")):
            bad(f"device must be auto, cpu, mps, cuda or cuda:N (got {self.device!r}).")

    def conditions_on(self, device=None) -> tuple[str, ...]:
        """The conditions asked for, or the automatic choice for ``device`` (a torch.device, a string or None: CPU)."""
        gpu = getattr(device, "type", str(device or "cpu")).startswith("cuda")
        return self.conditions or (CONDITIONS if gpu else CPU_CONDITIONS)

    def condition_names(self, device=None) -> list[str]:
        """The conditions in report order, with one gan entry per blend ratio."""
        out = []
        for c in self.conditions_on(device):
            out += [gan_name(r) for r in self.blend] if c == "gan" else [c]
        return out

    def replace(self, **changes: Any) -> "EvalConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EvalConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        if set(d) - known:
            raise ValueError(f"Unknown evaluation settings: {', '.join(sorted(set(d) - known))}.")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

    def save(self, path: Path) -> None:
        runs.write_json_atomic(Path(path), self.to_dict())

    @classmethod
    def load(cls, path: Path) -> "EvalConfig":
        return cls.from_dict(json.loads(Path(path).read_text()))


# One line of help per field, for --help and the page's tooltips.
FIELD_HELP = {f.name: f.metadata["help"] for f in dataclasses.fields(EvalConfig)}


def budget_steps(counts: list[int], cfg: EvalConfig) -> int:
    """One budget for all conditions, fixed before any training: `epochs` passes over a set balanced at
    the largest class, at most STEP_CAP steps."""
    return budgets.budget_steps(counts, cfg.batch_size, cfg.epochs, STEP_CAP)


def repeats_for(cfg: EvalConfig, device) -> int:
    if cfg.repeats:
        return cfg.repeats
    return 3 if getattr(device, "type", str(device)) == "cuda" else CPU_REPEATS


def default_conditions() -> tuple[str, ...]:
    """What the Evaluate page pre-selects: EvalConfig's automatic choice for this machine (no torch import)."""
    return EvalConfig().conditions_on("cuda" if runs.gpu_count() else "cpu")


# --- command line ------------------------------------------------------------------------------
def add_arguments(p) -> None:
    """The `evaluate` sub-command's flags: one per EvalConfig field, plus --config and --background."""
    defaults = EvalConfig()
    for f in dataclasses.fields(EvalConfig):
        flag, default = "--" + f.name.replace("_", "-"), getattr(defaults, f.name)
        if isinstance(default, tuple):
            p.add_argument(flag, nargs="+", type=type(default[0]) if default else str, default=None,
                           help=f"{FIELD_HELP.get(f.name, '')} (default: {' '.join(map(str, default)) or 'automatic'})")
        else:
            p.add_argument(flag, type=type(default), default=None,
                           help=f"{FIELD_HELP.get(f.name, '')} (default: {default})")
    p.formatter_class = argparse.RawDescriptionHelpFormatter  # keep the conditions' lines as they are
    p.epilog = "conditions (--conditions):\n" + help_text()
    p.add_argument("--config", default=None, help="an eval config.json to start from (flags override it)")
    p.add_argument("--background", action="store_true", help="launch the evaluation in the background and return")
    # start_evaluation sends stdout to eval/log.txt already
    p.add_argument("--no-log-file", action="store_true", help=argparse.SUPPRESS)


def config_from_args(a) -> EvalConfig:
    base = EvalConfig.load(Path(a.config)) if getattr(a, "config", None) else EvalConfig()
    kw = {f.name: getattr(a, f.name) for f in dataclasses.fields(EvalConfig)
          if getattr(a, f.name, None) is not None}
    return base.replace(**{k: tuple(v) if isinstance(v, list) else v for k, v in kw.items()})
