"""The evaluation: metrics against hand-computed values, SSIM, Fréchet distance, baselines, end to end."""

import json
import math
import time

import numpy as np
import pytest
import torch

from imbagan import classifiers, conditions, evalconfig, evalfiles, evaluate, quality, runs, train, trainsets
from imbagan.config import TrainConfig
from imbagan.evaluate import EvalConfig


def test_classification_metrics_match_hand_computed_values():
    y_true = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
    y_pred = [0, 0, 0, 1, 1, 1, 2, 2, 2, 0]
    m = quality.classification_metrics(np.array(y_true), np.array(y_pred), ["a", "b", "c"], minority=2)
    recall = [3 / 4, 2 / 3, 2 / 3]
    precision = [3 / 4, 2 / 3, 2 / 3]  # predicted 0: three of four right; 1 and 2: two of three
    assert m["accuracy"] == pytest.approx(7 / 10)
    assert m["acsa"] == pytest.approx(sum(recall) / 3)
    assert m["gmean"] == pytest.approx(math.prod(recall) ** (1 / 3))
    f1 = [2 * p * r / (p + r) for p, r in zip(precision, recall)]
    assert m["macro_f1"] == pytest.approx(sum(f1) / 3)
    assert [r["recall"] for r in m["per_class"]] == pytest.approx(recall)
    assert [r["precision"] for r in m["per_class"]] == pytest.approx(precision)
    assert [r["support"] for r in m["per_class"]] == [4, 3, 3]
    assert m["confusion"] == [[3, 1, 0], [0, 2, 1], [1, 0, 2]]
    assert m["minority"]["class"] == "c" and m["minority"]["recall"] == pytest.approx(2 / 3)
    # A class never recognised makes the G-mean 0 while ACSA stays positive.
    m0 = quality.classification_metrics(np.array([0, 0, 1, 1]), np.array([0, 0, 0, 0]), ["a", "b"])
    assert m0["gmean"] == 0.0 and m0["acsa"] == pytest.approx(0.5)


@pytest.mark.parametrize("channels", [1, 3])
def test_ssim_is_one_for_the_same_image_and_near_zero_for_unrelated_noise(channels):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (channels, 16, 16), dtype=np.uint8)
    b = rng.integers(0, 256, (channels, 16, 16), dtype=np.uint8)
    assert quality.ssim(a, a) == pytest.approx(1.0)
    assert abs(quality.ssim(a, b)) < 0.1


def test_nearest_ssim_finds_the_copy_and_skips_itself():
    rng = np.random.default_rng(1)
    ref = rng.integers(0, 256, (5, 1, 16, 16), dtype=np.uint8)
    cpu = torch.device("cpu")
    assert quality.nearest_ssim(ref[[3, 1]], ref, cpu) == pytest.approx(1.0)  # memorised copies
    assert quality.nearest_ssim(ref, ref, cpu, exclude_self=True) < 0.1  # distinct noise images
    twins = np.concatenate([ref[:1], ref[:1]])
    assert quality.nearest_ssim(twins, twins, cpu, exclude_self=True) == pytest.approx(1.0)
    assert math.isnan(quality.nearest_ssim(ref[:1], ref[:1], cpu, exclude_self=True))


def test_frechet_distance_is_zero_for_the_same_set_and_the_squared_shift_for_a_shifted_one():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 6)) @ rng.normal(size=(6, 6))  # correlated features
    m = np.array([0.5, -1.0, 2.0, 0.0, 0.25, 1.5])
    assert quality.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    # Same covariance, mean moved by m: d² = ||m||² exactly.
    assert quality.frechet_distance(a, a + m) == pytest.approx(m @ m, rel=1e-6)
    assert quality.frechet_distance(a, a + 2 * m) == pytest.approx(4 * (m @ m), rel=1e-6)
    assert math.isnan(quality.frechet_distance(a[:1], a))


def _toy(counts, seed=0):
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.full(n, c) for c, n in enumerate(counts)]).astype(np.int64)
    x = rng.integers(0, 256, (len(y), 1, 16, 16), dtype=np.uint8)
    return x, y


def test_smote_grows_a_two_image_class_between_its_two_images_and_oversamples_a_single():
    x, y = _toy([10, 2, 1])
    x2, y2, note = trainsets.smote(x, y, seed=0)
    assert np.bincount(y2).tolist() == [10, 10, 10]
    assert np.array_equal(x2[: len(x)], x)  # the originals come first, untouched
    a, b = x[y == 1].astype(int)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    new1 = x2[len(x):][y2[len(x):] == 1].astype(int)
    assert len(new1) == 8 and ((new1 >= lo) & (new1 <= hi)).all()  # on the segment between the two
    assert (x2[y2 == 2] == x[y == 2]).all()  # the single image, repeated
    assert "k_neighbors=1" in note and "[2]" in note


def test_mirror_adds_each_minority_image_mirrored_at_most_once_and_oversample_balances():
    x, y = _toy([10, 3, 8])
    xm, ym = trainsets.mirror(x, y, seed=0)
    assert np.bincount(ym).tolist() == [10, 6, 10]
    flipped = x[y == 1][..., ::-1]
    added = xm[len(x):][ym[len(x):] == 1]
    assert sorted(a.tobytes() for a in added) == sorted(f.tobytes() for f in flipped)
    xo, yo = trainsets.oversample(x, y, seed=0)
    assert np.bincount(yo).tolist() == [10, 10, 10]
    assert all(any((img == o).all() for o in x[y == 1]) for img in xo[yo == 1])


def test_eval_config_validates_and_names_blends():
    cfg = EvalConfig(conditions=("imbalanced", "gan", "full"), blend=(0.5, 1.0))
    assert cfg.condition_names() == ["imbalanced", "gan_0.5", "gan", "full"]
    assert EvalConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    for bad in (dict(classifier="vgg"), dict(conditions=("imbalanced", "nope")), dict(blend=(0.0,)),
                dict(epochs=0), dict(tsne_points=5), dict(device="tpu")):
        with pytest.raises(ValueError):
            EvalConfig(**bad)
    assert set(evalconfig.CLASSIFIERS) == set(classifiers.BUILDERS)


@pytest.mark.parametrize("arch,dim", [("cnn", 32), ("resnet18", 512)])
def test_classifiers_take_small_grey_images(arch, dim):
    net = classifiers.build_classifier(arch, 1, 3, width=8).eval()
    x = torch.zeros(2, 1, 16, 16)
    assert net(x).shape == (2, 3) and net.features(x).shape == (2, dim)


def test_cli_flags_build_the_eval_config():
    import argparse

    p = argparse.ArgumentParser()
    evalconfig.add_arguments(p)
    a = p.parse_args(["--epochs", "3", "--conditions", "imbalanced", "gan", "--blend", "0.5", "1"])
    assert evalconfig.config_from_args(a) == EvalConfig(epochs=3, conditions=("imbalanced", "gan"), blend=(0.5, 1.0))


def test_automatic_conditions_are_every_one_on_a_gpu_and_the_verdicts_on_a_cpu():
    auto = EvalConfig()
    assert auto.conditions == ()
    assert auto.condition_names("cuda:0") == list(conditions.CONDITIONS)
    assert auto.condition_names(torch.device("cpu")) == list(evalconfig.CPU_CONDITIONS)
    # the CPU set keeps what a verdict needs: the untreated classifier, the cheapest fixes, the GAN, the ceiling
    assert {"imbalanced", "logit_adjust", "la_loss", "gan", "full"} <= set(evalconfig.CPU_CONDITIONS)
    asked = EvalConfig(conditions=("imbalanced", "gan"), blend=(0.5, 1.0))
    assert asked.condition_names("cuda") == asked.condition_names("cpu") == ["imbalanced", "gan_0.5", "gan"]


@pytest.mark.slow  # a whole evaluation, about 30 s of CPU
def test_end_to_end_on_a_short_digits_run(tmp_path, monkeypatch):
    monkeypatch.setenv("IMBAGAN_CACHE", str(tmp_path))
    # Inception FID runs for real on a randomly initialised network (no weights), 20 images a side.
    torch.manual_seed(0)
    net = quality.inception_network()
    monkeypatch.setattr(quality, "find_inception_weights", lambda: tmp_path / "random-inception.pth")
    monkeypatch.setattr(quality, "inception_network", lambda weights=None: net)
    monkeypatch.setattr(quality, "INCEPTION_IMAGES", 20)
    heldout = []  # the real side each FID is given
    real_quality = quality.generated_quality
    monkeypatch.setattr(quality, "generated_quality", lambda *a, **k: heldout.append(k["heldout"]) or real_quality(*a, **k))
    cfg = TrainConfig(dataset="digits", method="bagan", imbalance="drop", drop=90, minority=(0,), steps=40,
                      ae_steps=20, batch_size=16, width=16, tick_every=10, sample_every=20, checkpoint_every=20,
                      device="cpu")
    d = runs.create(cfg, root=tmp_path)
    assert train.train(d, log=lambda s: None) == "done"
    ecfg = EvalConfig(epochs=2, batch_size=64, width=8, tsne_points=300, quality_images=40, ssim_pairs=10,
                      blend=(0.5, 1.0), device="cpu", conditions=conditions.CONDITIONS)
    out = evaluate.evaluate_run(d, ecfg, log=None)
    ev = d / "eval"
    for name in ("config.json", "status.json", "metrics.json", "report.csv", "quality.csv", "tsne.npz", "log.txt"):
        assert (ev / name).is_file(), name
    conds = out["conditions"]
    assert list(conds) == ["imbalanced", "oversample", "mirror", "smote", "class_weight", "logit_adjust", "la_loss",
                           "drw", "augment", "gan_0.5", "gan", "full"]
    # Two classifier seeds everywhere (repeats=2), a spread per condition, a verdict per GAN condition.
    assert out["repeats"]["n"] == 2 and all(len(m["repeats"]) == 2 for m in conds.values())
    assert conds["gan"]["spread"]["acsa"]["n"] == 2
    v = out["verdict"]
    assert set(v["conditions"]) == {"gan", "gan_0.5"} and "twice its standard error" in v["rule"]
    best = v["best_baseline"]
    assert best not in ("imbalanced", "full", "gan", "gan_0.5")
    assert best == max((n for n in conds if n not in ("imbalanced", "full", "gan", "gan_0.5")),
                       key=lambda n: conds[n]["spread"]["acsa"]["mean"])
    g = v["conditions"]["gan"]
    assert set(g["vs"]) == {"imbalanced", best} and g["vs"][best]["acsa"]["word"] in ("better", "worse", "within noise")
    diffs = [a["acsa"] - b["acsa"] for a, b in zip(conds["gan"]["repeats"], conds[best]["repeats"])]
    assert g["vs"][best]["acsa"]["diff"] == pytest.approx(np.mean(diffs))
    # Post-hoc logit adjustment reuses the imbalanced classifiers: same training set, no training of its own.
    assert conds["logit_adjust"]["train_counts"] == out["run"]["train_counts"] and "log prior" in conds["logit_adjust"]["note"]
    counts = out["run"]["train_counts"]
    assert out["run"]["minority"] == 0 and counts[0] < min(counts[1:])
    # The generator judged: all 40 adversarial steps (the autoencoder's 20 not counted), training done.
    assert (out["run"]["gan_step"], out["run"]["gan_steps"], out["run"]["training_state"]) == (40, 40, "done")
    assert conds["imbalanced"]["train_counts"] == counts
    for name in ("oversample", "smote", "gan"):  # balanced to the largest class
        assert conds[name]["train_counts"] == [max(counts)] * 10
    gap = max(counts) - counts[0]
    assert conds["gan_0.5"]["train_counts"][0] == counts[0] + round(gap / 2)
    assert conds["mirror"]["train_counts"][0] == 2 * counts[0]
    # Same seed, same budget: the numbers differ only because the data does.
    assert conds["imbalanced"]["per_class"] != conds["oversample"]["per_class"]
    assert conds["imbalanced"]["confusion"] != conds["full"]["confusion"]
    st = json.loads((ev / "status.json").read_text())
    assert st["state"] == "done" and st["progress"] == 1.0

    saved = json.loads((ev / "metrics.json").read_text())
    assert saved["conditions"]["gan"]["acsa"] == pytest.approx(conds["gan"]["acsa"])
    qrows = saved["quality"]["per_class"]
    assert len(qrows) == 10 and all(r["generated"] == 40 for r in qrows)
    assert all(0 <= r["class_accuracy"] <= 1 and r["domain_fid"] >= 0 for r in qrows)
    # FID's real side is the held-out test split, matched class for class with the generated side.
    assert saved["quality"]["fid_real"] == "test split"
    test_counts = out["run"]["test_counts"]
    assert len(heldout) == 1 and np.bincount(heldout[0].y, minlength=10).tolist() == test_counts
    assert [r["fid_images"] for r in qrows] == [min(40, n) for n in test_counts]
    assert saved["quality"]["overall"]["fid_images"] == sum(min(40, n) for n in test_counts)
    inc = saved["quality"]["inception_fid"]
    assert inc["images"] == 20 and [r["images"] for r in inc["per_class"]] == [2] * 10
    assert math.isfinite(inc["value"]) and inc["value"] > 0

    got = evalfiles.read_evaluation(d)
    assert got["status"]["state"] == "done" and EvalConfig.from_dict(got["config"]) == ecfg
    rows = [r for r in got["report"] if r["condition"] == "gan"]
    assert len(rows) == 11 and rows[-1]["class"] == "all"
    assert rows[-1]["acsa"] == pytest.approx(conds["gan"]["acsa"])
    t = got["tsne"]
    n = len(t["labels"])
    assert 250 <= n <= 310 and set(np.unique(t["kind"])) == {0, 1, 2}
    assert np.isnan(t["xy_before"][t["kind"] == 1]).all() and np.isfinite(t["xy_before"][t["kind"] != 1]).all()
    assert np.isfinite(t["xy_after"]).all()
    real = t["kind"] != 1  # one map: the real points sit at the same place in both panels
    np.testing.assert_array_equal(t["xy_before"][real], t["xy_after"][real])

    # Same inputs again (the reference is retrained deterministically on CPU): the t-SNE is reused.
    again = evaluate.evaluate_run(d, ecfg.replace(conditions=("full",)), log=None)
    assert again["tsne"]["cached"] is True
    assert list(again["conditions"]) == ["full"]


def test_a_run_without_a_checkpoint_is_evaluated_without_the_gan(tmp_path):
    cfg = TrainConfig(dataset="digits", imbalance="step", ir=5.0, device="cpu")
    d = runs.create(cfg, root=tmp_path)
    # A run that ended without a checkpoint (a just-created 'queued' one counts as launching for a minute).
    runs.write_json_atomic(d / "status.json", {**runs.read_json(d / "status.json"), "state": "stopped"})
    out = evaluate.evaluate_run(d, EvalConfig(epochs=1, width=8, conditions=("imbalanced", "gan"), device="cpu"),
                                log=None)
    assert list(out["conditions"]) == ["imbalanced"]
    assert "no checkpoint" in out["skipped"]["gan"]
    assert out["quality"] is None and out["tsne"] is None


@pytest.mark.slow
def test_start_evaluation_runs_the_cli_in_the_background(tmp_path):
    d = runs.create(TrainConfig(dataset="digits", imbalance="step", ir=5.0, device="cpu"), root=tmp_path)
    # A run that ended without a checkpoint (a just-created 'queued' one counts as launching).
    runs.write_json_atomic(d / "status.json", {**runs.read_json(d / "status.json"), "state": "stopped"})
    cfg = EvalConfig(epochs=1, width=8, conditions=("imbalanced", "oversample"), tsne_points=0, device="cpu")
    evaluate.start_evaluation(d, cfg)
    with pytest.raises(ValueError, match="already being evaluated"):
        evaluate.start_evaluation(d, cfg)
    deadline = time.time() + 120
    while (got := evalfiles.read_evaluation(d))["status"]["state"] in runs.ACTIVE and time.time() < deadline:
        time.sleep(0.5)
    log = (d / "eval" / "log.txt").read_text()
    assert got["status"]["state"] == "done", log
    assert list(got["metrics"]["conditions"]) == ["imbalanced", "oversample"]
    assert EvalConfig.from_dict(got["config"]) == cfg
    assert log.count("evaluation done") == 1  # stdout is the log file: each line once


def test_post_hoc_logit_adjustment_against_hand_computed_logits():
    logits = np.array([[2.0, 1.0, 0.0], [0.1, 0.2, 0.3]])
    counts = [80, 15, 5]
    prior = np.array([0.8, 0.15, 0.05])
    expected = logits - np.log(prior)
    assert np.allclose(conditions.adjust_logits(logits, counts), expected)
    # The rare class wins the first row once the prior is taken out: 2 - ln .8 = 2.22 < 0 - ln .05 = 3.0
    assert conditions.adjust_logits(logits, counts)[0].argmax() == 2
    assert np.allclose(conditions.adjust_logits(logits, counts, tau=0.0), logits)


def test_the_budget_is_capped_and_declared_before_training():
    cfg = EvalConfig(epochs=15, batch_size=128)
    assert evalconfig.budget_steps([140] * 10, cfg) == 15 * math.ceil(1400 / 128)
    assert evalconfig.budget_steps([6000, 60], cfg) == evalconfig.STEP_CAP
    assert evalconfig.repeats_for(EvalConfig(), "cpu") == evalconfig.CPU_REPEATS
    assert evalconfig.repeats_for(EvalConfig(repeats=5), "cpu") == 5
