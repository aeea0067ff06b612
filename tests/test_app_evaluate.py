"""The Evaluate page through AppTest: launch a background evaluation, see before/after, prepare downloads."""

import time

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from imbagan import evalconfig, evalfiles, runs, train
from tests.conftest import APP, tiny_config

pytestmark = pytest.mark.slow


def open_page():
    """The Evaluate page inside the app, as a user reaches it (page links need the navigation)."""
    return AppTest.from_file(APP, default_timeout=60).run().switch_page("pages/evaluate.py").run()


def _trained(tmp_path):
    cfg = tiny_config(method="bagan", imbalance="drop", drop=90.0, minority=(0,), width=16, batch_size=16,
                      ae_steps=10, steps=20, tick_every=5, sample_every=10, checkpoint_every=10)
    d = runs.create(cfg, tmp_path)
    train.train(d)
    return d


def _poll(at, done, timeout=180):
    end = time.time() + timeout
    while time.time() < end:
        time.sleep(1.0)
        at.run()
        if done():
            at.run()
            return
    raise AssertionError("timed out")


def test_no_trained_run_says_where_to_go(tmp_path, monkeypatch):
    monkeypatch.setenv("IMBAGAN_RUNS", str(tmp_path))
    at = open_page()
    assert not at.exception
    assert "No trained run yet" in at.info[0].value


def test_launch_an_evaluation_and_see_before_and_after(tmp_path, monkeypatch):
    monkeypatch.setenv("IMBAGAN_RUNS", str(tmp_path))
    d = _trained(tmp_path)
    at = open_page()
    assert not at.exception
    assert "not been evaluated yet" in at.info[0].value
    at.number_input(key="eval.epochs").set_value(1).run()
    at.number_input(key="eval.tsne").set_value(200).run()
    at.number_input(key="eval.quality").set_value(40).run()
    at.number_input(key="eval.pairs").set_value(20).run()
    at.button(key="eval.launch").click().run()
    assert not at.exception and not at.error
    _poll(at, lambda: (evalfiles.read_evaluation(d) or {}).get("status", {}).get("state") == "done")
    assert not at.exception, at.exception
    assert [m.label for m in at.metric] == ["ACSA (balanced accuracy)", "G-mean", "Macro F1", "Rarest-class recall"]
    assert all("points vs imbalanced" in m.delta for m in at.metric)
    # The headline is the mean over the seeds, on the verdict's scale (issue 23, 2 and 3).
    res = evalfiles.read_evaluation(d)["metrics"]["conditions"]
    assert at.metric[0].value == f"{100 * res['gan']['spread']['acsa']['mean']:.1f}%"
    table = next(t.value for t in at.dataframe if "training set" in t.value.columns)
    # the page pre-selects these; the GAN's set is named after the run's method (issue 23, 1)
    assert set(table["training set"]) == {"bagan-balanced" if c == "gan" else c for c in evalconfig.default_conditions()}
    # Every training set's ACSA is the mean over the classifier seeds (2 on a CPU), shown with their standard deviation.
    for name, c in {("bagan-balanced" if c == "gan" else c): c for c in res}.items():
        row = table.set_index("training set").loc[name]
        seeds = [r["acsa"] for r in res[c]["repeats"]]
        assert len(seeds) == evalconfig.CPU_REPEATS
        assert row["acsa"] == pytest.approx(np.mean(seeds)) and row["acsa ±"] == pytest.approx(np.std(seeds, ddof=1))
    # The verdict: one sentence for the GAN against the best cheap fix, and the rule declared beside it.
    said = [e.value for e in list(at.warning) + list(at.success)]
    assert any(t.startswith("bagan-balanced: ") and "on ACSA" in t for t in said), said
    assert any("*bagan-balanced*" in c.value or "bagan-balanced:" in c.value for c in at.caption)
    assert any("twice its standard error" in c.value for c in at.caption)
    assert len(at.get("plotly_chart")) == 5  # per-class bars, two confusion matrices, two t-SNE plots
    labels = [b.label for b in at.get("download_button")]
    assert "Report (.csv)" in labels and "Checkpoint" in labels
    # The balanced set is prepared in the background, then offered for download.
    at.button(key="dl.prepare").click().run()
    _poll(at, lambda: (d / "balanced.zip").exists(), timeout=120)
    labels = [b.label for b in at.get("download_button")]
    assert "Balanced set (.npz)" in labels and "Balanced set (.zip of PNGs)" in labels


def test_a_failed_evaluation_is_a_message_with_the_log(tmp_path, monkeypatch):
    monkeypatch.setenv("IMBAGAN_RUNS", str(tmp_path))
    d = _trained(tmp_path)
    (d / "eval").mkdir()
    runs.write_json_atomic(d / "eval" / "status.json", {"state": "failed", "error": "ValueError: out of luck"})
    (d / "eval" / "log.txt").write_text("line one\nthe last words\n")
    at = open_page()
    assert not at.exception
    assert "out of luck" in at.error[0].value
    assert "the last words" in at.code[0].value
