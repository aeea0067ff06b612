"""The one configuration of a run: a frozen dataclass saved as ``config.json``.

Every field has a comment; string choices rather than booleans; ``__post_init__``
rejects bad values with a sentence a user understands. The fields are those every method shares; a
method's own settings (ACGAN's variant, AGGAN's temperature, ...) are declared on its card and kept
in ``options`` (``cfg.options["adv_loss"]``), so adding a method never touches this file.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imbagan import catalog

# DiffAugment policies (imbagan.augment): the paper's small-data choice and two lighter ones.
DIFFAUGMENT_POLICIES = ("none", "color,translation,cutout", "translation,cutout", "translation")
PRECISIONS = ("auto", "fp32", "bf16")
QUALITY_CURVES = ("auto", "on", "off")
STOP_WHEN = ("steps", "converged")
# The string choices of a config, for the CLI's and the app's selectors (the methods' own: their cards).
CHOICES = {"device": ("auto", "cpu", "cuda", "mps"), "diffaugment": DIFFAUGMENT_POLICIES, "precision": PRECISIONS,
           "quality_curve": QUALITY_CURVES, "stop_when": STOP_WHEN,
           **{name: tuple(spec["choices"]) for name, spec in catalog.setting_specs().items() if "choices" in spec}}


def documented(default: Any, help: str) -> Any:
    """A field with its one-line help, read by ``--help`` and the app's tooltips (FIELD_HELP)."""
    return dataclasses.field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class TrainConfig:
    # --- data -------------------------------------------------------------
    dataset: str = documented("digits", "a key of imbagan.data.DATASETS")
    data_root: str | None = documented(None, "folder holding the data; None -> $IMBAGAN_DATA or ./data")
    image_size: int | None = documented(None, "square size for image folders (and to resize others); None -> native")
    channels: int | None = documented(None, "1 (grey) or 3 (RGB) for image folders; None -> native")
    # --- imbalance (see imbagan.imbalance.Imbalance) ----------------------
    # The default scenario (BAGAN §5's drop protocol on two confusable digits, 7 images each left) leaves a
    # gap to close: the untreated classifier recalls almost none of them, the full set nearly all.
    imbalance: str = documented("drop", "none | drop | binary | step | longtail | bagan_gp | custom")
    ir: float = documented(10.0, "imbalance ratio = largest class / smallest class (binary, step, longtail)")
    drop: float = documented(95.0, "drop: percent of each minority class removed (BAGAN §5)")
    minority: tuple[int, ...] = documented((3, 8), "drop: minority classes; binary: minority[0]")
    majority: int = documented(1, "binary: the majority class")
    counts: tuple[int, ...] = documented((), "custom: images kept per class")
    # --- method -----------------------------------------------------------
    # The default method was picked by measurement on the default scenario (bench/quality.py at each method's
    # measured budget, width 32, a 2-core CPU; bench/results/quality-digits-drop-95-3-8.csv): the minority-only
    # GAN reaches worst-class accuracy 0.95 and ACSA 99.1% in 500 steps (41 s). bagan_gp's set scores the same
    # (its rows better: worst class 1.00, FID 0.64) but its curve needs 3,250 to 10,000 steps (over 30 min), and
    # the default path must give a verdict in about a minute. ``steps`` here is the fallback:
    # the Train form and the CLI start from the method's measured budget (imbagan.budgets) where one exists.
    method: str = documented("gan", "a key of imbagan.methods.METHODS")
    steps: int = documented(600, "adversarial steps (one D update, plus G where the method says)")
    ae_steps: int = documented(200, "autoencoder pre-training steps (BAGAN, BAGAN-GP); ignored by others")
    batch_size: int = documented(64, "images per D batch")
    latent_dim: int = documented(100, "size of z (BAGAN-GP's paper uses 128)")
    lr: float = documented(2e-4, "Adam learning rate for G and D (DCGAN's 2e-4; each method's paper defaults may set another)")
    beta1: float = documented(0.5, "Adam beta1")
    beta2: float = documented(0.999, "Adam beta2 (BAGAN-GP uses 0.9)")
    width: int = documented(32, "channels of the widest conv block; networks scale from it (64: DCGAN's)")
    # Two options for a few dozen minority images, for every method (issue 16 §3); off by default.
    diffaugment: str = documented("none", "DiffAugment (Zhao et al. 2020) on every image D sees, real and fake, in "
                                          "D's and G's updates: none | color,translation,cutout (the paper's) | "
                                          "translation,cutout | translation")
    lecam_weight: float = documented(0.0, "LeCam regulariser weight λ on D (Tseng et al. 2021; 0.3 in its "
                                          "limited-data CIFAR runs); 0 = off. At the methods' budgets README's "
                                          "tables hold 0.3: it collapsed bagan's digits and bagan_gp's sandals and "
                                          "speckled bagan_gp's MNIST fives. In a 300-step check bagan_gp on MNIST "
                                          "drew noise at 0.1, not at 0.01")
    # The method's own settings, declared on its card (imbagan.catalog: the methods' ``settings``), checked and
    # completed with the card's defaults here; config.json files written before they moved keep them at the top
    # level, and from_dict moves them in. Not part of the hash (a dict): configs compare, they are not keys.
    options: dict = dataclasses.field(default_factory=dict, hash=False, metadata={
        "help": "the method's own settings (its card's settings), e.g. {'adv_loss': 'ls'} for acgan"})
    # --- loop -------------------------------------------------------------
    tick_every: int = documented(25, "steps between metric reads (one host sync per tick)")
    sample_every: int = documented(100, "steps between sample grids")
    checkpoint_every: int = documented(200, "steps between checkpoints")
    samples_per_class: int = documented(10, "images per row of a sample grid")
    seed: int = documented(0, "one seed for data selection, init and sampling")
    device: str = documented("auto", "auto (cuda, then mps, then cpu) | cuda | cuda:N | mps | cpu")
    precision: str = documented("auto", "auto (bf16 autocast on a CPU with native bf16, for the methods measured "
                                        "to train as well in it; float32 otherwise) | fp32 | bf16 (autocast)")
    # The live convergence curve (imbagan.convergence): per-class domain FID, class accuracy and SSIM of a
    # fixed noise batch at sample grids, judged by a reference CNN trained once per dataset and cached.
    quality_curve: str = documented("auto", "auto (at sample grids, as often as a tenth of the training time "
                                            "allows) | on (at every sample grid) | off: per-class image quality "
                                            "(quality.jsonl, the Train page's convergence curve)")
    # Off by default: a run that is asked for N steps trains N steps, so runs compare at equal budgets; the
    # default N is already the measured converged budget (the method's card).
    stop_when: str = documented("steps", "steps (train every step asked for) | converged (stop once the "
                                         "convergence rule of imbagan.convergence confirms the curve; needs "
                                         "quality_curve auto or on)")
    evaluate_after: bool = documented(False, "evaluate the run too (default settings): launched with a background "
                                      "run, its baselines train alongside the GAN; otherwise when training ends")

    def __post_init__(self) -> None:
        from imbagan.data import DATASETS

        methods = catalog.method_names()

        def bad(msg: str) -> None:
            raise ValueError(msg)

        if self.dataset not in DATASETS:
            bad(f"Unknown dataset {self.dataset!r}; choose one of {', '.join(DATASETS)}.")
        if self.method not in methods:
            bad(f"Unknown method {self.method!r}; choose one of {', '.join(methods)}.")
        object.__setattr__(self, "options", catalog.resolve_options(self.method, dict(self.options or {})))
        for name in ("steps", "batch_size", "latent_dim", "width", "tick_every", "sample_every",
                     "checkpoint_every", "samples_per_class"):
            if int(getattr(self, name)) < 1:
                bad(f"{name} must be at least 1 (got {getattr(self, name)}).")
        if self.ae_steps < 0:
            bad(f"ae_steps cannot be negative (got {self.ae_steps}).")
        if self.batch_size < 2:
            bad("batch_size must be at least 2: batch statistics need two images.")
        if not 0 < self.lr < 1:
            bad(f"lr must be between 0 and 1 (got {self.lr}).")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            bad("Adam betas must lie in [0, 1).")
        for name, allowed in (("diffaugment", DIFFAUGMENT_POLICIES), ("precision", PRECISIONS),
                              ("quality_curve", QUALITY_CURVES), ("stop_when", STOP_WHEN)):
            if getattr(self, name) not in allowed:
                bad(f"{name} must be one of {', '.join(allowed)} (got {getattr(self, name)!r}).")
        if self.stop_when == "converged" and self.quality_curve == "off":
            bad("Stopping when converged needs the quality curve: set quality_curve to auto or on.")
        if self.lecam_weight < 0:
            bad(f"lecam_weight cannot be negative (got {self.lecam_weight}); 0 turns LeCam off.")
        if self.channels not in (None, 1, 3):
            bad(f"channels must be 1 (grey) or 3 (RGB) (got {self.channels}).")
        if self.image_size is not None and self.image_size not in (16, 28, 32, 64):
            bad(f"image_size must be one of 16, 28, 32, 64 (got {self.image_size}).")
        if not (self.device in ("auto", "cpu", "mps", "cuda") or re.fullmatch(r"cuda:\d+", self.device or "")):
            bad(f"device must be auto, cpu, mps, cuda or cuda:N (got {self.device!r}).")
        # Builds the imbalance now so that a bad profile fails before a run exists.
        self.imbalance_spec()

    # ------------------------------------------------------------------
    def imbalance_spec(self):
        from imbagan.imbalance import Imbalance

        return Imbalance(profile=self.imbalance, ir=self.ir, drop=self.drop, minority=tuple(self.minority),
                         majority=self.majority, counts=tuple(self.counts))

    def replace(self, **changes: Any) -> "TrainConfig":
        """A copy with ``changes``, which may name the method's settings as if they were fields
        (``cfg.replace(adv_loss="ls")``); under another method, only the settings it has are kept."""
        return TrainConfig.from_dict({**self.flat(), **changes})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def flat(self) -> dict[str, Any]:
        """Every field, with the method's settings beside them instead of under ``options``: the shape of the
        forms, the presets and the cards' paper defaults."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "options"}
        return {**out, **self.options}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        """A config from a dict: config.json, or flat fields where the method's settings sit beside the fields
        (a form, a preset, and every config.json written before the settings moved to the cards). A flat
        setting of the chosen method overrides the same one under ``options``; a setting of another method is
        dropped, since it never applied."""
        known = {f.name for f in dataclasses.fields(cls)}
        specs = catalog.setting_specs()
        d = dict(d)
        options = dict(d.pop("options", None) or {})
        method = d.get("method", cls.method)
        mine = catalog.card(method).settings if method in catalog.method_names() else {}
        for name in [k for k in d if k in specs and k not in known]:
            value = d.pop(name)
            if name in mine:
                options[name] = value
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"Unknown config fields: {', '.join(unknown)}.")
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        kw["options"] = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
        return cls(**kw)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load(cls, path: str | Path) -> "TrainConfig":
        return cls.from_dict(json.loads(Path(path).read_text()))


def measured_defaults(method: str, fields: dict[str, Any]) -> dict[str, Any]:
    """The method's paper defaults (its card), with ``steps`` at its measured budget for the dataset's family
    (imbagan.budgets) where one was measured."""
    from imbagan import budgets, catalog

    out = dict(catalog.card(method).paper_defaults)
    steps = budgets.default_steps(method, fields.get("dataset", TrainConfig.dataset), fields.get("image_size"),
                                  fields.get("channels"))
    if steps:
        out["steps"] = steps
    return out


def starting_config(**fields: Any) -> TrainConfig:
    """What the Train form and the CLI start from: TrainConfig's defaults, then the chosen method's paper
    defaults and measured budget (its card), then ``fields``."""
    method = fields.get("method", TrainConfig.method)
    return TrainConfig.from_dict({**measured_defaults(method, fields), **fields})


# One line of help per field, from the fields' metadata, and per method setting, from the cards.
FIELD_HELP: dict[str, str] = {**{f.name: f.metadata["help"] for f in dataclasses.fields(TrainConfig)},
                              **{name: spec.get("help", "") for name, spec in catalog.setting_specs().items()}}
# The fields that decide which images a run trains on and is tested against: a data choice carries them (the Data
# page to Train), and two runs with the same values share their baselines (Compare).
DATA_FIELDS = ("dataset", "data_root", "image_size", "channels", "imbalance", "ir", "drop", "minority", "majority",
               "counts", "seed")
