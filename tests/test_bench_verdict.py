"""bench/verdict.py's table: one row per condition with mean ± std over seeds, the GAN's row with its verdict."""

from __future__ import annotations

import pytest

from imbagan import verdict
from tests.conftest import load_bench


def _bench():
    return load_bench("verdict")


def _condition(acsa: list[float], recall: list[float]) -> dict:
    reps = [{"acsa": a, "minority_recall": r} for a, r in zip(acsa, recall)]
    return {"repeats": reps, "train_size": 100, "note": "",
            "spread": {"acsa": verdict.spread(acsa), "minority_recall": verdict.spread(recall)}}


def test_rows_carry_the_spread_and_the_gan_its_verdict():
    per_seed = {"imbalanced": {"acsa": [0.90, 0.91, 0.92], "minority_recall": [0.5, 0.6, 0.55]},
                "logit_adjust": {"acsa": [0.97, 0.98, 0.975], "minority_recall": [0.9, 0.92, 0.91]},
                "gan": {"acsa": [0.93, 0.935, 0.94], "minority_recall": [0.7, 0.72, 0.71]}}
    out = {"conditions": {k: _condition(v["acsa"], v["minority_recall"]) for k, v in per_seed.items()},
           "verdict": {"rule": verdict.RULE, "conditions": verdict.verdicts(per_seed)}}
    bench = _bench()
    assert set(bench.CONDITIONS) == {"imbalanced", "logit_adjust", "la_loss", "drw", "augment", "oversample",
                                     "class_weight", "gan", "full"}
    rows = {r["condition"]: r for r in bench.rows_of(out, {"dataset": "mnist"})}
    imb = rows["imbalanced"]
    assert imb["acsa_mean"] == pytest.approx(0.91) and imb["acsa_std"] == pytest.approx(0.01)
    assert rows["imbalanced"]["seeds"] == 3 and "verdict" not in rows["imbalanced"]
    g = rows["gan"]
    assert g["best_baseline"] == "logit_adjust" and g["dataset"] == "mnist"
    assert g["vs_best_acsa_diff"] == pytest.approx(-0.04) and g["vs_best_acsa_word"] == "worse"
    assert g["vs_imbalanced_minority_recall_diff"] == pytest.approx(0.16)
    assert g["verdict"].startswith("gan: 4.0 ± ")


def test_gan_seeds_pool_into_one_paired_verdict():
    """Two GAN seeds, two classifier seeds each: the verdict is taken over the four (GAN, classifier) pairs."""
    def out(gan_acsa):
        per_seed = {"imbalanced": {"acsa": [0.90, 0.92], "minority_recall": [0.5, 0.6]},
                    "la_loss": {"acsa": [0.95, 0.96], "minority_recall": [0.9, 0.9]},
                    "gan": {"acsa": gan_acsa, "minority_recall": [0.7, 0.7]}}
        return {"conditions": {k: _condition(v["acsa"], v["minority_recall"]) for k, v in per_seed.items()},
                "verdict": {"conditions": verdict.verdicts(per_seed)}, "timing": {"steps_per_condition": 10}}

    pooled = _bench().pooled([(None, out([0.94, 0.95])), (None, out([0.96, 0.97]))])
    gan = pooled["conditions"]["gan"]
    assert [r["acsa"] for r in gan["repeats"]] == [0.94, 0.95, 0.96, 0.97]
    assert gan["spread"]["acsa"]["n"] == 4 and gan["spread"]["acsa"]["mean"] == pytest.approx(0.955)
    v = pooled["verdict"]["conditions"]["gan"]
    assert v["best_baseline"] == "la_loss"
    # paired: (0.94-0.95, 0.95-0.96, 0.96-0.95, 0.97-0.96) -> mean 0, within noise
    assert v["vs"]["la_loss"]["acsa"]["diff"] == pytest.approx(0.0, abs=1e-12)
    assert v["vs"]["la_loss"]["acsa"]["word"] == "within noise"
    assert _bench().pooled([(None, out([0.9, 0.9]))])["conditions"]["gan"]["spread"]["acsa"]["n"] == 2


def test_the_taxonomy_page_shows_each_verdict_table_with_whether_its_gan_converged(tmp_path):
    """The page's verdicts come from bench/verdict.py's CSVs; a GAN trained below its measured budget is labelled."""
    import pandas as pd

    from imbagan import budgets
    from ui import taxonomy as tx

    need = budgets.measured("gan", budgets.family("fashion_mnist"))["steps"]
    row = {"condition": "gan", "acsa_mean": 0.9, "acsa_std": 0.01, "minority_recall_mean": 0.8,
           "minority_recall_std": 0.02, "seeds": 6, "method": "gan", "dataset": "fashion_mnist",
           "setting": "S", "ir": 100.0, "verdict": "gan: 1.0 ± 0.5 points below la_loss on ACSA (within noise)"}
    base = {**row, "condition": "imbalanced", "verdict": None}
    pd.DataFrame([base, row]).assign(gan_steps=need, budget=f"measured: gan {need} steps").to_csv(
        tmp_path / "verdict-fashion_mnist.csv", index=False)
    # An old table without gan_steps: its steps come from the budget text.
    pd.DataFrame([base, row]).assign(budget="quick: gan 600 steps, width 32").to_csv(
        tmp_path / "verdict-fashion_mnist-old.csv", index=False)
    first, second = tx.verdict_tables(tmp_path)
    assert first["trained"] == f"converged ({need:,} ≥ {need:,})" and first["path"].name == "verdict-fashion_mnist.csv"
    assert second["trained"] == f"NOT converged (600 < {need:,})"
    assert first["verdict"] == [row["verdict"]]
    assert list(first["table"]["training set"]) == ["imbalanced", "gan"]
    assert first["table"]["ACSA (%)"].iloc[1] == "90.0 ± 1.0"


def test_from_runs_takes_finished_runs_of_one_method_and_scenario_one_per_seed(tmp_path):
    """--from-runs judges runs as they were trained; it refuses what it could not pool into one verdict."""
    from imbagan import runs
    from imbagan.config import starting_config

    def run(method="cagan", seed=0, state="done", ir=100.0):
        d = runs.create(starting_config(dataset="digits", imbalance="step", ir=ir, method=method, seed=seed), tmp_path)
        runs.StatusWriter(d).update(state=state)
        return d

    finished_runs = _bench().finished_runs
    a, b = run(seed=0), run(seed=1)
    got = finished_runs([str(a), str(b)])
    assert [d for d, _ in got] == [a, b] and [c.seed for _, c in got] == [0, 1]
    cases = {"not a run folder": [str(tmp_path / "nothing")],
             "failed, not a finished run": [str(a), str(run(seed=2, state="failed"))],
             "one method on one scenario": [str(a), str(run(method="acgan", seed=3))],
             "step IR 10": [str(a), str(run(seed=4, ir=10.0))],
             "share a seed": [str(a), str(run(seed=0))]}
    for said, paths in cases.items():
        with pytest.raises(SystemExit, match=said):
            finished_runs(paths)
    # its CSV is named as bench/quality.py names the scenario
    assert _bench().from_runs_name(got[0][1]) == "verdict-digits-step-ir100-cagan.csv"
    cfg = starting_config(dataset="mnist", imbalance="binary", ir=100.0, minority=(5,), majority=6, method="bagan_gp")
    assert _bench().from_runs_name(cfg) == "verdict-mnist-binary-5v6-ir100-bagan_gp.csv"


def test_a_multi_class_verdict_table_names_its_imbalance_in_the_caption(tmp_path):
    import pandas as pd

    from ui import taxonomy as tx

    row = {"condition": "imbalanced", "acsa_mean": 0.9, "acsa_std": 0.01, "minority_recall_mean": 0.8,
           "minority_recall_std": 0.02, "seeds": 6, "method": "cagan", "dataset": "mnist", "setting": "MNIST, step IR 100",
           "imbalance": "step IR 100", "ir": 100.0, "gan_steps": 5000, "budget": "finished runs: cagan 5000 steps"}
    pd.DataFrame([row]).to_csv(tmp_path / "verdict-mnist-step-ir100-cagan.csv", index=False)
    (t,) = tx.verdict_tables(tmp_path)
    assert t["caption"].startswith("MNIST, step IR 100 · cagan · ") and "binary" not in t["caption"]


def test_an_option_verdict_has_its_own_file_and_caption(tmp_path):
    """--options / --set: the GAN trains with them, the default CSV gains method and option (a DiffAugment
    verdict never replaces the plain one), and the Taxonomy caption names the option."""
    import pandas as pd

    from imbagan.config import starting_config
    from ui import taxonomy as tx

    b = _bench()
    assert b.trained_name("mnist", "gan", "none") == "verdict-mnist.csv"  # the first table keeps its name
    assert b.trained_name("mnist", "cagan", "none") == "verdict-mnist-cagan.csv"
    assert b.trained_name("mnist", "gan", "diffaugment") == "verdict-mnist-gan-diffaugment.csv"
    assert b.trained_name("mnist", "gan", "lecam lecam_weight=0.1") == "verdict-mnist-gan-lecam-lecam_weight-0.1.csv"
    cfg = starting_config(dataset="mnist", imbalance="binary", ir=100.0, minority=(5,), majority=6, method="gan",
                          **b.OPTIONS["diffaugment"])
    assert b.from_runs_name(cfg) == "verdict-mnist-binary-5v6-ir100-gan-diffaugment.csv"
    row = {"condition": "gan", "acsa_mean": 0.98, "acsa_std": 0.01, "minority_recall_mean": 0.8,
           "minority_recall_std": 0.02, "seeds": 6, "method": "gan", "dataset": "mnist", "setting": "MNIST 5 vs 6",
           "imbalance": "binary IR 100", "gan_steps": 2250, "budget": "measured", "options": "diffaugment"}
    pd.DataFrame([row]).to_csv(tmp_path / "verdict-mnist-gan-diffaugment.csv", index=False)
    pd.DataFrame([row | {"options": "none lecam_weight=0.1"}]).to_csv(tmp_path / "verdict-mnist-gan-x.csv", index=False)
    pd.DataFrame([{k: v for k, v in row.items() if k != "options"}]).to_csv(tmp_path / "verdict-mnist.csv", index=False)
    captions = {t["path"].name: t["caption"] for t in tx.verdict_tables(tmp_path)}
    assert " · gan + DiffAugment · " in captions["verdict-mnist-gan-diffaugment.csv"]
    assert " · gan (lecam_weight=0.1) · " in captions["verdict-mnist-gan-x.csv"]
    assert " · gan · " in captions["verdict-mnist.csv"]


def test_options_fold_into_the_gan_config_and_refuse_from_runs(tmp_path, monkeypatch):
    """main() trains the GAN with the option and --set on top of the paper defaults; with --from-runs it refuses
    both, since finished runs are judged as they were trained."""
    import sys

    from imbagan.config import TrainConfig

    b = _bench()
    seen = {}

    def stop(d, log):
        seen["cfg"] = TrainConfig.load(d / "config.json")
        raise SystemExit("stopped after the config")

    monkeypatch.setattr(b.train, "train", stop)
    monkeypatch.setattr(sys, "argv", ["verdict.py", "--dataset", "mnist", "--budget", "quick", "--steps", "10",
                                      "--options", "diffaugment", "--set", "lecam_weight=0.1", "--device", "cpu",
                                      "--runs", str(tmp_path)])
    with pytest.raises(SystemExit, match="stopped after the config"):
        b.main()
    cfg = seen["cfg"]
    assert cfg.diffaugment == "color,translation,cutout" and cfg.lecam_weight == 0.1 and cfg.steps == 10
    monkeypatch.setattr(sys, "argv", ["verdict.py", "--from-runs", str(tmp_path), "--options", "lecam"])
    with pytest.raises(SystemExit, match="judges runs as they were trained"):
        b.main()


def test_a_verdict_table_records_what_precision_its_gans_and_classifiers_trained_in(tmp_path, monkeypatch):
    """The precision column comes from the runs' status.json (a run that does not say reads "?") and the
    classifiers' "auto" rule on the device; the Taxonomy caption shows it, and a table without it shows nothing."""
    import pandas as pd

    from imbagan import runs
    from imbagan.config import starting_config
    from ui import taxonomy as tx

    b = _bench()
    dirs = []
    for seed, prec in ((0, "bf16"), (1, "fp32"), (2, None)):
        d = runs.create(starting_config(dataset="digits", method="cagan", seed=seed), tmp_path / "runs")
        runs.StatusWriter(d).update(state="done", **({"precision": prec} if prec else {}))
        dirs.append(d)
    monkeypatch.setattr("imbagan.classifiers.native_bf16", lambda device: False)
    assert b.precision_of(dirs[:1], "cpu") == "GAN bf16, classifiers fp32"
    monkeypatch.setattr("imbagan.classifiers.native_bf16", lambda device: True)
    assert b.precision_of(dirs, "cpu") == "GAN ?/bf16/fp32, classifiers bf16"
    row = {"condition": "imbalanced", "acsa_mean": 0.9, "acsa_std": 0.01, "minority_recall_mean": 0.8,
           "minority_recall_std": 0.02, "seeds": 6, "method": "cagan", "dataset": "mnist", "setting": "MNIST 5 vs 6",
           "imbalance": "binary IR 100", "gan_steps": 2750, "budget": "measured", "machine": "Some CPU, 2 cores"}
    pd.DataFrame([row | {"precision": "GAN bf16, classifiers bf16"}]).to_csv(tmp_path / "verdict-mnist-a.csv", index=False)
    pd.DataFrame([row]).to_csv(tmp_path / "verdict-mnist-b.csv", index=False)
    captions = {t["path"].name: t["caption"] for t in tx.verdict_tables(tmp_path)}
    assert "on Some CPU, 2 cores, in GAN bf16, classifiers bf16 (load average" in captions["verdict-mnist-a.csv"]
    assert "on Some CPU, 2 cores (load average" in captions["verdict-mnist-b.csv"]


def test_the_verdict_summary_answers_which_gan_beats_the_best_fix_per_setting(tmp_path):
    """One row per GAN verdict; the sentence counts only GANs trained to their budget and names the closest per
    setting, or the ones that beat the fix beyond noise."""
    import pandas as pd

    from imbagan import budgets
    from ui import taxonomy as tx

    need = budgets.measured("gan", budgets.family("fashion_mnist"))["steps"]

    def table(name, setting, gan_acsa, diff, se, word, steps=need, method="gan"):
        base = {"acsa_std": 0.01, "minority_recall_mean": 0.5, "minority_recall_std": 0.1, "seeds": 6,
                "method": method, "dataset": "fashion_mnist", "setting": setting, "imbalance": "binary IR 100",
                "gan_steps": steps, "budget": "measured"}
        rows = [base | {"condition": "imbalanced", "acsa_mean": 0.80}, base | {"condition": "la_loss", "acsa_mean": 0.95},
                base | {"condition": "gan", "acsa_mean": gan_acsa, "best_baseline": "la_loss",
                        "vs_best_acsa_diff": diff, "vs_best_acsa_se": se, "vs_best_acsa_word": word,
                        "vs_imbalanced_acsa_diff": gan_acsa - 0.80, "vs_imbalanced_acsa_se": 0.01,
                        "vs_imbalanced_acsa_word": "better"}]
        pd.DataFrame(rows).to_csv(tmp_path / f"verdict-{name}.csv", index=False)

    table("a", "Pair A (0, minority)", 0.90, -0.05, 0.01, "worse")
    table("b", "Pair A", 0.93, -0.02, 0.01, "within noise")
    table("c", "Pair B", 0.97, 0.02, 0.005, "better", steps=10)  # below its budget: listed, not counted
    df, said = tx.verdict_summary(tx.verdict_tables(tmp_path))
    assert list(df["setting"]) == ["Pair A, binary IR 100"] * 2 + ["Pair B, binary IR 100"]
    assert list(df["vs the best fix (points)"]) == ["-2.0 ± 1.0 (within noise)", "-5.0 ± 1.0 (worse)",
                                                    "+2.0 ± 0.5 (better)"]
    assert df.iloc[0]["best cheap fix"] == "la_loss 95.0 ± 1.0" and df.iloc[0]["topped up by the GAN (%)"] == "93.0 ± 1.0"
    assert df.iloc[2]["trained"].startswith("NOT converged")
    assert said.startswith("**No GAN trained to its budget beats the best cheap fix beyond noise** in any of the 1 ")
    assert "Pair A, binary IR 100: gan -2.0 ± 1.0 (within noise) against la_loss" in said
    table("c", "Pair B", 0.97, 0.02, 0.005, "better")  # now trained to its budget: it wins
    _, said = tx.verdict_summary(tx.verdict_tables(tmp_path))
    assert said == "**Beats the best cheap fix beyond noise:** gan on Pair B, binary IR 100, by +2.0 ± 0.5 (better) over la_loss."
    assert tx.verdict_summary([])[1] == ""
