"""The package's shape: no import cycle, method cards readable without torch, a method is one file, and
its packaging (pyproject.toml): the console script, the extras, core dependencies that cover imbagan's imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from imbagan import catalog

PKG = Path(__file__).resolve().parent.parent / "imbagan"


def _imports(path: Path) -> set[str]:
    """Every imbagan module a file imports, at the top or inside a function."""
    mod = ".".join(path.relative_to(PKG.parent).with_suffix("").parts).removesuffix(".__init__")
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("imbagan")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("imbagan"):
            out.add(node.module)
            # `from imbagan import runs` imports the module imbagan.runs
            out |= {f"{node.module}.{a.name}" for a in node.names
                    if (PKG.parent / f"{node.module}.{a.name}".replace(".", "/")).with_suffix(".py").exists()}
    out.discard(mod)
    return {m for m in out if m != "imbagan"}


def import_graph() -> dict[str, set[str]]:
    graph = {}
    for p in PKG.rglob("*.py"):
        name = ".".join(p.relative_to(PKG.parent).with_suffix("").parts).removesuffix(".__init__")
        graph[name] = _imports(p)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            # A submodule of a package imports the package's __init__ first: that edge is Python's, not ours.
            if n.startswith(m + "."):
                continue
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if state.get(m) is None and m in graph:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def test_the_package_has_no_import_cycle():
    assert find_cycle(import_graph()) is None, " -> ".join(find_cycle(import_graph()))


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_train_does_not_import_the_evaluation():
    assert not any(m.startswith("imbagan.evaluate") for m in import_graph()["imbagan.train"])


def test_cards_read_from_source_equal_the_classes():
    parsed = catalog._parsed()
    from imbagan.methods import METHODS

    assert list(parsed) == list(METHODS)
    assert parsed == catalog._live()


@pytest.mark.slow  # a process of its own
def test_config_catalog_and_run_files_import_without_torch():
    code = ("import sys; import imbagan.config, imbagan.catalog, imbagan.runs, imbagan.imbalance; "
            "from imbagan.config import TrainConfig; TrainConfig(method='cagan'); imbagan.catalog.methods(); "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PKG.parent)


def test_unknown_method_is_refused_with_the_choices():
    from imbagan.config import TrainConfig

    with pytest.raises(ValueError, match="choose one of gan, bagan"):
        TrainConfig(method="nope")


def test_field_when_hides_fields_that_do_not_apply():
    card = catalog.card("cagan")
    # CAGAN's WGAN-GP penalty weight matters only with that regulariser (the default is the zero-centred one).
    assert not card.applies("gp_weight", {"adv_loss": "ls", "cagan_reg": "zero-gp"})
    assert card.applies("gp_weight", {"adv_loss": "ls", "cagan_reg": "wgan-gp"})
    assert card.applies("cagan_reg_weight", {"cagan_reg": "zero-gp"})
    assert card.applies("cagan_mix_start", {"adv_loss": "ls"})


def test_starting_config_puts_paper_defaults_under_the_fields_given():
    from imbagan.config import starting_config

    cfg = starting_config(method="bagan_gp", lr=1e-3)
    assert cfg.latent_dim == catalog.card("bagan_gp").paper_defaults["latent_dim"] and cfg.lr == 1e-3
    assert starting_config() == starting_config(method="gan")


# --- packaging (pyproject.toml) -------------------------------------------------------------------
def _pyproject() -> dict:
    import tomllib

    return tomllib.loads((PKG.parent / "pyproject.toml").read_text())


def _dist(requirement: str) -> str:
    """'scikit-learn>=1.4' -> 'scikit-learn'; names compared as PEP 503 normalises them."""
    import re

    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9._-]+", requirement).group(0)).lower()


def test_the_console_script_is_the_cli_main():
    import importlib
    import inspect

    target = _pyproject()["project"]["scripts"]["imbagan"]
    module, _, attr = target.partition(":")
    fn = getattr(importlib.import_module(module), attr)
    assert callable(fn)
    # A console script calls it with no arguments; it must then read sys.argv.
    assert all(p.default is not inspect.Parameter.empty for p in inspect.signature(fn).parameters.values())
    with pytest.raises(SystemExit) as e:
        fn(["--help"])
    assert e.value.code == 0


def test_the_core_dependencies_are_the_library_alone_and_cover_its_imports():
    from importlib.metadata import packages_distributions

    project = _pyproject()["project"]
    core = {_dist(r) for r in project["dependencies"]}
    extras = project["optional-dependencies"]
    assert {"app", "ray", "test"} <= set(extras)
    assert {"streamlit", "plotly"} <= {_dist(r) for r in extras["app"]}
    assert "ray" in {_dist(r) for r in extras["ray"]}
    assert {"pytest", "pytest-timeout", "playwright"} <= {_dist(r) for r in extras["test"]}
    assert not core & {"streamlit", "plotly", "ray", "pytest", "pytest-timeout", "playwright"}
    # Every third-party module imbagan/ imports (at the top or inside a function) comes with the core,
    # except ray, which only `reproduce --ray` imports and the `ray` extra brings.
    dists = packages_distributions()
    imported = set()
    for p in PKG.rglob("*.py"):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"imbagan", "__future__"}
    missing = {m: dists.get(m) for m in third_party - {"ray"}
               if not {_dist(d) for d in dists.get(m, [m])} & core}
    assert not missing, f"imported by imbagan/ but not a core dependency in pyproject.toml: {missing}"


def test_requirements_install_this_checkout_with_every_extra():
    lines = [ln.strip() for ln in (PKG.parent / "requirements.txt").read_text().splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    assert lines == ["-e .[app,ray,test]"]
