"""Failures that must read as one sentence and never look like success (issue 11, items 5, 6, 9, 10).

Tiny in-process trainings on digits, plus a few real `python -m imbagan` commands; seconds each, CPU only.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from imbagan import rundir, runs, train
from imbagan.methods import METHODS
from tests.conftest import tiny_config

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "IMBAGAN_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "imbagan", "--runs", str(root), *args], capture_output=True,
                          text=True, env=env, timeout=300)


def one_line_error(p: subprocess.CompletedProcess) -> str:
    assert p.returncode != 0
    assert "Traceback" not in p.stdout + p.stderr, p.stdout + p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


# --- 9. divergence -----------------------------------------------------------------------------------------
def test_a_diverging_run_fails_with_the_step_the_loss_and_advice_and_keeps_its_last_good_checkpoint(
        tmp_path, monkeypatch):
    cls = METHODS["gan"]
    real_step = cls.train_step
    calls = {"n": 0}

    def exploding(self, *a, **k):
        out = real_step(self, *a, **k)
        calls["n"] += 1
        if calls["n"] >= 5:  # from step 5 on the losses blow up, as with lr 0.9
            out = {**out, "d_loss": out["d_loss"] * 0 + 4e10}
        return out

    monkeypatch.setattr(cls, "train_step", exploding)
    d = runs.create(tiny_config(method="gan", steps=8, tick_every=2, checkpoint_every=2, sample_every=2), tmp_path)
    assert train.worker_main(d) == 1
    st = runs.read_status(d)
    assert st["state"] == "failed"
    assert st["error"].startswith("diverged at step 6 (d_loss 4e+10)")
    assert "lower learning rate" in st["error"]
    assert train.load_checkpoint(d / "checkpoint.pt")["step"] == 4  # the last tick whose losses were sane
    assert not list(d.glob(".*.tmp"))


def test_non_finite_losses_count_as_divergence():
    with pytest.raises(train.Diverged, match=r"diverged at step 3 \(g_loss nan\)"):
        train.check_losses({"d_loss": 0.7, "g_loss": float("nan"), "steps_per_s": 5.0}, 3, 2e-4)
    train.check_losses({"d_loss": 0.7, "g_loss": 2.1, "acc": float("nan")}, 3, 2e-4)  # only losses are checked


# --- 10. metrics after a crash + resume ----------------------------------------------------------------------
def test_resume_drops_metric_records_logged_after_the_checkpoint(tmp_path, monkeypatch):
    d = runs.create(tiny_config(method="gan", steps=6, tick_every=1, checkpoint_every=3, sample_every=3), tmp_path)
    real_save = train.save_checkpoint
    # A crash after step 5's tick but before step 6's checkpoint: the last checkpoint is step 3.
    monkeypatch.setattr(train, "save_checkpoint", lambda path, m, step, *a: real_save(path, m, step, *a)
                        if step <= 3 else None)
    train.train(d, log=lambda s: None)
    assert [r["step"] for r in runs.read_metrics(d)] == [1, 2, 3, 4, 5, 6]
    monkeypatch.setattr(train, "save_checkpoint", real_save)
    assert train.train(d, resume=True, log=lambda s: None) == "done"
    assert [r["step"] for r in runs.read_metrics(d)] == [1, 2, 3, 4, 5, 6]  # not 1..6, 4, 5, 6


# --- 5. a full disk, in the worker ----------------------------------------------------------------------------
def test_a_worker_that_runs_out_of_disk_ends_failed_saying_so(tmp_path, monkeypatch):
    d = runs.create(tiny_config(method="gan", steps=6, checkpoint_every=3), tmp_path)
    full = {"now": False}
    real_write = runs.write_json_atomic

    def torch_save_full(obj, f, *a, **k):
        full["now"] = True
        Path(f).write_bytes(b"half a checkpoint")  # what a full disk leaves behind
        raise RuntimeError("[enforce fail at inline_container.cc:778] . PytorchStreamWriter failed writing file "
                           "data/0: file write failed")

    def write_when_full(path, obj):
        if full["now"]:
            tmp = path.with_name(f".{path.name}.x.tmp")
            tmp.write_text("{")  # a partial write, then the error; write_json_atomic must not leave it
            tmp.unlink()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write(path, obj)

    monkeypatch.setattr(torch, "save", torch_save_full)
    for mod in (runs, rundir):  # the supervisor's name and the run folder's own
        monkeypatch.setattr(mod, "write_json_atomic", write_when_full)
        monkeypatch.setattr(mod, "disk_full", lambda folder, margin=0: full["now"], raising=False)
    assert train.worker_main(d) == 1
    for mod in (runs, rundir):
        monkeypatch.setattr(mod, "write_json_atomic", real_write)
    st = runs.read_status(d)
    assert st["state"] == "failed"
    assert st["error"].startswith("no space left on device (writing checkpoint.pt)")
    assert not [p.name for p in d.iterdir() if p.name.endswith(".tmp")]
    (r,) = runs.list_runs(tmp_path)
    assert r.state == "failed"


# --- 6. one sentence, not a traceback --------------------------------------------------------------------------
@pytest.mark.parametrize("args", [
    ["--dataset", "imagefolder", "--data-root", "{tmp}/nowhere"],
    ["--dataset", "imagefolder", "--data-root", "{tmp}/two", "--imbalance", "step"],  # step needs 10 classes
])
@pytest.mark.slow  # a process of its own
def test_foreground_train_with_bad_data_is_one_line_and_leaves_no_run(tmp_path, args):
    from PIL import Image

    for c in ("a", "b"):
        (tmp_path / "two" / c).mkdir(parents=True)
        for i in range(3):
            Image.new("L", (8, 8), i).save(tmp_path / "two" / c / f"{i}.png")
    root = tmp_path / "runs"
    p = cli("train", *[a.format(tmp=tmp_path) for a in args], "--steps", "2", "--device", "cpu", root=root)
    one_line_error(p)
    assert not root.exists() or not [x for x in root.iterdir() if not x.name.startswith(".")]


@pytest.mark.slow  # a process of its own
def test_an_impossible_device_is_refused_without_a_traceback(tmp_path):
    p = cli("train", "--device", "cuda:abc", "--steps", "2", root=tmp_path / "runs")
    assert p.returncode == 2 and "Traceback" not in p.stdout + p.stderr
    assert "invalid choice: 'cuda:abc'" in p.stderr  # argparse's usage line and one error line
    assert not (tmp_path / "runs").exists()


def _trained(root: Path, **kw) -> Path:
    d = runs.create(tiny_config(method="gan", **kw), root)
    train.train(d, log=lambda s: None)
    runs.write_json_atomic(d / "status.json", {**runs.read_json(d / "status.json"), "state": "done"})
    return d


@pytest.mark.parametrize("damage", ["truncated", "wrong shape"])
@pytest.mark.slow  # a process of its own
def test_balance_and_evaluate_with_a_bad_checkpoint_are_one_line(tmp_path, damage):
    root = tmp_path / "runs"
    d = _trained(root)
    if damage == "truncated":
        data = (d / "checkpoint.pt").read_bytes()
        (d / "checkpoint.pt").write_bytes(data[: len(data) // 2])
    else:
        other = _trained(tmp_path / "other", width=16)
        shutil.copy(other / "checkpoint.pt", d / "checkpoint.pt")
    one_line_error(cli("balance", d.name, root=root))
    p = cli("evaluate", d.name, "--device", "cpu", "--epochs", "1", "--conditions", "gan", root=root)
    one_line_error(p) if p.returncode != 0 else pytest.fail(f"evaluate succeeded on a {damage} checkpoint")
    assert not list(d.glob("balanced*"))
    ev = json.loads((d / "eval" / "status.json").read_text()) if (d / "eval" / "status.json").exists() else {}
    assert ev.get("state") in (None, "failed")


@pytest.mark.slow  # a process of its own
def test_evaluate_on_an_impossible_device_is_one_line(tmp_path):
    d = _trained(tmp_path / "runs")
    one_line_error(cli("evaluate", d.name, "--device", "cuda:abc", root=tmp_path / "runs"))
