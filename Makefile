# The commands of README's quick start, each on a fresh machine too:
#   make app        -- create .venv if missing, install requirements.txt, start the app on the bundled digits set
#   make test       -- the same set-up, then the whole test suite (what CI runs), slowest tests listed at the end
#   make test-fast  -- the same set-up, then every test but the slow ones (pytest -m "not slow": background
#                      processes, the app's pages through AppTest, the browser); for the edit-test loop
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# One pytest worker per core, at most four (pytest-xdist): every test trains on one thread (tests/conftest.py sets
# IMBAGAN_THREADS=1), so a single worker left a 2-core machine half idle. PYTEST_WORKERS=0 runs them in one process.
PYTEST_WORKERS ?= auto
XDIST  := $(if $(filter 0,$(PYTEST_WORKERS)),-p no:xdist,-n $(PYTEST_WORKERS) --maxprocesses=4)

.PHONY: app test test-fast bench screenshots clean-runs

# requirements.txt installs this checkout with its extras, so a change to either file re-installs.
$(STAMP): requirements.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH (or run: make PYTHON=python3 ...)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

app: $(STAMP)
	$(PY) -m streamlit run app.py

test: $(STAMP)
	$(PY) -m pytest -q $(XDIST) --durations=15

test-fast: $(STAMP)
	$(PY) -m pytest -q $(XDIST) -m "not slow"

bench: $(STAMP)
	$(PY) bench/speed.py

# README's two pictures (docs/*.png): the default path at its default budget in a real browser, about 3 minutes.
# Needs Debian's chromium, and fonts-noto-color-emoji for the icons.
screenshots: $(STAMP)
	IMBAGAN_README_SHOTS=docs $(PY) -m pytest -q tests/test_browser.py -k readme_screenshots

clean-runs:
	rm -rf runs
