"""A first-time user's path through the real app in a real browser (Debian's Chromium, driven by Playwright).

Home -> Data (digits, step IR 10) -> "Train on this data" -> a short BAGAN run -> the sample grid changes by
itself -> the run finishes (or is stopped) -> Evaluate -> the P/R/F1 chart. Screenshots go to
$IMBAGAN_SHOTS (default: the test's tmp folder); page load times are printed and written next to them,
and checked against issue 9 §4's targets (first page after the server starts <= 2 s, a revisit <= 0.5 s
on 2 cores) with a 3x margin.

The browser is Debian's Chromium ($IMBAGAN_CHROMIUM, default /usr/bin/chromium). Without it (or without
playwright) the test is skipped, and tests/conftest.py says so loudly in the summary; when the CI
environment variable is set, a missing browser fails the run instead.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import stop_background
from imbagan import runs
from ui.labels import field_label

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("IMBAGAN_CHROMIUM") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
STEPS, WIDTH = 400, 16  # ~20 s of the default minority GAN on one CPU thread; a grid every 100 steps
# Issue 9 §4's targets on 2 CPU cores, and the margin the test allows on a busy machine.
FIRST_PAGE_S, REVISIT_S, MARGIN = 2.0, 0.5, 3.0


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}. CI is set, so the browser test must run: install Debian's chromium package "
                    "(and playwright from requirements.txt).", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


if not Path(CHROMIUM).exists():
    _missing(f"{CHROMIUM} is absent (install Debian's chromium package); skipping the browser test")
try:
    from playwright import sync_api
except ImportError:
    _missing("the playwright package is not installed; skipping the browser test")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def app_url(tmp_path):
    """`streamlit run app.py` on a free port with its own runs/data folders; killed (process group) at the end."""
    port = free_port()
    env = {**os.environ, "IMBAGAN_RUNS": str(tmp_path / "runs"), "IMBAGAN_DATA": str(tmp_path / "data"),
           "IMBAGAN_CACHE": str(tmp_path / "cache"), "IMBAGAN_THREADS": "1"}
    log = open(tmp_path / "streamlit.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                             "--server.headless", "true", "--browser.gatherUsageStats", "false"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                pytest.fail(f"streamlit did not come up on port {port}:\n{(tmp_path / 'streamlit.log').read_text()}")
            time.sleep(0.3)
        yield url
    finally:
        stop_background(tmp_path / "runs")  # a worker lives in its own session: stop it by its run
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        log.close()


def test_a_new_user_trains_the_default_gan_from_the_data_page(app_url, tmp_path):
    shots = Path(os.environ.get("IMBAGAN_SHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)

        def shot(name: str) -> None:
            page.screenshot(path=str(shots / f"{name}.png"), full_page=True)

        def no_exception() -> None:
            assert page.locator('[data-testid="stException"]').count() == 0, page.inner_text("body")[:2000]

        def settle() -> None:
            """Wait for Streamlit's rerun to finish (the 'Running...' status widget goes away)."""
            time.sleep(0.3)
            page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=30_000)

        def panel_in_view(heading, seconds: float = 15):
            """The heading's box once it is in the top 450 px, or where it is after ``seconds``. The form folds in
            the rerun that Launch asks for; under a loaded CPU the page can paint that rerun a moment after the
            status widget hides (the bug kept the panel ~1,300 px down; a bare measurement raced the fold once)."""
            deadline = time.time() + seconds
            while (box := heading.bounding_box()) is None or not 0 <= box["y"] <= 450:
                if time.time() > deadline:
                    break
                time.sleep(0.25)
            return box

        def layout() -> dict:
            return page.evaluate("""() => {
                const side = document.querySelector('[data-testid="stSidebar"]');
                const main = document.querySelector('[data-testid="stMainBlockContainer"]');
                return {nav: side ? side.innerText.replace(/\\s+/g, ' ').trim() : '',
                        width: main ? getComputedStyle(main).maxWidth : null,
                        home: !!document.body && document.body.innerText.includes('Start here')};
            }""")

        # Home, as a new user lands: the very first request of a fresh server. Sampled as it draws, it must
        # never show Streamlit's legacy page menu (the pages/ file names), and it ends wide, with our menu.
        t = time.time()
        page.goto(app_url, wait_until="commit")
        frames = []
        while time.time() - t < 60:
            frames.append(layout())
            if frames[-1]["home"]:
                break
            time.sleep(0.05)
        page.get_by_text("Start here").first.wait_for()
        timings["home (first request)"] = time.time() - t
        legacy = [f["nav"] for f in frames if "taxonomy" in f["nav"] or f["nav"].startswith("app ")]
        assert not legacy, f"the legacy multipage menu showed: {legacy[0]}"
        page.locator('[data-testid="stSidebar"]').get_by_role("link", name="Taxonomy").wait_for()
        end = layout()
        assert end["width"] == "none", f"not the wide layout: max-width {end['width']}"
        assert all(name in end["nav"] for name in ("Home", "Data", "Train", "Evaluate", "Compare", "Taxonomy"))
        shot("01-home")
        no_exception()

        # Data: the defaults are digits with 95% of the 3s and 8s dropped (BAGAN §5's protocol).
        nav = page.locator('[data-testid="stSidebar"]')
        t = time.time()
        nav.get_by_role("link", name="Data").click()
        page.locator('[data-testid="stImage"] img').first.wait_for()  # the real-image grid, drawn last
        timings["data (first visit)"] = time.time() - t
        settle()
        # A revisit: Home, then Data again, from the sidebar (the grid comes from the cache now).
        t = time.time()
        nav.get_by_role("link", name="Home").click()
        page.get_by_text("Start here").first.wait_for()
        timings["home (revisit)"] = time.time() - t
        settle()
        t = time.time()
        nav.get_by_role("link", name="Data").click()
        page.get_by_role("heading", name="Data and imbalance").wait_for()
        page.locator('[data-testid="stImage"] img').first.wait_for()
        timings["data (revisit)"] = time.time() - t
        settle()
        metrics = page.locator('[data-testid="stMetric"]').all_inner_texts()
        assert any(m.startswith("Imbalance ratio") and "19.4" in m for m in metrics), metrics  # 136 / 7
        assert page.locator('[data-testid="stPlotlyChart"]').count() == 1
        shot("02-data")
        no_exception()

        # Train on this data: the Train page opens with the same data, the minority GAN by default.
        page.get_by_role("button", name="Train on this data").click()
        page.get_by_text("Train a balancing GAN").first.wait_for()
        settle()
        for label, value in ((field_label("steps"), STEPS), (field_label("width"), WIDTH)):
            box = page.get_by_label(label, exact=True)
            box.fill(str(value))
            box.press("Enter")
            settle()
            assert box.input_value() == str(value)
        # The evaluation launched with the training is tested in test_runs; here it is launched by hand below.
        page.get_by_text("Evaluate it too").click()
        settle()
        shot("03-train-form")
        no_exception()
        page.get_by_role("button", name="Launch training").click()
        # The new run's live panel comes up where the user is looking, not ~1,300 px further down.
        heading = page.get_by_role("heading", name="gan on digits")
        heading.wait_for(timeout=60_000)
        settle()
        box = panel_in_view(heading)
        assert box is not None and 0 <= box["y"] <= 450, \
            f"live panel at y={box}, scrolled to {page.evaluate('window.scrollY')}"
        assert page.get_by_role("button", name="Stop").is_visible() or page.get_by_text("(done)").count()
        shot("03b-train-launched")

        # The newest sample grid refreshes by itself: two different image sources over time.
        grid = page.locator('[data-testid="stImage"] img').first
        grid.wait_for(timeout=90_000)
        first_src = grid.get_attribute("src")
        shot("04-train-first-grid")
        deadline, later_src = time.time() + 60, first_src
        while time.time() < deadline and later_src == first_src:
            time.sleep(0.5)
            later_src = page.locator('[data-testid="stImage"] img').first.get_attribute("src")
        assert later_src != first_src, "the sample grid did not change without a click"
        shot("05-train-grid-changed")
        no_exception()
        (run,) = runs.list_runs(tmp_path / "runs")
        assert run.config["method"] == "gan" and run.config["imbalance"] == "drop"
        assert run.config["steps"] == STEPS and run.config["width"] == WIDTH

        # Page loads while the run trains (a second tab, as a user comparing pages would).
        other = browser.new_page(viewport={"width": 1400, "height": 1000})
        t = time.time()
        other.goto(f"{app_url}/data")
        other.locator('[data-testid="stImage"] img').first.wait_for(timeout=60_000)
        timings["data (run training)"] = time.time() - t
        t = time.time()
        other.goto(f"{app_url}/train?run={run.id}")
        other.locator('[data-testid="stImage"] img').first.wait_for(timeout=60_000)
        timings["train with live run (run training)"] = time.time() - t
        other.close()

        # Let it finish (about 20 s); stop it if it is slower than that here.
        try:
            page.get_by_text("(done)").first.wait_for(timeout=45_000)
        except sync_api.TimeoutError:
            page.get_by_role("button", name="Stop").click()
            page.get_by_text("(stopped)").first.wait_for(timeout=30_000)
        settle()
        shot("06-train-finished")
        no_exception()

        # Evaluate: a small budget, launch, and the per-class P/R/F1 chart appears without clicking.
        t = time.time()
        page.goto(f"{app_url}/evaluate?run={run.id}")
        page.get_by_text("not been evaluated yet").wait_for(timeout=60_000)
        timings["evaluate page"] = time.time() - t
        for label, value in (("Epochs", "1"), ("t-SNE points", "200"), ("Generated images per class (quality)", "40"),
                             ("SSIM pairs per class", "20")):
            box = page.get_by_role("spinbutton", name=label, exact=True)
            box.fill(value)
            box.press("Enter")
            settle()
        shot("07-evaluate-settings")
        page.get_by_role("button", name="Launch evaluation").click()
        page.get_by_role("heading", name="Per class").wait_for(timeout=150_000)
        page.locator(".js-plotly-plot").nth(2).wait_for(timeout=30_000)  # per-class bars + confusion matrices
        settle()
        shot("08-evaluate-results")
        no_exception()

        # Issue 14 #6 as reported: a run is on screen, the user opens the folded New run form by hand and
        # launches from it. The new run's live panel must come up in view, not ~1,300 px below the open form.
        page.goto(f"{app_url}/train?run={run.id}")
        page.get_by_role("heading", name="gan on digits").wait_for()
        settle()
        page.get_by_text("New run", exact=True).click()
        steps = page.get_by_label(field_label("steps"), exact=True)
        steps.wait_for()
        steps.fill("5000")
        steps.press("Enter")
        settle()
        t = time.time()
        page.get_by_role("button", name="Launch training").click()
        heading = page.get_by_role("heading", name=re.compile(r"\bgan on digits \((queued|running)\)"))
        heading.wait_for(timeout=60_000)
        # Issue 23 #11: the previous run's panel ("(done)") gave way to the new one at once, not after ~4 s.
        timings["new run's panel after Launch"] = time.time() - t
        settle()
        box = panel_in_view(heading)
        shot("09-train-second-launch")
        assert box is not None and 0 <= box["y"] <= 450, f"the new run's panel is at y={box}"
        try:  # the form folds on the rerun that Launch starts; give a loaded machine a few seconds for it
            steps.wait_for(state="hidden", timeout=15_000)
        except sync_api.TimeoutError:
            raise AssertionError("the New run form is still open after Launch") from None
        page.get_by_role("button", name="Stop").click()
        page.get_by_text("(stopped)").first.wait_for(timeout=30_000)

        browser.close()

    load = os.getloadavg()
    (shots / "timings.json").write_text(json.dumps({**timings, "loadavg": load}, indent=1))
    print(f"\nscreenshots in {shots}; page load times (s): " + ", ".join(f"{k} {v:.2f}" for k, v in timings.items())
          + f"; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")
    assert timings["data (run training)"] < 30 and timings["train with live run (run training)"] < 30
    assert timings["new run's panel after Launch"] < 3.0, timings
    assert timings["home (first request)"] < FIRST_PAGE_S * MARGIN, timings
    assert timings["home (revisit)"] < REVISIT_S * MARGIN and timings["data (revisit)"] < REVISIT_S * MARGIN, timings


README_SHOTS = os.environ.get("IMBAGAN_README_SHOTS")


@pytest.mark.skipif(not README_SHOTS, reason="writes README's screenshots: `make screenshots` "
                                              "(IMBAGAN_README_SHOTS=docs), about 2 minutes of the default path")
def test_readme_screenshots_of_the_default_path(app_url, tmp_path):
    """Issue 23 #18: README's pictures come from the default path as a newcomer meets it, at its default budget
    (not the short runs above): Data -> Train on this data -> Launch (Evaluate it too on) -> the live panel once
    a few grids and the quality curve are in -> the Evaluate page's verdict. ``make screenshots`` refreshes
    them after a page changes. Also checks issue 23 #11: within 2 s of Launch the previous run's panel
    (here the first run, done) has made way for the new one."""
    out = ROOT / README_SHOTS
    out.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        page.set_default_timeout(60_000)

        def settle() -> None:
            time.sleep(0.3)
            page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=60_000)

        def launch_default() -> tuple[runs.RunInfo, float]:
            page.goto(f"{app_url}/data")
            page.locator('[data-testid="stImage"] img').first.wait_for()
            settle()
            page.get_by_role("button", name="Train on this data").click()
            page.get_by_text("Train a balancing GAN").first.wait_for()
            settle()
            before = {r.id for r in runs.list_runs(tmp_path / "runs")}
            page.get_by_role("button", name="Launch training").click()
            t = time.time()
            page.get_by_role("heading", name=re.compile(r"\bgan on digits \((queued|running)\)")).wait_for()
            (new,) = [r for r in runs.list_runs(tmp_path / "runs") if r.id not in before]
            return new, time.time() - t

        run, _ = launch_default()
        page.get_by_text("(done)").first.wait_for(timeout=600_000)
        settle()
        # The verdict is on the Evaluate page once the evaluation launched with the training has written it.
        deadline = time.time() + 600
        while runs.read_status(run.dir / "eval").get("state") in runs.ACTIVE:
            assert time.time() < deadline, runs.log_tail(run.dir / "eval")
            time.sleep(1.0)
        assert runs.read_status(run.dir / "eval").get("state") == "done", runs.log_tail(run.dir / "eval")

        def top(heading) -> None:  # the heading at the top of the view (Streamlit scrolls its own container)
            heading.wait_for(timeout=120_000)
            settle()
            heading.evaluate("e => e.scrollIntoView({block: 'start'})")
            time.sleep(0.5)
        page.goto(f"{app_url}/train?run={run.id}")
        page.locator(".js-plotly-plot").nth(1).wait_for()
        top(page.get_by_role("heading", name="gan on digits (done)"))
        page.screenshot(path=str(out / "train-live.png"))
        page.goto(f"{app_url}/evaluate?run={run.id}")
        top(page.get_by_role("heading", name="Verdict"))
        page.screenshot(path=str(out / "evaluate-verdict.png"))

        # Issue 23 #11: a second launch from the panel of the first (done) run.
        page.goto(f"{app_url}/train?run={run.id}")
        page.get_by_role("heading", name="gan on digits (done)").wait_for()
        settle()
        second, shown_after = launch_default()
        assert shown_after < 2.0, f"the new run's panel came {shown_after:.1f} s after Launch"
        runs.stop(second.id, tmp_path / "runs")
        from imbagan import evaluate
        evaluate.stop_evaluation(second.dir)  # the one launched with it (Evaluate it too) would go on alone
        browser.close()
