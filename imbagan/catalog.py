"""What the app and the CLI know about each method, without importing torch.

The source of truth is the method classes' card attributes (see ``imbagan.methods.base``) and the
``METHODS`` registry in ``imbagan/methods/__init__.py``. Importing those means importing torch,
which costs seconds in the app's process, so when the registry is not loaded yet this module reads
the same literals from the source files with ``ast``. When ``imbagan.methods`` is already imported
(the CLI, a worker, the tests) the live classes are read instead, so a method registered at run time
shows up too. ``tests/test_structure.py`` (test_cards_read_from_source_equal_the_classes) checks that
both ways give the same cards.
"""

from __future__ import annotations

import ast
import functools
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

METHODS_DIR = Path(__file__).resolve().parent / "methods"

# The card attributes and their defaults (imbagan.methods.base.Method has the same).
CARD_DEFAULTS: dict[str, Any] = {
    "title": "", "paper": "", "taxonomy": "", "summary": "", "paper_defaults": {}, "defaults_source": "",
    "fields": (), "field_when": {}, "presets": {}, "demo": {}, "budgets": {},
}


@dataclass(frozen=True)
class MethodCard:
    key: str
    title: str = ""
    paper: str = ""
    taxonomy: str = ""
    summary: str = ""
    paper_defaults: dict = field(default_factory=dict)
    defaults_source: str = ""
    fields: tuple = ()
    field_when: dict = field(default_factory=dict)
    presets: dict = field(default_factory=dict)
    demo: dict = field(default_factory=dict)
    budgets: dict = field(default_factory=dict)  # {"28px grey": {"steps", "seconds_per_step", "source"}, ...}

    def applies(self, name: str, values: dict) -> bool:
        """Whether config field ``name`` matters given the other ``values`` (field_when)."""
        cond = self.field_when.get(name)
        return cond is None or all(values.get(k) in tuple(v) for k, v in cond.items())


def _card(key: str, attrs: dict) -> MethodCard:
    kw = {name: attrs.get(name, default) for name, default in CARD_DEFAULTS.items()}
    kw["fields"] = tuple(kw["fields"])
    return MethodCard(key=key, **kw)


def _live() -> dict[str, MethodCard]:
    from imbagan.methods import METHODS

    return {key: _card(key, {name: getattr(cls, name) for name in CARD_DEFAULTS}) for key, cls in METHODS.items()}


@functools.lru_cache(maxsize=1)
def _parsed() -> dict[str, MethodCard]:
    init = ast.parse((METHODS_DIR / "__init__.py").read_text())
    where: dict[str, str] = {}  # class name -> module file
    registry: dict[str, str] = {}  # key -> class name
    for node in init.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("imbagan.methods."):
            for alias in node.names:
                where[alias.asname or alias.name] = node.module.rsplit(".", 1)[1]
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "METHODS" for t in node.targets):
            for k, v in zip(node.value.keys, node.value.values):
                registry[ast.literal_eval(k)] = v.id
    cards = {}
    for key, cls_name in registry.items():
        tree = ast.parse((METHODS_DIR / f"{where[cls_name]}.py").read_text())
        cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls_name)
        attrs = {}
        for stmt in cls.body:
            target = None
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                target, value = stmt.targets[0].id, stmt.value
            elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
                target, value = stmt.target.id, stmt.value
            if target in CARD_DEFAULTS:
                attrs[target] = ast.literal_eval(value)
        cards[key] = _card(key, attrs)
    return cards


def methods() -> dict[str, MethodCard]:
    """Every registered method's card, in registry order."""
    if "imbagan.methods" in sys.modules:
        return _live()
    return dict(_parsed())


def method_names() -> tuple[str, ...]:
    return tuple(methods())


def card(key: str) -> MethodCard:
    cards = methods()
    if key not in cards:
        raise ValueError(f"Unknown method {key!r}; choose one of {', '.join(cards)}.")
    return cards[key]
