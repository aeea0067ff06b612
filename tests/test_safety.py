"""Safe by default (issue 11): local binding, confined data folders, bounded scans, pixel bombs, 16-bit images,
bad zips as one sentence, unreadable run files, a full disk.

Every test is CPU-only, takes seconds and writes under tmp_path.
"""

from __future__ import annotations

import errno
import io
import json
import os
import threading
import time
import tomllib
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from imbagan import data as datasets
from imbagan import folders
from imbagan import preview, rundir, runs
from tests.conftest import ROOT, TIMEOUT, tiny_config

PAGES = {p: str(ROOT / "pages" / f"{p}.py") for p in ("data", "home", "train", "evaluate", "compare")}


@pytest.fixture(autouse=True)
def _folders(tmp_path, monkeypatch):
    monkeypatch.setenv("IMBAGAN_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("IMBAGAN_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("IMBAGAN_ALLOWED_ROOTS", raising=False)
    (tmp_path / "data").mkdir()


def png(value: int = 100, size: tuple[int, int] = (12, 12), mode: str = "L") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, value).save(buf, format="PNG")
    return buf.getvalue()


def zip_of(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, content in entries.items():
            z.writestr(name, content)
    return buf.getvalue()


def image_folder(folder: Path, per_class: int = 3) -> Path:
    for c, v in (("cat", 40), ("dog", 200)):
        (folder / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.new("L", (8, 8), v).save(folder / c / f"{i}.png")
    return folder


def finishes_within(seconds: float, fn):
    """fn()'s result, or a test failure if it has not returned in time (it keeps running in a daemon thread)."""
    box: dict = {}

    def run():
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the test
            box["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t0 = time.perf_counter()
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"still running after {seconds} s"
    if "error" in box:
        raise box["error"]
    return box["value"], time.perf_counter() - t0


# --- 1. binding and confinement -----------------------------------------------------------------------------
def test_the_app_listens_on_localhost_only_by_default():
    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert cfg["server"]["address"] == "127.0.0.1"
    readme = (ROOT / "README.md").read_text()
    assert "--server.address 0.0.0.0" in readme and "Warning" in readme


def test_data_folders_outside_the_allowed_roots_are_refused_without_listing_them(tmp_path, monkeypatch):
    inside = image_folder(tmp_path / "data" / "pets")
    assert datasets.check_allowed(inside) == inside.resolve()
    assert datasets.check_allowed(None) == (tmp_path / "data").resolve()  # the data root itself
    etc_names = [n for n in os.listdir("/etc") if os.path.isdir(os.path.join("/etc", n))]
    with pytest.raises(ValueError, match="outside the folders this app may read") as e:
        datasets.check_allowed("/etc")
    words = set(str(e.value).replace(",", " ").split())
    assert not [n for n in etc_names if n in words]
    # A symlink inside the data root does not smuggle a folder in: links are resolved first.
    (tmp_path / "data" / "sneaky").symlink_to("/etc")
    with pytest.raises(ValueError, match="outside"):
        datasets.check_allowed(tmp_path / "data" / "sneaky")
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(ValueError, match="outside"):
        datasets.check_allowed(tmp_path / "data" / ".." / "elsewhere")
    # A typo names the mistake the user made: the folder does not exist (issue 23, 17).
    with pytest.raises(ValueError, match="does not exist: check its spelling") as e:
        datasets.check_allowed(tmp_path / "dtaa")
    assert str(tmp_path / "data") in str(e.value)
    # More roots, on purpose.
    extra = image_folder(tmp_path / "extra" / "imgs")
    monkeypatch.setenv("IMBAGAN_ALLOWED_ROOTS", f"/nonexistent{os.pathsep}{tmp_path / 'extra'}")
    assert datasets.check_allowed(extra) == extra.resolve()


@pytest.mark.parametrize("path", ["/etc", "/"])
@pytest.mark.slow  # the app's pages through AppTest
def test_data_page_refuses_a_folder_outside_the_allowed_roots_quickly(path):
    at = AppTest.from_file(PAGES["data"], default_timeout=TIMEOUT).run()
    at.selectbox(key="data.dataset").set_value("imagefolder").run()
    t0 = time.perf_counter()
    at.text_input(key="data.root").set_value(path).run()
    assert time.perf_counter() - t0 < 10
    assert not at.exception
    text = " ".join(e.value for e in at.error)
    assert "outside the folders this app may read" in text
    names = sorted(os.listdir(path))
    assert not [(a, b) for a, b in zip(names, names[1:]) if f"{a}, {b}" in text]  # no listing of its folders
    assert not at.get("image")


@pytest.mark.slow  # the app's pages through AppTest
def test_train_page_cannot_launch_on_a_folder_outside_the_allowed_roots():
    at = AppTest.from_file(PAGES["train"], default_timeout=TIMEOUT).run()
    at.selectbox(key="train.dataset").set_value("imagefolder").run()
    at.text_input(key="train.root").set_value("/etc").run()
    assert not at.exception
    assert any("outside the folders this app may read" in e.value for e in at.error)
    assert at.button(key="train.launch").disabled


# --- 3. scans: no symlink loops, bounded -------------------------------------------------------------------
def test_a_symlink_loop_does_not_hang_loading_or_the_preview(tmp_path):
    folder = image_folder(tmp_path / "data" / "loopy")
    for name in ("a", "b", "c"):  # three links back up: following them never ends (3^depth paths)
        (folder / "cat" / name).symlink_to("..")
    (y, classes), dt = finishes_within(20, lambda: datasets.load_labels("imagefolder", "train", root=folder))
    assert classes == ("cat", "dog") and len(y) + 2 == 6  # 20% of 3 per class held out; links not followed
    s, _ = finishes_within(20, lambda: datasets.load("imagefolder", "train", root=folder, image_size=8, channels=1))
    assert s.counts() == [2, 2]


@pytest.mark.slow  # the app's pages through AppTest
def test_data_page_preview_of_a_symlink_loop_returns_within_seconds(tmp_path):
    folder = image_folder(tmp_path / "data" / "loopy")
    for name in ("a", "b", "c"):
        (folder / "dog" / name).symlink_to("..")
    at = AppTest.from_file(PAGES["data"], default_timeout=TIMEOUT).run()
    at.selectbox(key="data.dataset").set_value("imagefolder").run()
    at.selectbox(key="data.imbalance").set_value("none").run()
    t0 = time.perf_counter()
    at.text_input(key="data.root").set_value(str(folder)).run(timeout=20)
    assert time.perf_counter() - t0 < 15
    assert not at.exception and not at.error, [e.value for e in at.error]


def test_a_huge_tree_stops_at_the_scan_limits_with_a_clear_error(tmp_path, monkeypatch):
    folder = image_folder(tmp_path / "data" / "huge")
    for i in range(300):
        (folder / "dog" / f"junk{i}.txt").write_bytes(b"")
    monkeypatch.setattr(folders, "MAX_SCAN_ENTRIES", 200)
    with pytest.raises(ValueError, match="more than 200 files and folders"):
        finishes_within(10, lambda: datasets.load_labels("imagefolder", "train", root=folder))
    with pytest.raises(ValueError, match="more than 200"):
        datasets.load("imagefolder", "train", root=folder)
    monkeypatch.setattr(folders, "MAX_SCAN_ENTRIES", 10 ** 9)
    monkeypatch.setattr(folders, "MAX_SCAN_SECONDS", 0.0)
    with pytest.raises(ValueError, match=r"took more than 0 s"):
        datasets.load_labels("imagefolder", "train", root=folder)


# --- 7. pixel bombs -------------------------------------------------------------------------------------------
def test_a_pixel_bomb_is_refused_at_upload_from_its_header(tmp_path):
    bomb = png(0, (5000, 5000))  # a few KB of PNG, 25 megapixels decoded
    z = zip_of({"cat/1.png": png(10), "cat/bomb.png": bomb, "dog/1.png": png(200)})
    with pytest.raises(ValueError, match=r"cat/bomb.png is 5,000x5,000 pixels.*at most 4,096x4,096"):
        preview.extract_zip(io.BytesIO(z), "bomb.zip")
    up = tmp_path / "data" / "uploads"
    assert not up.exists() or not any(up.iterdir())


def test_a_pixel_bomb_in_a_data_folder_is_a_clear_error(tmp_path):
    folder = image_folder(tmp_path / "data" / "pets")
    Image.new("L", (5000, 5000)).save(folder / "dog" / "bomb.png")
    with pytest.raises(ValueError, match=r"bomb.png is 5,000x5,000 pixels; images may have at most 4,096x4,096"):
        datasets.load("imagefolder", "train", root=folder, image_size=8)


# --- 8. 16-bit and float images -------------------------------------------------------------------------------
def test_a_16_bit_gradient_spans_0_to_255(tmp_path):
    folder = tmp_path / "data" / "deep"
    grad = (np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)  # 0..65520
    grad[-1, -1] = 65535
    for c in ("a", "b"):
        (folder / c).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(grad).save(folder / c / f"{i}.png")
    with Image.open(folder / "a" / "0.png") as im:
        assert im.mode.startswith("I")  # really a 16-bit file
    s = datasets.load("imagefolder", "train", root=folder, image_size=64, channels=1)
    got = s.x[0, 0].astype(int)
    want = np.rint(grad / 257.0).astype(int)
    assert got.min() == 0 and got.max() == 255
    assert np.abs(got - want).max() <= 1
    assert len(np.unique(got)) > 200


def test_float_images_in_0_1_are_scaled(tmp_path):
    folder = tmp_path / "data" / "floats"
    ramp = np.linspace(0, 1, 32 * 32, dtype=np.float32).reshape(32, 32)
    for c in ("a", "b"):
        (folder / c).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(ramp, mode="F").save(folder / c / f"{i}.tif")
    s = datasets.load("imagefolder", "train", root=folder, image_size=32, channels=1)
    got = s.x[0, 0].astype(int)
    assert got.min() == 0 and got.max() == 255
    assert np.abs(got - np.rint(ramp * 255)).max() <= 1


# --- 6 (page side). bad zips are one sentence ----------------------------------------------------------------
def _forged_size_zip() -> bytes:
    """A zip whose central directory claims a wrong compressed size: zipfile raises BadZipFile on reading it."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("cat/1.png", png(10))
        z.writestr("dog/1.png", png(200))
    raw = bytearray(buf.getvalue())
    cd = raw.find(b"PK\x01\x02")  # the first central-directory entry: its compressed size is at offset 20
    raw[cd + 20:cd + 24] = (50).to_bytes(4, "little")
    return bytes(raw)


def _file_and_folder_zip() -> bytes:
    return zip_of({"cat/1.png": png(10), "dog/x.png": png(200), "dog/x.png/y.png": png(1)})


@pytest.mark.parametrize("blob, words", [
    (_forged_size_zip(), "damaged"),
    (_file_and_folder_zip(), "a file and a folder with the same name ('x.png')"),
    (b"PK\x03\x04 not really a zip", "not a readable zip"),
])
def test_every_bad_zip_is_one_sentence(tmp_path, blob, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        preview.extract_zip(io.BytesIO(blob), "bad.zip")
    up = tmp_path / "data" / "uploads"
    assert not up.exists() or not any(up.iterdir())


@pytest.mark.parametrize("blob", [_forged_size_zip(), _file_and_folder_zip()])
@pytest.mark.slow  # the app's pages through AppTest
def test_data_page_shows_a_bad_zip_as_one_sentence(blob):
    at = AppTest.from_file(PAGES["data"], default_timeout=TIMEOUT).run()
    at.file_uploader(key="data.upload").set_value(("bad.zip", blob, "application/zip")).run()
    at.button(key="data.extract").click().run()
    assert not at.exception
    (err,) = [e.value for e in at.error]
    assert "Traceback" not in err and err.count("\n") == 0


# --- 4. unreadable run files ----------------------------------------------------------------------------------
BAD_STATUS = {
    "garbage": b"\xff\xfe not json at all",
    "truncated": b'{"state": "runn',
    "a list": b"[1, 2, 3]",
    "wrong types": json.dumps({"state": "running", "heartbeat": "yesterday", "step": "ten"}).encode(),
    "unknown state": json.dumps({"state": "dancing"}).encode(),
}


def _runs_with_one_bad(tmp_path: Path, which: str, content: bytes | None) -> tuple[Path, Path]:
    root = tmp_path / "runs"
    good = runs.create(tiny_config(), root)
    runs.write_json_atomic(good / "status.json", {**runs.read_json(good / "status.json"), "state": "done",
                                                  "step": 6, "total": 6})
    bad = runs.create(tiny_config(method="bagan"), root)
    target = bad / which
    if content is None:  # a folder where the file should be
        target.unlink()
        target.mkdir()
    else:
        target.write_bytes(content)
    return good, bad


@pytest.mark.parametrize("content", [*BAD_STATUS.values(), None], ids=[*BAD_STATUS, "a folder"])
def test_an_unreadable_status_json_lists_as_unreadable_and_the_rest_still_works(tmp_path, content):
    good, bad = _runs_with_one_bad(tmp_path, "status.json", content)
    rs = {r.id: r for r in runs.list_runs()}
    assert rs[good.name].state == "done"
    assert rs[bad.name].state == "unreadable" and "status.json" in rs[bad.name].status["error"]
    assert runs.info(bad.name).state == "unreadable"
    with pytest.raises(ValueError, match="cannot be resumed"):
        runs.resume(bad.name)


@pytest.mark.parametrize("config", [
    {"method": 5, "steps": "many"},  # wrong types: TypeError / AttributeError in TrainConfig today
    {"dataset": ["digits"]},
    [1, 2],
    "just a string",
])
def test_a_config_json_with_wrong_types_lists_as_unreadable(tmp_path, config):
    good, bad = _runs_with_one_bad(tmp_path, "config.json", json.dumps(config).encode())
    rs = {r.id: r for r in runs.list_runs()}
    assert rs[good.name].state == "done"
    assert rs[bad.name].state == "unreadable" and "config.json" in rs[bad.name].status["error"]


@pytest.mark.parametrize("page", ["home", "train", "evaluate", "compare"])
@pytest.mark.slow  # the app's pages through AppTest
def test_pages_survive_an_unreadable_run(tmp_path, page):
    good, bad = _runs_with_one_bad(tmp_path, "status.json", BAD_STATUS["garbage"])
    (good / "checkpoint.pt").write_bytes(b"")  # so the Evaluate page lists it
    _, bad2 = _runs_with_one_bad(tmp_path / "more", "config.json", json.dumps({"method": 5}).encode())
    bad2.rename(tmp_path / "runs" / bad2.name)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, page
    if page == "train":  # the unreadable run itself can be opened and says why
        at = AppTest.from_file(PAGES[page], default_timeout=TIMEOUT)
        at.query_params["run"] = bad.name
        at.run()
        assert not at.exception
        assert any("status.json" in e.value for e in at.error)


# --- 5. a full disk -------------------------------------------------------------------------------------------
def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_failed_atomic_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    target = tmp_path / "run" / "status.json"
    target.parent.mkdir()
    target.write_text('{"state": "running"}')
    monkeypatch.setattr(os, "replace", _enospc)
    with pytest.raises(OSError):
        runs.write_json_atomic(target, {"state": "done"})
    assert [p.name for p in target.parent.iterdir()] == ["status.json"]
    assert json.loads(target.read_text()) == {"state": "running"}


def test_readers_keep_working_on_a_full_disk(tmp_path, monkeypatch):
    d = runs.create(tiny_config(), tmp_path / "runs")
    st = runs.read_json(d / "status.json")
    runs.write_json_atomic(d / "status.json", {**st, "state": "running", "pid": 2 ** 22 + 7})  # a dead worker
    monkeypatch.setattr(rundir, "write_json_atomic", _enospc)  # the status reader's own name
    (r,) = runs.list_runs()
    assert r.state == "failed"  # reported as failed even though the correction could not be saved
    assert runs.info(d.name).state == "failed"
    assert not list(d.glob(".*.tmp"))


def test_a_worker_on_a_full_disk_still_records_its_failure(tmp_path, monkeypatch):
    d = runs.create(tiny_config(), tmp_path / "runs")
    w = runs.StatusWriter(d)
    w.update(state="running", pid=os.getpid(), step=3, total=6, phase="adversarial", eta_s=12.5, steps_per_s=3.0)
    monkeypatch.setattr(rundir, "write_json_atomic", _enospc)  # StatusWriter's own name
    w.start_heartbeat()  # a beat that cannot write must not kill the thread or the worker
    w.update(state="failed", error=runs.error_text(OSError(errno.ENOSPC, "No space left on device", "x.pt")))
    w.close()
    st = runs.read_status(d)
    assert st["state"] == "failed"
    assert st["error"].startswith("no space left on device")
    assert not list(d.glob(".*.tmp"))
