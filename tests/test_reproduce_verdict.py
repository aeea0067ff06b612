"""The reproduce tables' verdict: each GAN row of the honest protocol against CN and the best cheap fix of
its setting, repeat by repeat, in verdict.csv, table.md (what the CLI prints) and on the page."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from imbagan import verdict
from imbagan.__main__ import main
from imbagan.reproduce import store, table

ROOT = Path(__file__).resolve().parent.parent
# Honest-protocol numbers per repeat, in percent, by evaluation condition (the GAN under "gan").
ACSA = {"imbalanced": [90.0, 91.0, 92.0], "oversample": [92.0, 93.0, 91.0], "logit_adjust": [97.0, 98.0, 97.5],
        "la_loss": [96.0, 96.5, 96.0], "full": [99.5] * 3, "gan": [93.0, 93.5, 94.0]}
RECALL = {"imbalanced": [50.0, 60.0, 55.0], "oversample": [70.0, 71.0, 69.0], "logit_adjust": [90.0, 92.0, 91.0],
          "la_loss": [88.0, 89.0, 90.0], "full": [99.0] * 3, "gan": [70.0, 72.0, 71.0]}


def _honest(cond: str, rep: int) -> dict:
    return {"value": ACSA[cond][rep], "accuracy": ACSA[cond][rep], "acsa": ACSA[cond][rep],
            "minority_recall": RECALL[cond][rep], "selection": "none: fixed budget, untouched test split"}


def _fill(folder: Path) -> None:
    """A cell for every job, as finished jobs leave them."""
    for j in store.read_jobs(folder):
        if j["kind"] == "baseline":
            values = {row: {"honest": _honest(cond, j["repeat"])} for row, cond in j["conditions"].items()}
        elif j["kind"] == "gan":
            values = {j["row"]: {"paper": {"value": None, "note": "no class head"},
                                 "honest": _honest("gan", j["repeat"])}}
        else:
            values = {j["row"]: {"paper": {"value": 95.0, "selected_step": 50}}}
        store.write_cell(folder, {"job": j["id"], "hash": j["hash"], "setting": j["setting"], "row": j["row"],
                                  "repeat": j["repeat"], "kind": j["kind"], "run_id": None, "finished": 0.0,
                                  "values": values})


ARGS = ["reproduce", "aggan-table2", "--settings", "mnist-ir100", "--rows", "cn", "os_cn", "logit_adjust", "gan",
        "full", "--repeats", "3"]


@pytest.mark.slow  # the app's pages through AppTest
def test_a_gan_row_is_judged_against_cn_and_the_best_cheap_fix(tmp_path, monkeypatch, capsys):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("IMBAGAN_RUNS", str(tmp_path / "runs"))
    assert main(ARGS + ["--plan"]) == 0
    folder = store.default_folder("aggan-table2", "quick")
    _fill(folder)
    capsys.readouterr()
    assert main(ARGS) == 0  # nothing left to run: the driver writes the table and prints it
    printed = capsys.readouterr().out

    vdf = pd.read_csv(folder / "verdict.csv")
    assert len(vdf) == 1
    r = vdf.iloc[0]
    assert (r["row"], r["repeats"]) == ("gan", 3)
    # The best cheap fix over every classifier condition the baseline jobs measured (la_loss was not
    # selected as a row but is measured): logit adjustment, not CN, not the full set.
    assert r["best_baseline"] == "logit_adjust" and r["best_baseline_label"] == "logit adjustment (imbagan)"
    # gan − logit_adjust, ACSA by repeat: -4.0, -4.5, -3.5 -> mean -4.0 points, standard error 0.29
    assert r["vs_best_acsa_diff"] == pytest.approx(-4.0) and r["vs_best_acsa_se"] == pytest.approx(0.5 / 3 ** 0.5)
    assert r["vs_best_acsa_word"] == "worse"
    assert r["vs_imbalanced_acsa_diff"] == pytest.approx(2.5) and r["vs_imbalanced_acsa_word"] == "better"
    assert r["vs_best_minority_recall_diff"] == pytest.approx(-20.0)
    assert r["vs_imbalanced_minority_recall_diff"] == pytest.approx(16.0)
    assert r["verdict"] == "worse vs logit adjustment (imbagan)"

    md = (folder / "table.md").read_text()
    assert "### Verdict: did the GAN beat the cheapest fix?" in md and verdict.RULE in md
    line = next(x for x in md.splitlines() if x.startswith("| MNIST 5 vs 6, IR 100 | minority-only GAN"))
    assert "| -4.0 ± 0.3 (worse) |" in line and "| +2.5 ± 0.3 (better) |" in line
    assert line in printed  # the CLI's printed table carries it

    at = AppTest.from_file(str(ROOT / "pages" / "reproduce.py"), default_timeout=60).run()
    at.selectbox(key="rep.spec").set_value("aggan-table2").run()
    assert not at.exception
    shown = next(d.value for d in at.dataframe if "verdict" in d.value.columns)
    assert shown.iloc[0]["Δ ACSA vs best"] == "-4.0 ± 0.3 (worse)"
    assert shown.iloc[0]["Δ minority recall vs CN"].startswith("+16.0 ± ")
    assert shown.iloc[0]["best baseline"] == "logit adjustment (imbagan)"
    assert any(verdict.RULE in c.value for c in at.caption)


def test_one_repeat_has_no_spread_and_a_cell_without_acsa_is_left_out(tmp_path, monkeypatch):
    monkeypatch.setenv("IMBAGAN_RUNS", str(tmp_path / "runs"))
    assert main(["reproduce", "tiny", "--plan"]) == 0  # CN is tiny's only classifier row
    folder = store.default_folder("tiny", "quick")
    for j in store.read_jobs(folder):
        values = {"cn": {"honest": _honest("imbalanced", 0)}} if j["kind"] == "baseline" else {
            "gan": {"gan": {"honest": _honest("gan", 0)}},
            "acgan": {"acgan": {"honest": {"value": 91.0}}},  # an older cell: the spec's metric only
        }.get(j["row"])
        if values is not None:
            store.write_cell(folder, {"job": j["id"], "hash": j["hash"], "values": values})
    table.write(folder)
    vdf = pd.read_csv(folder / "verdict.csv")
    assert list(vdf["row"]) == ["gan"]
    shown = table.verdict_display(vdf).iloc[0]
    assert shown["Δ ACSA vs CN"] == "+3.0 (one seed: no spread)"
    assert shown["best baseline"] == "none measured" and shown["Δ ACSA vs best"] == "—"
    assert shown["verdict"] == "one seed: no spread vs CN"
