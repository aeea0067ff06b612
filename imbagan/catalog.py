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
    "settings": {}, "fields": (), "field_when": {}, "presets": {}, "demo": {}, "budgets": {},
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
    settings: dict = field(default_factory=dict)  # {name: {"default", "help", "choices" | "min" | "max" ...}}
    fields: tuple = ()
    field_when: dict = field(default_factory=dict)
    presets: dict = field(default_factory=dict)
    demo: dict = field(default_factory=dict)
    budgets: dict = field(default_factory=dict)  # {"28px grey": {"steps", "seconds_per_step", "source"}, ...}

    def applies(self, name: str, values: dict) -> bool:
        """Whether config field ``name`` matters given the other ``values`` (field_when)."""
        cond = self.field_when.get(name)
        return cond is None or all(values.get(k) in tuple(v) for k, v in cond.items())


    def setting_defaults(self) -> dict:
        return {name: spec["default"] for name, spec in self.settings.items()}


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


# --- the methods' own settings (TrainConfig.options) ------------------------------------------------
def setting_specs() -> dict[str, dict]:
    """Every method's settings by name; where two methods declare one name (n_critic), the first card's spec
    gives its type, choices and help (a test checks that they agree on type and default)."""
    out: dict[str, dict] = {}
    for c in methods().values():
        for name, spec in c.settings.items():
            out.setdefault(name, spec)
    return out


def _check(name: str, spec: dict, value: Any) -> Any:
    """``value`` as the setting's type (that of its default), or a ValueError that says what is allowed."""
    default = spec["default"]
    if "choices" in spec:
        if value not in spec["choices"]:
            raise ValueError(f"{name} must be one of {', '.join(spec['choices'])} (got {value!r}).")
        return value
    try:
        if isinstance(default, tuple):
            if isinstance(value, (str, bytes)) or not all(float(v).is_integer() for v in value):
                raise TypeError
            value = tuple(int(v) for v in value)
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError
        elif isinstance(default, int):
            if not float(value).is_integer():
                raise TypeError
            value = int(value)
        else:
            value = float(value)
    except (TypeError, ValueError):
        kind = "a list of whole numbers" if isinstance(default, tuple) else (
            "a whole number" if isinstance(default, int) else "a number")
        raise ValueError(f"{name} must be {kind} (got {value!r}).") from None
    if "min" in spec and value < spec["min"]:
        raise ValueError(f"{name} cannot be negative (got {value})." if spec["min"] == 0
                         else f"{name} must be at least {spec['min']} (got {value}).")
    if "above" in spec and not value > spec["above"]:
        raise ValueError(f"{name} must be above {spec['above']} (got {value}).")
    if "max" in spec and value > spec["max"]:
        raise ValueError(f"{name} must be at most {spec['max']} (got {value}).")
    return value


def resolve_options(method: str, options: dict) -> dict:
    """The method's settings: ``options`` checked against its card, every one it leaves out at its default.

    A name the method does not have is refused with the list of those it has, so a typo never passes
    silently.
    """
    settings = card(method).settings
    unknown = sorted(set(options) - set(settings))
    if unknown:
        have = ", ".join(settings) or "none"
        raise ValueError(f"{method} has no setting {', '.join(unknown)}; its settings: {have}.")
    return {name: _check(name, spec, options.get(name, spec["default"])) for name, spec in settings.items()}
