"""ACGAN: auxiliary classifier GAN (Odena et al. 2017), original and "modified" (CAGAN eqs. 7-10).

D has two outputs on one trunk: a real/fake logit and n class logits. G draws an image of the class
it is asked for. The two variants differ only in the losses (CAGAN §2):

  original  (CAGAN eqs. 1-2):  L_d = L_adv^d + L_cls^r + L_cls^g        L_g = L_adv^g + L_cls^g
  modified  (CAGAN eqs. 7-8):  L_d = L_adv^d + λ_cls L_cls^r            L_g = L_adv^g + λ_cls L_cls^g

with L_cls^r = E_real[-log D_cls(c|x)] (eq. 9) and L_cls^g = E_fake[-log D_cls(c'|x')] (eq. 10).
The modified variant drops L_cls^g from D, which CAGAN §2 shows trains D's class node c to call
*generated* images of class c real, against the "group of GANs" reading of ACGAN; λ_cls (0.1 in
CAGAN Fig. 12) sets the ratio of the two losses once the adversarial loss is LSGAN or WGAN-GP.
The original variant keeps Odena's unit weights and ignores λ_cls.

Nothing here compensates for imbalance, on purpose: real batches come from ``data.sample`` (so
carry the training set's imbalance) and fake labels are uniform over classes (``uniform_labels``,
as BAGAN §4 does for its fakes, so both methods ask G for the same class mix). A minority class is
then rare among real images but common among fakes, and D learns to call its images fake: the
ACGAN failure BAGAN §3 describes should show in the sample grid's minority rows and in
``g_class_acc``, not be hidden.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from imbagan import losses
from imbagan.batches import DeviceData
from imbagan.methods.base import Method
from imbagan.nets import Discriminator, Generator, adam



def acgan_d_loss(adv_real: Tensor, adv_fake: Tensor, cls_real_logits: Tensor, cls_fake_logits: Tensor,
                 y_real: Tensor, y_fake: Tensor, variant: str, lambda_cls: float,
                 adv_loss: str) -> tuple[Tensor, dict[str, Tensor]]:
    """D's loss without any gradient penalty: (total, parts).

    parts = {"adv": L_adv^d, "cls_real": L_cls^r, "cls_fake": L_cls^g}; ``cls_fake`` is computed for
    both variants (for logging) but enters the total only in the original one (CAGAN eq. 1 vs 7).
    """
    adv = losses.D_LOSSES[adv_loss](adv_real, adv_fake)
    cls_real = F.cross_entropy(cls_real_logits, y_real)  # eq. (9)
    cls_fake = F.cross_entropy(cls_fake_logits, y_fake)  # eq. (10)
    if variant == "original":
        total = adv + cls_real + cls_fake  # eq. (1)
    elif variant == "modified":
        total = adv + lambda_cls * cls_real  # eq. (7)
    else:
        raise ValueError(f"acgan_variant must be 'original' or 'modified' (got {variant!r}).")
    return total, {"adv": adv, "cls_real": cls_real, "cls_fake": cls_fake}


def acgan_g_loss(adv_fake: Tensor, cls_fake_logits: Tensor, y_fake: Tensor, variant: str, lambda_cls: float,
                 adv_loss: str) -> tuple[Tensor, dict[str, Tensor]]:
    """G's loss: (total, parts). L_cls^r of eq. (2) is dropped: G cannot change it (CAGAN §2)."""
    adv = losses.G_LOSSES[adv_loss](adv_fake)  # bce: the non-saturating form, as in practice
    cls = F.cross_entropy(cls_fake_logits, y_fake)  # eq. (10)
    weight = 1.0 if variant == "original" else lambda_cls  # eq. (2) vs eq. (8)
    return adv + weight * cls, {"adv": adv, "cls": cls}


class ConditionalGenerator(nn.Module):
    """G(z, c): z concatenated with the one-hot class, then the DCGAN generator.

    Odena et al. 2017 (appendix) feed G the noise concatenated with a one-hot class vector.
    """

    def __init__(self, latent_dim: int, num_classes: int, img_shape: tuple[int, int, int], width: int):
        super().__init__()
        self.num_classes = num_classes
        self.net = Generator(latent_dim + num_classes, img_shape, width)

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        return self.net(torch.cat([z, F.one_hot(y, self.num_classes).to(z.dtype)], dim=1))


class ACGAN(Method):
    title = "ACGAN (Odena et al. 2017; modified as in CAGAN)"
    paper = "Odena et al. 2017, Conditional Image Synthesis with Auxiliary Classifier GANs; CAGAN eqs. 7-10"
    taxonomy = "Image level · multi-class (condition based, ACGAN [116] in Table 1)"
    summary = ("A class-conditional G and a D with real/fake and class heads. Batch norm in D, with imbalanced "
               "real batches and uniform fake batches normalised separately, adds CAGAN §4's batch-statistics "
               "leak to BAGAN §3's failure.")
    # "acgan" is Odena et al.'s original, whose settings are TrainConfig's own (bce, both class terms).
    # Measured by bench/converge.py under imbagan.convergence's rule (bench/converge.py --write-cards).
    budgets = {'16px grey': {'machine': 'AMD EPYC, 2 cores, 1 thread, bf16',
                             'seconds_per_step': 0.0451,
                             'source': 'bench/results/converge-digits-drop-95-3-8-summary.csv',
                             'steps': 750},
               '28px grey': {'machine': 'AMD EPYC, 2 cores, 1 thread, bf16',
                             'seconds_per_step': 0.1121,
                             'source': 'bench/results/converge-mnist-step-ir100-summary.csv, '
                                       'bench/results/converge-fashion_mnist-binary-5v7-ir100-summary.csv',
                             'steps': 500}}
    settings = {"acgan_variant": {"default": "original", "choices": ("original", "modified"),
                                  "help": "original (Odena 2017) | modified (CAGAN eqs. 7-10)"},
                "lambda_cls": {"default": 0.1, "min": 0, "help": "modified ACGAN: weight of the classification loss "
                                                                 "(CAGAN Fig. 12)"},
                "adv_loss": {"default": "bce", "choices": ("bce", "ls", "wgan-gp"),
                             "help": "adversarial loss: bce | ls | wgan-gp"},
                "gp_weight": {"default": 10.0, "min": 0, "help": "WGAN-GP gradient penalty weight (Gulrajani 2017)"},
                "n_critic": {"default": 5, "min": 1, "help": "D steps per G step for WGAN-GP losses"}}
    fields = ("diffaugment", "lecam_weight")
    field_when = {"lambda_cls": {"acgan_variant": ("modified",)},
                  "gp_weight": {"adv_loss": ("wgan-gp",)}, "n_critic": {"adv_loss": ("wgan-gp",)}}
    # The CAGAN paper's modified ACGAN: λ_cls = 0.1 (Fig. 12) and LSGAN's adversarial loss, which
    # CAGAN §5 used for both AC-GAN and CA-GAN.
    presets = {"modified (CAGAN eqs. 7-10)": {"acgan_variant": "modified", "lambda_cls": 0.1, "adv_loss": "ls"}}
    demo = {"shows": "ACGAN on digits with the step profile at IR 10: one conditional generator for all classes, "
                     "steered by an auxiliary classifier; nothing compensates for the imbalance, so watch the "
                     "rare rows (BAGAN §3's ACGAN failure).",
            "config": {"method": "acgan", "dataset": "digits", "imbalance": "step", "ir": 10.0}}
    state_attrs = ("G", "D", "opt_g", "opt_d")
    def __init__(self, cfg, data: DeviceData):
        self.cfg, self.data = cfg, data
        n, dev = data.num_classes, data.device
        self.noise_dim = cfg.latent_dim
        self.classes_modeled = tuple(range(n))
        self.G = ConditionalGenerator(cfg.latent_dim, n, data.img_shape, cfg.width).to(dev)
        # One trunk, 1 + n outputs: column 0 is the real/fake logit, the rest the auxiliary classifier.
        # Batch norm in D (DCGAN, as Odena's D) except under WGAN-GP, whose per-sample penalty it would break.
        norm = "none" if cfg.options["adv_loss"] == "wgan-gp" else "batch"
        self.D = Discriminator(data.img_shape, 1 + n, cfg.width, norm=norm).to(dev)
        self.opt_g = adam(self.G.parameters(), cfg)
        self.opt_d = adam(self.D.parameters(), cfg)
        # WGAN-GP: several critic updates per generator update (Gulrajani et al. 2017, Alg. 1).
        self.d_steps = cfg.options["n_critic"] if cfg.options["adv_loss"] == "wgan-gp" else 1
        # LeCam's "D's output": the real/fake logit (column 0); the class head is not a discriminator.
        self.init_small_data_options(cfg, data)

    def _split(self, out: Tensor) -> tuple[Tensor, Tensor]:
        return out[:, 0], out[:, 1:]

    def train_step(self) -> dict:
        cfg, data, b = self.cfg, self.data, self.cfg.batch_size
        logs: dict[str, list[Tensor]] = {}
        for i in range(self.d_steps):
            x_real, y_real = data.sample(b)  # with the training set's imbalance
            y_fake = data.uniform_labels(b)
            z = data.randn(b, self.noise_dim)
            # Only the last critic step's fakes are reused for G's update, so only they keep a graph.
            with torch.set_grad_enabled(i == self.d_steps - 1):
                x_fake = self.G(z, y_fake)
            # DiffAugment (identity when off): D only ever sees augmented images, its penalty included.
            a_real, a_fake = self.seen_by_D(x_real, x_fake.detach())
            adv_r, cls_r = self._split(self.D(a_real))
            adv_f, cls_f = self._split(self.D(a_fake))
            d_loss, parts = acgan_d_loss(adv_r, adv_f, cls_r, cls_f, y_real, y_fake, cfg.options["acgan_variant"],
                                         cfg.options["lambda_cls"], cfg.options["adv_loss"])
            d_loss = self.with_lecam(d_loss, adv_r, adv_f, logs)
            if cfg.options["adv_loss"] == "wgan-gp":
                # The penalty constrains the real/fake critic only; the classifier head is not a critic.
                gp = losses.gradient_penalty(lambda x: self.D(x)[:, 0], a_real, a_fake, data.gen)
                d_loss = d_loss + cfg.options["gp_weight"] * gp
                logs.setdefault("gp", []).append(gp.detach())
                logs.setdefault("w_dist", []).append((adv_r.mean() - adv_f.mean()).detach())
            self.update(self.opt_d, d_loss)
            with torch.no_grad():
                to_prob = torch.sigmoid if cfg.options["adv_loss"] == "bce" else (lambda t: t)  # ls / wgan: raw scores
                step_logs = {"d_loss": d_loss, "d_cls_real": parts["cls_real"], "d_cls_fake": parts["cls_fake"],
                             "aux_acc": losses.accuracy(cls_r, y_real),
                             "d_real": to_prob(adv_r).mean(), "d_fake": to_prob(adv_f).mean()}
            for k, v in step_logs.items():
                logs.setdefault(k, []).append(v.detach())

        # G: the last critic step's fakes, scored by the updated D.
        adv_g, cls_g = self._split(self.run_D(x_fake))
        o = cfg.options
        g_loss, _ = acgan_g_loss(adv_g, cls_g, y_fake, o["acgan_variant"], o["lambda_cls"], o["adv_loss"])
        self.update(self.opt_g, g_loss)

        out = self.mean_logs(logs)
        out["g_loss"] = g_loss.detach()
        # How often D's classifier gives G's images the class asked for: low on minority classes = BAGAN §3.
        out["g_class_acc"] = losses.accuracy(cls_g.detach(), y_fake)
        return out

    def draw(self, z: Tensor, y: Tensor) -> Tensor:
        return self.G(z, y)
