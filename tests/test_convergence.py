"""The convergence rule, the quality curve a run writes, stopping when converged, and measured budgets."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from conftest import load_bench, tiny_config
from imbagan import budgets, catalog, convergence, runs, train
from imbagan.config import TrainConfig, starting_config

ROOT = Path(__file__).resolve().parent.parent


# --- the rule, on curves worked by hand -------------------------------------------------------------
def test_rule_first_snapshot_that_nothing_later_beats_by_more_than_ten_percent():
    steps = [0, 250, 500, 750, 1000, 1250, 1500]
    fids = [100.0, 20.0, 10.0, 9.5, 9.2, 9.4, 9.1]
    # at 500 the best is 10; 9.1 is within 10% of it, so 500 is where the curve converged
    assert convergence.converged_index(fids) == 2
    # confirmed: 4 snapshots after it and the curve reaches 1500 >= 2 * 500... but not 1000 (= 2 * 500 is needed)
    assert convergence.converged_step(steps, fids) == 500
    assert convergence.converged_step(steps[:5], fids[:5]) is None  # only 2 snapshots after 500


def test_rule_a_late_improvement_moves_the_converged_step():
    steps = [0, 250, 500, 750, 1000, 1250, 1500, 1750, 2000]
    fids = [100.0, 10.0, 10.0, 10.0, 8.5, 8.4, 8.3, 8.4, 8.3]  # 8.5 beats 10 by 15%
    assert convergence.candidate_step(steps, fids) == 1000
    assert convergence.converged_step(steps, fids) == 1000


def test_rule_still_improving_is_not_converged_and_nan_is_no_improvement():
    steps = [0, 250, 500, 750, 1000]
    assert convergence.converged_step(steps, [100.0, 50.0, 25.0, 12.0, 6.0]) is None
    assert convergence.converged_index([100.0, 50.0, 25.0, 12.0, 6.0]) == 4  # only the last, trivially
    assert convergence.converged_index([10.0, math.nan, 9.5]) == 0
    assert convergence.converged_index([]) is None


# --- the curve a run writes ---------------------------------------------------------------------------
def _train(cfg: TrainConfig, tmp_path: Path) -> Path:
    d = runs.create(cfg, tmp_path)
    train.train(d, log=lambda s: None)
    return d


def test_run_writes_one_quality_record_per_grid_for_the_modelled_classes(tmp_path):
    cfg = tiny_config(method="gan", imbalance="drop", drop=90.0, minority=(3,), quality_curve="on")
    d = _train(cfg, tmp_path)
    recs = convergence.read_curve(d)
    grids = sorted(int(p.stem) for p in (d / "samples").glob("*.png"))
    assert [r["step"] for r in recs] == grids  # the grid "as initialised" too
    last = recs[-1]
    assert len(last["fid"]) == 10
    # gan models the minority digit alone: only its entries are measured, against images the run left out
    assert [i for i, v in enumerate(last["fid"]) if v is not None] == [3]
    assert last["fid_ref"][3] == "heldout"
    assert 0 <= last["class_acc"][3] <= 1 and last["fid"][3] >= 0
    assert last["fid_mean"] == pytest.approx(last["fid"][3]) and last["fid_majority"] is None
    assert last["quality_s"] > 0 and last["minority"] == [3]


def test_majority_class_with_nothing_removed_is_judged_against_its_training_images(tmp_path):
    cfg = tiny_config(method="acgan", imbalance="drop", drop=90.0, minority=(3,), quality_curve="on", steps=3)
    recs = convergence.read_curve(_train(cfg, tmp_path))
    refs = recs[-1]["fid_ref"]
    assert refs[3] == "heldout" and refs[0] == "train"
    assert all(v is not None for v in recs[-1]["fid"])


def test_quality_curve_off_writes_nothing(tmp_path):
    d = _train(tiny_config(quality_curve="off"), tmp_path)
    assert convergence.read_curve(d) == []


def test_stop_when_converged_stops_and_says_where(tmp_path, monkeypatch):
    # The rule confirms at the third snapshot (adversarial step 6): the run must stop there, done, not at 30.
    monkeypatch.setattr(convergence, "converged_step", lambda steps, vals, *a, **k: 3 if len(steps) >= 3 else None)
    cfg = tiny_config(method="acgan", steps=30, quality_curve="on", stop_when="converged")
    d = _train(cfg, tmp_path)
    s = runs.read_status(d)
    assert s["state"] == "done" and s["step"] == 6 and s["converged_step"] == 3
    assert train.load_checkpoint(d / "checkpoint.pt")["step"] == 6


def test_stop_when_converged_needs_the_curve():
    with pytest.raises(ValueError, match="quality curve"):
        tiny_config(quality_curve="off", stop_when="converged")


def test_resume_drops_quality_records_after_the_checkpoint(tmp_path):
    d = runs.create(tiny_config(method="acgan", quality_curve="on", steps=9, checkpoint_every=3), tmp_path)
    train.train(d, log=lambda s: None)
    with open(d / "quality.jsonl", "a") as f:
        f.write(json.dumps({"step": 99, "adv_step": 99}) + "\n")
    train.drop_metrics_after(d, 9, "quality.jsonl")
    assert max(r["step"] for r in convergence.read_curve(d)) == 9


def test_reference_network_is_trained_once_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("IMBAGAN_REFERENCE_DIR", str(tmp_path / "ref"))
    cfg = tiny_config(method="acgan", quality_curve="on", steps=3)
    _train(cfg, tmp_path)
    files = list((tmp_path / "ref").glob("digits-16px-1ch-*.pt"))
    assert len(files) == 1
    before = files[0].stat().st_mtime_ns
    logs = []
    d = runs.create(cfg, tmp_path)
    train.train(d, log=logs.append)
    assert files[0].stat().st_mtime_ns == before
    assert not any("training the reference network" in m for m in logs)


# --- measured budgets ---------------------------------------------------------------------------------
def test_family_of_each_dataset():
    assert budgets.family("digits") == "16px grey"
    assert budgets.family("mnist") == budgets.family("fashion_mnist") == "28px grey"
    assert budgets.family("cifar10") == "32px RGB"
    assert budgets.family("imagefolder", 64, 3) == "64px RGB"


def test_note_says_below_budget_and_unmeasured(monkeypatch):
    card = catalog.card("acgan")
    fake = {"28px grey": {"steps": 3500, "seconds_per_step": 0.1, "source": "x.csv", "machine": "a test box"}}
    monkeypatch.setattr(catalog, "card", lambda key: type(card)(**{**card.__dict__, "budgets": fake}))
    text, below = budgets.note("acgan", "mnist", 600)
    assert below and "3,500" in text and "600" in text and "noise" in text and "60 s" in text
    text, below = budgets.note("acgan", "mnist", 4000)
    assert not below and "3,500" in text and "7 min" in text
    text, below = budgets.note("acgan", "cifar10", 600)
    assert not below and "No converged budget was measured" in text
    assert starting_config(method="acgan", dataset="mnist").steps == 3500
    assert starting_config(method="acgan", dataset="mnist", steps=10).steps == 10
    assert starting_config(method="acgan", dataset="cifar10").steps == TrainConfig.steps


def test_every_card_budget_is_its_summary_csv():
    """A card's budget is copied from the summary CSV it names, never typed: the two must agree."""
    seen = 0
    for key, card in catalog.methods().items():
        for fam, b in card.budgets.items():
            assert fam in budgets.FAMILIES
            assert b["steps"] >= 1 and b["seconds_per_step"] > 0
            sources = [s.strip() for s in b["source"].split(",")]
            steps, open_to = [], []
            for src in sources:
                df = load_bench("converge").evidence(pd.read_csv(ROOT / src))
                rows = df[df["method"] == key]  # one per device the curves ran on
                assert 1 <= len(rows) == rows["device"].nunique(), (key, src)
                for _, row in rows.iterrows():
                    if pd.isna(row["converged_step"]):  # still improving there: only a lower bound
                        assert b.get("at_least"), (key, src)
                        open_to.append(int(row["max_step"]))
                    else:
                        steps.append(int(row["converged_step"]))
            if b.get("at_least"):
                assert f"bench/results/converge-{b['not_converged']}-summary.csv" in sources, (key, fam)
                assert max(steps, default=0) < b["steps"] <= max(open_to), (key, fam)
            else:
                assert b["steps"] == max(steps), (key, fam)
            seen += 1
    assert seen >= 1


def test_cli_trains_the_measured_budget_without_steps(monkeypatch):
    from imbagan import __main__ as cli

    card = catalog.card("acgan")
    fake = {"28px grey": {"steps": 3500, "seconds_per_step": 0.1, "source": "x.csv"}}
    monkeypatch.setattr(catalog, "card", lambda key: type(card)(**{**card.__dict__, "budgets": fake}))
    import argparse

    ap = argparse.ArgumentParser()
    cli._add_config_args(ap.add_subparsers(dest="cmd").add_parser("train"))
    a = ap.parse_args(["train", "--dataset", "mnist", "--method", "acgan"])
    assert cli._config_from_args(a).steps == 3500
    a = ap.parse_args(["train", "--dataset", "mnist", "--method", "acgan", "--steps", "700"])
    assert cli._config_from_args(a).steps == 700


# --- the app ---------------------------------------------------------------------------------------------
TRAIN_PAGE = str(ROOT / "pages" / "train.py")


def _curve_run(tmp_path: Path) -> Path:
    cfg = TrainConfig(dataset="digits", imbalance="drop", drop=95.0, minority=(3, 8), method="acgan", steps=1500)
    d = runs.create(cfg, tmp_path)
    runs.write_json_atomic(d / "status.json", {"state": "done", "step": 1500, "total": 1500, "created": 1.0,
                                               "heartbeat": 1.0, "classes": [str(i) for i in range(10)],
                                               "counts": [130] * 10})
    fids = [100.0, 8.0, 5.0, 4.9, 4.8, 4.7, 4.9]
    with open(d / "quality.jsonl", "w") as f:
        for i, m in enumerate(fids):
            steps = [250 * j for j in range(i + 1)]
            f.write(json.dumps({"step": 250 * i, "adv_step": 250 * i, "fid": [m] * 10, "class_acc": [0.5] * 10,
                                "ssim": [0.6] * 10, "fid_mean": m, "class_acc_mean": 0.5, "minority": [3, 8],
                                "train_s": 10.0 * (i + 1), "quality_s": 0.5,
                                "converged_step": convergence.converged_step(steps, fids[:i + 1]),
                                "candidate_step": convergence.candidate_step(steps, fids[:i + 1])}) + "\n")
    return d


@pytest.mark.slow  # the app's pages through AppTest
def test_train_page_draws_the_convergence_curve_and_what_the_rule_says(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("IMBAGAN_RUNS", str(tmp_path))
    d = _curve_run(tmp_path)
    at = AppTest.from_file(TRAIN_PAGE, default_timeout=60)
    at.query_params["run"] = d.name
    at.run()
    assert not at.exception
    assert any(str(c.key) == f"quality.{d.name}" for c in at.get("plotly_chart"))
    text = " ".join(c.value for c in at.caption)
    assert "Converged by step 500" in text and "% of the training time" in text
    at.radio(key=f"qmetric.{d.name}").set_value("class_acc").run()
    assert not at.exception


@pytest.mark.slow  # the app's pages through AppTest
def test_train_form_starts_from_the_measured_budget_and_warns_below_it(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("IMBAGAN_RUNS", str(tmp_path))
    measured = {k: c.budgets["16px grey"]["steps"] for k, c in catalog.methods().items() if "16px grey" in c.budgets}
    assert measured, "no method has a measured budget on digits"
    method, steps = next(iter(measured.items()))
    at = AppTest.from_file(TRAIN_PAGE, default_timeout=60).run()
    at.selectbox(key="train.method").set_value(method).run()
    assert at.number_input(key=f"train.{method}.steps").value == steps
    assert not any("expect rows" in w.value for w in at.warning)
    assert any(f"{steps:,}" in c.value and "Expected time" in c.value for c in at.caption)
    at.number_input(key=f"train.{method}.steps").set_value(max(1, steps // 4)).run()
    assert any("expect rows that are still noise" in w.value for w in at.warning)


def test_taxonomy_reads_the_convergence_outputs_and_draws_one_panel_per_method(tmp_path):
    from ui import convergence_chart
    from ui import taxonomy as tx

    rows = [{"scenario": "s", "method": m, "seed": seed, "precision": "bf16", "step": 250 * i, "seconds": 10.0 * i,
             "fid_mean": f, "fid_per_class": json.dumps([f, None, 2 * f]), "machine": "box", "threads": 1,
             "load_avg": 1.0}
            for m in ("acgan", "cagan") for seed in (0, 1)
            for i, f in enumerate([100.0, 10.0, 5.0, 4.9, 4.8, 4.9, 4.7])]
    curves = pd.DataFrame(rows)
    curves.to_csv(tmp_path / "converge-s.csv", index=False)
    pd.DataFrame([{"method": "acgan", "precision": "bf16", "seeds": 2, "converged_step": 500, "rule": convergence.RULE,
                   "machine": "box", "threads": 1, "load_avg": "1.0-1.0"}]).to_csv(tmp_path / "converge-s-summary.csv",
                                                                                   index=False)
    (t,) = tx.convergence_tables(tmp_path)
    assert t["scenario"] == "s" and t["summary"]["converged_step"].tolist() == [500]
    assert convergence.RULE in t["caption"]
    fig = convergence_chart.curve_figure(t["curves"], "s")
    assert [a.text for a in fig.layout.annotations][:2] == ["acgan", "cagan"]
    # two classes measured (class 1 is not modelled) x two seeds x two methods; one vertical line per seed
    assert len(fig.data) == 8
    assert sum(1 for s in fig.layout.shapes if s.type == "line") == 4


def test_a_scenario_with_both_precisions_draws_each_curve_apart_and_lists_the_budget_rows_first(tmp_path):
    """bench/precision.py's float32 curves sit beside the bf16 ones in converge-digits.csv: one line per
    (precision, seed), never one zigzag line per seed; the summary lists bf16 (the budgets) first."""
    from ui import convergence_chart
    from ui import taxonomy as tx

    fids = {"bf16": [100.0, 10.0, 5.0, 4.9, 4.8, 4.9, 4.7], "fp32": [90.0, 50.0, 40.0, 30.0, 20.0, 10.0, 5.0]}
    rows = [{"scenario": "s", "method": "cagan", "seed": seed, "precision": p, "step": 250 * i, "seconds": 1.0,
             "fid_mean": f, "fid_per_class": json.dumps([f]), "machine": "box", "threads": 1, "load_avg": 1.0}
            for p, fs in fids.items() for seed in (0, 1) for i, f in enumerate(fs)]
    pd.DataFrame(rows).to_csv(tmp_path / "converge-s.csv", index=False)
    pd.DataFrame([{"method": "cagan", "precision": "fp32", "seeds": 2, "converged_step": None},
                  {"method": "cagan", "precision": "bf16", "seeds": 2, "converged_step": 500}]).assign(
        rule=convergence.RULE, machine="box", threads=1, load_avg="1").to_csv(tmp_path / "converge-s-summary.csv",
                                                                              index=False)
    (t,) = tx.convergence_tables(tmp_path)
    assert t["summary"]["precision"].tolist() == ["bf16", "fp32"] and "the precision whose curves went furthest" in t["caption"]
    fig = convergence_chart.curve_figure(t["curves"], "s")
    assert len(fig.data) == 4  # 2 precisions x 2 seeds, one class
    for tr in fig.data:
        assert list(tr.x) == sorted(tr.x) and len(tr.x) == 7, tr.hovertemplate
    assert {tr.hovertemplate.split(" class")[0] for tr in fig.data} == {
        "cagan seed 0 bf16", "cagan seed 1 bf16", "cagan seed 0 fp32", "cagan seed 1 fp32"}
    # the rule's converged step per curve: bf16 at 500 (both seeds), the float32 curve still improving
    assert sum(1 for s in fig.layout.shapes if s.type == "line") == 2


def test_a_resumed_run_judges_its_whole_curve(tmp_path, monkeypatch):
    cfg = tiny_config(method="acgan", quality_curve="on", steps=6, checkpoint_every=3)
    d = runs.create(cfg, tmp_path)
    train.train(d, log=lambda s: None)
    before = [r["adv_step"] for r in convergence.read_curve(d)]
    cfg.replace(steps=9).save(d / "config.json")
    seen = []
    monkeypatch.setattr(convergence, "converged_step", lambda steps, vals, *a, **k: seen.append(list(steps)))
    train.train(d, resume=True, log=lambda s: None)
    assert seen and seen[-1][:len(before)] == before and seen[-1][-1] == 9


def test_bf16_is_on_under_auto_exactly_where_bench_precision_found_it_within_noise():
    """Issue 22 §2: a method's card says bf16_measured when, and only when, bench/precision.py's table holds the
    method and every scenario measured says within noise (FID and class accuracy against float32, 2 seeds each)."""
    from imbagan.methods import METHODS

    tables = sorted((ROOT / "bench" / "results").glob("precision-*.csv"))
    assert tables, "no bench/results/precision-*.csv"
    df = pd.concat([pd.read_csv(t) for t in tables])
    assert {"method", "step", "fid_within_noise", "acc_within_noise", "within_noise"} <= set(df.columns)
    for name, cls in METHODS.items():
        rows = df[df["method"] == name]
        measured_ok = len(rows) > 0 and bool(rows["within_noise"].all())
        assert cls.bf16_measured == measured_ok, (name, rows.to_dict("records"))


def test_a_lower_bound_budget_says_it_is_one(monkeypatch):
    card = catalog.card("bagan_gp")
    fake = {"28px grey": {"steps": 6000, "seconds_per_step": 0.8, "source": "x.csv", "machine": "a test box",
                          "at_least": True, "not_converged": "mnist-step-ir100"}}
    monkeypatch.setattr(catalog, "card", lambda key: type(card)(**{**card.__dict__, "budgets": fake}))
    text, below = budgets.note("bagan_gp", "fashion_mnist", 600)
    assert below and "on mnist-step-ir100 was not confirmed converged" in text and "6,000 steps or later" in text
    assert "lower bound" in text
    text, below = budgets.note("bagan_gp", "mnist", 8000)
    assert not below and "lower bound" in text and "converged by" not in text
    assert starting_config(method="bagan_gp", dataset="mnist").steps == 6000  # the form starts from the bound


def test_card_budgets_take_the_later_step_of_a_scenario_not_confirmed(tmp_path, monkeypatch):
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("converge_bench", ROOT / "bench" / "converge.py")
    conv = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(ROOT / "bench"))
    spec.loader.exec_module(conv)
    monkeypatch.setattr(conv, "RESULTS", tmp_path)
    head = "method,precision,seeds,converged_step,max_step,machine,threads\n"
    (tmp_path / "converge-fashion_mnist-binary-5v7-ir100-summary.csv").write_text(
        head + 'bagan_gp,bf16,2,500,1250,"box",1\nacgan,bf16,2,250,1000,"box",1\n')
    (tmp_path / "converge-mnist-step-ir100-summary.csv").write_text(
        "method,precision,seeds,converged_step,converged_steps,max_step,machine,threads\n"
        'bagan_gp,bf16,2,,s0:4500 s1:-,9000,"box",1\nacgan,bf16,1,,s0:-,9000,"box",1\n')
    curve = "method,precision,seed,step,seconds,fid_mean\n" + "".join(
        f"{m},bf16,{s},{st},{st / 10},{9 - st / 250}\n" for m in ("bagan_gp", "acgan") for s in (0, 1) for st in (250, 500))
    (tmp_path / "converge-fashion_mnist-binary-5v7-ir100.csv").write_text(curve)
    # Seed 0 converged at 4,500 (its curve ran to 9,000 to confirm it). Seed 1 improved until 5,250 and was flat
    # for the three snapshots after it, when stopped at 6,000: not confirmed (that needs 10,500), and the rule
    # points at 5,250, which a later snapshot could only move later: the bound is 5,250, not its last step.
    s1 = [(st, 1 + (5250 - min(st, 5250)) / 100) for st in range(250, 6001, 250)]
    (tmp_path / "converge-mnist-step-ir100.csv").write_text(curve + "bagan_gp,bf16,0,9000,900,0.6\n" + "".join(
        f"bagan_gp,bf16,1,{st},{st / 10},{f}\n" for st, f in s1))
    got = conv.card_budgets()
    assert got["bagan_gp"]["28px grey"]["steps"] == 5250 and got["bagan_gp"]["28px grey"]["at_least"]
    assert got["bagan_gp"]["28px grey"]["not_converged"] == "mnist-step-ir100"
    assert got["acgan"]["28px grey"]["steps"] == 250  # one seed still running is no evidence either way
    assert "at_least" not in got["acgan"]["28px grey"]


def test_card_budgets_come_from_the_precision_whose_curves_went_furthest():
    """bf16 where both precisions ran as far (the curves were planned in it); float32 where a machine without
    native bf16 ran the curves longer; a precision with one seed is no evidence."""
    conv = load_bench("converge")
    df = pd.DataFrame([
        {"method": "acgan", "precision": "bf16", "seeds": 2, "max_step": 1500},
        {"method": "acgan", "precision": "fp32", "seeds": 2, "max_step": 1500},
        {"method": "bagan_gp", "precision": "bf16", "seeds": 2, "max_step": 2750},
        {"method": "bagan_gp", "precision": "fp32", "seeds": 2, "max_step": 6000},
        {"method": "gan", "precision": "bf16", "seeds": 2, "max_step": 1250},
        {"method": "gan", "precision": "fp32", "seeds": 1, "max_step": 9000},
    ])
    got = conv.evidence(df).set_index("method")["precision"].to_dict()
    assert got == {"acgan": "bf16", "bagan_gp": "fp32", "gan": "bf16"}


def test_gpu_curves_are_more_seeds_and_the_card_quotes_the_cpu_pace(tmp_path, monkeypatch):
    """A seed's curve from a GPU is a separate curve (it does not replace the CPU's of the same seed); its converged
    steps count towards the budget, but the card's pace stays the CPU's. A family whose only curves never
    converged gets a lower bound, not silence."""
    conv = load_bench("converge")
    monkeypatch.setattr(conv, "RESULTS", tmp_path)

    def rows(method, seed, device, fids, every=250, pace=0.5):
        return [{"method": method, "seed": seed, "precision": "bf16", "device": device, "step": every * i,
                 "seconds": every * i * pace, "fid_mean": f, "fid_minority": f, "fid_majority": f,
                 "class_acc_mean": 0.9, "fid_per_class": f"[{f}, {f}]", "machine": "GPU box" if device == "cuda" else "CPU box", "threads": 1,
                 "load_avg": 1.0} for i, f in enumerate(fids)]
    flat_after_2 = [9, 5, 2] + [2] * 5  # converged at 500, confirmed by 1,750
    flat_after_3 = [9, 5, 4, 2] + [2] * 6  # converged at 750
    falling = [9 - i * 0.5 for i in range(12)]  # still improving at 2,750
    for method, seed, device, fids, pace in [("bagan_gp", 0, "cpu", flat_after_2, 0.8),
                                             ("bagan_gp", 1, "cpu", flat_after_2, 0.8),
                                             ("bagan_gp", 0, "cuda", flat_after_3, 0.05),
                                             ("bagan_gp", 1, "cuda", flat_after_3, 0.05),
                                             ("bagan", 0, "cuda", falling, 0.01), ("bagan", 1, "cuda", falling, 0.01)]:
        conv.merge_curve("mnist-step-ir100", rows(method, seed, device, fids, pace=pace))
    conv.merge_curve("mnist-step-ir100", rows("bagan", 0, "cpu", falling[:6], pace=0.2))
    conv.merge_curve("mnist-step-ir100", rows("bagan", 1, "cpu", falling[:6], pace=0.2))
    conv.write_outputs("mnist-step-ir100")
    curves = pd.read_csv(tmp_path / "converge-mnist-step-ir100.csv")
    assert len(curves[(curves["method"] == "bagan_gp") & (curves["seed"] == 0)]) == 8 + 10  # both kept
    summary = pd.read_csv(tmp_path / "converge-mnist-step-ir100-summary.csv").set_index(["method", "device"])
    assert summary.loc[("bagan_gp", "cpu"), "converged_step"] == 500
    assert summary.loc[("bagan_gp", "cuda"), "converged_step"] == 750
    got = conv.card_budgets()
    gp = got["bagan_gp"]["28px grey"]
    assert gp["steps"] == 750 and "at_least" not in gp  # the GPU's seeds needed longer: they count
    assert gp["seconds_per_step"] == 0.8 and gp["machine"].startswith("CPU box")  # the pace people will see
    b = got["bagan"]["28px grey"]
    assert b["at_least"] and b["steps"] == 2750 and b["not_converged"] == "mnist-step-ir100"
    assert b["seconds_per_step"] == 0.2 and b["machine"].startswith("CPU box")
    from ui import convergence_chart
    from ui import taxonomy as tx

    fig = convergence_chart.curve_figure(curves, "mnist-step-ir100")
    labels = {tr.hovertemplate.split(" class")[0] for tr in fig.data}
    assert {"bagan_gp seed 0 cpu", "bagan_gp seed 0 cuda", "bagan seed 1 cuda"} <= labels  # never one zigzag line
    (t,) = tx.convergence_tables(tmp_path)
    assert "device" in t["summary"].columns and "also GPU box" in t["caption"]


def test_recover_merges_a_runs_curve_with_its_device_and_refuses_a_gpu_run_without_its_machine(tmp_path, monkeypatch):
    conv = load_bench("converge")
    monkeypatch.setattr(conv, "RESULTS", tmp_path)
    cfg = tiny_config(method="acgan", imbalance="drop", drop=90.0, minority=(3,), quality_curve="on", steps=3, seed=4)
    d = _train(cfg, tmp_path / "runs")
    conv.recover("digits", d, threads=1)
    df = pd.read_csv(tmp_path / "converge-digits.csv")
    assert set(df["method"]) == {"acgan"} and set(df["seed"]) == {4} and set(df["device"]) == {"cpu"}
    assert df["step"].tolist() == [r["adv_step"] for r in convergence.read_curve(d)]
    # the same run said to have trained on a GPU: its machine line is required, then kept as a curve of its own
    st = runs.read_status(d)
    (d / "status.json").write_text(json.dumps({**st, "device": "cuda:0"}))
    with pytest.raises(SystemExit, match="--recover-machine"):
        conv.recover("digits", d, threads=1)
    conv.recover("digits", d, threads=1, where="NVIDIA H200", load=2.5)
    df = pd.read_csv(tmp_path / "converge-digits.csv")
    assert sorted(set(df["device"])) == ["cpu", "cuda"]
    assert set(df[df["device"] == "cuda"]["machine"]) == {"NVIDIA H200"}
