"""When has a GAN converged? Per-class image quality at each snapshot, judged by a cached reference network.

The rule (issue 21), stated here before any curve was run and applied unchanged by ``bench/converge.py``,
the Train page's live panel and ``TrainConfig.stop_when="converged"``:

    Let f_k be the mean over the modelled classes of the per-class domain FID at snapshot k (every
    ``sample_every`` adversarial steps), and b_k = min(f_1..f_k) the best value so far. The run has
    *converged at snapshot s* when s is the first snapshot after which no later snapshot improves on
    b_s by more than 10% (every f_j >= 0.9 b_s for j > s). The converged step is confirmed (and a
    run that asked to stop when converged stops) once the curve reaches twice that step with at least
    three snapshots after it; before that, the run is "not converged by N steps".

What the first curves showed about the rule (kept unchanged, as stated; a later version may amend it):
a curve that first gets worse is "converged at step 0" once it has run twice nothing plus three snapshots
(BAGAN, whose adversarial stage first undoes its autoencoder start and recovers thousands of steps
later: ``bench/converge.py --run-to-max`` trains such a method to a fixed length), and at FIDs near 1
the 10% tolerance is below the snapshot-to-snapshot noise, so a curve can keep "improving" (cagan on
digits, seed 1). The rule has no noise floor yet.

Per class and snapshot, from a fixed noise batch (so snapshots differ only by the generator):

- ``fid``: Fréchet distance of the reference network's penultimate features, generated images against
  real images of that class *that the run did not train on*, taken from the training split (the images
  the imbalance removed), never the test split, so a budget is chosen without looking at the test. A
  class that kept almost all its images (fewer than ``MIN_HELDOUT`` removed) is compared with its own
  training images instead, and the record says so (``fid_ref``);
- ``class_acc``: the share of generated images that the reference network assigns to their class,
  among every class of the dataset (so a binary scenario is judged against all ten classes);
- ``ssim``: mean SSIM of random pairs of generated images (BAGAN §5.1; lower = more diverse).

The reference network (``imbagan.judge``) is this project's small CNN trained once per (dataset, size, channels) on the
whole training split and cached in ``$IMBAGAN_CACHE`` (or ``~/.cache/imbagan``) under ``reference/``.
It has seen the held-out images too; that bias is the same for every method and step, so it does not
move the converged step.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

# No torch here: the app's process reads the rule and the curves. imbagan.judge measures the snapshots.

TOLERANCE = 0.10  # a later snapshot must beat the best so far by more than this fraction to count
MIN_AFTER = 3  # snapshots after the converged one before it is confirmed
RULE = ("converged at the first snapshot after which the mean per-class domain FID never improves on the "
        "best so far by more than 10%; confirmed at twice that step with at least 3 later snapshots")
MIN_HELDOUT = 50  # fewer removed images than this: the class is compared with its own training images
REAL_PER_CLASS = 500  # real images per class for the FID reference, at most
GEN_PER_CLASS = 200  # generated images per class at each snapshot
MAX_SHARE = 0.10  # quality_curve="auto": snapshots take at most this share of the training time
SSIM_PAIRS = 50
REFERENCE_VERSION = 1
REFERENCE_STEPS = 800  # AdamW steps of the reference CNN at most, batch 128 (MNIST: ~1.7 epochs)
REFERENCE_EPOCHS = 10  # ... and at most this many epochs (digits: 120 steps)
REFERENCE_WIDTH = 16  # 64-d features; width 32 made a snapshot 4x dearer (16 px: 1.0 s for 2,000 images)


# --- the rule ------------------------------------------------------------------------------------
def converged_index(values: list[float], tolerance: float = TOLERANCE) -> int | None:
    """Index of the first snapshot after which no value beats the best so far by more than ``tolerance``.

    NaN values (a snapshot that could not be measured) never count as improvements. None for an empty
    curve. The last snapshot always qualifies trivially; :func:`converged_step` asks for confirmation.
    """
    best, best_at = math.inf, []
    for v in values:
        if v == v:  # not NaN
            best = min(best, v)
        best_at.append(best)
    for i, b in enumerate(best_at):
        if b == math.inf:
            continue
        if all(not (w < (1 - tolerance) * b) for w in values[i + 1:]):
            return i
    return None


def converged_step(steps: list[int], values: list[float], tolerance: float = TOLERANCE,
                   min_after: int = MIN_AFTER) -> int | None:
    """The converged step under the rule, or None while it is not confirmed (see the module docstring)."""
    i = converged_index(values, tolerance)
    if i is None:
        return None
    s = steps[i]
    if len(steps) - 1 - i >= min_after and steps[-1] >= 2 * s:
        return s
    return None


def candidate_step(steps: list[int], values: list[float], tolerance: float = TOLERANCE) -> int | None:
    """The step the rule points at so far, confirmed or not (for a live caption)."""
    i = converged_index(values, tolerance)
    return steps[i] if i is not None else None


def with_device(df):
    """A curve or summary frame with a ``device`` column ("cpu" where it predates the column: every curve before the
    first GPU curves, 2026-12-04, ran on a CPU). A seed's curve on a GPU is a different random draw from the same
    seed's on a CPU, so the two are separate curves, judged and drawn apart."""
    df = df.copy()
    df["device"] = df["device"].fillna("cpu") if "device" in df.columns else "cpu"
    return df


def read_curve(run_dir: str | os.PathLike) -> list[dict]:
    """The run's quality.jsonl records (one per snapshot), skipping a half-written last line."""
    path = Path(run_dir) / "quality.jsonl"
    out = []
    try:
        text = path.read_text()
    except (FileNotFoundError, OSError):
        return out
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and "step" in rec:
            out.append(rec)
    return out
