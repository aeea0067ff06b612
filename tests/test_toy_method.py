"""Adding a method is one file (tests/toy_method.py) and one registry line: the CLI, the Train form and
the Taxonomy page all find it."""

from __future__ import annotations


import pytest
from streamlit.testing.v1 import AppTest

from imbagan import runs
from imbagan.__main__ import main
from imbagan.methods import METHODS
from tests.conftest import APP
from tests.toy_method import Toy



@pytest.fixture
def toy_registered(monkeypatch):
    monkeypatch.setitem(METHODS, "toy", Toy)  # the one registry line


def test_the_cli_offers_and_trains_the_toy(toy_registered, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "toy" in capsys.readouterr().out
    assert main(["--runs", str(tmp_path), "train", "--method", "toy", "--steps", "4", "--batch-size", "8",
                 "--tick-every", "2", "--sample-every", "2", "--checkpoint-every", "2", "--device", "cpu",
                 "--rounds", "2"]) == 0
    (run,) = runs.list_runs(tmp_path)
    assert run.state == "done" and run.config["method"] == "toy" and run.config["options"] == {"rounds": 2}


@pytest.mark.slow  # the app's pages through AppTest
def test_the_train_form_shows_the_toy_and_its_fields(toy_registered):
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/train.py").run()
    assert "Toy: a class-mean generator" in at.selectbox(key="train.method").options
    at.selectbox(key="train.method").set_value("toy").run()
    assert not at.exception
    rounds = at.number_input(key="train.toy.rounds")  # the toy's own setting, from its card, at its default
    assert rounds.label == "rounds" and rounds.value == 1 and rounds.help == "least-squares updates per step"
    assert rounds.min == 1
    assert any("class-mean generator" in c.value for c in at.caption) or \
        any("least squares" in c.value for c in at.caption)


@pytest.mark.slow  # the app's pages through AppTest
def test_the_taxonomy_lists_the_toy(toy_registered):
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/taxonomy.py").run()
    assert not at.exception
    assert any("Toy: a class-mean generator" in m.value for m in at.markdown)
    # Its demonstration button opens the Train form on the toy's demo setting.
    at.button(key="tax.try.toy").click().run()
    assert not at.exception
    assert at.selectbox(key="train.method").value == "toy" and at.number_input(key="train.toy.steps").value == 4


def test_without_the_line_the_toy_is_nowhere():
    assert "toy" not in METHODS
