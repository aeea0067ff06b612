"""CAGAN: "Conditional Activation GAN: Improved Auxiliary Classifier GAN" (Cho & Yoon);
official code jeongik-jo/CAGAN-MNIST.

D has one output per class and no real/fake head (CAGAN §3, Fig. 7): output c is the discriminator
of "GAN c", which only judges images whose condition c is active. The loss is the sum of these GANs'
losses written as an inner product with the condition vector, eqs. (17)-(18) (least squares:
eqs. (19)-(20)); see ``imbagan.losses.cond_activation_d`` / ``cond_activation_g``.

Mixed batch training (§4, §6.3): with batch norm in D and real/fake condition distributions that
differ (imbalanced reals, uniform fakes), a real-only and a fake-only batch differ in their condition
mix and D can tell them apart by batch statistics; G then copies the real condition distribution.
Once a fraction ``cfg.options["cagan_mix_start"]`` of training has passed (the paper: "after some training"),
real and generated images go through D in one forward pass, so every D batch has the same ratio of
real to generated images and thus the same condition distribution. Mixing acts only through batch
statistics, so D has batch norm by default (``cagan_d_norm="batch"``, as in §6.3's imbalanced
experiment); with instance norm (§5, and the official code's default) or none, it changes nothing.

Regulariser (``cagan_reg``). The default follows the official code (jeongik-jo/CAGAN-MNIST Train.py,
``reg_losses``; jeongik-jo/CAGAN Train.py): a zero-centred gradient penalty ||∇_x D_c(x)||² on every
real and every generated image, each under its own condition c, weight 1 (HyperParameters.py
``reg_weight``). "wgan-gp" is Gulrajani et al.'s penalty on real-fake interpolates, scored under the
real image's condition (the interpolates mix classes, since fakes have uniform conditions); "none"
trains without one.

Where we differ from the official code: its adversarial term is the non-saturating softplus loss
(our ``adv_loss="bce"``), while §5 states LSGAN's, which we keep as the paper default; its networks
(equalised learning rate, blurred up/down-sampling, Adam lr 1e-3 with betas (0, 0.99), an EMA of G)
are not DCGAN's, so its optimiser settings are not carried over to our DCGAN blocks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from imbagan import losses
from imbagan.batches import DeviceData
from imbagan.methods.base import Method
from imbagan.nets import Discriminator, Generator, adam



class CAGAN(Method):
    title = "CAGAN: conditional activation GAN (Cho & Yoon)"
    paper = "Cho & Yoon, Conditional Activation GAN: Improved Auxiliary Classifier GAN"
    taxonomy = "Image level · multi-class (condition based)"
    summary = "One D logit per class, the conditional activation loss, and mixed real/fake D batches."
    # §5: LSGAN's adversarial loss (eqs. (19)-(20)) and a 256-d latent (also CAGAN-MNIST
    # HyperParameters.py latent_vector_dim); §6.3: batch norm in D on the imbalanced set; official
    # Train.py / HyperParameters.py: the zero-centred penalty with weight 1.
    paper_defaults = {"adv_loss": "ls", "latent_dim": 256, "cagan_d_norm": "batch", "cagan_reg": "zero-gp",
                      "cagan_reg_weight": 1.0}
    defaults_source = ("the CAGAN paper §5 and §6.3; jeongik-jo/CAGAN-MNIST HyperParameters.py and Train.py "
                       "(the regulariser)")
    # bench/precision.py (bench/results/precision-digits-drop-95-3-8.csv): at 1,500 steps, 2 seeds each, bf16's
    # mean FID 1.97 against float32's 2.05 (seed spread 0.38), class accuracy 0.934 against 0.940 (spread 0.027).
    bf16_measured = True
    # Measured by bench/converge.py under imbagan.convergence's rule (bench/converge.py --write-cards).
    budgets = {'16px grey': {'at_least': True,
                             'machine': 'AMD EPYC, 2 cores, 1 thread, bf16',
                             'not_converged': 'digits-drop-95-3-8',
                             'seconds_per_step': 0.079,
                             'source': 'bench/results/converge-digits-drop-95-3-8-summary.csv',
                             'steps': 6250},
               '28px grey': {'machine': 'AMD EPYC, 2 cores, 1 thread, bf16',
                             'seconds_per_step': 0.2021,
                             'source': 'bench/results/converge-mnist-step-ir100-summary.csv, '
                                       'bench/results/converge-fashion_mnist-binary-5v7-ir100-summary.csv',
                             'steps': 2750}}
    # Batch norm by default: mixed batches (§4) act only through batch statistics, and the paper's imbalanced
    # experiment (§6.3) uses batch norm in D; instance norm is §5's and the official code's.
    settings = {"adv_loss": {"default": "bce", "choices": ("bce", "ls", "wgan-gp"),
                             "help": "adversarial loss: bce | ls | wgan-gp"},
                "cagan_mix_start": {"default": 0.5, "min": 0, "max": 1,
                                    "help": "CAGAN §4: fraction of training after which mixed batches start"},
                "cagan_d_norm": {"default": "batch", "choices": ("none", "batch", "instance"),
                                 "help": "normalisation in D: batch (§6.3) | instance (§5) | none"},
                "cagan_reg": {"default": "zero-gp", "choices": ("zero-gp", "wgan-gp", "none"),
                              "help": "D regulariser: zero-gp (official code: ||grad||^2 of each image's own-label "
                                      "logit) | wgan-gp (on real-fake interpolates) | none"},
                "cagan_reg_weight": {"default": 1.0, "min": 0,
                                     "help": "weight of the zero-centred penalty (official code: 1)"},
                "gp_weight": {"default": 10.0, "min": 0, "help": "WGAN-GP gradient penalty weight (Gulrajani 2017)"},
                "n_critic": {"default": 5, "min": 1, "help": "D steps per G step for WGAN-GP losses"}}
    fields = ("diffaugment", "lecam_weight")
    field_when = {"gp_weight": {"cagan_reg": ("wgan-gp",)}, "n_critic": {"adv_loss": ("wgan-gp",)},
                  "cagan_reg_weight": {"cagan_reg": ("zero-gp",)}}
    presets = {"WGAN-GP (penalty on interpolates)": {"adv_loss": "wgan-gp", "cagan_reg": "wgan-gp"},
               "instance norm (§5, official code)": {"cagan_d_norm": "instance"}}
    demo = {"shows": "CAGAN on digits, step IR 10: one discriminator output per class, each judging only images "
                     "of its class, and mixed real/generated batches late in training.",
            "config": {"method": "cagan", "dataset": "digits", "imbalance": "step", "ir": 10.0}}
    state_attrs = ("G", "D", "opt_g", "opt_d", "iteration")

    def __init__(self, cfg, data: DeviceData):
        self.cfg, self.data = cfg, data
        n, dev = data.num_classes, data.device
        self.noise_dim = cfg.latent_dim
        self.classes_modeled = tuple(range(n))
        self.kind = cfg.options["adv_loss"]
        # G receives the condition vector and z, concatenated (§5; official Layers.Generator).
        self.G = Generator(cfg.latent_dim + n, data.img_shape, cfg.width).to(dev)
        # D: one logit per condition, no real/fake output (§5: "CA-GAN uses only 10 outputs").
        self.D = Discriminator(data.img_shape, n, cfg.width, norm=cfg.options["cagan_d_norm"]).to(dev)
        self.opt_g = adam(self.G.parameters(), cfg)
        self.opt_d = adam(self.D.parameters(), cfg)
        # WGAN-GP critics take several updates per G update (Gulrajani et al. 2017).
        self.n_d = cfg.options["n_critic"] if self.kind == "wgan-gp" else 1
        self.iteration = 0  # train_step calls so far: decides when mixed batches start
        self.mix_from = cfg.steps * cfg.options["cagan_mix_start"]
        # LeCam's "D's output": each image's active-condition logit, the output of "GAN c" that judges it
        # (§3), with one pair of moving averages over all conditions (as Tseng et al.'s conditional D).
        self.init_small_data_options(cfg, data)

    def _onehot(self, y: Tensor) -> Tensor:
        return F.one_hot(y, self.data.num_classes).float()

    def _fake(self, y: Tensor) -> Tensor:
        z = self.data.randn(y.shape[0], self.noise_dim)
        return self.G(torch.cat([z, self._onehot(y)], 1))

    def _d_pair(self, real: Tensor, fake: Tensor, mixed: bool) -> tuple[Tensor, Tensor]:
        """D's logits for a real and a fake batch: one forward pass of both when mixing (§4),
        so batch statistics mix; separately otherwise (the paper's "not mixed batch training")."""
        if mixed:
            logits = self.D(torch.cat([real, fake]))
            return logits[: real.shape[0]], logits[real.shape[0]:]
        return self.D(real), self.D(fake)

    def train_step(self) -> dict:
        data, b, kind = self.data, self.cfg.batch_size, self.kind
        mixed = self.iteration >= self.mix_from
        gp, logs = None, {}
        for i in range(self.n_d):
            # Reals keep the training set's (imbalanced) condition distribution, fakes are asked for
            # uniform conditions, the target distribution of a balancing GAN (official Train.py).
            real, y_real = data.sample(b)
            y_fake = data.uniform_labels(b)
            c_real, c_fake = self._onehot(y_real), self._onehot(y_fake)
            last = i == self.n_d - 1
            with torch.set_grad_enabled(last):  # the last fakes are reused for G's update
                fake = self._fake(y_fake)
            zero_gp = self.cfg.options["cagan_reg"] == "zero-gp"
            # DiffAugment (identity when off) before D; the penalties are on the images D sees.
            d_real, d_fake = self.seen_by_D(real, fake.detach())
            d_real = d_real.requires_grad_(True) if zero_gp else d_real
            d_fake = d_fake.requires_grad_(zero_gp)
            real_logits, fake_logits = self._d_pair(d_real, d_fake, mixed)
            d_loss = losses.cond_activation_d(real_logits, c_real, fake_logits, c_fake, kind)  # eq. (17)
            # LeCam's "D's output": each image's active condition's logit.
            d_loss = self.with_lecam(d_loss, (real_logits * c_real).sum(1), (fake_logits * c_fake).sum(1), logs)
            if zero_gp:
                # Official Train.py: the score of each image is its active condition's logit,
                # sum(logits · labels); its squared gradient is penalised on reals and fakes alike.
                gp = (losses.zero_centered_gp((real_logits * c_real).sum(1), d_real)
                      + losses.zero_centered_gp((fake_logits * c_fake).sum(1), d_fake))
                d_loss = d_loss + self.cfg.options["cagan_reg_weight"] * gp
            elif self.cfg.options["cagan_reg"] == "wgan-gp":
                # The critic of GAN c is D's output c: penalise the score of each real image's active
                # condition on the line to a fake.
                gp = losses.gradient_penalty(lambda x: (self.D(x) * c_real).sum(1), d_real, d_fake, data.gen)
                d_loss = d_loss + self.cfg.options["gp_weight"] * gp
            self.update(self.opt_d, d_loss)

        # G: eq. (18). When mixing, G's fakes are judged inside a mixed batch too, as D learned them
        # (beside the reals D last saw, augmented as they were).
        if mixed:
            g_logits = self.D(torch.cat([d_real.detach(), self.seen_by_D(fake)]))[b:]
        else:
            g_logits = self.run_D(fake)
        g_loss = losses.cond_activation_g(g_logits, c_fake, kind)
        self.update(self.opt_g, g_loss, inputs=list(self.G.parameters()))
        self.iteration += 1

        out = {
            "d_loss": d_loss.detach(),
            "g_loss": g_loss.detach(),
            # Argmax of D's per-class outputs on real images vs their labels. Only a rough classifier:
            # head c is never trained on real images of other classes (§3), so this stays well below 1.
            "aux_acc": losses.accuracy(real_logits.detach(), y_real),
            "mixed": torch.tensor(float(mixed), device=data.device),
        }
        if gp is not None:
            out["gp"] = gp.detach()
        return out | self.mean_logs(logs)

    def draw(self, z: Tensor, y: Tensor) -> Tensor:
        return self.G(torch.cat([z, self._onehot(y)], 1))
