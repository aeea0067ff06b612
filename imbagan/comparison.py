"""Runs side by side for the Compare page: one row per (run, evaluated condition), and every run's logged ticks."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from imbagan import imbalance as imb
from imbagan import runs
from imbagan.config import TrainConfig

COMPARE_COLUMNS = ["run", "method", "dataset", "imbalance", "ir", "steps", "state", "condition", "accuracy",
                   "acsa", "gmean", "macro_f1", "minority_recall"]
EVAL_METRICS = ["accuracy", "acsa", "gmean", "macro_f1", "minority_recall"]


def _number(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _describe(config: dict) -> str:
    try:
        return TrainConfig.from_dict(config).imbalance_spec().describe()
    except (ValueError, TypeError):  # a config from another version: show the raw profile
        return str(config.get("imbalance", "?"))


def read_eval_metrics(d: Path) -> dict:
    """``{condition: metrics}`` from RUN_DIR/eval/metrics.json; {} when the run has not been evaluated."""
    m = runs.read_json(Path(d) / "eval" / "metrics.json", None)
    conds = m.get("conditions") if isinstance(m, dict) else None
    return {str(k): v for k, v in conds.items() if isinstance(v, dict)} if isinstance(conds, dict) else {}


def compare_table(rs: Sequence[runs.RunInfo]) -> pd.DataFrame:
    """One row per (run, evaluated condition); a run without an evaluation gets one row of training columns.

    The IR is the trained set's largest / smallest class (from the status the worker wrote), so it is
    right for every profile, not just those with an ``ir`` field.
    """
    rows = []
    for r in rs:
        c, s = r.config, r.status
        counts = s.get("counts")
        try:
            ir = imb.imbalance_ratio(counts) if counts else None
        except ValueError:
            ir = None
        base = {"run": r.id, "method": c.get("method"), "dataset": c.get("dataset"), "imbalance": _describe(c),
                "ir": ir, "steps": s.get("step") or 0, "state": r.state}
        conds = read_eval_metrics(r.dir)
        if not conds:
            rows.append({**base, "condition": None})
        for name, m in conds.items():
            minority = m.get("minority") if isinstance(m.get("minority"), dict) else {}
            seed0 = {**{k: m.get(k) for k in EVAL_METRICS[:-1]}, "minority_recall": minority.get("recall")}
            spread = m.get("spread") if isinstance(m.get("spread"), dict) else {}
            # The mean over the classifier seeds, as the Evaluate page and the verdict (issue 23, 3); an
            # evaluation written before seeds had spreads has seed 0's numbers only.
            rows.append({**base, "condition": name,
                         **{k: _number((spread.get(k) or {}).get("mean", seed0[k]) if isinstance(spread.get(k), dict)
                                       else seed0[k]) for k in EVAL_METRICS}})
    df = pd.DataFrame(rows, columns=COMPARE_COLUMNS)
    for k in ["ir", *EVAL_METRICS]:
        df[k] = pd.to_numeric(df[k], errors="coerce")
    return df


def metrics_long(rs: Sequence[runs.RunInfo]) -> pd.DataFrame:
    """Every logged tick of the given runs in one frame, with a ``run`` column (for overlaid curves)."""
    frames = [pd.DataFrame.from_records(recs).assign(run=r.id) for r in rs if (recs := runs.read_metrics(r.dir))]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["run", "step"])
