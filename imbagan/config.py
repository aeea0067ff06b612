"""The one configuration of a run: a frozen dataclass saved as ``config.json``.

Every field has a comment; string choices rather than booleans; ``__post_init__``
rejects bad values with a sentence a user understands.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

ADV_LOSSES = ("bce", "ls", "wgan-gp")
ACGAN_VARIANTS = ("original", "modified")


@dataclass(frozen=True)
class TrainConfig:
    # --- data -------------------------------------------------------------
    dataset: str = "digits"  # a key of imbagan.data.DATASETS
    data_root: str | None = None  # folder holding the data; None -> $IMBAGAN_DATA or ./data
    image_size: int | None = None  # square size for image folders (and to resize others); None -> native
    channels: int | None = None  # 1 (grey) or 3 (RGB) for image folders; None -> native
    # --- imbalance (see imbagan.imbalance.Imbalance) ----------------------
    imbalance: str = "step"  # none | drop | binary | step | longtail | bagan_gp | custom
    ir: float = 10.0  # imbalance ratio = largest class / smallest class (binary, step, longtail)
    drop: float = 97.5  # drop: percent of each minority class removed (BAGAN §5)
    minority: tuple[int, ...] = (0,)  # drop: minority classes; binary: minority[0]
    majority: int = 1  # binary: the majority class
    counts: tuple[int, ...] = ()  # custom: images kept per class
    # --- method -----------------------------------------------------------
    method: str = "bagan"  # a key of imbagan.methods.METHODS
    steps: int = 2000  # adversarial steps (one D update, plus G where the method says)
    ae_steps: int = 500  # autoencoder pre-training steps (BAGAN, BAGAN-GP); ignored by others
    batch_size: int = 64  # images per D batch
    latent_dim: int = 100  # size of z (BAGAN-GP's paper uses 128)
    lr: float = 2e-4  # Adam learning rate for G and D (DCGAN / BAGAN default)
    beta1: float = 0.5  # Adam beta1
    beta2: float = 0.999  # Adam beta2 (BAGAN-GP uses 0.9)
    width: int = 64  # channels of the widest conv block; networks scale from it
    gan_classes: tuple[int, ...] = ()  # gan: classes to model, one generator each; () -> the rarest class
    adv_loss: str = "bce"  # acgan / cagan adversarial loss: bce | ls | wgan-gp
    acgan_variant: str = "original"  # acgan: original (Odena 2017) | modified (CAGAN eqs. 7-10)
    lambda_cls: float = 0.1  # modified ACGAN: weight of the classification loss (CAGAN Fig. 12)
    gp_weight: float = 10.0  # WGAN-GP gradient penalty weight (Gulrajani 2017; BAGAN-GP)
    n_critic: int = 5  # D steps per G step for WGAN-GP losses
    aggan_t0: float = 1000.0  # AGGAN §3.2: initial Metropolis temperature
    aggan_alpha: float = 0.99  # AGGAN §3.2: temperature decay per iteration
    aggan_gamma: float = 0.2  # AGGAN fitness: weight of diversity (official code)
    cagan_mix_start: float = 0.5  # CAGAN §4: fraction of training after which mixed batches start
    cagan_d_norm: str = "none"  # CAGAN: normalisation in D: none | batch
    # --- loop -------------------------------------------------------------
    tick_every: int = 25  # steps between metric reads (one host sync per tick)
    sample_every: int = 100  # steps between sample grids
    checkpoint_every: int = 200  # steps between checkpoints
    samples_per_class: int = 10  # images per row of a sample grid
    seed: int = 0  # one seed for data selection, init and sampling
    device: str = "auto"  # auto (cuda, then mps, then cpu) | cuda | cuda:N | mps | cpu
    evaluate_after: bool = False  # run the evaluation when training ends

    def __post_init__(self) -> None:
        from imbagan.data import DATASETS
        from imbagan.methods import METHODS

        def bad(msg: str) -> None:
            raise ValueError(msg)

        if self.dataset not in DATASETS:
            bad(f"Unknown dataset {self.dataset!r}; choose one of {', '.join(DATASETS)}.")
        if self.method not in METHODS:
            bad(f"Unknown method {self.method!r}; choose one of {', '.join(METHODS)}.")
        for name in ("steps", "batch_size", "latent_dim", "width", "tick_every", "sample_every",
                     "checkpoint_every", "samples_per_class", "n_critic"):
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
        if self.adv_loss not in ADV_LOSSES:
            bad(f"adv_loss must be one of {', '.join(ADV_LOSSES)} (got {self.adv_loss!r}).")
        if self.acgan_variant not in ACGAN_VARIANTS:
            bad(f"acgan_variant must be one of {', '.join(ACGAN_VARIANTS)} (got {self.acgan_variant!r}).")
        if self.lambda_cls < 0 or self.gp_weight < 0 or self.aggan_gamma < 0:
            bad("lambda_cls, gp_weight and aggan_gamma cannot be negative.")
        if self.aggan_t0 <= 0 or not 0 < self.aggan_alpha <= 1:
            bad("aggan_t0 must be positive and aggan_alpha in (0, 1].")
        if not 0 <= self.cagan_mix_start <= 1:
            bad(f"cagan_mix_start is a fraction of training, in [0, 1] (got {self.cagan_mix_start}).")
        if self.cagan_d_norm not in ("none", "batch"):
            bad(f"cagan_d_norm must be 'none' or 'batch' (got {self.cagan_d_norm!r}).")
        if self.channels not in (None, 1, 3):
            bad(f"channels must be 1 (grey) or 3 (RGB) (got {self.channels}).")
        if self.image_size is not None and self.image_size not in (16, 28, 32, 64):
            bad(f"image_size must be one of 16, 28, 32, 64 (got {self.image_size}).")
        if not (self.device == "auto" or self.device in ("cpu", "mps", "cuda") or self.device.startswith("cuda:")):
            bad(f"device must be auto, cpu, mps, cuda or cuda:N (got {self.device!r}).")
        # Builds the imbalance now so that a bad profile fails before a run exists.
        self.imbalance_spec()

    # ------------------------------------------------------------------
    def imbalance_spec(self):
        from imbagan.imbalance import Imbalance

        return Imbalance(profile=self.imbalance, ir=self.ir, drop=self.drop, minority=tuple(self.minority),
                         majority=self.majority, counts=tuple(self.counts))

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise ValueError(f"Unknown config fields: {', '.join(unknown)}.")
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**kw)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load(cls, path: str | Path) -> "TrainConfig":
        return cls.from_dict(json.loads(Path(path).read_text()))


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda, then mps, then cpu; anything else as given (failing clearly if absent)."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA GPU is visible; use device 'auto' or 'cpu'.")
    return dev


FIELD_HELP: dict[str, str] = {}


def _field_comments() -> dict[str, str]:
    """The trailing comment of each field, for --help and the app's tooltips."""
    import inspect
    import re

    src = inspect.getsource(TrainConfig)
    out = {}
    for m in re.finditer(r"^\s+(\w+): [^=]+=[^#\n]*#\s*(.+)$", src, re.M):
        out[m.group(1)] = m.group(2).strip()
    return out


FIELD_HELP.update(_field_comments())
