"""Pages are thin (issue 24): they call public functions of imbagan/ and ui/, never a private (_name) one."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {"imbagan", "ui"}


def private_uses(path: Path) -> list[str]:
    """``module._name`` uses in ``path`` where ``module`` was imported from imbagan or ui."""
    tree = ast.parse(path.read_text())
    ours: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in OURS:
            ours.update(a.asname or a.name for a in node.names)
            if any(a.name.startswith("_") for a in node.names):
                ours.add("<imported private name>")
        elif isinstance(node, ast.Import):
            ours.update((a.asname or a.name).split(".")[0] for a in node.names if a.name.split(".")[0] in OURS)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            root = node.value
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id in ours:
                found.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in OURS:
            found += [f"{path.name}:{node.lineno} from {node.module} import {a.name}" for a in node.names
                      if a.name.startswith("_")]
    return found


def test_no_page_calls_a_private_function_of_imbagan_or_ui():
    pages = sorted((ROOT / "pages").glob("*.py")) + [ROOT / "app.py"]
    assert len(pages) >= 7
    found = [u for p in pages for u in private_uses(p)]
    assert not found, found


def test_the_check_sees_a_private_call(tmp_path):
    p = tmp_path / "page.py"
    p.write_text("from imbagan import runs\nimport imbagan.data\nruns._pid_alive(1)\nimbagan.data._x\nruns.pid_alive(1)\n")
    assert sorted(private_uses(p)) == ["page.py:3 runs._pid_alive", "page.py:4 imbagan.data._x"]


def test_every_condition_is_described_once_in_each_place_that_lists_them():
    """The evaluation's conditions live in one registry (imbagan.conditions) that feeds the page, --help and
    EvalConfig's validation; README's table is written by hand, so it must name every condition: adding one
    without describing it there fails here."""
    from imbagan import conditions, evalconfig

    readme = (ROOT / "README.md").read_text()
    assert conditions.CONDITIONS == tuple(conditions.DESCRIPTIONS)
    for name in conditions.CONDITIONS:  # the config accepts exactly the registry's names
        assert evalconfig.EvalConfig(conditions=(name,)).conditions == (name,)
    with pytest.raises(ValueError, match="conditions must be"):
        evalconfig.EvalConfig(conditions=("not_a_condition",))
    assert all(c.description for c in conditions.REGISTRY.values())
    helped = conditions.help_text()
    for name in conditions.CONDITIONS:
        assert f"`{name}`" in readme, f"README does not describe the condition {name!r}"
        assert f"  {name} " in helped
