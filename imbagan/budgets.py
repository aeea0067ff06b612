"""Measured budgets: how many adversarial steps a method needs on a family of datasets, and what to say below it.

A budget is never guessed. ``bench/converge.py`` trains each method on a scenario of the family until
imbagan.convergence's rule confirms the curve (two GAN seeds); the card's ``budgets`` holds the larger
converged step of the two, the step rate it was measured at and the summary CSV it comes from. A family
with no entry has no measured budget, and the app and the CLI say so instead of inventing one; an entry
marked ``at_least`` is a lower bound (on a scenario of the family the rule had not confirmed a step, and points
at this one or later), and says so.

The evaluation's classifier budget lives here too (STEP_CAP, budget_steps): one copy, which the evaluation,
the classifiers and the benches share.

Imported by the app's process: no torch here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from imbagan import catalog

FAMILIES = ("16px grey", "28px grey", "32px RGB")
FAMILY_NAMES = {"16px grey": "16 px grey digits", "28px grey": "28 px grey images (MNIST, Fashion-MNIST)",
                "32px RGB": "32 px colour images (CIFAR-10)"}


def family(dataset: str, image_size: int | None = None, channels: int | None = None) -> str:
    """The dataset family of a config: "16px grey", "28px grey", "32px RGB", or another size."""
    from imbagan.data import DATASETS

    info = DATASETS.get(dataset)
    size = image_size or (info.image_size if info else 32)
    ch = channels or (info.channels if info else 3)
    return f"{size}px {'grey' if ch == 1 else 'RGB'}"


def measured(method: str, fam: str) -> dict | None:
    """The card's budget for the family: {"steps", "seconds_per_step", "source"}, or None."""
    try:
        b = catalog.card(method).budgets.get(fam)
    except ValueError:
        return None
    return dict(b) if b else None


def default_steps(method: str, dataset: str, image_size: int | None = None, channels: int | None = None) -> int | None:
    """The measured budget's steps for a config, or None where nothing was measured."""
    b = measured(method, family(dataset, image_size, channels))
    return int(b["steps"]) if b else None


def minutes(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def note(method: str, dataset: str, steps: int, image_size: int | None = None,
         channels: int | None = None) -> tuple[str, bool]:
    """(a sentence about the budget for the form and the CLI, whether ``steps`` is below it)."""
    fam = family(dataset, image_size, channels)
    b = measured(method, fam)
    if not b:
        return (f"No converged budget was measured for {method} on {FAMILY_NAMES.get(fam, fam)}: "
                f"{steps:,} steps is your choice, not a measured one. Watch the convergence curve and stop "
                f"when it flattens.", False)
    need = int(b["steps"])
    rate = b.get("seconds_per_step")
    expect = (f" Expected time for {steps:,} steps: about {minutes(steps * rate)} at the pace measured on "
              f"{b.get('machine', 'the bench machine')}" if rate else "")
    if rate and b.get("generators"):  # one generator per minority class (gan): the pace scales with their number
        expect += (f", with {b['generators']} minority class{'es' if b['generators'] > 1 else ''}; it trains one "
                   f"generator each, so the time grows in proportion to yours")
    expect += "." if rate else ""
    if b.get("at_least"):
        where = str(b.get("not_converged") or "one scenario of the family")
        head = (f"{method}'s curve on {where} was not confirmed converged (bench/converge.py): its rule points at "
                f"{need:,} steps or later, so no converged budget is known for {FAMILY_NAMES.get(fam, fam)}, only "
                f"this lower bound.")
        if steps < need:
            return head + f" At {steps:,}, expect images that are not yet the method's best." + expect, True
        return head + " Watch the convergence curve and stop when it flattens." + expect, False
    if steps < need:
        return (f"{method} reached its converged quality at {need:,} steps on {FAMILY_NAMES.get(fam, fam)} "
                f"(bench/converge.py); at {steps:,}, expect rows that are still noise or blobs." + expect, True)
    return (f"Measured budget: {method} converged by {need:,} steps on {FAMILY_NAMES.get(fam, fam)} "
            f"({b.get('source', 'bench/results')})." + expect, False)


# --- the classifiers' budget ----------------------------------------------------------------------
# The evaluation's most steps per classifier. Measured with fit_many on MNIST 5 vs 6 at binary IR 100
# (today's budget: 1,395 steps), imbalanced set, 2 seeds, test ACSA: 150 steps 0.929 ± 0.014,
# 350 steps 0.982 ± 0.004, 700 steps 0.984 ± 0.003 (issue 16 quotes 0.985 for 1,395 steps). The curve
# is flat from 350 on; 700 keeps twice that as a margin for harder sets (Fashion-MNIST, RGB).
STEP_CAP = 700


def budget_steps(counts: Sequence[int], batch_size: int, epochs: int, cap: int | None = None) -> int:
    """Optimiser steps per classifier: ``epochs`` passes over a set balanced at the largest class, at most ``cap``.

    The steps scale with the data (every condition of an evaluation gets the same number), but a large
    majority class no longer buys an ever longer run: past the cap the test accuracy has stopped moving
    (``bench/eval_speed.py --budget-study`` measures it; see :data:`STEP_CAP`).
    """
    steps = epochs * math.ceil(len(counts) * max(counts) / batch_size)
    return max(1, min(steps, cap) if cap else steps)
