"""bench/quality.py's options and overrides, and the Taxonomy page's choice of its newest tables."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from imbagan.config import TrainConfig
from ui import taxonomy as tx
from tests.conftest import load_bench


def _bench():
    return load_bench("quality")


def test_options_and_set_are_valid_config_fields():
    q = _bench()
    for option, fields in q.OPTIONS.items():
        cfg = TrainConfig.from_dict(fields)  # a bad value would raise here
        assert (cfg == TrainConfig()) == (option == "none")
    sets = q.parse_set(["cagan_d_norm=none", "cagan-reg=wgan-gp", "latent_dim=100", "lecam_weight=0.3",
                        "minority=3,8"])
    assert sets == {"cagan_d_norm": "none", "cagan_reg": "wgan-gp", "latent_dim": 100, "lecam_weight": 0.3,
                    "minority": (3, 8)}
    TrainConfig.from_dict({"method": "cagan", **sets})
    with pytest.raises(SystemExit):
        q.parse_set(["no_such_field=1"])


def test_scenarios_get_distinct_file_names():
    q = _bench()
    a = dict(dataset="mnist", ir=100.0, drop=95.0, minority=[5], majority=6)
    names = {q.scenario(SimpleNamespace(**a, imbalance=imb))[1] for imb in ("binary", "step", "drop")}
    names.add(q.scenario(SimpleNamespace(**{**a, "dataset": "fashion_mnist", "minority": [5], "majority": 7},
                                         imbalance="binary"))[1])
    assert names == {"mnist-binary-5v6-ir100", "mnist-step-ir100", "mnist-drop-95-5",
                     "fashion_mnist-binary-5v7-ir100"}


def _table(path: Path, scenario: str | None, date: str, methods=("gan", "cagan")) -> None:
    rows = [{"method": m, "options": "none", "class_acc_min": 0.5, "domain_fid": 3.0, "recall_gan": 0.9,
             "dataset": "mnist", "imbalance": "step", "budget": f"b-{date}", "date": date,
             "machine": "AMD EPYC, 2 cores", "load_avg": 2.0 + i} for i, m in enumerate(methods)]
    df = pd.DataFrame(rows)
    if scenario:
        df["scenario"] = scenario
    df.to_csv(path, index=False)


def test_the_page_shows_the_newest_table_of_each_scenario(tmp_path):
    _table(tmp_path / "quality-a.csv", "mnist step ir 100", "2026-11-29 10:00 UTC")
    _table(tmp_path / "quality-b.csv", "mnist step ir 100", "2026-11-30 10:00 UTC", methods=("bagan",))
    _table(tmp_path / "quality-digits.csv", None, "2026-11-28")  # an older table without a scenario column
    _table(tmp_path / "quality-c.csv", "mnist binary", "2026-11-27", methods=("gan", "cagan", "acgan"))
    (tmp_path / "before-digits.csv").write_text("method\nx\n")  # not a quality-*.csv: not shown
    tables = tx.quality_tables(tmp_path)
    # The table with most methods first, then the newest; of two files of one scenario, the newer.
    assert [t["scenario"] for t in tables] == ["mnist binary", "mnist step", "mnist step ir 100"]
    newest = tables[2]
    assert newest["table"]["method"].tolist() == ["bagan"]
    assert "budget b-2026-11-30 10:00 UTC" in newest["caption"] and "measured 2026-11-30 10:00 UTC" in newest["caption"]
    assert "AMD EPYC, 2 cores" in tables[1]["caption"] and "load average 2–3" in tables[1]["caption"]
    cols = list(newest["table"].columns)
    assert cols[:2] == ["method", "trained"]
    assert cols[2:] == [c for c in tx.QUALITY_COLUMNS if c in cols[2:]]
    assert newest["table"]["trained"].tolist() == ["steps unknown"]  # an old table without a steps column


def _fake_budgets(monkeypatch, steps: int, methods: tuple[str, ...]) -> None:
    """Every card reads as measured at ``steps`` on 28px grey for ``methods``, and unmeasured for the others."""
    from imbagan import catalog

    card = catalog.card("gan")
    fake = {"28px grey": {"steps": steps, "seconds_per_step": 0.1, "source": "x.csv"}}
    monkeypatch.setattr(catalog, "card", lambda key: type(card)(**{**card.__dict__,
                                                                   "budgets": fake if key in methods else {}}))


def test_rows_below_the_measured_budget_are_labelled_not_converged(tmp_path, monkeypatch):
    _fake_budgets(monkeypatch, 2000, ("gan",))
    _table(tmp_path / "quality-a.csv", "mnist step ir 100", "2026-11-29 10:00 UTC", methods=("gan", "gan", "cagan"))
    df = pd.read_csv(tmp_path / "quality-a.csv")
    df["steps"] = [300, 2000, 4000]
    df.to_csv(tmp_path / "quality-a.csv", index=False)
    (t,) = tx.quality_tables(tmp_path)
    assert t["table"]["trained"].tolist() == ["NOT converged (300 < 2,000)", "converged (2,000 ≥ 2,000)",
                                              "4,000 steps; no budget measured"]
    assert t["converged_rows"] == 1 and t["rows"] == 3


def test_a_lower_bound_budget_is_named_as_one_in_the_trained_column(monkeypatch):
    from imbagan import catalog

    card = catalog.card("bagan")
    fake = {"28px grey": {"steps": 18500, "seconds_per_step": 0.2, "source": "x.csv", "at_least": True,
                          "not_converged": "mnist-step-ir100"}}
    monkeypatch.setattr(catalog, "card", lambda key: type(card)(**{**card.__dict__, "budgets": fake}))
    assert tx.trained_text("bagan", "mnist", 10000) == "NOT converged (10,000 < at least 18,500)"
    assert tx.trained_text("bagan", "mnist", 20000) == "converged as far as measured (20,000 ≥ at least 18,500)"


def test_the_short_answer_reads_only_converged_rows(tmp_path, monkeypatch):
    _fake_budgets(monkeypatch, 500, ("gan", "cagan"))
    _table(tmp_path / "quality-a.csv", "mnist step ir 100", "2026-11-29 10:00 UTC", methods=("gan", "cagan", "acgan"))
    df = pd.read_csv(tmp_path / "quality-a.csv")
    df["steps"] = [500, 100, 5000]
    df["acsa_gan"], df["acsa_imbalanced"] = [0.96, 0.99, 0.97], 0.95
    df["recall_gan"], df["recall_imbalanced"] = [0.8, 0.9, 0.85], 0.0
    df.to_csv(tmp_path / "quality-a.csv", index=False)
    text = tx.answer(tx.quality_tables(tmp_path))
    # gan is converged; cagan (100 < 500) is not; acgan has no budget: only gan speaks
    assert "gan 96.0% (rarest class recall 0.80)" in text and "cagan" not in text and "acgan" not in text
    assert "untreated classifier 95.0%" in text
    assert tx.answer([]) is None
    # one clause a method (its row nearest the budget), and a row beside another untreated classifier says so
    _fake_budgets(monkeypatch, 500, ("gan", "cagan", "acgan"))
    df = pd.concat([df, df.iloc[[0]].assign(steps=900, acsa_gan=0.5)], ignore_index=True)
    df.loc[0, "acsa_imbalanced"], df.loc[1, "steps"] = 0.9, 500
    df.to_csv(tmp_path / "quality-a.csv", index=False)
    text = tx.answer(tx.quality_tables(tmp_path))
    assert text.count("gan 96.0%") == 1 and "50.0%" not in text
    assert "gan 96.0% (rarest class recall 0.80; beside its own untreated classifier, 90.0%)" in text
    assert "untreated classifier 95.0%" in text and "cagan 99.0% (rarest class recall 0.90)," in text
    # three untreated classifiers, one row each: the best row's heads; 0.8795 reads 88.0% as README rounds it
    acgan = df.index[df["method"] == "acgan"][0]
    df.loc[acgan, "acsa_imbalanced"] = 0.8795
    df.to_csv(tmp_path / "quality-a.csv", index=False)
    text = tx.answer(tx.quality_tables(tmp_path))
    assert "untreated classifier 95.0%" in text and "cagan 99.0% (rarest class recall 0.90)," in text
    assert "acgan 97.0% (rarest class recall 0.85; beside its own untreated classifier, 88.0%)" in text


def test_tables_whose_gans_converged_come_before_tables_that_did_not(tmp_path, monkeypatch):
    _fake_budgets(monkeypatch, 500, ("gan",))
    # The old table covers more methods, but below their budgets; the new one has fewer, converged, rows.
    _table(tmp_path / "quality-old.csv", "mnist binary", "2026-11-29 10:00 UTC", methods=("gan", "cagan", "acgan"))
    _table(tmp_path / "quality-new.csv", "mnist step ir 100", "2026-11-28 10:00 UTC", methods=("gan",))
    for name, steps in (("quality-old.csv", [100, 100, 100]), ("quality-new.csv", [500])):
        df = pd.read_csv(tmp_path / name)
        df["steps"] = steps
        df.to_csv(tmp_path / name, index=False)
    assert [t["scenario"] for t in tx.quality_tables(tmp_path)] == ["mnist step ir 100", "mnist binary"]


def test_from_runs_judges_only_finished_runs_of_the_tables_scenario(tmp_path):
    """--from-runs: a converge curve's run is judged as it is, once it is finished and of this scenario."""
    import json

    from imbagan import runs
    from tests.conftest import tiny_config

    q = _bench()
    cfg = tiny_config(method="acgan", imbalance="step", ir=10.0, diffaugment="color,translation,cutout")
    d = runs.create(cfg, tmp_path)
    a = SimpleNamespace(dataset=cfg.dataset, imbalance="step", ir=10.0, drop=95.0, minority=[3], majority=1,
                        overrides={})
    runs.write_json_atomic(d / "status.json", {**runs.read_status(d), "state": "failed"})
    with pytest.raises(SystemExit, match="failed, not a finished run"):
        q.trained_run(d, a)
    runs.write_json_atomic(d / "status.json", {**runs.read_status(d), "state": "done"})
    (d / "quality.jsonl").write_text(json.dumps({"train_s": 3.0}) + "\n" + json.dumps({"train_s": 12.5}) + "\n")
    assert q.trained_run(d, a) == ("acgan", "diffaugment", 12.5)  # all its sessions' training time
    with pytest.raises(SystemExit, match="step IR 10 is not this table's scenario"):
        q.trained_run(d, SimpleNamespace(**{**vars(a), "ir": 100.0}))
    with pytest.raises(SystemExit, match="--set"):
        q.trained_run(d, SimpleNamespace(**{**vars(a), "overrides": {"lr": 1.0}}))
    assert q.option_of(cfg.replace(diffaugment="none")) == "none"
    assert q.option_of(cfg.replace(diffaugment="none", lecam_weight=0.3)) == "lecam"
    assert q.option_of(cfg.replace(lecam_weight=0.1)) == "diffaugment=color,translation,cutout lecam_weight=0.1"


def test_a_table_with_rows_of_two_budgets_names_both(tmp_path):
    _table(tmp_path / "quality-a.csv", "mnist step ir 100", "2026-11-29 10:00 UTC")
    df = pd.read_csv(tmp_path / "quality-a.csv")
    df.loc[1, "budget"] = "trained runs, judged as they are (run-x)"  # a row appended by --from-runs
    df.to_csv(tmp_path / "quality-a.csv", index=False)
    (table,) = tx.quality_tables(tmp_path)
    assert "budget b-2026-11-29 10:00 UTC | trained runs, judged as they are (run-x)" in table["caption"]


def test_a_table_with_rows_from_two_machines_names_both(tmp_path):
    """bench/gpu_session.sh's GPU rows sit beside CPU rows in one table: the caption names every machine, and the
    classifier steps are a column, since rows judged with other classifier budgets differ in ACSA."""
    _table(tmp_path / "quality-a.csv", "mnist step ir 100", "2026-12-04 10:00 UTC", methods=("gan", "bagan"))
    df = pd.read_csv(tmp_path / "quality-a.csv")
    df["machine"] = ["AMD EPYC (AVX2), 2 cores", "NVIDIA H200 (CUDA 13.0), host Xeon, 16 cores"]
    df["clf_steps"] = [313, 700]
    df.to_csv(tmp_path / "quality-a.csv", index=False)
    (t,) = tx.quality_tables(tmp_path)
    assert "AMD EPYC (AVX2), 2 cores | NVIDIA H200 (CUDA 13.0), host Xeon, 16 cores" in t["caption"]
    assert t["table"]["clf_steps"].tolist() == [313, 700]


def test_the_train_form_quotes_an_options_converged_rows_and_nothing_below_budget(tmp_path, monkeypatch):
    """option_evidence: the option's row beside the plain row of one method, both at its budget; a row below it
    never speaks, and an option that no converged pair measures says so."""
    _fake_budgets(monkeypatch, 500, ("gan", "cagan"))
    _table(tmp_path / "quality-a.csv", "mnist step ir 100", "2026-11-29 10:00 UTC",
           methods=("gan", "gan", "gan", "cagan", "cagan"))
    df = pd.read_csv(tmp_path / "quality-a.csv")
    df["options"] = ["none", "lecam", "diffaugment", "none", "lecam"]
    df["steps"] = [500, 500, 500, 500, 100]  # cagan's LeCam row is below its budget
    df["acsa_gan"], df["acsa_imbalanced"] = [0.95, 0.80, 0.96, 0.94, 0.99], [0.75, 0.76, 0.75, 0.75, 0.75]
    df["class_acc_min"], df["domain_fid"] = [0.9, 0.2, 0.95, 0.7, 0.99], [1.0, 10.0, 0.5, 2.0, 0.1]
    df.to_csv(tmp_path / "quality-a.csv", index=False)
    tables = tx.quality_tables(tmp_path)
    assert tx.option_evidence(tables, "gan", {"diffaugment": "none", "lecam_weight": 0.0}) == []
    (said,) = tx.option_evidence(tables, "gan", {"diffaugment": "none", "lecam_weight": 0.3})
    assert "LeCam (λ = 0.3)" in said and "which is not measured" not in said
    assert "ACSA 80.0% with it against 95.0% without (untreated 76.0% and 75.0%)" in said
    assert "class accuracy 0.20 against 0.90, domain FID 10.00 against 1.00" in said
    diff, lecam = tx.option_evidence(tables, "gan", {"diffaugment": "translation", "lecam_weight": 0.1})
    assert "you set translation, which is not measured" in diff and "96.0% with it" in diff
    assert "you set 0.1, which is not measured" in lecam and "80.0% with it" in lecam
    (cagan,) = tx.option_evidence(tables, "cagan", {"lecam_weight": 0.3})
    assert cagan.startswith("No table measures cagan with LeCam") and "99.0%" not in cagan
    # a second scenario's table: the form's own dataset is quoted first
    df.assign(acsa_gan=[0.5, 0.6, 0.7, 0.5, 0.5], scenario="fashion binary", dataset="fashion_mnist").to_csv(
        tmp_path / "quality-fashion.csv", index=False)
    tables = tx.quality_tables(tmp_path)
    for dataset, first in (("fashion_mnist", "on fashion binary, ACSA 60.0%"),
                           ("mnist", "on mnist step ir 100, ACSA 80.0%")):
        (said,) = tx.option_evidence(tables, "gan", {"lecam_weight": 0.3}, dataset)
        assert said.split(": ", 1)[1].startswith(first), said
