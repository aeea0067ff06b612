"""The loop: run-directory outputs, resume equal to uninterrupted, the balanced dataset."""

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from imbagan import generate, runs, train
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
    ck = load_checkpoint(d / "checkpoint.pt")
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
    assert load_checkpoint(ck)["step"] == stop_at
    assert train.train(split, resume=True) == "done"
    a, b = _metrics(whole), _metrics(split)
    later = [s for s in a if s > stop_at]
    assert later and all(a[s] == b[s] for s in later)
    sa = load_checkpoint(whole / "checkpoint.pt")["method"]["G"]
    sb = load_checkpoint(ck)["method"]["G"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_balanced_dataset_restores_balance(tmp_path):
    cfg = tiny_config(method="bagan", imbalance="step", ir=10.0)
    d = runs.create(cfg, tmp_path)
    train.train(d)
    out = generate.balanced_dataset(d)
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
    z = np.load(generate.balanced_dataset(d))
    gen_labels = set(z["y"][z["generated"]].tolist())
    assert gen_labels == {3}


def test_balanced_dataset_needs_a_checkpoint(tmp_path):
    d = runs.create(tiny_config(), tmp_path)
    with pytest.raises(ValueError, match="no checkpoint"):
        generate.balanced_dataset(d)


def test_evaluate_after_is_launched_by_runs_and_a_failed_launch_leaves_the_run_done(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(runs, "start_evaluation", lambda d: calls.append(Path(d)))
    d = runs.create(tiny_config(evaluate_after=True), tmp_path)
    assert train.worker_main(d) == 0
    assert calls == [d] and runs.read_status(d)["state"] == "done"

    def boom(d):
        raise ValueError("no evaluation today")

    monkeypatch.setattr(runs, "start_evaluation", boom)
    d2 = runs.create(tiny_config(evaluate_after=True), tmp_path)
    assert train.worker_main(d2) == 0
    assert runs.read_status(d2)["state"] == "done"

    # An evaluation launched alongside (runs.start) that saw the training end "done" is not launched again;
    # one that evaluated a stopped run's checkpoint is, once a resumed training is done.
    calls.clear()
    monkeypatch.setattr(runs, "start_evaluation", lambda d: calls.append(Path(d)))
    for seen, relaunched in (("done", False), ("stopped", True)):
        d3 = runs.create(tiny_config(evaluate_after=True), tmp_path)
        (d3 / "eval").mkdir()
        runs.write_json_atomic(d3 / "eval" / "metrics.json", {"run": {"training_state": seen}})
        assert train.worker_main(d3) == 0
        assert (d3 in calls) == relaunched


def test_eta_uses_each_stage_own_pace():
    # 100 autoencoder steps at 0.01 s, then adversarial steps at 0.1 s: one average would say 0.055 s.
    t = {"pretrain": [1.0, 100], "adversarial": [0.0, 0]}
    assert train.eta_seconds(t, 50, 100, 300) == (None, pytest.approx(0.5))  # adversarial pace unknown yet
    t = {"pretrain": [1.0, 100], "adversarial": [1.0, 10]}
    assert train.eta_seconds(t, 110, 100, 300) == (pytest.approx(19.0), pytest.approx(19.0))
    t = {"pretrain": [0.5, 50], "adversarial": [1.0, 10]}  # resumed: both paces known while pre-training
    assert train.eta_seconds(t, 50, 100, 300) == (pytest.approx(0.5 + 20.0), pytest.approx(0.5))


def test_the_training_takes_the_cores_its_waiting_evaluation_leaves(tmp_path, monkeypatch):
    monkeypatch.delenv("IMBAGAN_THREADS", raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    monkeypatch.setattr("imbagan.cores.usable_cores", lambda: 2)
    monkeypatch.setattr("imbagan.cores.OthersLoad.read", lambda self: 0.0)  # nothing else runs: no shrinking
    d = runs.create(tiny_config(method="gan"), tmp_path)
    (d / "eval").mkdir()
    ev = {"state": "running", "pid": os.getpid(), "heartbeat": time.time(), "error": None,
          "phase": "training 6 classifiers together"}
    runs.write_json_atomic(d / "eval" / "status.json", ev)
    before, lines, seen = torch.get_num_threads(), [], []
    torch.set_num_threads(2)  # torch's default on 2 cores, whatever an earlier test left

    def stop() -> bool:  # called every step: the evaluation starts waiting after step 3
        seen.append(torch.get_num_threads())
        if len(seen) == 4:
            runs.write_json_atomic(d / "eval" / "status.json", {**ev, "heartbeat": time.time(),
                                                                "waiting_for_training": True})
        return False

    try:
        assert train.train(d, should_stop=stop, log=lines.append) == "done"
        assert seen[0] == 1  # half of 2 cores while the evaluation computes
        assert seen[-1] == 2  # every core (torch's default) once it only waits
        assert any("the evaluation is waiting for this run" in s for s in lines)
    finally:
        torch.set_num_threads(before)


def test_precision_auto_uses_bf16_only_for_a_method_measured_in_it_on_a_native_bf16_cpu(monkeypatch):
    from types import SimpleNamespace

    from imbagan.config import TrainConfig

    cpu = torch.device("cpu")
    measured, unmeasured = SimpleNamespace(bf16_measured=True), SimpleNamespace(bf16_measured=False)
    assert METHODS["gan"].bf16_measured and not METHODS["acgan"].bf16_measured
    for native in (True, False):
        monkeypatch.setattr(train, "native_bf16", lambda device, native=native: native)
        assert train.uses_bf16(TrainConfig(precision="auto"), measured, cpu) is native
        assert train.uses_bf16(TrainConfig(precision="auto"), unmeasured, cpu) is False
        assert train.uses_bf16(TrainConfig(precision="bf16"), unmeasured, cpu) is True
        assert train.uses_bf16(TrainConfig(precision="fp32"), measured, cpu) is False
    monkeypatch.setattr(train, "native_bf16", lambda device: True)
    assert train.uses_bf16(TrainConfig(precision="auto"), measured, torch.device("cuda")) is False  # not measured
    with pytest.raises(ValueError, match="precision must be one of auto, fp32, bf16"):
        TrainConfig(precision="fp16")


def test_a_bf16_run_trains_under_autocast_and_keeps_float32_weights(tmp_path, monkeypatch):
    seen = []
    real_autocast = torch.autocast

    def spy(*a, **kw):
        seen.append((kw.get("dtype"), kw.get("enabled")))
        return real_autocast(*a, **kw)

    monkeypatch.setattr(torch, "autocast", spy)
    d = runs.create(tiny_config(method="gan", precision="bf16"), tmp_path)
    lines = []
    assert train.train(d, log=lines.append) == "done"
    assert seen and all(s == (torch.bfloat16, True) for s in seen)
    assert json.loads((d / "status.json").read_text())["precision"] == "bf16"
    assert any("bf16 autocast" in s for s in lines)
    ck = load_checkpoint(d / "checkpoint.pt")
    weights = [v for k, v in ck["method"]["G"].items() if k.endswith("weight")]
    assert weights and all(w.dtype == torch.float32 and torch.isfinite(w).all() for w in weights)


def test_the_training_gives_a_core_back_when_another_process_takes_it(tmp_path, monkeypatch):
    """Issue 22 §1: once per tick the worker reads the others' load (here: one core busy elsewhere) and, after two
    readings agree, trains on the core that is left; the change is logged and put in the status."""
    monkeypatch.delenv("IMBAGAN_THREADS", raising=False)
    monkeypatch.setattr("imbagan.cores.usable_cores", lambda: 2)
    monkeypatch.setattr("imbagan.cores.OthersLoad.read", lambda self: 1.0)
    d = runs.create(tiny_config(method="gan"), tmp_path)
    before, lines, seen = torch.get_num_threads(), [], []
    try:
        assert train.train(d, should_stop=lambda: seen.append(torch.get_num_threads()) or False,
                           log=lines.append) == "done"
        assert seen[0] == 2 and seen[-1] == 1
        assert any("the free cores changed: training on 1 thread(s)" in s for s in lines)
        assert runs.read_status(d)["threads"] == 1
    finally:
        torch.set_num_threads(before)
