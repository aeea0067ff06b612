"""The loop: run-directory outputs, resume equal to uninterrupted, the balanced dataset."""

import json

import numpy as np
import pytest
import torch

from imbagan import runs, train
from imbagan.methods import METHODS
from imbagan.train import load_checkpoint
from tests.conftest import tiny_config


def _metrics(d):
    return {r["step"]: {k: v for k, v in r.items() if k not in ("time", "steps_per_s", "img_per_s")}
            for r in runs.read_metrics(d)}


def test_train_writes_the_run_directory(tmp_path):
    cfg = tiny_config(method="bagan", imbalance="drop", drop=90.0, minority=(0,))
    d = runs.create(cfg, tmp_path)
    assert train.train(d) == "done"
    st = json.loads((d / "status.json").read_text())
    assert st["state"] == "done" and st["step"] == st["total"] == 9
    assert st["counts"][0] < st["counts"][1]  # class 0 was cut to 10%
    recs = runs.read_metrics(d)
    assert [r["step"] for r in recs] == [2, 3, 4, 6, 8, 9]
    assert recs[0]["phase"] == "pretrain" and "ae_loss" in recs[0]
    assert recs[-1]["phase"] == "adversarial" and {"d_loss", "g_loss", "aux_acc"} <= set(recs[-1])
    grids = [p.name for p in runs.sample_paths(d)]
    assert grids == ["000003.png", "000006.png", "000009.png"]  # at the switch to GAN, then every 3 steps
    ck = load_checkpoint(d / "checkpoint.pt", torch.device("cpu"))
    assert ck["step"] == 9 and ck["pretrained"] is True


@pytest.mark.parametrize("method,stop_at", [("bagan", 2), ("bagan", 6)]  # in the autoencoder stage, in the GAN
                         + [(m, 6) for m in METHODS if m != "bagan"])
def test_resume_gives_the_same_results_as_an_uninterrupted_run(tmp_path, method, stop_at):
    cfg = tiny_config(method=method, steps=8, ae_steps=4, tick_every=2, checkpoint_every=stop_at)
    whole = runs.create(cfg, tmp_path / "a")
    train.train(whole)
    split = runs.create(cfg, tmp_path / "b")
    ck = split / "checkpoint.pt"
    assert train.train(split, should_stop=lambda: ck.exists()) == "stopped"
    assert load_checkpoint(ck, torch.device("cpu"))["step"] == stop_at
    assert train.train(split, resume=True) == "done"
    a, b = _metrics(whole), _metrics(split)
    later = [s for s in a if s > stop_at]
    assert later and all(a[s] == b[s] for s in later)
    sa = load_checkpoint(whole / "checkpoint.pt", torch.device("cpu"))["method"]["G"]
    sb = load_checkpoint(ck, torch.device("cpu"))["method"]["G"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_balanced_dataset_restores_balance(tmp_path):
    cfg = tiny_config(method="bagan", imbalance="step", ir=10.0)
    d = runs.create(cfg, tmp_path)
    train.train(d)
    out = train.balanced_dataset(d)
    z = np.load(out)
    counts = np.bincount(z["y"])
    assert len(set(counts.tolist())) == 1, counts  # every class now matches the largest
    assert z["x"].dtype == np.uint8 and z["x"].shape[1:] == (1, 16, 16)
    real = int((~z["generated"]).sum())
    assert real == sum(json.loads((d / "status.json").read_text())["counts"])
    assert z["generated"].sum() == len(z["y"]) - real > 0


def test_balanced_dataset_of_the_minority_gan_tops_up_only_its_classes(tmp_path):
    cfg = tiny_config(method="gan", imbalance="drop", drop=90.0, minority=(3,))
    d = runs.create(cfg, tmp_path)
    train.train(d)
    z = np.load(train.balanced_dataset(d))
    gen_labels = set(z["y"][z["generated"]].tolist())
    assert gen_labels == {3}


def test_balanced_dataset_needs_a_checkpoint(tmp_path):
    d = runs.create(tiny_config(), tmp_path)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train.balanced_dataset(d)


def test_a_failing_evaluation_after_training_leaves_the_run_done(tmp_path, monkeypatch):
    from imbagan import evaluate

    def boom(*a, **k):
        raise RuntimeError("no classifier today")

    monkeypatch.setattr(evaluate, "evaluate_run", boom)
    d = runs.create(tiny_config(evaluate_after=True), tmp_path)
    assert train.worker_main(d) == 0
    assert runs.read_status(d)["state"] == "done"
