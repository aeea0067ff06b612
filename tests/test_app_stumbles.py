"""Issue 14's "what a first-time user trips on", one AppTest per stumble (6 and 15 need a browser:
tests/test_browser.py; 14 is tests/test_browser_gate.py).

Runs are written as plain files, the way a worker leaves them, so these tests train nothing.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from imbagan import preview, rundir, runs
from imbagan.config import TrainConfig
from ui import live
from tests.conftest import APP, ROOT, TIMEOUT

CLASSES = [str(i) for i in range(10)]


@pytest.fixture(autouse=True)
def _folders(tmp_path, monkeypatch):
    monkeypatch.setenv("IMBAGAN_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("IMBAGAN_DATA", str(tmp_path / "data"))


@pytest.fixture
def polls(monkeypatch):
    """Intervals of the fragment timers (``st.fragment(run_every=...)``) the page set up, per script run."""
    from streamlit.runtime.scriptrunner_utils.script_run_context import ScriptRunContext

    seen: list[float] = []
    enqueue = ScriptRunContext.enqueue

    def record(self, msg):
        if msg.HasField("auto_rerun"):
            seen.append(msg.auto_rerun.interval)
        return enqueue(self, msg)

    monkeypatch.setattr(ScriptRunContext, "enqueue", record)
    return seen


def _condition(acsa: float) -> dict:
    return {"accuracy": acsa, "acsa": acsa, "gmean": acsa, "macro_f1": acsa, "minority": {"recall": acsa / 2},
            "per_class": [{"precision": acsa, "recall": acsa, "f1": acsa}] * 10,
            "confusion": (np.eye(10, dtype=int) * 30).tolist()}


def fake_run(root: Path, method: str = "bagan", state: str = "done", created: float | None = None,
             metrics: dict | None = None, **cfg) -> Path:
    """A run directory as a finished worker leaves it (config, status, metrics, one grid, a checkpoint)."""
    c = TrainConfig.from_dict({"dataset": "digits", "imbalance": "step", "ir": 10.0, "method": method, "steps": 20, **cfg})
    d = runs.create(c, root)
    runs.write_json_atomic(d / "status.json", {
        "state": state, "step": 20 if state == "done" else 5, "total": 20, "created": created or time.time(),
        "heartbeat": time.time(), "pid": None, "counts": [100] * 9 + [10], "classes": CLASSES})
    logged = metrics or {"d_loss": 1.0, "g_loss": 2.0, "d_fake_acc": 0.5}
    (d / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "time": s, **logged}) + "\n" for s in (5, 10, 20)))
    Image.new("RGB", (80, 170), "grey").save(d / "samples" / "000020.png")
    (d / "checkpoint.pt").write_bytes(b"placeholder")
    return d


def fake_eval(d: Path, state: str = "done", conditions: dict | None = None, **status) -> None:
    ev = d / "eval"
    ev.mkdir(exist_ok=True)
    runs.write_json_atomic(ev / "status.json", {"state": state, "progress": 1.0 if state == "done" else 0.3,
                                                "pid": None, "heartbeat": time.time(), **status})
    if conditions is not None:
        runs.write_json_atomic(ev / "metrics.json", {"conditions": conditions, "run": {"classes": CLASSES}})


def alive(monkeypatch, pids=()):
    """Make status readers take the fake runs' (absent) workers for alive."""
    for mod in (runs, rundir):  # the pages' name and the status reader's own
        monkeypatch.setattr(mod, "pid_alive", lambda pid: pid in pids or pid == -1)


def open_app(page: str, run: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    if run:
        at.query_params["run"] = run
    return at.switch_page(page).run()


def chart_specs(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def chart_titles(at: AppTest) -> list[str]:
    return [((s.get("layout") or {}).get("title") or {}).get("text", "") for s in chart_specs(at)]


# --- 1. The New run form stays open on the first widget change ----------------------------------------
@pytest.mark.slow  # the app's pages through AppTest
def test_1_new_run_form_stays_open_when_a_widget_changes(tmp_path):
    fake_run(tmp_path / "runs")
    at = open_app("pages/train.py")  # from the sidebar: no ?run= in the URL
    assert at.expander[0].label == "New run" and at.expander[0].proto.expanded
    at.selectbox(key="train.method").set_value("cagan").run()
    assert not at.exception
    assert at.query_params.get("run")  # the page wrote the run it shows into the URL...
    assert at.expander[0].proto.expanded  # ...and the form, Launch included, is still open
    at.selectbox(key="train.imbalance").set_value("longtail").run()
    assert at.expander[0].proto.expanded


@pytest.mark.slow  # the app's pages through AppTest
def test_1_a_run_link_opens_the_run_with_the_form_folded(tmp_path):
    d = fake_run(tmp_path / "runs")
    at = open_app("pages/train.py", run=d.name)
    assert not at.expander[0].proto.expanded


# --- 2. Evaluate's per-class selector follows the conditions as they land ------------------------------
@pytest.mark.slow  # the app's pages through AppTest
def test_2_training_sets_selector_offers_before_and_after_once_the_evaluation_finishes(tmp_path, monkeypatch):
    d = fake_run(tmp_path / "runs")
    alive(monkeypatch)
    fake_eval(d, "running", {"imbalanced": _condition(0.7)}, pid=-1, started=time.time() - 10, phase="gan: training")
    at = open_app("pages/evaluate.py", run=d.name)
    assert not at.exception
    (sel,) = [m for m in at.multiselect if m.label == "Training sets"]
    assert sel.value == ["imbalanced"]
    fake_eval(d, "done", {"imbalanced": _condition(0.7), "smote": _condition(0.75), "gan": _condition(0.8),
                          "full": _condition(0.9)})
    at.run()
    (sel,) = [m for m in at.multiselect if m.label == "Training sets"]
    assert sel.value == ["imbalanced", "gan", "full"]


# --- 3. The balanced-set downloads appear on their own -------------------------------------------------
@pytest.mark.slow  # the app's pages through AppTest
def test_3_the_page_polls_while_the_balanced_set_is_prepared(tmp_path, monkeypatch, polls):
    d = fake_run(tmp_path / "runs")
    fake_eval(d, "done", {"imbalanced": _condition(0.7), "gan": _condition(0.8)})
    script = ("import sys, time, numpy as np; from pathlib import Path; time.sleep(2); d = Path(sys.argv[1]); "
              "np.savez(d / 'balanced.npz', x=np.zeros((1, 1, 2, 2), np.uint8)); (d / 'balanced.zip').write_bytes(b'PK')")
    procs = []

    def launch(args, log_path):  # the balance CLI, minus the GAN
        procs.append(subprocess.Popen([sys.executable, "-c", script, args[1]]))
        return procs[-1].pid

    monkeypatch.setattr(runs, "launch_cli", launch)
    at = open_app("pages/evaluate.py", run=d.name)
    polls.clear()
    at.button(key="dl.prepare").click().run()
    assert not at.exception
    assert polls, "nothing on the page polls for the balanced set: its downloads would never appear"
    assert any("Preparing the balanced set" in i.value for i in at.info)
    procs[0].wait(timeout=30)
    at.run()  # what the fragment's timer does in a browser
    labels = [b.label for b in at.get("download_button")]
    assert "Balanced set (.npz)" in labels and "Balanced set (.zip of PNGs)" in labels


# --- 4. The evaluation's ETA is a time, not a dash -------------------------------------------------------
@pytest.mark.slow  # the app's pages through AppTest
def test_4_a_running_evaluation_shows_an_eta(tmp_path, monkeypatch):
    d = fake_run(tmp_path / "runs")
    alive(monkeypatch)
    fake_eval(d, "running", {}, pid=-1, progress=0.5, started=time.time() - 60, phase="building the training sets")
    at = open_app("pages/evaluate.py", run=d.name)
    text = at.get("progress")[0].proto.text
    assert re.search(r"ETA (0:5\d|1:0\d)", text), text  # 60 s spent for half the work


# --- 5. Choices made on Data reach Train when Train is opened from the sidebar --------------------------
@pytest.mark.slow  # the app's pages through AppTest
def test_5_data_choice_reaches_train_opened_from_the_sidebar():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.switch_page("pages/data.py").run()
    at.selectbox(key="data.imbalance").set_value("drop").run()
    at.select_slider(key="data.drop").set_value(90.0).run()
    at.multiselect(key="data.minority").set_value([3, 7]).run()
    at.switch_page("pages/train.py").run()  # the sidebar link, not "Train on this data"
    assert not at.exception
    assert at.selectbox(key="train.imbalance").value == "drop"
    assert at.select_slider(key="train.drop").value == 90.0
    assert at.multiselect(key="train.minority").value == [3, 7]
    # The method chosen on Train survives a visit to Data that changes nothing.
    at.selectbox(key="train.method").set_value("cagan").run()
    at.switch_page("pages/data.py").run()
    at.switch_page("pages/train.py").run()
    assert at.selectbox(key="train.imbalance").value == "drop"


# --- 7. t-SNE plots have a legend --------------------------------------------------------------------------
@pytest.mark.slow  # the app's pages through AppTest
def test_7_tsne_plots_name_the_classes_and_the_markers(tmp_path):
    d = fake_run(tmp_path / "runs")
    fake_eval(d, "done", {"imbalanced": _condition(0.7), "gan": _condition(0.8)})
    n = 60
    np.savez(d / "eval" / "tsne.npz", xy_before=np.random.rand(n, 2), xy_after=np.random.rand(n, 2),
             labels=np.arange(n) % 10, kind=np.arange(n) % 3, classes=np.array(CLASSES))
    at = open_app("pages/evaluate.py", run=d.name)
    (after,) = [s for s in chart_specs(at) if "with generated images" in str(s["layout"].get("title"))]
    assert after["layout"].get("showlegend") is not False
    shown = [t["name"] for t in after["data"] if t.get("showlegend", True)]
    assert [f"class {c}" for c in CLASSES] == [s for s in shown if s.startswith("class")]
    assert {"train (real)", "generated", "test"} <= set(shown)


# --- 8. The "after" confusion matrix is the GAN's -----------------------------------------------------------
@pytest.mark.slow  # the app's pages through AppTest
def test_8_after_matrix_waits_for_the_gan_condition(tmp_path, monkeypatch):
    d = fake_run(tmp_path / "runs")
    alive(monkeypatch)
    fake_eval(d, "running", {"imbalanced": _condition(0.7), "mirror": _condition(0.72)}, pid=-1,
              started=time.time() - 5, phase="gan: training")
    at = open_app("pages/evaluate.py", run=d.name)
    titles = chart_titles(at)
    assert "before: imbalanced" in titles
    assert not [t for t in titles if t.startswith("after")], titles
    assert any("not finished yet" in i.value for i in at.info)
    fake_eval(d, "done", {"imbalanced": _condition(0.7), "mirror": _condition(0.72), "gan": _condition(0.8)})
    at.run()
    assert "after: gan" in chart_titles(at)


# --- 9. Home: a live runs table with links; deleting runs and uploads -----------------------------------------
@pytest.mark.slow  # the app's pages through AppTest
def test_9_home_table_links_to_runs_and_refreshes_while_one_trains(tmp_path, monkeypatch, polls):
    d = fake_run(tmp_path / "runs", state="running")
    runs.write_json_atomic(d / "status.json", {**json.loads((d / "status.json").read_text()), "pid": -1})
    alive(monkeypatch)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert polls, "Home's runs table does not refresh while a run trains"
    table = at.dataframe[0]
    cfg = json.loads(table.proto.columns)
    assert cfg["run"]["type_config"]["type"] == "link"
    assert table.value["run"].iloc[0].startswith(f"train?run={d.name}")


@pytest.mark.slow  # the app's pages through AppTest
def test_9_delete_runs_with_confirmation_and_never_a_running_one(tmp_path, monkeypatch):
    done = fake_run(tmp_path / "runs")
    busy = fake_run(tmp_path / "runs", state="running")
    runs.write_json_atomic(busy / "status.json", {**json.loads((busy / "status.json").read_text()), "pid": -1})
    alive(monkeypatch)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    pick = at.multiselect(key="home.del_runs.pick")
    assert pick.options == [live.run_label(runs.info(done.name), state=True)]  # the running run is not offered
    pick.set_value([done.name]).run()
    assert at.button(key="home.del_runs.go").disabled  # not before the confirmation
    at.checkbox(key="home.del_runs.sure").check().run()
    at.button(key="home.del_runs.go").click().run()
    assert not at.exception and not at.error
    assert not done.exists() and busy.exists()
    assert "Deleted" in at.success[0].value


def test_9_delete_run_and_upload_in_the_library(tmp_path, monkeypatch):
    root = tmp_path / "runs"
    done, busy = fake_run(root), fake_run(root, state="running")
    runs.write_json_atomic(busy / "status.json", {**json.loads((busy / "status.json").read_text()), "pid": -1})
    evaluating = fake_run(root)
    fake_eval(evaluating, "running", {}, pid=-1)
    alive(monkeypatch)
    with pytest.raises(ValueError, match="still running"):
        runs.delete_run(busy.name, root)
    with pytest.raises(ValueError, match="being evaluated"):
        runs.delete_run(evaluating.name, root)
    with pytest.raises(ValueError):
        runs.delete_run("../" + done.name, root)
    runs.delete_run(done.name, root)
    assert not done.exists()
    assert sorted(r.id for r in runs.list_runs(root)) == sorted([busy.name, evaluating.name])
    with pytest.raises(FileNotFoundError):
        runs.delete_run(done.name, root)
    up = tmp_path / "data" / "uploads" / "pets"
    (up / "cat").mkdir(parents=True)
    (tmp_path / "data" / "keep").mkdir()
    for bad in ("..", "../keep", "", ".tmp-x"):
        with pytest.raises(ValueError):
            preview.delete_upload(bad)
    preview.delete_upload("pets")
    assert not up.exists() and (tmp_path / "data" / "keep").exists()
    assert preview.list_uploads() == []


@pytest.mark.slow  # the app's pages through AppTest
def test_9_delete_an_uploaded_folder_from_home(tmp_path):
    (tmp_path / "data" / "uploads" / "pets" / "cat").mkdir(parents=True)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.multiselect(key="home.del_uploads.pick").set_value(["pets"]).run()
    at.checkbox(key="home.del_uploads.sure").check().run()
    at.button(key="home.del_uploads.go").click().run()
    assert not at.exception and not (tmp_path / "data" / "uploads" / "pets").exists()


# --- 10. A missing dataset is explained in the page's words ----------------------------------------------------
@pytest.mark.parametrize("page, prefix", [("pages/data.py", "data"), ("pages/train.py", "train")])
@pytest.mark.slow  # the app's pages through AppTest
def test_10_missing_mnist_points_at_the_data_folder_field(page, prefix):
    at = open_app(page)
    at.selectbox(key=f"{prefix}.dataset").set_value("mnist").run()
    assert not at.exception
    msg = at.error[0].value
    assert "MNIST" in msg and "Data folder" in msg
    assert "--data-root" not in msg and "download=True" not in msg


# --- 11. Readable metric names, with a tooltip, in charts and tables ----------------------------------------------
@pytest.mark.slow  # the app's pages through AppTest
def test_11_quality_table_and_curves_use_readable_labels(tmp_path):
    d = fake_run(tmp_path / "runs", metrics={"d_loss": 1.0, "g_loss": 2.0, "d_fake_acc": 0.5, "w_dist": 0.1,
                                                "gp": 0.01, "ae_loss": 0.2})
    fake_eval(d, "done", {"imbalanced": _condition(0.7), "gan": _condition(0.8)})
    (d / "eval" / "quality.csv").write_text(
        "class,generated,class_accuracy,ssim_gen,ssim_real,nn_ssim_gen,nn_ssim_real,domain_fid\n"
        "0,500,0.91234,0.3,0.25,0.5,0.45,12.3456\n1,500,0.8,0.31,0.2,0.52,0.44,20.1\n")
    at = open_app("pages/evaluate.py", run=d.name)
    (q,) = [t for t in at.dataframe if "ssim_gen" in t.value.columns]
    cfg = json.loads(q.proto.columns)
    assert cfg["ssim_gen"]["label"] == "SSIM diversity, generated" and cfg["ssim_gen"]["help"]
    assert cfg["nn_ssim_real"]["label"] == "nearest-real SSIM, real" and cfg["nn_ssim_real"]["help"]
    formats = {k: cfg[k]["type_config"].get("format") for k in ("class_accuracy", "ssim_gen", "ssim_real",
                                                                    "nn_ssim_gen", "nn_ssim_real")}
    assert set(formats.values()) == {"%.3f"}, formats
    assert cfg["domain_fid"]["type_config"]["format"] == "%.2f"
    at.switch_page("pages/train.py").run()
    names = {t["name"] for s in chart_specs(at) for t in s["data"]}
    assert {"D loss", "G loss", "Wasserstein estimate", "gradient penalty", "autoencoder loss", "D spots fakes"} <= names
    assert not names & {"d_loss", "w_dist", "gp", "d_fake_acc"}


# --- 12. The Train form shows only the fields that apply ------------------------------------------------------------
@pytest.mark.slow  # the app's pages through AppTest
def test_12_train_form_hides_fields_that_do_not_apply():
    from ui.labels import field_label

    GP, NC, LC = field_label("gp_weight"), field_label("n_critic"), field_label("lambda_cls")
    at = open_app("pages/train.py")
    at.selectbox(key="train.method").set_value("cagan").run()
    shown = lambda: {n.label for n in at.number_input}  # noqa: E731
    assert at.selectbox(key="train.cagan.adv_loss").value == "ls"  # CAGAN's paper default
    assert not {GP, NC} & shown()
    at.selectbox(key="train.cagan.adv_loss").set_value("wgan-gp").run()
    assert NC in shown() and GP not in shown()  # CAGAN's own penalty has its own weight
    at.selectbox(key="train.cagan.cagan_reg").set_value("wgan-gp").run()
    assert {GP, NC} <= shown()
    at.selectbox(key="train.method").set_value("acgan").run()
    assert LC not in shown()  # only the modified variant weighs its class loss
    assert at.selectbox(key="train.acgan.adv_loss").value == "bce"
    at.selectbox(key="train.acgan.preset").set_value("modified (CAGAN eqs. 7-10)").run()
    assert LC in shown() and not {GP, NC} & shown()
    assert at.selectbox(key="train.acgan.adv_loss").value == "ls"  # the preset refilled the fields
    at.selectbox(key="train.method").set_value("bagan_gp").run()
    assert {GP, NC} <= shown()  # BAGAN-GP is always WGAN-GP


# --- 13. Compare: baselines once, GAN rows not buried, one loss scale per chart, short names ----------------------
@pytest.mark.slow  # the app's pages through AppTest
def test_13_compare_shows_baselines_once_and_gan_rows_first(tmp_path):
    root = tmp_path / "runs"
    base = {"imbalanced": _condition(0.90), "smote": _condition(0.93), "full": _condition(0.97)}
    a = fake_run(root, "bagan", created=time.time() - 60, metrics={"g_loss": 2.0, "d_loss": 1.0})
    b = fake_run(root, "bagan_gp", created=time.time() - 30, metrics={"g_loss": -40.0, "d_loss": -3.0})
    c = fake_run(root, "cagan", imbalance="drop", drop=90.0, minority=(0,), metrics={"g_loss": 0.4, "d_loss": 0.3})
    for d, gan in ((a, 0.85), (b, 0.80), (c, 0.88)):
        fake_eval(d, "done", {**base, "gan": _condition(gan)})
    at = open_app("pages/compare.py")
    assert not at.exception
    df = at.dataframe[0].value
    gan_rows = df[df["condition"] == "gan"]
    assert len(gan_rows) == 3
    baselines = df[df["kind"] == "baseline"]
    # Runs a and b share their data: one row per baseline; run c has its own data setting.
    assert len(baselines) == 2 * len(base)
    assert sorted(baselines.groupby("imbalance").size().tolist()) == [3, 3]
    assert list(df["kind"][:3]) == ["GAN"] * 3  # not sorted below every baseline with a higher ACSA
    names = live.run_labels(runs.list_runs(root))
    assert set(gan_rows["run"]) == set(names.values())
    assert all(len(n) < 50 and " · " in n for n in names.values())
    # Curves: the g_loss of BCE, least-squares and Wasserstein methods never share an axis.
    at.multiselect(key="cmp.runs").set_value([a.name, b.name, c.name]).run()
    specs = chart_specs(at)
    assert len(specs) == 3
    for s in specs:
        assert len(s["data"]) == 1 and s["data"][0]["name"] in names.values()
    assert at.multiselect(key="cmp.runs").format_func(a.name) == names[a.name]


# --- issue 23: stumbles of a second walk ------------------------------------------------------------------
@pytest.mark.slow  # the app's pages through AppTest
def test_23_7_run_links_with_a_percent_decode_to_their_name(tmp_path):
    """The link column decodes the URL before it reads the display text: "drop 95% of 3,8" must survive."""
    from urllib.parse import unquote

    d = fake_run(tmp_path / "runs", imbalance="drop", drop=95.0, minority=(3, 8))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    link = at.dataframe[0].value["run"].iloc[0]
    assert not re.search(r"%(?![0-9A-Fa-f]{2})", link), link  # every % is a valid escape
    shown = re.search(r"#(.*)$", unquote(link)).group(1)
    assert shown == live.run_labels(runs.list_runs(tmp_path / "runs"))[d.name]
    assert "drop 95% of 3,8" in shown


@pytest.mark.parametrize("page", ["pages/train.py", "pages/evaluate.py"])
@pytest.mark.parametrize("bogus", ["../../etc", "no-such-run", "<script>alert(1)</script>"])
@pytest.mark.slow  # the app's pages through AppTest
def test_23_16_a_url_naming_no_run_says_so(tmp_path, page, bogus):
    d = fake_run(tmp_path / "runs")
    fake_eval(d, conditions={"imbalanced": _condition(0.9), "gan": _condition(0.95)})
    at = open_app(page, run=bogus)
    assert not at.exception
    text = " ".join(w.value for w in at.warning)
    assert "No run named" in text and "showing the newest run instead" in text
    assert "<script>" not in text.replace("`<script>alert(1)</script>`", "")  # only inside a code span


@pytest.mark.slow  # the app's pages through AppTest
def test_23_4_no_autoencoder_line_for_a_method_without_one(tmp_path, monkeypatch):
    """Resumed cagan: the adversarial pace is not known yet, but cagan has no autoencoder stage."""
    d = fake_run(tmp_path / "runs", method="cagan", state="running")
    runs.write_json_atomic(d / "status.json", {**json.loads((d / "status.json").read_text()), "pid": -1,
                                               "img_per_s": 100.0, "eta_s": None, "stage_eta_s": 32.0,
                                               "pretrain_steps": 0, "phase": "adversarial"})
    alive(monkeypatch)
    at = open_app("pages/train.py", run=d.name)
    assert not at.exception
    bars = " ".join(str(p.proto.text) for p in at.get("progress"))
    assert "autoencoder" not in bars and "ETA" in bars


@pytest.mark.parametrize("bad", [0.0, -5.0, 0.5, 100000.0])
@pytest.mark.slow  # the app's pages through AppTest
def test_23_8_a_bad_imbalance_ratio_says_why_and_keeps_the_last_good_one(bad):
    at = AppTest.from_file(str(ROOT / "pages" / "data.py"), default_timeout=TIMEOUT).run()
    at.selectbox(key="data.imbalance").set_value("step").run()
    at.number_input(key="data.ir").set_value(20.0).run()
    good = [m.value for m in at.metric]
    at.number_input(key="data.ir").set_value(bad).run()
    assert not at.exception
    text = " ".join(e.value for e in at.error)
    assert "must lie between 1" in text and f"{bad:g}" in text and "Still using 20" in text
    assert [m.value for m in at.metric] == good  # the chart and the numbers keep the good ratio


@pytest.mark.slow  # the app's pages through AppTest
def test_23_13_the_train_form_speaks_in_words_not_config_keys():
    at = AppTest.from_file(str(ROOT / "pages" / "train.py"), default_timeout=TIMEOUT).run()
    at.selectbox(key="train.method").set_value("cagan").run()
    labels = [w.label for kind in ("number_input", "selectbox", "text_input") for w in at.get(kind)]
    assert "mixed batches from (share of training)" in labels and "normalisation in D" in labels
    assert not [lab for lab in labels if re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+)+", lab.replace(" ", "_"))
                and lab in ("cagan mix start", "cagan d norm", "n critic")]
    at.number_input(key="train.cagan.batch_size").set_value(1).run()
    text = " ".join(e.value for e in at.error)
    assert "“batch size”" in text and "batch_size" not in text
    from ui.labels import label

    assert label("d_wrong") != "d wrong"


def test_pct_rounds_half_up_and_says_a_dash_where_a_table_has_no_number():
    from ui.labels import pct

    assert pct(0.8795) == "88.0" and pct(0.87949) == "87.9" and pct(1) == "100.0" and pct(0) == "0.0"
    assert pct(float("nan")) == pct(float("inf")) == pct(float("-inf")) == pct(None) == "—"


@pytest.mark.slow  # the app's pages through AppTest
def test_23_14_log_counts_axis_ticks_powers_of_ten_and_the_example_names_its_ratio():
    from ui import charts

    fig = charts.counts_figure(["a", "b"], [5000, 5000], [5000, 50], log_y=True)
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis.dtick == 1 and fig.layout.yaxis.tickformat == ",d"
    at = AppTest.from_file(str(ROOT / "pages" / "taxonomy.py"), default_timeout=TIMEOUT).run()
    assert not at.exception
    m = at.metric[0]
    assert m.label == "Imbalance ratio kept" and "Asked for 10" in (m.proto.help or "")


def test_23_10_rows_not_modelled_are_hatched_not_the_grey_of_an_untrained_generator():
    import torch

    from conftest import tiny_config
    from imbagan.grids import grid_noise, sample_grid
    from imbagan.train import build

    cfg = tiny_config(method="gan", imbalance="drop", drop=90.0, minority=(3,))
    method, data = build(cfg)
    labels, noise = grid_noise(cfg, method.noise_dim, data.num_classes, data.device)
    out = sample_grid(method, labels, noise)
    other = out[labels == 0]
    assert other.max() == 1.0 and other.min() == 0.5  # white with stripes: unmistakably "not drawn"
    assert not torch.allclose(other[0], torch.zeros_like(other[0]))  # not the flat 0 (grey) of an untrained G


@pytest.mark.slow  # the app's pages through AppTest
def test_23_9_compare_starts_from_one_dataset_and_shows_no_none(tmp_path):
    root = tmp_path / "runs"
    base = {"imbalanced": _condition(0.90), "full": _condition(0.97)}
    a = fake_run(root, "bagan", created=time.time() - 60)
    fake_eval(a, "done", {**base, "gan": _condition(0.85)})
    fake_run(root, "cagan", created=time.time() - 30, dataset="imagefolder", image_size=16, channels=1)  # not evaluated
    at = open_app("pages/compare.py")
    assert not at.exception
    assert at.multiselect(key="cmp.datasets").value == ["imagefolder"]  # the newest run's data only
    at.multiselect(key="cmp.datasets").set_value([]).run()
    assert any("compare only within one" in c.value for c in at.caption)
    df = at.dataframe[0].value
    assert not (df.astype(str) == "None").any().any()


def test_23_12_a_curve_with_one_tick_is_visible():
    from ui import charts

    df = charts.metrics_frame([{"step": 25, "time": 1.0, "phase": "pretrain", "ae_loss": 0.3}])
    fig = charts.curves_figure(df, ["ae_loss"], "Losses")
    assert len(fig.data) == 1 and "markers" in fig.data[0].mode


@pytest.mark.slow  # the app's pages through AppTest
def test_23_5_downloads_do_not_rerun_the_page(tmp_path):
    """A rerun re-registers the deferred files; a second click within a second then found none."""
    d = fake_run(tmp_path / "runs")
    fake_eval(d, conditions={"imbalanced": _condition(0.9), "gan": _condition(0.95)})
    (d / "eval" / "report.csv").write_text("condition,acsa\ngan,0.95\n")
    at = open_app("pages/evaluate.py", run=d.name)
    assert not at.exception
    buttons = at.get("download_button")
    assert len(buttons) >= 2
    assert all(b.proto.ignore_rerun for b in buttons)


def test_23_3_compare_shows_the_mean_over_seeds_as_evaluate_does(tmp_path):
    from imbagan import comparison
    from imbagan import verdict

    d = fake_run(tmp_path / "runs")
    seeds = [0.99, 0.97, 0.98]
    cond = {**_condition(0.99), "spread": {"acsa": verdict.spread(seeds)}}  # seed 0 reads 0.99, the mean 0.98
    fake_eval(d, conditions={"imbalanced": _condition(0.9), "gan": cond})
    df = comparison.compare_table(runs.list_runs(tmp_path / "runs"))
    gan = df[df["condition"] == "gan"].iloc[0]
    assert gan["acsa"] == pytest.approx(0.98)
    assert df[df["condition"] == "imbalanced"].iloc[0]["acsa"] == pytest.approx(0.9)  # no spread: seed 0's
