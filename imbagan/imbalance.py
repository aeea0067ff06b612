"""Imbalance profiles: how many training images each class keeps.

A profile is a pure function from the per-class counts available to per-class target
counts (:func:`target_counts`); :func:`select` then picks that many images of each class.
The test split is never thinned (:func:`test_indices`), except that ``binary`` keeps only
its two classes.

Profiles (IR = imbalance ratio = largest class / smallest class):

- ``none``: every image.
- ``drop``: each class in ``minority`` loses ``drop`` percent of its images (BAGAN).
- ``binary``: two classes only; the majority keeps all, the minority keeps majority / IR.
- ``step``: the per-class tables of GAMO / DeepSMOTE, published as "IR 100"; other IRs
  interpolate in log space. On a dataset too small for the table, the profile keeps its
  shape and IR but is scaled down to fit.
- ``longtail``: exponential decay from the smallest class size down to that / IR.
- ``bagan_gp``: class c keeps its first 100*c images, class 0 keeps all (BAGAN-GP).
- ``custom``: an explicit count per class.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

PROFILES = ("none", "drop", "binary", "step", "longtail", "bagan_gp", "custom")
STEP_TABLES: dict[str, list[int]] = {
    # GAMO / DeepSMOTE imbalanced MNIST & Fashion-MNIST (max/min = 100).
    "mnist": [4000, 2000, 1000, 750, 500, 350, 200, 100, 60, 40],
    # GAMO / DeepSMOTE imbalanced CIFAR-10, published as "IR 100" (its own max/min is 56.25).
    "cifar10": [4500, 2000, 1000, 800, 600, 500, 400, 250, 150, 80],
}
_STEP_TABLE_IR = 100.0  # the IR the published tables are labelled with
_MIN_PER_CLASS = 2  # fewer images than this cannot train or evaluate a class


def _round(value: float) -> int:
    """Round half up (Python's round() sends 2.5 to 2, which surprises in counts)."""
    return int(math.floor(value + 0.5))


def _fmt(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True)
class Imbalance:
    """An imbalance profile and its parameters; see the module docstring."""

    profile: str = "none"
    ir: float = 100.0  # binary / step / longtail: largest class / smallest class
    drop: float = 97.5  # drop: percent of each minority class's images removed
    minority: tuple[int, ...] = (0,)  # drop: minority classes; binary: minority[0]
    majority: int = 1  # binary: the majority class
    counts: tuple[int, ...] = ()  # custom: explicit count per class
    step_table: str = "auto"  # step: "mnist" | "cifar10" | "auto" (by channel count)

    def __post_init__(self) -> None:
        # Accept lists (from JSON, CLI, UI widgets) but store tuples so the object stays hashable.
        object.__setattr__(self, "minority", tuple(int(c) for c in self.minority))
        object.__setattr__(self, "counts", tuple(int(n) for n in self.counts))
        if self.profile not in PROFILES:
            raise ValueError(
                f"Unknown imbalance profile {self.profile!r}; choose one of {', '.join(PROFILES)}."
            )
        if not math.isfinite(self.ir) or self.ir < 1:
            raise ValueError(
                f"The imbalance ratio must be at least 1 (largest class / smallest class); "
                f"got ir={_fmt(self.ir)}."
            )
        if not 0 < self.drop < 100:
            raise ValueError(
                f"drop is the percent of a minority class's images removed and must lie "
                f"strictly between 0 and 100; got drop={_fmt(self.drop)}."
            )
        if self.step_table not in ("auto", *STEP_TABLES):
            raise ValueError(
                f"Unknown step table {self.step_table!r}; use 'auto', "
                f"{', '.join(repr(k) for k in STEP_TABLES)}."
            )
        negative = [c for c in (*self.minority, self.majority) if c < 0]
        if negative:
            raise ValueError(f"Class ids cannot be negative; got class {negative[0]}.")
        if self.profile == "drop":
            if not self.minority:
                raise ValueError("The drop profile needs at least one minority class.")
            if len(set(self.minority)) != len(self.minority):
                raise ValueError(f"Minority classes are listed twice: {self.minority}.")
        if self.profile == "binary":
            if len(self.minority) != 1:
                raise ValueError(
                    f"The binary profile uses exactly one minority class; got {self.minority}."
                )
            if self.majority == self.minority[0]:
                raise ValueError(
                    f"The binary profile needs two different classes; majority and minority "
                    f"are both class {self.majority}."
                )
        if self.profile == "custom":
            if not self.counts:
                raise ValueError("The custom profile needs a count for every class (counts=...).")
            for c, n in enumerate(self.counts):
                if n < _MIN_PER_CLASS:
                    raise ValueError(
                        f"Custom count for class {c} is {n}; every class needs at least "
                        f"{_MIN_PER_CLASS} images."
                    )

    def describe(self) -> str:
        """Short human label, e.g. "step IR 100" or "drop 97.5% of class 0"."""
        if self.profile == "none":
            return "balanced (no imbalance)"
        if self.profile == "drop":
            noun = "class" if len(self.minority) == 1 else "classes"
            return f"drop {_fmt(self.drop)}% of {noun} {', '.join(map(str, self.minority))}"
        if self.profile == "binary":
            return f"binary class {self.majority} vs {self.minority[0]}, IR {_fmt(self.ir)}"
        if self.profile in ("step", "longtail"):
            return f"{self.profile} IR {_fmt(self.ir)}"
        if self.profile == "bagan_gp":
            return "BAGAN-GP (first 100*c images of class c)"
        return "custom " + "/".join(map(str, self.counts))


def _check_class(c: int, num_classes: int, role: str) -> None:
    if not 0 <= c < num_classes:
        raise ValueError(
            f"{role} class {c} does not exist: the data has {num_classes} classes "
            f"(0..{num_classes - 1})."
        )


def _step_targets(imb: Imbalance, available: list[int], channels: int) -> list[int]:
    if len(available) != len(STEP_TABLES["mnist"]):
        raise ValueError(
            f"The step profile needs 10 classes (its tables come from MNIST and CIFAR-10); "
            f"the data has {len(available)}. Use the longtail profile instead."
        )
    name = imb.step_table
    if name == "auto":
        name = "cifar10" if channels == 3 else "mnist"
    table = STEP_TABLES[name]
    # Log-space interpolation: exactly the table at IR 100, all equal at IR 1.
    exponent = math.log(imb.ir) / math.log(_STEP_TABLE_IR)
    wanted = [table[0] * (t / table[0]) ** exponent for t in table]
    # A dataset too small for the table keeps the profile's shape and IR, scaled to fit.
    scale = min(1.0, *(a / w for a, w in zip(available, wanted)))
    targets = [min(_round(w * scale), a) for w, a in zip(wanted, available)]
    if scale < 1 and min(targets) < _MIN_PER_CLASS:
        smallest = int(np.argmin(targets))
        raise ValueError(
            f"The step profile at IR {_fmt(imb.ir)} does not fit this dataset: scaled down "
            f"to the images available (class 0 keeps {targets[0]}), class {smallest} would "
            f"keep only {targets[smallest]} image(s); at least {_MIN_PER_CLASS} are needed. "
            f"Use a lower IR or a larger dataset."
        )
    return targets


def target_counts(imb: Imbalance, available: Sequence[int], channels: int = 1) -> list[int]:
    """Images to keep per original class (0 for classes that are dropped entirely).

    ``available`` is the number of training images of each class; ``channels`` picks the
    step table when ``imb.step_table`` is "auto" (3 -> cifar10, else mnist).
    """
    avail = [int(a) for a in available]
    n = len(avail)
    if n == 0:
        raise ValueError("No classes given: the training set is empty.")
    if min(avail) < 0:
        raise ValueError(f"Available counts cannot be negative; got {avail}.")
    if imb.profile != "binary" and 0 in avail:
        # Every class but binary's unused ones must be represented in training.
        raise ValueError(
            f"Class {avail.index(0)} has no training images; every class needs at least "
            f"{_MIN_PER_CLASS}."
        )

    if imb.profile == "none":
        targets = list(avail)
    elif imb.profile == "drop":
        targets = list(avail)
        for c in imb.minority:
            _check_class(c, n, "Minority")
            # n * (100 - drop) / 100 in this order keeps e.g. 6000 at 97.5% exactly 150.
            targets[c] = _round(avail[c] * (100 - imb.drop) / 100)
            if targets[c] < _MIN_PER_CLASS:
                raise ValueError(
                    f"Dropping {_fmt(imb.drop)}% of class {c} leaves {targets[c]} of its "
                    f"{avail[c]} images; at least {_MIN_PER_CLASS} are needed. Use a smaller drop."
                )
    elif imb.profile == "binary":
        major, minor = imb.majority, imb.minority[0]
        _check_class(major, n, "Majority")
        _check_class(minor, n, "Minority")
        targets = [0] * n
        targets[major] = avail[major]
        targets[minor] = _round(avail[major] / imb.ir)
        if targets[minor] > avail[minor]:
            raise ValueError(
                f"Binary IR {_fmt(imb.ir)} asks for {targets[minor]} images of minority class "
                f"{minor} ({avail[major]} / {_fmt(imb.ir)}), but only {avail[minor]} are "
                f"available. Use a higher IR or swap the classes."
            )
        if targets[major] < _MIN_PER_CLASS or targets[minor] < _MIN_PER_CLASS:
            raise ValueError(
                f"Binary IR {_fmt(imb.ir)} leaves minority class {minor} with "
                f"{targets[minor]} image(s) (majority class {major} has {avail[major]}); at "
                f"least {_MIN_PER_CLASS} are needed. Use a lower IR."
            )
    elif imb.profile == "step":
        targets = _step_targets(imb, avail, channels)
    elif imb.profile == "longtail":
        if n < 2:
            raise ValueError("The longtail profile needs at least 2 classes.")
        # The head is the smallest class size, so every class can supply its share.
        head = min(avail)
        targets = [_round(head * imb.ir ** (-i / (n - 1))) for i in range(n)]
        if targets[-1] < _MIN_PER_CLASS:
            raise ValueError(
                f"Longtail IR {_fmt(imb.ir)} leaves class {n - 1} with {targets[-1]} image(s) "
                f"({head} / {_fmt(imb.ir)}); at least {_MIN_PER_CLASS} are needed. "
                f"Use a lower IR."
            )
    elif imb.profile == "bagan_gp":
        targets = [avail[0]] + [100 * c for c in range(1, n)]
    else:  # custom
        if len(imb.counts) != n:
            raise ValueError(
                f"The custom profile gives {len(imb.counts)} counts but the data has {n} "
                f"classes; give one count per class."
            )
        targets = list(imb.counts)

    for c, (t, a) in enumerate(zip(targets, avail)):
        if t > a:
            raise ValueError(
                f"The {imb.profile} profile asks for {t} images of class {c}, but only {a} "
                f"are available."
            )
        if t < _MIN_PER_CLASS and (t > 0 or imb.profile != "binary"):
            raise ValueError(
                f"The {imb.profile} profile leaves class {c} with {t} image(s); at least "
                f"{_MIN_PER_CLASS} are needed."
            )
    return targets


def _check_labels(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or (labels.size and labels.dtype.kind not in "iu"):
        raise ValueError(f"Labels must be a 1-D integer array; got shape {labels.shape}.")
    if labels.size and labels.min() < 0:
        raise ValueError(f"Labels cannot be negative; found {int(labels.min())}.")
    return labels.astype(np.int64, copy=False)


def select(
    imb: Imbalance, labels: np.ndarray, seed: int, channels: int = 1
) -> tuple[np.ndarray, tuple[int, ...]]:
    """Pick the training images to keep.

    Returns (indices into ``labels``, sorted ascending; kept original class ids, in
    new-label order, i.e. ascending). Each class is sampled with its own generator seeded
    by (seed, class), so one class's choice does not depend on another's count, and a
    smaller count keeps a subset of a larger one. ``bagan_gp`` takes each class's first
    images in dataset order instead.
    """
    labels = _check_labels(labels)
    if labels.size == 0:
        raise ValueError("The training set is empty: there are no labels to select from.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}.")
    available = np.bincount(labels)
    targets = target_counts(imb, available.tolist(), channels)
    chosen = []
    for c, t in enumerate(targets):
        if t == 0:
            continue
        idx = np.flatnonzero(labels == c)
        if imb.profile == "bagan_gp" or t == len(idx):
            chosen.append(idx[:t])
        else:
            rng = np.random.default_rng([int(seed), c])
            chosen.append(rng.permutation(idx)[:t])
    kept = tuple(c for c, t in enumerate(targets) if t > 0)
    return np.sort(np.concatenate(chosen)).astype(np.int64), kept


def remap(labels: np.ndarray, kept: Sequence[int]) -> np.ndarray:
    """Map original labels to 0..len(kept)-1 in ``kept`` order."""
    labels = _check_labels(labels)
    kept = tuple(int(c) for c in kept)
    if not kept or len(set(kept)) != len(kept) or min(kept) < 0:
        raise ValueError(f"kept must list distinct, non-negative class ids; got {kept}.")
    size = max(max(kept), int(labels.max()) if labels.size else 0) + 1
    table = np.full(size, -1, dtype=np.int64)
    table[list(kept)] = np.arange(len(kept))
    out = table[labels]
    if (out < 0).any():
        stray = sorted(set(labels[out < 0].tolist()))
        raise ValueError(
            f"Labels contain class(es) {stray} that are not among the kept classes {kept}; "
            f"select those images out first (see select / test_indices)."
        )
    return out


def test_indices(labels: np.ndarray, kept: Sequence[int]) -> np.ndarray:
    """Indices of the test images to evaluate on: all images of the kept classes."""
    labels = _check_labels(labels)
    return np.flatnonzero(np.isin(labels, np.asarray(list(kept), dtype=np.int64))).astype(np.int64)


# Not a test for pytest to collect, despite the name.
test_indices.__test__ = False  # type: ignore[attr-defined]


def imbalance_ratio(counts: Sequence[int]) -> float:
    """Largest / smallest class count, ignoring classes with no images."""
    nonzero = [int(c) for c in counts if int(c) > 0]
    if not nonzero:
        raise ValueError("Cannot compute an imbalance ratio: every class count is zero.")
    return max(nonzero) / min(nonzero)


def minority_classes(counts: list[int]) -> list[int]:
    """Classes with fewer than half the largest class's images: the rows a grid marks with a star."""
    top = max(counts)
    return [c for c, n in enumerate(counts) if n < top / 2]
