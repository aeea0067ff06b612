"""The Train page through Streamlit's AppTest: launch a real background run, poll, see grid and curves."""

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from imbagan import runs

pytestmark = pytest.mark.slow
PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "train.py")



def test_train_page_launches_and_shows_a_live_run(tmp_path, monkeypatch):
    monkeypatch.setenv("IMBAGAN_RUNS", str(tmp_path))
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    assert at.info[0].value.startswith("No runs yet")
    at.selectbox(key="train.imbalance").set_value("step").run()
    at.number_input(key="train.ir").set_value(10.0).run()
    assert any("imbalance ratio 10." in c.value for c in at.caption)  # the before/after counts chart's summary
    at.number_input(key="train.gan.steps").set_value(30).run()
    at.number_input(key="train.gan.width").set_value(16).run()
    at.number_input(key="train.loop.sample_every").set_value(10).run()
    at.number_input(key="train.loop.tick_every").set_value(5).run()
    at.checkbox(key="train.evaluate").uncheck().run()  # the evaluation alongside is tested below and in test_runs
    at.button(key="train.launch").click().run()
    assert not at.exception
    (r,) = runs.list_runs(tmp_path)
    assert at.query_params["run"] == [r.id] or at.query_params["run"] == r.id
    deadline = time.time() + 120
    while time.time() < deadline:
        time.sleep(1.0)
        at.run()
        if runs.info(r.id, tmp_path).state == "done" and len(at.get("image")) and at.get("plotly_chart"):
            break
    assert runs.info(r.id, tmp_path).state == "done", runs.log_tail(r.dir)
    at.run()  # the run may have ended between the last render and the state check
    assert len(at.get("image")) >= 1  # the newest sample grid
    charts = at.get("plotly_chart")
    assert len(charts) >= 3  # counts chart + convergence curve + loss curves
    assert any(str(c.key) == f"quality.{r.id}" for c in charts)
    assert any("done" in s.value for s in at.subheader)


def test_launch_also_launches_the_evaluation_unless_unticked(tmp_path, monkeypatch):
    """"Evaluate it too" (on by default) launches the run with evaluate_after, so runs.start launches its
    evaluation alongside the training (tests/test_runs.py runs that for real)."""
    monkeypatch.setenv("IMBAGAN_RUNS", str(tmp_path))
    launched = []
    monkeypatch.setattr(runs, "start", lambda cfg, root=None: launched.append(cfg) or runs.create(cfg, tmp_path).name)
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert at.checkbox(key="train.evaluate").value is True
    at.button(key="train.launch").click().run()
    assert not at.exception
    assert [c.evaluate_after for c in launched] == [True]
    at.checkbox(key="train.evaluate").uncheck().run()
    at.button(key="train.launch").click().run()
    assert [c.evaluate_after for c in launched] == [True, False]
    assert launched[0].replace(evaluate_after=False) == launched[1]  # nothing else differs


def test_train_page_reads_the_run_from_the_url(tmp_path, monkeypatch):
    monkeypatch.setenv("IMBAGAN_RUNS", str(tmp_path))
    from tests.conftest import tiny_config
    from imbagan import train

    d = runs.create(tiny_config(), tmp_path)
    train.train(d)
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.query_params["run"] = d.name
    at.run()
    assert not at.exception
    assert at.selectbox(key="train.run").value == d.name
    assert len(at.get("image")) == 1


def test_train_longer_starts_a_new_run_from_the_checkpoint_and_shows_it(tmp_path, monkeypatch):
    monkeypatch.setenv("IMBAGAN_RUNS", str(tmp_path))
    from tests.conftest import tiny_config
    from imbagan import train

    d = runs.create(tiny_config(), tmp_path)
    train.train(d, log=lambda s: None)
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.query_params["run"] = d.name
    at.run()
    box = at.number_input(key=f"longer.{d.name}")
    assert box.value == 12 and box.min == 7  # twice the run's 6 steps, and never fewer than it has
    box.set_value(9).run()
    at.button(key=f"longer.{d.name}.go").click().run()
    assert not at.exception and not at.error
    new = next(r for r in runs.list_runs(tmp_path) if r.id != d.name)
    assert at.selectbox(key="train.run").value == new.id  # the page shows the new run
    assert any(f"Continues run `{d.name}`" in c.value for c in at.caption)
    wait = time.time() + 60
    while runs.info(new.id, tmp_path).state in runs.ACTIVE and time.time() < wait:
        time.sleep(0.5)
    assert runs.info(new.id, tmp_path).state == "done" and runs.read_status(new.dir)["step"] == 9


def test_an_impossible_imbalance_is_a_readable_message(tmp_path, monkeypatch):
    monkeypatch.setenv("IMBAGAN_RUNS", str(tmp_path))
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.selectbox(key="train.imbalance").set_value("bagan_gp").run()  # digits has ~135 images per class
    assert not at.exception
    assert at.error and "class" in at.error[0].value
    assert at.button(key="train.launch").disabled


def test_the_live_panel_shows_the_evaluation_launched_with_the_run(tmp_path, monkeypatch):
    import os
    import time as _time

    from tests.conftest import tiny_config
    from imbagan import train

    monkeypatch.setenv("IMBAGAN_RUNS", str(tmp_path))
    d = runs.create(tiny_config(), tmp_path)
    train.train(d)
    (d / "eval").mkdir()
    runs.write_json_atomic(d / "eval" / "status.json", {
        "state": "running", "pid": os.getpid(), "heartbeat": _time.time(), "progress": 0.4,
        "phase": "waiting for the GAN to finish training (step 30 of 60)"})
    # through the app, whose navigation knows the Evaluate page the panel links to
    at = AppTest.from_file(str(Path(PAGE).parent.parent / "app.py"), default_timeout=60).run()
    at.query_params["run"] = d.name
    at.switch_page("pages/train.py").run()
    assert not at.exception
    texts = [p.proto.text for p in at.get("progress")]
    assert any(t == "evaluating: waiting for the GAN to finish training (step 30 of 60)" for t in texts), texts
    assert not any("goes on" in c.value for c in at.caption)
    # The user stops the training: the evaluation launched with it goes on, and the panel says so.
    runs.write_json_atomic(d / "status.json", {**runs.read_status(d), "state": "stopped"})
    at.run()
    (said,) = [c.value for c in at.caption if "goes on" in c.value]
    assert said.startswith(f"The training stopped at step {runs.adversarial_step(runs.read_status(d)):,}:"), said
    runs.write_json_atomic(d / "eval" / "status.json", {"state": "done", "pid": None, "heartbeat": _time.time()})
    at.run()
    assert any(c.value == "evaluated: the verdict is ready" for c in at.caption)


def test_turning_on_an_option_quotes_what_the_tables_measured(tmp_path, monkeypatch):
    """LeCam on the form: the committed quality tables' rows at the method's budget are quoted beside it."""
    monkeypatch.setenv("IMBAGAN_RUNS", str(tmp_path))
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not any("LeCam" in i.value for i in at.info)
    at.number_input(key="train.gan.lecam_weight").set_value(0.3).run()
    assert not at.exception
    (said,) = [i.value for i in at.info if "LeCam" in i.value]
    assert said.startswith("Measured for gan with LeCam (λ = 0.3)") and "mnist step, ir 100" in said
