"""The Compare page's table: one row per run's GAN condition, and each baseline once per data setting.

The baselines (imbalanced, oversample, mirror, smote, class_weight, full, ...) do not depend on the
GAN: two runs on the same data, imbalance and evaluation settings get the same numbers, so they are
shown once, not once per run. Plain pandas, no Streamlit.

A run's GAN rows also carry the verdict its evaluation wrote (eval/metrics.json's ``verdict``, see
imbagan.verdict): the difference from the untreated classifier and from the best baseline in ACSA and
minority recall, each with its standard error and the rule's word. A run evaluated before verdicts
existed says so instead.
"""

from __future__ import annotations

import json

import pandas as pd

from imbagan import runs, verdict
from imbagan.config import DATA_FIELDS  # they decide the data a baseline classifier sees

# Evaluation settings that do not change the baselines' numbers.
_EVAL_COSMETIC = ("tsne_points", "quality_images", "ssim_pairs", "device", "conditions", "blend")


# The verdict's columns, in the order the page shows them; every cell is text ("-8.3 ± 0.6 (worse)").
VERDICT_COLUMNS = ("verdict", "best_baseline", "vs_best_acsa", "vs_best_minority_recall", "vs_imbalanced_acsa",
                   "vs_imbalanced_minority_recall")
VERDICT_HELP = {
    "verdict": "The rule's word for this GAN against the best baseline on ACSA (against imbalanced when no "
               "baseline was evaluated). " + verdict.RULE,
    "best_baseline": "The cheap fix with the highest mean ACSA in this run's evaluation (no generated images, "
                     "not the untreated set, not the full set).",
    "vs_best_acsa": "GAN minus the best baseline, ACSA, in points: mean ± standard error over the classifier "
                    "seeds, and the rule's word.",
    "vs_best_minority_recall": "GAN minus the best baseline, minority recall, in points ± standard error.",
    "vs_imbalanced_acsa": "GAN minus the untreated classifier (imbalanced), ACSA, in points ± standard error.",
    "vs_imbalanced_minority_recall": "GAN minus the untreated classifier, minority recall, in points ± "
                                     "standard error.",
}
VERDICT_LABELS = {"verdict": "verdict", "best_baseline": "best baseline", "vs_best_acsa": "Δ ACSA vs best",
                  "vs_best_minority_recall": "Δ minority recall vs best",
                  "vs_imbalanced_acsa": "Δ ACSA vs imbalanced",
                  "vs_imbalanced_minority_recall": "Δ minority recall vs imbalanced"}
NO_VERDICT = "no verdict: evaluated before verdicts existed"
RULE_NOTE = ("Verdict columns: GAN minus reference, in points, mean ± standard error over the classifier seeds. "
             "The rule, declared before any number was seen: " + verdict.RULE + " A GAN earns its place when it "
             "beats the best cheap fix, not just the untreated classifier.")


def verdict_cells(metrics: dict | None, condition: str) -> dict[str, str]:
    """The verdict columns of one GAN condition, from its run's metrics.json (None: not evaluated)."""
    v = metrics.get("verdict") if isinstance(metrics, dict) else None
    if not isinstance(v, dict):
        return {"verdict": NO_VERDICT}
    cv = (v.get("conditions") or {}).get(condition)
    if not isinstance(cv, dict):
        return {"verdict": "no verdict for this condition"}
    vs = cv.get("vs") or {}
    best = cv.get("best_baseline")
    ref = best if best in vs else verdict.UNTREATED
    out = {"verdict": f"{verdict.headline(cv)} vs {ref}", "best_baseline": best or "none evaluated"}
    for tag, name in (("vs_best", best), ("vs_imbalanced", verdict.UNTREATED)):
        for metric in verdict.METRICS:
            out[f"{tag}_{metric}"] = verdict.cell((vs.get(name) or {}).get(metric)) if name else "—"
    return out


def is_baseline(condition) -> bool:
    """Every evaluated condition except the run's own GAN ones (gan, gan_0.5, ...) is a baseline."""
    return isinstance(condition, str) and not condition.startswith("gan")


def _setting(r: runs.RunInfo) -> str:
    """A key for what a baseline depends on: the run's data and imbalance, and the evaluation's settings."""
    data = {k: r.config.get(k) for k in DATA_FIELDS}
    ev = runs.read_json(r.dir / "eval" / "config.json", {}) or {}
    ev = {k: v for k, v in ev.items() if k not in _EVAL_COSMETIC}
    return json.dumps([data, ev], sort_keys=True, default=str)


def table(raw: pd.DataFrame, rs: list[runs.RunInfo], names: dict[str, str]) -> pd.DataFrame:
    """``raw`` (imbagan.comparison.compare_table) with readable run names and each baseline row once per setting.

    Columns: ``id`` (the run id; empty for baselines), ``run`` (short name, or "baseline"), ``kind``
    ("GAN" for a run's own rows, "baseline"), then raw's columns, then VERDICT_COLUMNS (filled on the
    runs' evaluated GAN rows only).
    """
    setting = {r.id: _setting(r) for r in rs}
    metrics = {r.id: runs.read_json(r.dir / "eval" / "metrics.json", None) for r in rs}
    df = raw.copy()
    df.insert(0, "id", df["run"])
    df["run"] = df["id"].map(names).fillna(df["id"])
    base = df["condition"].map(is_baseline)
    df.insert(2, "kind", base.map({True: "baseline", False: "GAN"}))
    df["setting"] = df["id"].map(setting)
    cells = [verdict_cells(metrics.get(i), c) if k == "GAN" and isinstance(c, str) else {}
             for i, c, k in zip(df["id"], df["condition"], df["kind"])]
    for col in VERDICT_COLUMNS:
        df[col] = [x.get(col) for x in cells]
    # raw is newest run first: the newest evaluation of a setting stands for it.
    once = df[base].drop_duplicates(subset=["setting", "condition"], keep="first").copy()
    once["run"] = "baseline"
    once["method"] = None
    once["steps"] = None
    once["state"] = None
    once["id"] = None
    return pd.concat([df[~base], once], ignore_index=True).drop(columns="setting")


def sort(df: pd.DataFrame, by: str, descending: bool, gan_first: bool) -> pd.DataFrame:
    """Sorted by ``by``; with ``gan_first`` the runs' own rows come before the baselines, each group sorted."""
    keys, asc = ([by], [not descending])
    if gan_first:
        df = df.assign(_b=df["kind"].eq("baseline"))
        keys, asc = ["_b", by], [True, not descending]
    out = df.sort_values(keys, ascending=asc, na_position="last", kind="stable")
    return out.drop(columns="_b", errors="ignore")
