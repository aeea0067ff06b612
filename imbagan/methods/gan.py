"""A plain GAN trained on the minority class alone: BAGAN's "simple GAN" baseline (BAGAN §5).

BAGAN §5: "we adjust the reference ACGAN discriminator output to discriminate only between real
and fake images, and we remove the class conditioning for the generator input (this GAN is trained
only over images from the minority class)". With several minority classes there is one unconditional
generator/discriminator pair per class, each seeing only its class's images.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from imbagan import losses
from imbagan.batches import DeviceData
from imbagan.imbalance import minority_classes
from imbagan.methods.base import Method
from imbagan.nets import Discriminator, Generator, adam


class GAN(Method):
    title = "GAN on the minority class alone (BAGAN's baseline)"
    paper = "Mariani et al. 2018, BAGAN §5 (the 'simple GAN' baseline)"
    taxonomy = "Image level · inter-class · few minority-many majority (DCGAN-style oversampling, Table 3)"
    summary = "An unconditional DCGAN per minority class, trained on that class's images alone."
    # Measured by bench/converge.py under imbagan.convergence's rule (bench/converge.py --write-cards).
    budgets = {'16px grey': {'generators': 2,
                             'machine': 'AMD EPYC, 2 cores, 1 thread, bf16',
                             'seconds_per_step': 0.1013,
                             'source': 'bench/results/converge-digits-drop-95-3-8-summary.csv',
                             'steps': 500},
               '28px grey': {'generators': 1,
                             'machine': 'AMD EPYC, 2 cores, 1 thread, bf16',
                             'seconds_per_step': 0.1114,
                             'source': 'bench/results/converge-mnist-step-ir100-summary.csv, '
                                       'bench/results/converge-fashion_mnist-binary-5v7-ir100-summary.csv',
                             'steps': 2250}}
    settings = {"gan_classes": {"default": (), "help": "classes to model, one generator each; () -> every minority "
                                                       "class (fewer than half the largest)"}}
    fields = ("diffaugment", "lecam_weight")
    demo = {"shows": "A plain DCGAN trained on the 97.5%-dropped digit 0 alone: with ~3 images it has little to "
                     "learn from, which is BAGAN's argument for using every class.",
            "config": {"method": "gan", "dataset": "digits", "imbalance": "drop", "drop": 97.5, "minority": (0,),
                       "gan_classes": (0,)}}
    state_attrs = ("G", "D", "opt_g", "opt_d")
    # README "Precision": 1.44x per step, 1.33x per default run, the same quality bars; bench/precision.py
    # (bench/results/precision-digits-drop-95-3-8.csv): within the seed spread on FID and class accuracy at 1,000.
    bf16_measured = True

    def __init__(self, cfg, data: DeviceData):
        self.cfg, self.data = cfg, data
        if chosen := cfg.options["gan_classes"]:
            bad = [c for c in chosen if not 0 <= c < data.num_classes]
            if bad:
                raise ValueError(f"gan_classes {bad} do not exist: the training set has classes 0..{data.num_classes - 1}.")
            self.classes_modeled = tuple(sorted(set(int(c) for c in chosen)))
        else:
            # Default: every minority class (fewer than half the largest class's images, as the grids
            # mark them), one generator each (BAGAN §5); a set without one gets its rarest class.
            self.classes_modeled = tuple(minority_classes(data.counts)) or (int(np.argmin(data.counts)),)
        self.noise_dim = cfg.latent_dim
        k = len(self.classes_modeled)
        self.G = nn.ModuleList([Generator(cfg.latent_dim, data.img_shape, cfg.width) for _ in range(k)]).to(data.device)
        self.D = nn.ModuleList([Discriminator(data.img_shape, 1, cfg.width, norm="batch") for _ in range(k)]).to(data.device)
        self.opt_g = adam(self.G.parameters(), cfg)
        self.opt_d = adam(self.D.parameters(), cfg)
        # Maps an original label to its generator's slot (-1: not modelled).
        slot = torch.full((data.num_classes,), -1, dtype=torch.long)
        for i, c in enumerate(self.classes_modeled):
            slot[c] = i
        self._slot = slot.to(data.device)
        self._labels = [torch.full((cfg.batch_size,), c, device=data.device, dtype=torch.long)
                        for c in self.classes_modeled]
        # LeCam's "D's output": each class's D's one real/fake logit, with its own moving averages.
        self.init_small_data_options(cfg, data, lecam_heads=k)

    def train_step(self) -> dict:
        b = self.cfg.batch_size
        d_total, g_total, d_real, d_fake, logs = [], [], [], [], {}
        for i, (G, D, labels) in enumerate(zip(self.G, self.D, self._labels)):
            real = self.data.sample_of(labels)  # this class's images only
            fake = G(self.data.randn(b, self.noise_dim))
            # D: real vs fake, standard BCE.
            real_logits, fake_logits = self.run_D(real, D=D).squeeze(1), self.run_D(fake.detach(), D=D).squeeze(1)
            d_loss = self.with_lecam(losses.bce_d(real_logits, fake_logits), real_logits, fake_logits, logs, head=i)
            self.update(self.opt_d, d_loss)
            # G: non-saturating loss, the usual practical choice (Goodfellow et al. 2014 §3).
            g_logits = self.run_D(fake, D=D).squeeze(1)
            g_loss = losses.nonsat_g(g_logits)
            self.update(self.opt_g, g_loss)
            d_total.append(d_loss.detach())
            g_total.append(g_loss.detach())
            d_real.append(torch.sigmoid(real_logits.detach()).mean())
            d_fake.append(torch.sigmoid(fake_logits.detach()).mean())
        mean = lambda xs: torch.stack(xs).mean()  # noqa: E731
        out = {"d_loss": mean(d_total), "g_loss": mean(g_total), "d_real": mean(d_real), "d_fake": mean(d_fake)}
        return out | self.mean_logs(logs)

    def draw(self, z: Tensor, y: Tensor) -> Tensor:
        """Each image from the generator of its class."""
        slots = self._slot[y]
        if bool((slots < 0).any()):
            raise ValueError(f"This GAN models only classes {list(self.classes_modeled)}; it cannot draw others.")
        out = torch.empty(y.shape[0], *self.data.img_shape, device=self.data.device)
        for i, G in enumerate(self.G):
            pick = slots == i
            if bool(pick.any()):
                out[pick] = G(z[pick])
        return out
