"""BAGAN-GP: BAGAN with a supervised autoencoder and a gradient penalty (Huang & Jafari 2021).

Same three stages as BAGAN (BAGAN §4, Fig. 3), with two changes (BAGAN-GP README, "contributions"):
  a) a *supervised* autoencoder: the encoder's code is combined with a learned class embedding
     (the "intermediate embedding") before the decoder, so the decoder's input separates by class
     even where images of different classes look alike; l2 reconstruction loss (BAGAN §4);
  b) G is the decoder (with the embedding) and D's conv trunk is initialised from the encoder's;
     per class c, N(μ_c, Σ_c) is fitted to the encoder's codes E(X_c) and then frozen (BAGAN §4);
  c) adversarial training is a class-conditional WGAN-GP: G(z, c) and a critic C(x, c),
     n_critic critic updates with penalty weight gp_weight per generator update.

Where the README is silent we follow the structure of the official Keras code (GH920/improved-bagan-gp)
as recalled, not re-checked here: the embedding is *multiplied* into the code, and G takes (latent,
label) through that same embedding. The official critic combines a label embedding with its features;
we choose the projection form of that (Miyato & Koyama 2018): C(x, c) = w·h(x) + e_c·h(x), with h the
conv trunk's features.

Labels of the fakes (our choice). The critic's fakes take the labels of the real batch they are
compared with; G's own update asks for uniform labels. Uniform fake labels in the critic too (BAGAN
§4's choice for its classifier D) make the conditional Wasserstein objective unbounded on an
imbalanced set: a per-class offset C(x, c) ≈ -K, flat in x so the penalty barely sees it, earns
K (p_fake(c) - p_real(c)) for every minority class c. On digits the estimated distance went from 2 to
250 within 50 steps that way. With matched labels such offsets cancel (the usual conditional
WGAN-GP), and G still gets as many updates for a minority class as for a majority one.
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
    summary = "A supervised autoencoder with a label embedding initialises G and D, then WGAN-GP training."
    # Latent size 128, Adam lr 2e-4 with betas (0.5, 0.9), penalty weight 10, 5 critic steps per G step.
    paper_defaults = {"latent_dim": 128, "beta2": 0.9, "gp_weight": 10.0, "n_critic": 5, "lr": 2e-4, "beta1": 0.5}
    defaults_source = "GH920/improved-bagan-gp (the official code)"
    fields = ("ae_steps", "gp_weight", "n_critic")
    demo = {"shows": "BAGAN-GP on digits, longtail IR 10: the autoencoder start of BAGAN with a WGAN-GP critic.",
            "config": {"method": "bagan_gp", "dataset": "digits", "imbalance": "longtail", "ir": 10.0,
                       "steps": 600, "ae_steps": 300}}
    state_attrs = ("E", "G", "D", "opt_ae", "opt_g", "opt_d", "mu", "root")
    def __init__(self, cfg, data: DeviceData):
        self.cfg, self.data = cfg, data
        n, dev = data.num_classes, data.device
        self.pretrain_steps = cfg.ae_steps
        self.noise_dim = cfg.latent_dim
        self.classes_modeled = tuple(range(n))
        # Decoder Δ *is* G (same module, embedding included), so "G initialised from Δ" needs no copy.
        self.E = Encoder(data.img_shape, cfg.latent_dim, cfg.width, norm="none").to(dev)
        self.G = EmbeddedGenerator(cfg.latent_dim, n, data.img_shape, cfg.width).to(dev)
        self.D = ProjectionCritic(data.img_shape, n, cfg.width).to(dev)
        self.opt_ae = adam(list(self.E.parameters()) + list(self.G.parameters()), cfg)
        self.opt_g = adam(self.G.parameters(), cfg)
        self.opt_d = adam(self.D.parameters(), cfg)
        # Class-conditional latent generator over the encoder's codes: fitted after stage a), then fixed.
        self.mu = torch.zeros(n, cfg.latent_dim, device=dev)
        self.root = torch.zeros(n, cfg.latent_dim, cfg.latent_dim, device=dev)

    # --- a) supervised autoencoder ---------------------------------------------------------
    def pretrain_step(self) -> dict:
        x, y = self.data.sample(self.cfg.batch_size)
        loss = F.mse_loss(self.G(self.E(x), y), x)  # l2 reconstruction through the class embedding
        self.opt_ae.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_ae.step()
        return {"ae_loss": loss.detach()}

    # --- b) GAN initialisation -------------------------------------------------------------
    @torch.no_grad()
    def finish_pretrain(self) -> None:
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
        """z ~ N(μ_y, Σ_y) from standard normal noise."""
        return self.mu[y] + torch.einsum("nij,nj->ni", self.root[y], noise)

    # --- c) adversarial training (conditional WGAN-GP) ----------------------------------------
    def train_step(self) -> dict:
        cfg, data, b = self.cfg, self.data, self.cfg.batch_size
        d_losses, gps, w_dists = [], [], []
        for _ in range(cfg.n_critic):
            x_real, y = data.sample(b)  # a fresh real batch per critic step
            with torch.no_grad():  # fakes of the same classes as the real batch (module docstring)
                x_fake = self.G(self.latent(y, data.randn(b, self.noise_dim)), y)
            c_real, c_fake = self.D(x_real, y), self.D(x_fake, y)
            gp = conditional_gradient_penalty(self.D, x_real, x_fake, y, data.gen)
            d_loss = losses.wgan_d(c_real, c_fake) + cfg.gp_weight * gp
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            self.opt_d.step()
            d_losses.append(d_loss.detach())
            gps.append(gp.detach())
            w_dists.append((c_real.mean() - c_fake.mean()).detach())

        # G: a fresh batch with uniform labels (BAGAN §4), so every class gets the same generator updates.
        y_g = data.uniform_labels(b)
        g_loss = losses.wgan_g(self.D(self.G(self.latent(y_g, data.randn(b, self.noise_dim)), y_g), y_g))
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()

        mean = lambda xs: xs[0] if len(xs) == 1 else torch.stack(xs).mean()  # noqa: E731
        return {"d_loss": mean(d_losses), "g_loss": g_loss.detach(), "gp": mean(gps), "w_dist": mean(w_dists)}

    @torch.no_grad()
    def generate(self, y: Tensor, noise: Tensor | None = None) -> Tensor:
        y = y.to(self.data.device)
        if noise is None:
            noise = self.data.randn(y.shape[0], self.noise_dim)
        with self.eval_mode():
            return self.G(self.latent(y, noise.to(self.data.device)), y)
