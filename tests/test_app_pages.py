"""The Data, Compare and Taxonomy pages (and app.py's navigation) through Streamlit's AppTest."""

from __future__ import annotations

import io
import json
import os
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from imbagan import data as datasets
from imbagan import preview, runs, splits, train
from imbagan.config import TrainConfig
from imbagan.methods import METHODS
from tests.conftest import APP, ROOT, TIMEOUT, tiny_config
from ui import taxonomy as tx

DATA, COMPARE, TAXONOMY = (str(ROOT / "pages" / f"{p}.py") for p in ("data", "compare", "taxonomy"))


@pytest.fixture(autouse=True)
def _folders(tmp_path, monkeypatch):
    monkeypatch.setenv("IMBAGAN_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("IMBAGAN_DATA", str(tmp_path / "data"))


def digits_train_counts() -> list[int]:
    """The digits training split counted independently of imbagan: scikit-learn's own stratified split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    y = load_digits().target
    tr, _ = train_test_split(np.arange(len(y)), test_size=0.25, random_state=0, stratify=y)
    return np.bincount(y[tr], minlength=10).tolist()


def png_bytes(value: int, size: int = 12) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((size, size), value, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def make_zip(entries: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, content in entries.items():
            z.writestr(name, content)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            z.writestr(info, target)
    return buf.getvalue()


def class_zip(wrapper: str = "pets/") -> bytes:
    """10 cats and 5 dogs inside a wrapper folder, plus files that must not be extracted."""
    files = {f"{wrapper}cat/{i:02d}.png": png_bytes(200) for i in range(10)}
    files |= {f"{wrapper}dog/{i:02d}.png": png_bytes(40) for i in range(5)}
    files |= {f"{wrapper}README.txt": b"not an image", "__MACOSX/pets/._x.png": b"junk"}
    return make_zip(files)


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


# --- app.py and navigation -----------------------------------------------------------------------
@pytest.mark.slow  # the app's pages through AppTest
def test_app_runs_and_switches_to_every_page():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception
    for page, title in [("pages/data.py", "Data and imbalance"), ("pages/train.py", "Train a balancing GAN"),
                        ("pages/compare.py", "Compare runs"), ("pages/taxonomy.py", "A taxonomy of imbalance"),
                        ("pages/home.py", "imbagan ⚖️")]:
        at.switch_page(page).run()
        assert not at.exception, page
        assert at.title[0].value == title
    at.switch_page("pages/compare.py").run()
    assert at.info[0].value.startswith("No runs yet")  # no runs in the empty runs folder


# --- Data -------------------------------------------------------------------------------------------
@pytest.mark.slow  # the app's pages through AppTest
def test_data_page_shows_counts_grid_and_the_imbalance_ratio():
    n = digits_train_counts()
    at = AppTest.from_file(DATA, default_timeout=TIMEOUT).run()
    assert not at.exception and not at.error
    at.selectbox(key="data.imbalance").set_value("binary").run()  # majority 1, minority 0, IR 10 by default
    assert not at.exception and not at.error
    minority = int(np.floor(n[1] / 10 + 0.5))  # round half up, as the profile does
    assert metric(at, "Imbalance ratio") == f"{n[1] / minority:.1f}"
    assert metric(at, "Training images") == f"{n[1] + minority:,}"
    assert metric(at, "Classes") == "2"
    assert metric(at, "Minority classes") == "1"
    assert len(at.get("plotly_chart")) == 1  # counts before/after
    assert len(at.get("image")) == 1  # ONE composite grid of real images


@pytest.mark.slow  # the app's pages through AppTest
def test_an_impossible_imbalance_is_a_message_not_a_traceback():
    at = AppTest.from_file(DATA, default_timeout=TIMEOUT).run()
    at.selectbox(key="data.imbalance").set_value("bagan_gp").run()  # digits has ~135 images per class
    assert not at.exception
    assert "class" in at.error[0].value
    assert not at.get("image")


@pytest.mark.slow  # the app's pages through AppTest
def test_train_on_this_data_hands_the_choice_to_the_train_page():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.switch_page("pages/data.py").run()
    at.selectbox(key="data.imbalance").set_value("drop").run()
    at.select_slider(key="data.drop").set_value(90.0).run()
    at.multiselect(key="data.minority").set_value([3, 7]).run()
    at.button(key="data.train").click().run()
    assert not at.exception
    assert at.title[0].value == "Train a balancing GAN"
    # The Train page consumed st.session_state["data_choice"]: its form now shows the same data.
    assert "data_choice" not in at.session_state
    assert at.selectbox(key="train.dataset").value == "digits"
    assert at.selectbox(key="train.imbalance").value == "drop"
    assert at.select_slider(key="train.drop").value == 90.0
    assert at.multiselect(key="train.minority").value == [3, 7]
    # Back on the Data page, the last choice is still there.
    at.switch_page("pages/data.py").run()
    assert at.selectbox(key="data.imbalance").value == "drop"
    assert at.multiselect(key="data.minority").value == [3, 7]


def test_extract_zip_keeps_images_only_and_unwraps_the_folder(tmp_path):
    src = tmp_path / "my pets!.zip"
    src.write_bytes(class_zip())
    u = preview.extract_zip(src, src.name)
    assert u.path == tmp_path / "data" / "uploads" / "my-pets"
    assert u.classes == ("cat", "dog") and u.images == 15 and u.skipped == 2
    assert sorted(p.name for p in u.path.iterdir()) == ["cat", "dog"]
    assert len(list((u.path / "cat").iterdir())) == 10
    # The same name again gets a fresh folder instead of overwriting the first.
    second = preview.extract_zip(src, src.name).path
    assert second.name == "my-pets-2"
    # Newest first. Both folders can share an mtime on a coarse clock, so age the first one explicitly.
    old = second.stat().st_mtime - 60
    os.utime(u.path, (old, old))
    assert [p.name for p in preview.list_uploads()] == ["my-pets-2", "my-pets"]
    ds = datasets.load("imagefolder", "train", root=u.path, image_size=16, channels=1)
    assert ds.classes == ("cat", "dog") and ds.counts() == [8, 4]  # 20% of each class held out for testing


@pytest.mark.parametrize("entries, symlinks, words", [
    ({"../evil.png": b"x", "a/1.png": b"x", "b/1.png": b"x"}, None, "climbs out"),
    ({"a/../../evil.png": b"x", "a/1.png": b"x", "b/1.png": b"x"}, None, "climbs out"),
    ({"/abs/evil.png": b"x", "a/1.png": b"x"}, None, "absolute path"),
    ({"a/1.png": b"x", "b/1.png": b"x"}, {"b/link.png": "/etc/passwd"}, "symbolic link"),
    ({"notes.txt": b"x"}, None, "no image files"),
    ({"a/1.png": b"x", "a/2.png": b"x"}, None, "at least two"),
])
def test_extract_zip_refuses_unsafe_or_useless_zips(tmp_path, entries, symlinks, words):
    with pytest.raises(ValueError, match=words):
        preview.extract_zip(io.BytesIO(make_zip(entries, symlinks)), "bad.zip")
    assert not (tmp_path / "evil.png").exists() and not (tmp_path / "data" / "evil.png").exists()
    up = tmp_path / "data" / "uploads"
    assert not up.exists() or not any(up.iterdir())  # nothing left behind, not even the temporary folder


def test_extract_zip_enforces_the_size_limits(tmp_path):
    z = class_zip()
    with pytest.raises(ValueError, match="at most"):
        preview.extract_zip(io.BytesIO(z), "big.zip", max_compressed=len(z) - 1)
    with pytest.raises(ValueError, match="once extracted"):
        preview.extract_zip(io.BytesIO(z), "big.zip", max_uncompressed=1000)
    with pytest.raises(ValueError, match="at most 14 can"):
        preview.extract_zip(io.BytesIO(z), "big.zip", max_files=14)


@pytest.mark.slow  # the app's pages through AppTest
def test_data_page_uploads_a_zip_and_uses_it_as_an_image_folder(tmp_path):
    at = AppTest.from_file(DATA, default_timeout=TIMEOUT).run()
    at.file_uploader(key="data.upload").set_value(("pets.zip", class_zip(), "application/zip")).run()
    at.button(key="data.extract").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "Extracted 15 images in 2 classes" in at.success[0].value
    folder = tmp_path / "data" / "uploads" / "pets"
    assert at.selectbox(key="data.dataset").value == "imagefolder"
    assert at.text_input(key="data.root").value == str(folder)
    assert metric(at, "Imbalance ratio") == "2.0"  # 8 cats / 4 dogs after the 20% hold-out
    assert len(at.get("image")) == 1
    # The folder stays selectable on a later visit.
    at2 = AppTest.from_file(DATA, default_timeout=TIMEOUT).run()
    assert at2.selectbox(key="data.uploaded").value == folder


@pytest.mark.slow  # the app's pages through AppTest
def test_data_page_refuses_a_zip_that_climbs_out(tmp_path):
    at = AppTest.from_file(DATA, default_timeout=TIMEOUT).run()
    evil = make_zip({"../evil.png": png_bytes(1), "a/1.png": png_bytes(1), "b/1.png": png_bytes(1)})
    at.file_uploader(key="data.upload").set_value(("evil.zip", evil, "application/zip")).run()
    at.button(key="data.extract").click().run()
    assert not at.exception
    assert "climbs out" in at.error[0].value
    assert not list(tmp_path.rglob("evil.png"))
    assert at.selectbox(key="data.dataset").value == "digits"  # the choice did not change


# --- Compare ----------------------------------------------------------------------------------------
def _two_runs(root: Path) -> tuple[Path, Path]:
    a = runs.create(tiny_config(method="bagan", imbalance="step", ir=10.0), root)
    train.train(a, log=lambda s: None)
    b = runs.create(tiny_config(method="gan"), root)
    train.train(b, log=lambda s: None)
    (a / "eval").mkdir()
    conditions = {
        "imbalanced": {"accuracy": 0.8, "acsa": 0.70, "gmean": 0.60, "macro_f1": 0.65, "minority": {"recall": 0.2},
                       "per_class": []},
        "gan": {"accuracy": 0.85, "acsa": 0.82, "gmean": 0.80, "macro_f1": 0.81, "minority": {"recall": 0.6},
                "per_class": []},
    }
    (a / "eval" / "metrics.json").write_text(json.dumps({"conditions": conditions}))
    return a, b


@pytest.mark.slow  # the app's pages through AppTest
def test_compare_page_has_a_row_per_run_and_condition_and_overlays_curves(tmp_path):
    a, b = _two_runs(tmp_path / "runs")
    at = AppTest.from_file(COMPARE, default_timeout=TIMEOUT).run()
    assert not at.exception and not at.error
    df = at.dataframe[0].value
    assert len(df) == 3  # run a: its gan row and the imbalanced baseline; run b: training columns only
    assert set(df["id"].dropna()) == {a.name, b.name}
    # The runs' own rows first (sorted by ACSA, largest first; the unevaluated run last), then the baselines.
    assert list(df["kind"]) == ["GAN", "GAN", "baseline"]
    assert df["condition"].iloc[0] == "gan" and df["condition"].iloc[2] == "imbalanced"
    row_b = df[df["id"] == b.name].iloc[0]
    assert np.isnan(row_b["acsa"]) and row_b["state"] == "done" and row_b["steps"] == 6
    counts = json.loads((a / "status.json").read_text())["counts"]
    assert df[df["id"] == a.name]["ir"].iloc[0] == pytest.approx(max(counts) / min(counts))
    at.selectbox(key="cmp.sort").set_value("minority_recall").run()
    at.toggle(key="cmp.desc").set_value(False).run()
    at.toggle(key="cmp.gan_first").set_value(False).run()
    assert list(at.dataframe[0].value["minority_recall"][:2]) == [0.2, 0.6]
    at.multiselect(key="cmp.methods").set_value(["gan"]).run()
    assert list(at.dataframe[0].value["id"].dropna()) == [b.name]  # and the baseline rows it is judged against
    # Overlaid curves: one chart per method, one trace per run, named by its short name.
    at.selectbox(key="cmp.key").set_value("d_loss").run()
    names = [[t["name"] for t in json.loads(c.proto.spec)["data"]] for c in at.get("plotly_chart")]
    labels = {r.id: r for r in runs.list_runs(tmp_path / "runs")}
    from ui.live import run_label
    assert sorted(names) == sorted([[run_label(labels[a.name])], [run_label(labels[b.name])]])


# --- Taxonomy ---------------------------------------------------------------------------------------
def _table(at: AppTest, column: str, width: int):
    return [d.value for d in at.dataframe if column in d.value.columns and len(d.value.columns) == width]


@pytest.mark.slow  # the app's pages through AppTest
def test_taxonomy_tables_filter():
    at = AppTest.from_file(TAXONOMY, default_timeout=TIMEOUT).run()
    assert not at.exception and not at.error
    assert len(at.get("plotly_chart")) >= 1  # the inter-class illustration on digits
    t3 = _table(at, "study", 4)[-1]
    assert len(t3) == len(tx.TABLE3) == 50  # 25 binary, 9 multi-class, 9 detection, 7 segmentation rows
    at.multiselect(key="tax.t3.category").set_value(["Segmentation"]).run()
    assert len(_table(at, "study", 4)[-1]) == 7  # 5 pixel-wise + 2 occlusion rows in the survey
    at.text_input(key="tax.t3.search").set_value("voxel").run()
    assert list(_table(at, "study", 4)[-1]["study"]) == ["Voxel GAN [224]"]
    at.multiselect(key="tax.t1.category").set_value(["Stack of GANs"]).run()
    assert list(_table(at, "GAN", 3)[0]["GAN"]) == ["LAPGAN [129]", "MADGAN [132]", "D2GAN [131]", "CycleGAN [134]",
                                                    "CoGAN [133]"]


@pytest.mark.slow  # the app's pages through AppTest
def test_taxonomy_levels_illustrate_with_the_apps_data():
    n = digits_train_counts()
    at = AppTest.from_file(TAXONOMY, default_timeout=TIMEOUT).run()
    minority = int(np.floor(n[1] / 10 + 0.5))
    assert [m.value for m in at.metric] == [f"{n[1] / minority:.1f}"]  # inter-class: binary IR 10
    at.selectbox(key="tax.type.Image level").set_value("Multi-class").run()
    assert not at.exception and not at.error
    illustrations = lambda: [c for c in at.get("plotly_chart") if str(c.key).startswith("tax.ill")]  # noqa: E731
    assert len(illustrations()) == 3
    assert [m.value for m in at.metric][0] == f"{max(n) / int(np.floor(n[0] * 0.025 + 0.5)):.1f}"  # drop 97.5% of 0
    at.radio(key="tax.level").set_value("Pixel level").run()
    assert not at.exception and not illustrations()


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_has_a_valid_preset(method):
    p = METHODS[method].demo["config"]
    cfg = TrainConfig.from_dict(p)
    assert cfg.method == method
    names, before, after = splits.imbalance_preview(cfg)  # the preset's data actually fits digits
    assert sum(after) > 0


@pytest.mark.slow  # the app's pages through AppTest
def test_a_method_button_hands_its_preset_to_the_train_page():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.switch_page("pages/taxonomy.py").run()
    at.button(key="tax.try.aggan").click().run()
    assert not at.exception
    assert at.title[0].value == "Train a balancing GAN"
    # The Train page consumed st.session_state["train_preset"]: its form shows the preset.
    assert "train_preset" not in at.session_state
    assert at.selectbox(key="train.method").value == "aggan"
    assert at.selectbox(key="train.imbalance").value == "binary"
    assert at.number_input(key="train.ir").value == 10.0
    # The preset names no steps: the form starts from the method's measured budget on digits, if there is one.
    from imbagan import budgets
    from imbagan.config import TrainConfig as Cfg

    assert "steps" not in METHODS["aggan"].demo["config"]
    assert at.number_input(key="train.aggan.steps").value == (budgets.default_steps("aggan", "digits") or Cfg.steps)


@pytest.mark.slow  # the app's pages through AppTest
def test_taxonomy_shows_the_latest_quality_table_with_its_budget_and_date():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.switch_page("pages/taxonomy.py").run()
    assert not at.exception
    tables = [t for t in at.dataframe if "class_acc_min" in t.value.columns]
    # Every method appears in some table; the first table shown is one whose GANs reached their budgets: none of
    # its rows was trained below a measured budget (a method with none, like bagan, says "no budget measured").
    assert tables and set(METHODS) <= {m for t in tables for m in t.value["method"]}
    trained = [str(x) for x in tables[0].value["trained"]]
    assert any(x.startswith("converged") for x in trained) and not any(x.startswith("NOT") for x in trained), trained
    assert any("budget" in c.value and "measured" in c.value for c in at.caption)


@pytest.mark.slow  # the app's pages through AppTest
def test_taxonomy_says_what_a_verdict_means(tmp_path, monkeypatch):
    monkeypatch.setenv("IMBAGAN_RUNS", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/taxonomy.py").run()
    assert not at.exception
    text = " ".join(i.value for i in at.info)
    assert "beats the *cheapest fix*, not just the untreated classifier" in text
    assert "twice its standard error" in text
    # The committed verdicts answer the question in one sentence and one table, every GAN verdict a row.
    assert any("beats the best cheap fix beyond noise" in m.value for m in at.markdown)
    (summary,) = [t.value for t in at.dataframe if "vs the best fix (points)" in t.value.columns]
    assert len(summary) == sum(len(t["frame"]["vs_best_acsa_diff"].dropna()) for t in tx.verdict_tables(tx.RESULTS))
