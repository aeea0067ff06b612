"""Did balancing with a GAN help? A verdict per GAN condition, by a rule declared before any number is seen.

Every condition of an evaluation is trained with the same N classifier seeds (``--repeats N``). A GAN
condition is compared, seed by seed, with the untreated classifier (``imbalanced``) and with the
**best baseline**: the cheap fix with the highest mean ACSA among the conditions that use no
generated images and are not the full set (the ceiling). A GAN earns its place when it beats the
cheapest fix, not just the untreated classifier.

The rule (``RULE``): the paired differences d_i = GAN_i − reference_i over the seeds have mean m and
standard error se = sd(d) / sqrt(N). The word is "better" when m > 2·se, "worse" when m < −2·se, and
"within noise" otherwise; with a single seed there is no spread, and the word is "one seed: no spread".
Pure numpy: the app's process reads verdicts without torch.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np

RULE = ("better / worse: the mean of the seed-by-seed differences is more than twice its standard error "
        "(sd / √N over N classifier seeds); otherwise within noise.")
METRICS = ("acsa", "minority_recall")  # what a verdict compares, in this order
CEILING = "full"
UNTREATED = "imbalanced"


def is_gan(name: str) -> bool:
    return name == "gan" or name.startswith("gan_")


def spread(values: Sequence[float]) -> dict:
    """Mean, sample standard deviation (ddof 1; 0 for one value) and count."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if v.size == 0:
        return {"mean": None, "std": None, "n": 0}
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else 0.0, "n": int(v.size)}


def judge(diffs: Sequence[float]) -> dict:
    """The rule applied to paired differences: {"diff": mean, "se": standard error, "word"}."""
    d = np.asarray(diffs, dtype=float)
    if d.size == 0:
        return {"diff": None, "se": None, "word": "no data"}
    m = float(d.mean())
    if d.size == 1:
        return {"diff": m, "se": None, "word": "one seed: no spread"}
    se = float(d.std(ddof=1) / math.sqrt(d.size))
    word = "better" if m > 2 * se else "worse" if m < -2 * se else "within noise"
    return {"diff": m, "se": se, "word": word}


def best_baseline(per_seed: dict[str, dict[str, list[float]]], gans: Iterable[str] | None = None) -> str | None:
    """The cheap fix with the highest mean ACSA: no generated images, not the untreated set, not the ceiling.

    ``gans``: the names that use generated images (default: gan and gan_<ratio>, the evaluation's)."""
    gan = _gan_test(gans)
    cands = {n: spread(v["acsa"])["mean"] for n, v in per_seed.items()
             if not gan(n) and n not in (CEILING, UNTREATED) and v.get("acsa")}
    cands = {n: m for n, m in cands.items() if m is not None}
    return max(cands, key=cands.get) if cands else None


def _gan_test(gans: Iterable[str] | None):
    if gans is None:
        return is_gan
    names = set(gans)
    return names.__contains__


def paired(a: Sequence[float | None], b: Sequence[float | None]) -> list[float]:
    """Differences a_i − b_i over the seeds (positions) where both were measured."""
    return [x - y for x, y in zip(a, b) if x is not None and y is not None and math.isfinite(x) and math.isfinite(y)]


def verdicts(per_seed: dict[str, dict[str, list[float]]], gans: Iterable[str] | None = None) -> dict[str, dict]:
    """{gan condition: {"vs": {reference: {metric: judge(...)}}, "best_baseline": name, "text": sentence}}.

    ``per_seed[condition][metric]`` lists that metric for seeds 0..N-1 (the same seeds everywhere; None
    where a seed was not measured, and that seed is left out of the pair). ``gans``: the names judged
    (default: gan and gan_<ratio>); every other name but the ceiling can be a baseline.
    """
    gans = None if gans is None else list(gans)
    best = best_baseline(per_seed, gans)
    gan = _gan_test(gans)
    out = {}
    for name, vals in per_seed.items():
        if not gan(name):
            continue
        refs = [r for r in (UNTREATED, best) if r is not None and r in per_seed]
        vs = {}
        for ref in dict.fromkeys(refs):
            vs[ref] = {}
            for metric in METRICS:
                vs[ref][metric] = judge(paired(vals.get(metric) or [], per_seed[ref].get(metric) or []))
        out[name] = {"vs": vs, "best_baseline": best, "text": sentence(name, vs, best)}
    return out


def _points(j: dict) -> str:
    if j["diff"] is None:
        return "no data"
    d = 100 * j["diff"]
    spread = f" ± {100 * j['se']:.1f}" if j["se"] is not None else ""
    if round(abs(d), 1) == 0:
        return f"level{spread} with"
    return f"{abs(d):.1f}{spread} points {'above' if d > 0 else 'below'}"


def cell(j: dict | None) -> str:
    """One difference as a table cell, in points: "-8.3 ± 0.6 (worse)"; "+2.0 (one seed: no spread)"."""
    if not j or j.get("diff") is None:
        return "—"
    se = f" ± {100 * j['se']:.1f}" if j.get("se") is not None else ""
    return f"{100 * j['diff']:+.1f}{se} ({j['word']})"


def headline(v: dict) -> str:
    """The word that sums up one GAN condition's verdict: against the best baseline on ACSA, else against
    the untreated classifier."""
    ref = v.get("best_baseline") if v.get("best_baseline") in v.get("vs", {}) else UNTREATED
    return ((v.get("vs", {}).get(ref) or {}).get("acsa") or {}).get("word", "no data")


def unfinished_note(run: dict) -> str | None:
    """A warning for a report whose GAN had not finished its training (e.g. stopped at step 200 of 2,750), from
    the evaluation's ``run`` entry; None for a finished GAN (one that stopped because it converged included)."""
    step, steps, state = run.get("gan_step"), run.get("gan_steps"), run.get("training_state")
    if step is None or not steps or state == "done" or step >= steps:
        return None
    how = {"stopped": "its training was stopped", "failed": "its training failed"}.get(str(state), f"its training was {state}")
    return (f"This report judges the GAN at step {step:,} of the {steps:,} it was asked for: {how}. The verdict is "
            "about an unfinished GAN: resume the run and evaluate it again when it finishes (a run launched with its "
            "evaluation does that by itself).")


def sentence(name: str, vs: dict, best: str | None) -> str:
    """e.g. "gan: 8.3 ± 0.6 points below logit_adjust on ACSA (worse); 2.0 ± 0.4 points above imbalanced (better)"."""
    parts = []
    for ref in ([best] if best else []) + ([UNTREATED] if UNTREATED in vs and UNTREATED != best else []):
        if ref in vs:
            j = vs[ref]["acsa"]
            parts.append(f"{_points(j)} {ref} on ACSA ({j['word']})")
    return f"{name}: " + "; ".join(parts) if parts else f"{name}: nothing to compare with"


def collect(conditions: Iterable[tuple[str, list[dict]]]) -> dict[str, dict[str, list[float]]]:
    """Per-seed metric lists from per-seed metric dicts ({"acsa", "minority": {"recall"}, ...})."""
    out = {}
    for name, runs in conditions:
        out[name] = {"acsa": [r["acsa"] for r in runs],
                     "minority_recall": [r["minority"]["recall"] for r in runs]}
    return out
