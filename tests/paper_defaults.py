"""Do the CLI and the app's Train form apply a method's paper settings? Shared by the method tests.

``paper_defaults`` reads the settings wherever the method keeps them: a ``paper_defaults`` attribute
on the method class, or the older module-level ``PAPER_DEFAULTS`` of the method's file.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from streamlit.testing.v1 import AppTest

from imbagan import __main__ as cli
from imbagan.config import measured_defaults, TrainConfig
from imbagan.methods import METHODS
from ui.widgets import CHOICES

TRAIN_PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "train.py")
WIDGETS = ("number_input", "selectbox", "text_input", "checkbox", "toggle", "select_slider", "radio")


def paper_defaults(method: str) -> dict:
    cls = METHODS[method]
    if hasattr(cls, "paper_defaults"):
        return dict(cls.paper_defaults)
    return dict(getattr(importlib.import_module(cls.__module__), "PAPER_DEFAULTS", {}))


def _another(field: str, value):
    """A valid value of ``field`` other than ``value``."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value / 2
    return next(c for c in CHOICES[field] if c != value)


def cli_config(*argv: str) -> TrainConfig:
    """The TrainConfig `python -m imbagan train ARGV` would train with."""
    p = argparse.ArgumentParser()
    cli._add_config_args(p)
    return cli._config_from_args(p.parse_args(list(argv)))


def form_values(method: str) -> dict:
    """{field: value} of the Train page's method widgets once ``method`` is chosen."""
    at = AppTest.from_file(TRAIN_PAGE, default_timeout=60).run()
    at.selectbox(key="train.method").set_value(method).run()
    assert not at.exception and not at.error, [e.value for e in at.exception] + [e.value for e in at.error]
    prefix = f"train.{method}."
    # Keys are train.<method>.<field>.
    return {w.key[len(prefix):].split(".", 1)[0]: w.value for kind in WIDGETS for w in at.get(kind)
            if isinstance(getattr(w, "key", None), str) and w.key.startswith(prefix)}


def assert_cli_and_app_apply(method: str) -> tuple[dict, TrainConfig, dict]:
    """Both front ends start ``method`` from TrainConfig's defaults overlaid with its paper settings.

    Returns (paper settings, the CLI's config, the form's values) for method-specific checks.
    """
    paper = paper_defaults(method)
    # ... and the measured budget of the default dataset's family, where one was measured (imbagan.budgets)
    measured = measured_defaults(method, {})
    expected = TrainConfig.from_dict({"method": method, **measured})
    # Applying them must show: at least one differs from TrainConfig's own default.
    base = TrainConfig(method=method).flat()
    assert not paper or any(base[f] != v for f, v in paper.items()), paper
    cfg = cli_config("--method", method)
    assert cfg == expected
    # A flag given on the command line still wins over the paper's value.
    flags = {f: _another(f, v) for f, v in paper.items()}
    argv = [a for f, v in flags.items() for a in ("--" + f.replace("_", "-"), str(v))]
    assert cli_config("--method", method, *argv) == TrainConfig.from_dict({"method": method, **measured, **flags})
    form = form_values(method)
    for field, value in paper.items():
        assert field in form, f"the Train form shows no widget for {method}'s paper setting {field}"
        assert form[field] == value, (field, form[field], value)
    return paper, cfg, form
