"""The command line drives the same engine as the app."""

import subprocess
import sys

import pytest

from imbagan import runs
from imbagan.__main__ import main


def test_help_everywhere(capsys):
    for argv in ([], ["train"], ["runs"], ["stop"], ["resume"], ["balance"], ["evaluate"]):
        with pytest.raises(SystemExit) as e:
            main(argv + ["--help"])
        assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--imbalance" in out and "imbalance ratio" in out and "--method" in out
    # A choice that holds commas (DiffAugment's policies) is listed with "|" between choices, not run together.
    from imbagan.config import DIFFAUGMENT_POLICIES

    assert "color,translation,cutout" in DIFFAUGMENT_POLICIES
    assert "--diffaugment {" + "|".join(DIFFAUGMENT_POLICIES) + "}" in out
    assert "--device {auto,cpu,cuda,mps}" in out  # plain choices keep argparse's own listing


def test_train_runs_balance_in_the_foreground(tmp_path, capsys):
    args = ["--runs", str(tmp_path), "train", "--dataset", "digits", "--imbalance", "step", "--ir", "10",
            "--method", "bagan", "--steps", "4", "--ae-steps", "2", "--batch-size", "8", "--width", "8",
            "--tick-every", "2", "--sample-every", "2", "--device", "cpu"]
    assert main(args) == 0
    (r,) = runs.list_runs(tmp_path)
    assert r.state == "done" and r.config["ir"] == 10.0
    assert main(["--runs", str(tmp_path), "runs"]) == 0
    assert r.id in capsys.readouterr().out
    assert main(["--runs", str(tmp_path), "balance", r.id]) == 0
    assert (r.dir / "balanced.npz").exists()


@pytest.mark.slow  # a process of its own
def test_bad_input_is_a_sentence_not_a_traceback(tmp_path):
    p = subprocess.run([sys.executable, "-m", "imbagan", "--runs", str(tmp_path), "train", "--imbalance", "drop",
                        "--drop", "120"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert p.stderr.startswith("error:") and "Traceback" not in p.stderr
    p = subprocess.run([sys.executable, "-m", "imbagan", "--runs", str(tmp_path), "stop", "nope"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "No run 'nope'" in p.stderr
