"""What a reproduction is made of: settings (columns of the paper's table), rows (methods and
baselines), budgets, protocols and the published numbers. Plain frozen dataclasses of literals, so
the app lists specs without importing torch.

A spec expands into jobs, one per (setting, row, repeat) that needs computing (``jobs``); a job's
result is a *cell* (``store``); cells fold into the table (``table``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

# The two protocols, and the sentence that goes with each number everywhere it is shown.
PROTOCOLS = {
    "paper": "test-selected, as published",
    "honest": "fixed budget, untouched test split",
}
PROTOCOL_TITLES = {"paper": "paper protocol", "honest": "honest protocol"}
BUDGETS = ("quick", "paper")
# Where a GAN's discriminator keeps its class logits, for the paper protocol's probe (ACGAN-style D).
# A method missing here has no class head in D: its paper-protocol cell is empty, with that reason.
# CAGAN's D is absent on purpose: its output c judges only images of class c (one GAN per class), so
# its argmax is no classifier (51.8% on MNIST 5 vs 6, chance, in our quick run).
CLASS_HEADS = {"acgan": "1:", "aggan": "1:", "bagan": ":n"}


@dataclass(frozen=True)
class Setting:
    """One column group of the paper's table: a dataset under one imbalance."""

    key: str  # e.g. "mnist-ir100"
    title: str  # e.g. "MNIST 5 vs 6, IR 100"
    config: dict  # TrainConfig fields: dataset, imbalance, ir, minority, majority, ...

    @property
    def dataset(self) -> str:
        return self.config["dataset"]


@dataclass(frozen=True)
class Row:
    """One row of the paper's table.

    kind "gan": train ``method`` and measure it under each protocol.
    kind "classifier": a classifier on the imbalanced set, no GAN. Paper protocol: the discriminator
        network trained alone as a classifier (``oversample``: on class-balanced batches); honest
        protocol: the evaluation's ``condition`` of the same setting and repeat.
    kind "published": a method imbagan does not implement; only the published number is shown.
    """

    key: str
    label: str
    kind: str = "gan"
    method: str | None = None
    condition: str | None = None  # honest protocol, classifier rows: an evaluation condition
    oversample: bool = False  # paper protocol, classifier rows: class-balanced batches (Os+CN)
    paper: bool = True  # classifier rows: whether the paper protocol measures it (CN, Os+CN) or only ours does
    note: str = ""


@dataclass(frozen=True)
class Budget:
    """A fixed, pre-declared compute budget: the GAN's steps, the probes, the honest classifier's epochs."""

    steps: int  # adversarial steps per GAN (and classifier steps of the paper protocol's CN)
    batch_size: int = 64
    width: int = 64  # GAN networks (and the paper protocol's CN, which is the same D)
    probe_every: int = 100  # paper protocol: steps between test-set probes of D's class head
    eval_epochs: int = 15  # honest protocol: the evaluation's budget (EvalConfig.epochs)
    eval_width: int = 32
    eval_classifier: str = "cnn"
    quality_images: int = 0  # generated images per class judged by the reference classifier (0: none)
    train: dict = field(default_factory=dict)  # further TrainConfig fields (e.g. ae_steps, lr)
    note: str = ""
    # The method's measured budget (imbagan.budgets, bench/converge.py) on the setting's dataset family
    # replaces ``steps`` wherever one was measured; ``steps`` stays for the families without one.
    measured_steps: bool = False


@dataclass(frozen=True)
class Spec:
    name: str  # the CLI's NAME, e.g. "aggan-table2"
    title: str
    paper: str  # citation
    where: str  # table / figure and page of the published numbers
    metric: str  # "accuracy" (honest: on the balanced test split) | "class_accuracy" (of generated minority images)
    settings: tuple[Setting, ...]
    rows: tuple[Row, ...]
    budgets: dict[str, Budget]
    repeats: int = 5
    protocols: tuple[str, ...] = ("paper", "honest")
    listed: bool = True  # False: the CLI runs it, the Reproduce page does not offer it (the tests' spec)
    # {(row key, setting key): published value in percent}
    published: dict = field(default_factory=dict)
    # How the published protocol measured, in a sentence, shown under the table.
    paper_protocol: str = ""
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        from imbagan.catalog import method_names

        bad = [p for p in self.protocols if p not in PROTOCOLS]
        if bad:
            raise ValueError(f"{self.name}: unknown protocol(s) {bad}; choose among {', '.join(PROTOCOLS)}.")
        keys = [s.key for s in self.settings]
        if len(set(keys)) != len(keys):
            raise ValueError(f"{self.name}: setting keys must be distinct.")
        for r in self.rows:
            if r.kind not in ("gan", "classifier", "published"):
                raise ValueError(f"{self.name}: row {r.key} has unknown kind {r.kind!r}.")
            if r.kind == "gan" and r.method not in method_names():
                raise ValueError(f"{self.name}: row {r.key} names unknown method {r.method!r}.")
        for (row, setting) in self.published:
            if row not in {r.key for r in self.rows} or setting not in keys:
                raise ValueError(f"{self.name}: published value for unknown cell ({row}, {setting}).")
        missing = [b for b in BUDGETS if b not in self.budgets]
        if missing:
            raise ValueError(f"{self.name}: budgets {missing} are missing.")

    # --- narrowing for a CPU ------------------------------------------------------------------
    def narrow(self, datasets: list[str] | None = None, rows: list[str] | None = None,
               settings: list[str] | None = None) -> "Spec":
        """The same spec on fewer datasets / rows / settings (unknown names are a sentence, not a no-op)."""
        settings_, rows_ = list(self.settings), list(self.rows)
        if datasets:
            known = sorted({s.dataset for s in self.settings})
            if set(datasets) - set(known):
                raise ValueError(f"{self.name} has no dataset {sorted(set(datasets) - set(known))}; it has {known}.")
            settings_ = [s for s in settings_ if s.dataset in datasets]
        if settings:
            known = [s.key for s in self.settings]
            if set(settings) - set(known):
                raise ValueError(f"{self.name} has no setting {sorted(set(settings) - set(known))}; it has {known}.")
            settings_ = [s for s in settings_ if s.key in settings]
        if rows:
            known = [r.key for r in self.rows]
            if set(rows) - set(known):
                raise ValueError(f"{self.name} has no row {sorted(set(rows) - set(known))}; it has {known}.")
            rows_ = [r for r in rows_ if r.key in rows]
        if not settings_ or not rows_:
            raise ValueError(f"Nothing of {self.name} is left to reproduce after narrowing.")
        keep_s, keep_r = {s.key for s in settings_}, {r.key for r in rows_}
        return dataclasses.replace(self, settings=tuple(settings_), rows=tuple(rows_),
                                   published={k: v for k, v in self.published.items()
                                              if k[0] in keep_r and k[1] in keep_s})

    def row(self, key: str) -> Row:
        return next(r for r in self.rows if r.key == key)

    def setting(self, key: str) -> Setting:
        return next(s for s in self.settings if s.key == key)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["published"] = [{"row": r, "setting": s, "value": v} for (r, s), v in self.published.items()]
        return d
