"""The training sets an evaluation compares: one registry of conditions, each a name, a description and a builder.

The registry (REGISTRY, in report order) is the one list of conditions: the Evaluate page's choices and
descriptions, ``python -m imbagan evaluate --help`` and EvalConfig's validation read it, and a test keeps
README's table naming the same conditions. Each builder takes the evaluation's Context (the run's imbalanced
training split, its dataset without imbalance, the generated pool) and returns a TrainSet: the images and
labels, and how the classifier's loss treats the classes (class weights, the logit-adjusted loss, deferred
re-weighting, augmentation). A post-hoc condition trains nothing: it reuses another condition's classifiers
and changes their test logits (``reuses``). ``gan`` conditions are the run's own: ``gan`` tops every class up
to the largest with generated images (BAGAN §5.2), ``gan_0.5`` etc. fill that fraction of each gap.

Constants fixed in advance, never chosen on the test split: LA_TAU, DRW_PLAIN.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

LA_TAU = 1.0  # logit adjustment's temperature, Menon et al. 2021's default
DRW_PLAIN = 0.8  # deferred re-weighting: the fraction of steps with plain cross-entropy (Cao et al. 2019: 160 of 200 epochs)


@dataclass
class TrainSet:
    """One condition's training data (uint8 images, labels 0..k-1) and how its loss treats classes."""

    x: np.ndarray
    y: np.ndarray
    class_weight: np.ndarray | None = None  # per-class loss weights, or None for plain cross-entropy
    note: str = ""
    logit_adjusted: bool = False  # train with CE(logits + tau * log prior): the logit-adjusted loss
    plain_fraction: float = 0.0  # DRW: the class weights apply only after this fraction of the steps
    augment: bool = False  # random shifts (and flips where the dataset allows) on every batch


@dataclass
class Context:
    """What the builders and steps of one evaluation share."""

    run_dir: Path
    run_cfg: Any  # the run's TrainConfig
    cfg: Any  # the evaluation's EvalConfig (imbagan.evalconfig, which reads this registry)
    device: Any
    train: Any  # ImageSet: the run's imbalanced training split
    test: Any  # ImageSet: the untouched test split
    full: Any  # ImageSet: the run's dataset without imbalance
    pool: dict[int, np.ndarray]  # generated images per modelled class
    steps: int  # classifier steps per condition, declared before anything is trained

    @property
    def names(self) -> list[str]:
        return list(self.train.classes)

    @property
    def counts(self) -> list[int]:
        return np.bincount(self.train.y, minlength=len(self.train.classes)).tolist()


def gan_set(ratio: float) -> Callable[[Context], TrainSet]:
    def build(c: Context) -> TrainSet:
        from imbagan import trainsets as ts

        x, y, n_gen = ts.gan_topup(c.train.x, c.train.y, c.pool, ratio)
        return TrainSet(x, y, note=f"{n_gen} generated images")
    return build


def _from(fn_name: str) -> Callable[[Context], TrainSet]:
    """A builder from an imbagan.trainsets resampler (x, y, seed) -> (x, y[, note])."""
    def build(c: Context) -> TrainSet:
        from imbagan import trainsets as ts

        out = getattr(ts, fn_name)(c.train.x, c.train.y, c.cfg.seed)
        return TrainSet(out[0], out[1], note=out[2] if len(out) > 2 else "")
    return build


def _class_weight(c: Context) -> TrainSet:
    from imbagan import trainsets as ts

    return TrainSet(c.train.x, c.train.y, class_weight=ts.class_weights(c.train.y, len(c.names)))


def _drw(c: Context) -> TrainSet:
    from imbagan import trainsets as ts

    return TrainSet(c.train.x, c.train.y, class_weight=ts.class_weights(c.train.y, len(c.names)),
                    plain_fraction=DRW_PLAIN, note=f"class weights from step {int(DRW_PLAIN * c.steps)}")


def _augment(c: Context) -> TrainSet:
    from imbagan import trainsets as ts

    flips = " and flips" if c.run_cfg.dataset in ts.HFLIP_DATASETS else ""
    return TrainSet(c.train.x, c.train.y, augment=True, note="shifts" + flips)


@dataclass(frozen=True)
class Condition:
    """One training set to compare: its name, one line for the page and --help, and how to build it."""

    name: str
    description: str
    build: Callable[[Context], TrainSet] | None  # None: the run's GAN (gan_set, per blend ratio)
    reuses: str | None = None  # post-hoc: the condition whose classifiers it takes, changing only their logits


REGISTRY: dict[str, Condition] = {c.name: c for c in (
    Condition("imbalanced", "The imbalanced training set as it is: the untreated classifier (AGGAN's CN).",
              lambda c: TrainSet(c.train.x, c.train.y)),
    Condition("oversample", "Random oversampling of every class up to the largest (AGGAN's Os+CN).",
              _from("oversample")),
    Condition("mirror", "Horizontally mirrored copies of minority images (BAGAN §5.2's baseline).", _from("mirror")),
    Condition("smote", "SMOTE: new minority images interpolated between neighbours, on raw pixels.", _from("smote")),
    Condition("class_weight", "The imbalanced set with a class-weighted loss (weights n / (k · n_c)).", _class_weight),
    Condition("logit_adjust", "The imbalanced classifier with its logits shifted by − log prior at test time "
                              "(Menon et al. 2021): the cheapest fix, no training at all.", None, reuses="imbalanced"),
    Condition("la_loss", "The logit-adjusted loss (Menon et al. 2021; at tau = 1 balanced softmax, Ren et al. 2020).",
              lambda c: TrainSet(c.train.x, c.train.y, logit_adjusted=True, note=f"tau = {LA_TAU:g}")),
    Condition("drw", "Deferred re-weighting (Cao et al. 2019): plain loss first, class weights for the last 20% of "
                     "steps.", _drw),
    Condition("augment", "The imbalanced set with random shifts (and flips where a flip keeps the class): what any "
                         "augmentation adds, to tell apart from what the GAN adds.", _augment),
    Condition("gan", "The imbalanced set topped up with the run's generated images to the largest class (BAGAN §5.2).",
              None),
    Condition("full", "The dataset without imbalance: the ceiling, not a fix anyone has.",
              lambda c: TrainSet(c.full.x, c.full.y, note="the run's dataset without imbalance")),
)}
CONDITIONS = tuple(REGISTRY)
DESCRIPTIONS = {name: c.description for name, c in REGISTRY.items()}
POST_HOC = {name: c.reuses for name, c in REGISTRY.items() if c.reuses}


def gan_name(ratio: float) -> str:
    """The condition name of a blend ratio: 1.0 -> "gan", 0.5 -> "gan_0.5"."""
    return "gan" if ratio == 1 else f"gan_{ratio:g}"


def help_text() -> str:
    """Every condition with its description, one per line (for --help)."""
    width = max(map(len, REGISTRY)) + 2
    return "\n".join(f"  {name:<{width}}{c.description}" for name, c in REGISTRY.items())


def adjust_logits(logits: np.ndarray, train_counts: list[int], tau: float = LA_TAU) -> np.ndarray:
    """Post-hoc logit adjustment (Menon et al. 2021, eq. 9): logits − tau · log(training prior)."""
    counts = np.maximum(np.asarray(train_counts, dtype=np.float64), 1.0)
    return logits - tau * np.log(counts / counts.sum())


def training_set(name: str, c: Context) -> TrainSet:
    """The named condition's set: a registry builder, or gan / gan_<ratio> (the GAN top-up)."""
    cond = REGISTRY.get(name)
    if cond is not None and cond.build is not None:
        return cond.build(c)
    if cond is not None and cond.reuses:
        raise ValueError(f"{name} trains nothing: it reuses the classifiers of {cond.reuses}.")
    return gan_set(1.0 if name == "gan" else float(name.split("_", 1)[1]))(c)
