"""BAGAN-GP: BAGAN with a supervised autoencoder and a gradient penalty (Huang & Jafari 2021).

Two variants (``cfg.options["bagan_gp_variant"]``); the default follows the official code, GH920/improved-bagan-gp
codes/improved_bagan_gp.py, read line by line:

"official" (the default)
  a) a *supervised* autoencoder: the encoder's code, through LeakyReLU(0.2), is multiplied by a learned
     class embedding (the "intermediate embedding") before the decoder; the loss is the mean absolute
     error (``ae.compile(..., loss='mae')``);
  b) G is the decoder with that embedding: G(z, c) = Δ(z ⊙ e_c) with z ~ N(0, I) (``tf.random.normal``),
     so the class enters only through e_c; no class Gaussians are fitted. D is built fresh, "without
     initialization" from the encoder (``d_model = discriminator_cwgan()``; the encoder-initialised
     ``build_discriminator(en)`` is commented out): the conv trunk's features are multiplied by
     LeakyReLU(Dense(Embedding(c))) and go through Dense(512) and Dense(1) (``discriminator_cwgan``);
  c) D's loss is BCE(real under its label, 1) + BCE(fake under its uniform label, 0) + BCE(real under
     a uniformly drawn label, 0) ("wrong label", which can draw the true label, as the code does)
     + 10 · GP; the penalty (||∇ D(x̂, y)|| - 1)² is taken on x̂ = x + α (x' - x) with α ~ N(0, 1)
     (``tf.random.normal``, not the uniform α of WGAN-GP), scored under the *real* labels y.
     Five D updates per G update on the same real batch (``trainRatio = 5``, a loop inside one
     ``train_step``); G minimises BCE(D(G(z, c), c), 1) with c uniform. Adam lr 2e-4, betas (0.5, 0.9),
     latent size 128, for the autoencoder too (its ``optimizer``).

"wgan" (this project's earlier form, kept as a named variant)
  a) the same supervised autoencoder without the LeakyReLU on the code, with l2 loss (BAGAN §4);
  b) per class c, N(μ_c, Σ_c) fitted to E(X_c) and frozen (BAGAN §4); D's trunk initialised from E's;
     the critic is the projection form C(x, c) = w·h(x) + e_c·h(x) (Miyato & Koyama 2018);
  c) a class-conditional WGAN-GP. The critic's fakes take the labels of the real batch they are
     compared with; G's own update asks for uniform labels. Uniform fake labels in the critic make the
     conditional Wasserstein objective unbounded on an imbalanced set: a per-class offset C(x, c) ≈ -K,
     flat in x so the penalty barely sees it, earns K (p_fake(c) - p_real(c)) for every minority
     class c (on digits the estimated distance went from 2 to 250 within 50 steps that way). With
     matched labels such offsets cancel, and G still gets as many updates per class.

Both keep our DCGAN blocks (nets.Generator with batch norm, as the official decoder has; nets.ConvTrunk
without normalisation, as the official encoder and D have) rather than the official layer sizes.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from imbagan import losses
from imbagan.batches import DeviceData
from imbagan.methods.base import Method
from imbagan.methods.bagan import fit_class_gaussians
from imbagan.nets import Discriminator, Encoder, Generator, adam



class EmbeddedGenerator(nn.Module):
    """The decoder Δ with its intermediate embedding: G(z, c) = Δ(z ⊙ e_c).

    The embedding keeps PyTorch's N(0, 1) initialisation, which gives each class a distinct random
    sign/scale pattern from the first step. As in the paper, batch norm is in G only; E and the critic
    use LeakyReLU(0.2) (nets.ConvTrunk), while G keeps nets.Generator's ReLU, shared with every method.
    """

    def __init__(self, latent_dim: int, num_classes: int, img_shape: tuple[int, int, int], width: int):
        super().__init__()
        self.embed = nn.Embedding(num_classes, latent_dim)
        self.net = Generator(latent_dim, img_shape, width)

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        return self.net(z * self.embed(y))


class EmbeddingCritic(nn.Module):
    """D(x, c) = Dense(1)(Dense(512)(h(x) ⊙ LeakyReLU(Dense(e_c)))): the official ``discriminator_cwgan``
    (GH920/improved-bagan-gp codes/improved_bagan_gp.py) on our conv trunk, no normalisation, one logit."""

    def __init__(self, img_shape: tuple[int, int, int], num_classes: int, width: int, embed_dim: int = 512,
                 hidden: int = 512):
        super().__init__()
        self.base = Discriminator(img_shape, 1, width, norm="none")  # its head is unused; trunk = h(x)
        d = self.base.trunk.out_dim
        self.embed = nn.Embedding(num_classes, embed_dim)
        self.label_map = nn.Linear(embed_dim, d)
        self.hidden = nn.Linear(d, hidden)
        self.out = nn.Linear(hidden, 1)
        del self.base.head

    @property
    def trunk(self) -> nn.Module:
        return self.base.trunk

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        h = self.base.features(x) * F.leaky_relu(self.label_map(self.embed(y)), 0.2)
        return self.out(self.hidden(h)).squeeze(1)


def official_gradient_penalty(critic: Callable[[Tensor, Tensor], Tensor], real: Tensor, fake: Tensor,
                              labels: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """The official code's penalty (``BAGAN_GP.gradient_penalty``): (||∇_x̂ D(x̂, y)||_2 - 1)², x̂ = x + α (x' - x),
    α ~ N(0, 1) per image, scored under the real images' labels y. The graph is kept for D's update."""
    alpha = torch.randn(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype,
                        generator=generator)
    x_hat = (real.detach() + alpha * (fake.detach() - real.detach())).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat, labels).sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1).pow(2).mean()


def official_d_loss(real_logits: Tensor, fake_logits: Tensor, wrong_logits: Tensor) -> Tensor:
    """The official ``discriminator_loss``: BCE(real, 1) + BCE(fake, 0) + BCE(real under a wrong label, 0)."""
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
            + F.binary_cross_entropy_with_logits(wrong_logits, torch.zeros_like(wrong_logits)))


class ProjectionCritic(nn.Module):
    """C(x, c) = head(h(x)) + <e_c, h(x)>: one unbounded score per image, no normalisation (WGAN-GP).

    The class embedding starts at zero, so adversarial training starts from the encoder-initialised
    unconditional critic and learns the class term from there.
    """

    def __init__(self, img_shape: tuple[int, int, int], num_classes: int, width: int):
        super().__init__()
        self.base = Discriminator(img_shape, 1, width, norm="none")
        self.embed = nn.Embedding(num_classes, self.base.trunk.out_dim)
        nn.init.zeros_(self.embed.weight)

    @property
    def trunk(self) -> nn.Module:
        return self.base.trunk

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        h = self.base.features(x)
        return self.base.head(h).squeeze(1) + (self.embed(y) * h).sum(1)


def conditional_gradient_penalty(critic: Callable[[Tensor, Tensor], Tensor], real: Tensor, fake: Tensor,
                                 labels: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """losses.gradient_penalty for a label-conditioned critic: each interpolate is scored under ``labels``,
    the label shared by its real and its fake end (see the module docstring), so C(·, c) is kept
    1-Lipschitz between real and generated images of class c.
    """
    return losses.gradient_penalty(lambda x: critic(x, labels), real, fake, generator)


class BAGAN_GP(Method):
    title = "BAGAN-GP (Huang & Jafari 2021)"
    paper = "Huang & Jafari 2021, Enhanced Balancing GAN: Minority-class Image Generation"
    taxonomy = "Image level · multi-class (BAGAN with a gradient penalty; WGAN-GP [200] is in Table 3)"
    summary = ("A supervised autoencoder with a label embedding initialises G; a label-conditioned D trained with "
               "BCE, a wrong-label term and a gradient penalty (official code; a WGAN-GP variant is a preset).")
    # Measured by bench/converge.py under imbagan.convergence's rule (bench/converge.py --write-cards).
    budgets = {'16px grey': {'machine': 'AMD EPYC (AVX2), 2 cores, 1 thread, fp32',
                             'seconds_per_step': 0.4896,
                             'source': 'bench/results/converge-digits-drop-95-3-8-summary.csv',
                             'steps': 8000},
               '28px grey': {'at_least': True,
                             'machine': 'AMD EPYC, 2 cores, 1 thread, bf16',
                             'not_converged': 'mnist-step-ir100',
                             'seconds_per_step': 0.8907,
                             'source': 'bench/results/converge-mnist-step-ir100-summary.csv, '
                                       'bench/results/converge-fashion_mnist-binary-5v7-ir100-summary.csv',
                             'steps': 5250}}
    # codes/improved_bagan_gp.py: latent_dim = 128; Adam(lr=0.0002, beta_1=0.5, beta_2=0.9); gp_weight=10.0;
    # trainRatio = 5 (D updates per G update).
    paper_defaults = {"latent_dim": 128, "beta2": 0.9, "gp_weight": 10.0, "n_critic": 5, "lr": 2e-4, "beta1": 0.5,
                      "bagan_gp_variant": "official"}
    defaults_source = "GH920/improved-bagan-gp codes/improved_bagan_gp.py (the official code, not the paper's text)"
    # bench/precision.py (bench/results/precision-digits-drop-95-3-8.csv): at 1,000 steps, 2 seeds each, bf16's
    # mean FID 2.40 against float32's 2.25 (seed spread 1.15), class accuracy 0.906 against 0.909 (spread 0.053).
    bf16_measured = True
    settings = {"bagan_gp_variant": {"default": "official", "choices": ("official", "wgan"),
                                     "help": "official (GH920 code: N(0, I) through the embedding, BCE + "
                                             "wrong-label + GP, MAE autoencoder) | wgan (fitted class Gaussians, D "
                                             "from the encoder, conditional WGAN-GP)"},
                "gp_weight": {"default": 10.0, "min": 0, "help": "WGAN-GP gradient penalty weight (Gulrajani 2017)"},
                "n_critic": {"default": 5, "min": 1, "help": "D steps per G step for WGAN-GP losses"}}
    fields = ("ae_steps", "diffaugment", "lecam_weight")
    presets = {"WGAN-GP with fitted class Gaussians (earlier imbagan form)": {"bagan_gp_variant": "wgan"}}
    demo = {"shows": "BAGAN-GP on digits, longtail IR 10: the autoencoder start of BAGAN with a WGAN-GP critic.",
            "config": {"method": "bagan_gp", "dataset": "digits", "imbalance": "longtail", "ir": 10.0,
                       "ae_steps": 300}}
    state_attrs = ("E", "G", "D", "opt_ae", "opt_g", "opt_d", "mu", "root")
    def __init__(self, cfg, data: DeviceData):
        self.cfg, self.data = cfg, data
        n, dev = data.num_classes, data.device
        self.pretrain_steps = cfg.ae_steps
        self.noise_dim = cfg.latent_dim
        self.classes_modeled = tuple(range(n))
        self.official = cfg.options["bagan_gp_variant"] == "official"
        # Decoder Δ *is* G (same module, embedding included), so "G initialised from Δ" needs no copy.
        self.E = Encoder(data.img_shape, cfg.latent_dim, cfg.width, norm="none").to(dev)
        self.G = EmbeddedGenerator(cfg.latent_dim, n, data.img_shape, cfg.width).to(dev)
        critic = EmbeddingCritic if self.official else ProjectionCritic
        self.D = critic(data.img_shape, n, cfg.width).to(dev)
        self.opt_ae = adam(list(self.E.parameters()) + list(self.G.parameters()), cfg)
        self.opt_g = adam(self.G.parameters(), cfg)
        self.opt_d = adam(self.D.parameters(), cfg)
        # "wgan": class-conditional latent generator over the encoder's codes, fitted after stage a), then
        # fixed. "official" leaves them unused: z ~ N(0, I).
        self.mu = torch.zeros(n, cfg.latent_dim, device=dev)
        self.root = torch.zeros(n, cfg.latent_dim, cfg.latent_dim, device=dev)
        # LeCam's "D's output": the label-conditioned logit D(x, c), reals under their label and fakes
        # under the label asked for (the "wrong label" term is left out of it).
        self.init_small_data_options(cfg, data)

    # --- a) supervised autoencoder ---------------------------------------------------------
    def encode(self, x: Tensor) -> Tensor:
        """The encoder's code; the official encoder ends in LeakyReLU(0.2) after its dense layer."""
        code = self.E(x)
        return F.leaky_relu(code, 0.2) if self.official else code

    def pretrain_step(self) -> dict:
        x, y = self.data.sample(self.cfg.batch_size)
        rec = self.G(self.encode(x), y)  # reconstruction through the class embedding
        # official: mean absolute error (ae.compile(loss='mae')); wgan: l2, as BAGAN §4
        loss = F.l1_loss(rec, x) if self.official else F.mse_loss(rec, x)
        self.update(self.opt_ae, loss)
        return {"ae_loss": loss.detach()}

    # --- b) GAN initialisation -------------------------------------------------------------
    @torch.no_grad()
    def finish_pretrain(self) -> None:
        if self.official:
            return  # z ~ N(0, I) through the embedding; D stays as built ("without initialization")
        codes, labels = [], []
        for x, y in self.data.chunks():
            codes.append(self.E(x))
            labels.append(y)
        # Fitting N(μ_c, Σ_c) to E(X_c) and then multiplying by e_c is the same as fitting it to the
        # embedded codes E(X_c) ⊙ e_c (a linear map), so G(z, c) starts as the decoder of class c's codes.
        self.mu, self.root = fit_class_gaussians(torch.cat(codes), torch.cat(labels), self.data.num_classes)
        # D's trunk <- E's trunk; the critic's head and class embedding stay freshly initialised.
        self.D.trunk.load_state_dict(self.E.trunk.state_dict())

    def latent(self, y: Tensor, noise: Tensor) -> Tensor:
        """z ~ N(μ_y, Σ_y) from standard normal noise ("wgan"); the noise itself ("official")."""
        if self.official:
            return noise
        return self.mu[y] + torch.einsum("nij,nj->ni", self.root[y], noise)

    # --- c) adversarial training -------------------------------------------------------------
    def train_step(self) -> dict:
        return self._official_step() if self.official else self._wgan_step()

    def _official_step(self) -> dict:
        """codes/improved_bagan_gp.py BAGAN_GP.train_step: n_critic D updates on one real batch, then G."""
        cfg, data, b = self.cfg, self.data, self.cfg.batch_size
        x_real, y = data.sample(b)
        logs: dict[str, list[Tensor]] = {}
        for _ in range(cfg.options["n_critic"]):
            y_fake, y_wrong = data.uniform_labels(b), data.uniform_labels(b)
            with torch.no_grad():
                x_fake = self.G(data.randn(b, self.noise_dim), y_fake)
            # DiffAugment (identity when off): a fresh draw for every critic step on the one real batch.
            a_real, a_fake = self.seen_by_D(x_real, x_fake)
            real_logits, fake_logits = self.D(a_real, y), self.D(a_fake, y_fake)
            wrong_logits = self.D(a_real, y_wrong)
            gp = official_gradient_penalty(self.D, a_real, a_fake, y, data.gen)
            d_loss = official_d_loss(real_logits, fake_logits, wrong_logits) + cfg.options["gp_weight"] * gp
            d_loss = self.with_lecam(d_loss, real_logits, fake_logits, logs)
            self.update(self.opt_d, d_loss)
            with torch.no_grad():
                for k, v in (("d_loss", d_loss), ("gp", gp), ("d_real", torch.sigmoid(real_logits).mean()),
                             ("d_fake", torch.sigmoid(fake_logits).mean()),
                             ("d_wrong", torch.sigmoid(wrong_logits).mean())):
                    logs.setdefault(k, []).append(v.detach())

        y_g = data.uniform_labels(b)
        g_loss = losses.nonsat_g(self.run_D(self.G(data.randn(b, self.noise_dim), y_g), y_g))
        self.update(self.opt_g, g_loss)
        return self.mean_logs(logs) | {"g_loss": g_loss.detach()}

    def _wgan_step(self) -> dict:
        cfg, data, b = self.cfg, self.data, self.cfg.batch_size
        logs: dict[str, list[Tensor]] = {}
        for _ in range(cfg.options["n_critic"]):
            x_real, y = data.sample(b)  # a fresh real batch per critic step
            with torch.no_grad():  # fakes of the same classes as the real batch (module docstring)
                x_fake = self.G(self.latent(y, data.randn(b, self.noise_dim)), y)
            a_real, a_fake = self.seen_by_D(x_real, x_fake)  # DiffAugment (identity when off)
            c_real, c_fake = self.D(a_real, y), self.D(a_fake, y)
            gp = conditional_gradient_penalty(self.D, a_real, a_fake, y, data.gen)
            d_loss = losses.wgan_d(c_real, c_fake) + cfg.options["gp_weight"] * gp
            d_loss = self.with_lecam(d_loss, c_real, c_fake, logs)
            self.update(self.opt_d, d_loss)
            for k, v in (("d_loss", d_loss), ("gp", gp), ("w_dist", c_real.mean() - c_fake.mean())):
                logs.setdefault(k, []).append(v.detach())

        # G: a fresh batch with uniform labels (BAGAN §4), so every class gets the same generator updates.
        y_g = data.uniform_labels(b)
        g_loss = losses.wgan_g(self.run_D(self.G(self.latent(y_g, data.randn(b, self.noise_dim)), y_g), y_g))
        self.update(self.opt_g, g_loss)

        return self.mean_logs(logs) | {"g_loss": g_loss.detach()}

    def draw(self, z: Tensor, y: Tensor) -> Tensor:
        return self.G(self.latent(y, z), y)
