"""The Compare page's verdict columns: a GAN row against the untreated classifier and the best baseline,
with its spread and the rule's word; a run evaluated before verdicts existed says so."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from imbagan import runs, verdict
from imbagan.config import TrainConfig
from ui import compare as cmp

ROOT = Path(__file__).resolve().parent.parent
COMPARE = str(ROOT / "pages" / "compare.py")

# Three classifier seeds per condition (fractions), as an evaluation's per-seed numbers.
PER_SEED = {"imbalanced": {"acsa": [0.90, 0.91, 0.92], "minority_recall": [0.50, 0.60, 0.55]},
            "logit_adjust": {"acsa": [0.97, 0.98, 0.975], "minority_recall": [0.90, 0.92, 0.91]},
            "oversample": {"acsa": [0.92, 0.93, 0.91], "minority_recall": [0.70, 0.71, 0.69]},
            "gan": {"acsa": [0.93, 0.935, 0.94], "minority_recall": [0.70, 0.72, 0.71]},
            "full": {"acsa": [0.99] * 3, "minority_recall": [0.99] * 3}}


@pytest.fixture(autouse=True)
def _folders(tmp_path, monkeypatch):
    monkeypatch.setenv("IMBAGAN_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("IMBAGAN_DATA", str(tmp_path / "data"))


def _condition(name: str) -> dict:
    acsa, rec = (sum(PER_SEED[name][k]) / 3 for k in ("acsa", "minority_recall"))
    return {"accuracy": acsa, "acsa": acsa, "gmean": acsa, "macro_f1": acsa, "minority": {"recall": rec},
            "per_class": []}


def _run(root: Path, method: str, metrics: dict, **cfg) -> Path:
    """A finished run (no training) with an eval/metrics.json."""
    d = runs.create(TrainConfig.from_dict(dict(dataset="digits", method=method, steps=20, **cfg)), root)
    runs.write_json_atomic(d / "status.json", {"state": "done", "step": 20, "total": 20, "created": time.time(),
                                               "heartbeat": time.time(), "pid": None, "counts": [100] * 9 + [10]})
    (d / "eval").mkdir()
    runs.write_json_atomic(d / "eval" / "status.json", {"state": "done", "progress": 1.0, "pid": None})
    runs.write_json_atomic(d / "eval" / "metrics.json", metrics)
    return d


@pytest.mark.slow  # the app's pages through AppTest
def test_gan_rows_carry_the_verdict_and_an_old_evaluation_says_it_has_none(tmp_path):
    root = tmp_path / "runs"
    v = {"rule": verdict.RULE, "best_baseline": "logit_adjust", "conditions": verdict.verdicts(PER_SEED)}
    new = _run(root, "gan", {"conditions": {k: _condition(k) for k in PER_SEED}, "verdict": v})
    old = _run(root, "cagan", {"conditions": {k: _condition(k) for k in ("imbalanced", "gan")}}, ir=20.0)
    at = AppTest.from_file(COMPARE, default_timeout=60).run()
    assert not at.exception and not at.error
    shown = at.dataframe[0]
    assert set(cmp.VERDICT_COLUMNS) <= set(shown.proto.column_order)  # shown, not just present in the frame
    df = shown.value
    row = df[(df["id"] == new.name) & (df["condition"] == "gan")].iloc[0]
    assert row["verdict"] == "worse vs logit_adjust"
    assert row["best_baseline"] == "logit_adjust"
    # gan − logit_adjust, ACSA: -0.04, -0.045, -0.035 -> mean -4.0 points, se 0.29
    assert row["vs_best_acsa"] == "-4.0 ± 0.3 (worse)"
    assert row["vs_best_minority_recall"] == "-20.0 ± 0.0 (worse)"
    assert row["vs_imbalanced_acsa"] == "+2.5 ± 0.3 (better)"  # 0.03, 0.025, 0.02
    recall = row["vs_imbalanced_minority_recall"]
    assert recall.startswith("+16.0 ± ") and recall.endswith("(better)")
    old_row = df[(df["id"] == old.name) & (df["condition"] == "gan")].iloc[0]
    assert old_row["verdict"] == cmp.NO_VERDICT
    assert all(old_row[c] == "—" for c in cmp.VERDICT_COLUMNS[1:])  # a dash, never "None" (issue 23, 9)
    baselines = df[df["kind"] == "baseline"]
    assert len(baselines) and (baselines["verdict"] == "—").all()  # a baseline is what a GAN is judged against
    assert any(verdict.RULE in c.value for c in at.caption)  # the rule beside the table


def test_one_seed_and_a_missing_baseline_still_read():
    one = {"imbalanced": {"acsa": [0.90], "minority_recall": [0.5]}, "gan": {"acsa": [0.93], "minority_recall": [0.6]}}
    cells = cmp.verdict_cells({"verdict": {"conditions": verdict.verdicts(one)}}, "gan")
    assert cells["verdict"] == "one seed: no spread vs imbalanced"
    assert cells["best_baseline"] == "none evaluated" and cells["vs_best_acsa"] == "—"
    assert cells["vs_imbalanced_acsa"] == "+3.0 (one seed: no spread)"
    assert cmp.verdict_cells({"verdict": {"conditions": {}}}, "gan_0.5")["verdict"] == "no verdict for this condition"
    assert cmp.verdict_cells(json.loads("[]"), "gan")["verdict"] == cmp.NO_VERDICT
