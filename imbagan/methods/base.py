"""What every method repeats, and nothing of any method's maths.

A method subclasses :class:`Method`, writes what the app and the CLI need to know about it as class
attributes (its *card*, read without torch by ``imbagan.catalog``), and implements its own updates:

    title, paper, taxonomy, summary   how the method is named and cited, where it sits in the survey
    paper_defaults, defaults_source   the settings of its paper / official code, and where they come from
    settings                          its own settings, {name: {"default", "help", and "choices" or "min" /
                                      "above" / "max"}}: a run carries them in ``cfg.options`` (checked and
                                      filled by ``imbagan.catalog.resolve_options``), not in TrainConfig
    fields                            the TrainConfig fields it reads beyond the common ones (shown after
                                      its settings on the form)
    field_when                        {field: {other_field: [values]}}: show ``field`` only for those values
    presets                           named settings (e.g. ACGAN's "modified" variant)
    demo                              {"shows": sentence, "config": TrainConfig fields} for the Taxonomy page
    budgets                           the measured converged budget per dataset family (imbagan.budgets)

The card's values must be literals (strings, numbers, tuples, dicts): ``imbagan.catalog`` reads them
from the source so that the app's process never imports torch, and a test checks the two agree.

    state_attrs                       attribute names saved in a checkpoint (modules, optimisers, tensors, numbers)
    init_small_data_options(cfg, data) DiffAugment and LeCam, which every method takes: every image D is shown
                                      goes through ``run_D`` (D's output) or ``seen_by_D`` (the images themselves,
                                      for a penalty on D's input), the one place DiffAugment enters D; and
                                      ``with_lecam`` adds LeCam to D's loss (which outputs count as "D's output"
                                      is each method's own)
    pretrain_steps = 0                a method with a pre-training stage sets it in __init__
    def pretrain_step(self) -> dict   one step of that stage            (default: nothing to do)
    def finish_pretrain(self)         after it, before adversarial steps (default: nothing to do)
    def train_step(self) -> dict      one adversarial step; returns 0-dim tensors to log
    def draw(self, z, y) -> Tensor    the generator's map from noise and labels to images; ``generate`` (here)
                                      puts both on the device, draws the noise if none is given, and runs it
                                      without gradients with the generator networks in eval mode

What the base owns, so that a method file shows only its paper's losses and networks: the generate preamble,
the optimiser step (``update``), DiffAugment's entry into D (``run_D``, ``seen_by_D``: a method file never
calls the augmentation itself), LeCam's entry into D's loss (``with_lecam``), the logs' reduction
(``mean_logs``), checkpoint state by name and eval mode.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn

from imbagan import augment, losses


class Method:
    # --- the card (see imbagan.catalog.CARD_DEFAULTS, which must match these) ------------------
    title: str = ""
    paper: str = ""
    taxonomy: str = ""
    summary: str = ""
    paper_defaults: dict = {}
    defaults_source: str = ""
    settings: dict = {}
    fields: tuple = ()
    field_when: dict = {}
    presets: dict = {}
    demo: dict = {}
    # Measured budgets per dataset family (imbagan.budgets): {"16px grey": {"steps": N, "seconds_per_step": s,
    # "source": "bench/results/converge-...-summary.csv"}}, from bench/converge.py under imbagan.convergence's rule.
    budgets: dict = {}

    # --- the run -------------------------------------------------------------------------------
    state_attrs: tuple[str, ...] = ()
    pretrain_steps: int = 0
    # Networks put in eval mode while generating (dropout off, batch norm on running statistics).
    eval_modules: tuple[str, ...] = ("G",)
    # precision="auto" trains the method under bf16 autocast on a CPU with native bf16 only where that was
    # measured to give the same images (bench/quality.py, fp32 against bf16); every other method stays float32.
    bf16_measured: bool = False

    def init_small_data_options(self, cfg, data, lecam_heads: int | None = None) -> None:
        """The two options for a few dozen minority images (issue 16 §3), off unless the config asks.

        ``self.augment``: x -> T(x), DiffAugment drawing from the run's generator, the identity when off
        (then it draws nothing, so a run without it is the same as before the option existed).
        ``self.lecam``: None when off, else a ``losses.LeCamEMA`` of D's outputs (with ``lecam_heads``, a
        ModuleList of that many, for a method with several independent discriminators); only then is it
        in ``state_attrs``, so checkpoints written without it still load.
        """
        self.augment = augment.make(cfg.diffaugment, data.gen)
        self.lecam_weight = float(cfg.lecam_weight)
        self.lecam: nn.Module | None = None
        if self.lecam_weight > 0:
            ema = (losses.LeCamEMA() if lecam_heads is None
                   else nn.ModuleList(losses.LeCamEMA() for _ in range(lecam_heads)))
            self.lecam = ema.to(data.device)
            self.state_attrs = (*type(self).state_attrs, "lecam")

    def seen_by_D(self, *images: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """The images as D sees them: DiffAugment of each, a fresh draw per tensor in the order given (the
        images themselves when it is off, drawing nothing). One image gives one tensor, several a tuple.
        A method passes through here the images it also needs itself, e.g. for a gradient penalty on what D
        scored; otherwise it calls ``run_D``."""
        seen = tuple(self.augment(x) for x in images)
        return seen[0] if len(seen) == 1 else seen

    def run_D(self, x: torch.Tensor, *cond, D: nn.Module | None = None) -> torch.Tensor:
        """D's output on ``x`` as D sees it (``seen_by_D``), with D's conditioning arguments ``cond``; ``D``: another
        discriminator than ``self.D`` (a method with several)."""
        return (self.D if D is None else D)(self.seen_by_D(x), *cond)

    def with_lecam(self, d_loss: torch.Tensor, real: torch.Tensor, fake: torch.Tensor, logs: dict,
                   head: int | None = None) -> torch.Tensor:
        """D's loss plus LeCam's weighted penalty of D's outputs on real and fake images (Tseng et al. 2021), logged
        under "lecam"; ``d_loss`` itself when LeCam is off. ``head``: which discriminator's averages, for a method
        with several (``lecam_heads``)."""
        if self.lecam is None:
            return d_loss
        ema = self.lecam if head is None else self.lecam[head]
        reg = ema.penalty(real, fake)
        logs.setdefault("lecam", []).append(reg.detach())
        return d_loss + self.lecam_weight * reg

    @staticmethod
    def update(opt: torch.optim.Optimizer, loss: torch.Tensor, inputs: list | None = None) -> None:
        """One optimiser step on ``loss``: gradients set to None, backward (into ``inputs`` only, when given), step."""
        opt.zero_grad(set_to_none=True)
        loss.backward(inputs=inputs)
        opt.step()

    @staticmethod
    def mean_logs(logs: dict[str, list[torch.Tensor]]) -> dict[str, torch.Tensor]:
        """{name: the mean of the values logged this step} (one value stays as it is): no host sync."""
        return {k: v[0] if len(v) == 1 else torch.stack(v).mean() for k, v in logs.items()}

    @torch.no_grad()
    def generate(self, y: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """(N, C, H, W) images in [-1, 1] of classes ``y``, from ``noise`` (drawn from the run's generator if None)."""
        y = y.to(self.data.device)
        noise = self.data.randn(y.shape[0], self.noise_dim) if noise is None else noise.to(self.data.device)
        with self.eval_mode():
            return self.draw(noise, y)

    def draw(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must define draw(z, y)")

    def pretrain_step(self) -> dict:
        return {}

    def finish_pretrain(self) -> None:
        pass

    @contextlib.contextmanager
    def eval_mode(self) -> Iterator[None]:
        """The generator networks in eval mode for the block, then back to how they were."""
        mods = [getattr(self, name) for name in self.eval_modules]
        was = [m.training for m in mods]
        for m in mods:
            m.eval()
        try:
            yield
        finally:
            for m, w in zip(mods, was):
                m.train(w)

    def state_dict(self) -> dict:
        out = {}
        for name in self.state_attrs:
            v = getattr(self, name)
            out[name] = v.state_dict() if hasattr(v, "state_dict") else v
        return out

    def load_state_dict(self, state: dict) -> None:
        missing = [name for name in self.state_attrs if name not in state]
        if missing:
            raise ValueError(f"The checkpoint lacks {', '.join(missing)}: it was written by another method "
                             f"or another version.")
        for name in self.state_attrs:
            cur, v = getattr(self, name), state[name]
            if isinstance(cur, (nn.Module, torch.optim.Optimizer)):
                cur.load_state_dict(v)
            elif isinstance(cur, torch.Tensor):
                setattr(self, name, v.to(cur.device))
            else:
                setattr(self, name, type(cur)(v) if cur is not None else v)
