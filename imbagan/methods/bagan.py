"""BAGAN: Balancing GAN (Mariani et al. 2018, arXiv:1803.09655).

Three stages (BAGAN §4, Fig. 3):
  a) an autoencoder (encoder E, decoder Δ) trained with l2 loss on all images, unconditionally;
  b) G initialised from Δ, D's first layers D_e from E, D's last layer D_d a fresh dense layer with
     softmax over the n classes + "fake"; per class c, N(μ_c, Σ_c) fitted to E(X_c) and then frozen;
  c) adversarial training: D minimises sparse categorical cross-entropy on batches where 1/(n+1)
     of the images are fake (labels uniform over classes), G makes D assign its images the class asked.

Against the official code (IBM/BAGAN balancing_gan.py): G has no batch norm, as its ``build_generator``
(we keep our transposed-convolution blocks; its dense + upsampling + 5x5 layers cost ~50x more on a
CPU). Label handling (real labels as given, fake labels uniform, target n for fakes, G's target the
class asked), the fake fraction (``fake_size = ceil(batch / nclasses)`` added to a full real batch,
i.e. 1/(n+1)), the optimiser (Adam lr 5e-5, beta1 0.5), the latent sampling
(``np.random.multivariate_normal`` of the class means and ``np.cov`` covariances) and D_e <- E follow
the same file; batches of 128 follow ``bagan_train.py`` at the repository's head. Kept different, by
measurement: E and D use our 4x4 stride-2 trunk with Dropout(0.3), not the official 3x3 strides-2,1,2,1
trunk with LeakyReLU(0.3): on digits at the default budget the official trunk gave class accuracy 0.69
(ours 0.85) at the same SSIM diversity. The official autoencoder trains as many epochs as the GAN; ours
``ae_steps``, by default as many as the GAN's default steps, with the official batch.

Measured, and why the defaults are what they are: bench/results/bagan-notes.md (the collapse within classes at
short budgets, the autoencoder's learning rate, the official generator tried outside the package, and the long
curves in which it recovers after about 750 steps and is still improving at 5,500).

Checked again against IBM/BAGAN at its head (balancing_gan.py ``_train_one_epoch``, ``init_autoenc``):
D_e <- E (every layer of the common encoder), the class Gaussians (``np.cov`` / ``multivariate_normal`` of
the encoded training images of each class), the fake target n, uniform class labels for D's and G's fakes,
Adam 5e-5 / 0.5 all match, and so do the batches: D sees a full real batch plus ceil(batch / n) fakes (128 + 13
at ten classes), G trains on batches of that total (141). Differences left: the networks (above), and the
autoencoder's length, which the official code ties to the GAN's (``autoenc_epochs = epochs``: 150 MNIST
epochs) and ours caps at ``ae_steps``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from imbagan import losses
from imbagan.batches import DeviceData
from imbagan.methods.base import Method
from imbagan.nets import Discriminator, Encoder, Generator, adam

# The official code's shared encoder/discriminator trunk has Dropout(0.3) after every convolution;
# without it D here stopped labelling fakes as fake and G collapsed within each class.
TRUNK_DROPOUT = 0.3



def fit_class_gaussians(codes: Tensor, labels: Tensor, num_classes: int) -> tuple[Tensor, Tensor]:
    """Per-class mean and a matrix square root of the covariance of latent codes (BAGAN §4).

    Returns (mu (n, d), root (n, d, d)) with root @ root.T = Σ_c, so z = μ_c + root_c ε for ε ~ N(0, I).
    An eigen-decomposition is used instead of Cholesky because a minority class with fewer images
    than latent dimensions has a singular covariance; its samples then stay in the span of its codes.
    """
    d = codes.shape[1]
    mus, roots = [], []
    for c in range(num_classes):
        z = codes[labels == c].double()
        mu = z.mean(0)
        if z.shape[0] > 1:
            cov = (z - mu).T @ (z - mu) / (z.shape[0] - 1)
        else:
            cov = torch.zeros(d, d, dtype=z.dtype, device=z.device)
        evals, evecs = torch.linalg.eigh(cov)
        roots.append((evecs * evals.clamp_min(0).sqrt()).float())
        mus.append(mu.float())
    return torch.stack(mus), torch.stack(roots)


class BAGAN(Method):
    title = "BAGAN (Mariani et al. 2018)"
    paper = "Mariani et al. 2018, BAGAN: Data Augmentation with Balancing GAN, arXiv:1803.09655"
    taxonomy = "Image level · inter-class (BAGAN [151] in Table 3; latent-representation based, Table 1)"
    summary = "Autoencoder initialisation, class-conditional latent Gaussians, an (n+1)-way discriminator."
    # Measured by bench/converge.py under imbagan.convergence's rule (bench/converge.py --write-cards).
    budgets = {'16px grey': {'at_least': True,
                             'machine': 'AMD EPYC (AVX2), 2 cores, 1 thread, fp32',
                             'not_converged': 'digits-drop-95-3-8',
                             'seconds_per_step': 0.1036,
                             'source': 'bench/results/converge-digits-drop-95-3-8-summary.csv',
                             'steps': 23500},
               '28px grey': {'at_least': True,
                             'machine': 'AMD EPYC, 2 cores, 1 thread, bf16',
                             'not_converged': 'mnist-step-ir100',
                             'seconds_per_step': 0.2166,
                             'source': 'bench/results/converge-mnist-step-ir100-summary.csv',
                             'steps': 18500}}
    # The official code (IBM/BAGAN) trains with Adam lr 5e-5, beta1 0.5 (balancing_gan.py), batches of 128
    # (bagan_train.py at the repository's head; 32 before its "CIFAR10 support" commit b9ba1e3), and the
    # autoencoder for as many epochs as the GAN (``autoenc_epochs = epochs``), here as many steps; the paper
    # gives none of these.
    paper_defaults = {"lr": 5e-5, "beta1": 0.5, "batch_size": 128, "ae_steps": 600}
    defaults_source = ("IBM/BAGAN balancing_gan.py and bagan_train.py at its head (the paper states no optimiser "
                       "settings, batch size or autoencoder budget)")
    # bench/precision.py (bench/results/precision-digits-drop-95-3-8.csv): at 1,500 steps, 2 seeds each, bf16's
    # mean FID 11.25 against float32's 11.20 (seed spread 1.60), class accuracy 0.738 against 0.736 (spread 0.081).
    bf16_measured = True
    fields = ("ae_steps", "diffaugment", "lecam_weight")
    demo = {"shows": "BAGAN on digits with 97.5% of digit 0 dropped (BAGAN §5): the autoencoder learns strokes "
                     "from all classes, so the generator of the rare 0 can borrow from the common digits.",
            "config": {"method": "bagan", "dataset": "digits", "imbalance": "drop", "drop": 97.5, "minority": (0,),
                       "ae_steps": 300}}
    state_attrs = ("E", "G", "D", "opt_ae", "opt_g", "opt_d", "mu", "root")
    def __init__(self, cfg, data: DeviceData):
        self.cfg, self.data = cfg, data
        n, dev = data.num_classes, data.device
        self.pretrain_steps = cfg.ae_steps
        self.noise_dim = cfg.latent_dim
        self.classes_modeled = tuple(range(n))
        self.fake_label = n
        # The decoder Δ *is* G: same module, so "G initialised from Δ" needs no copy (BAGAN §4b).
        self.E = Encoder(data.img_shape, cfg.latent_dim, cfg.width, dropout=TRUNK_DROPOUT).to(dev)
        # No batch norm in G, as in the official generator (IBM/BAGAN balancing_gan.py, build_generator).
        # With it, D's batches carry only n_fake ≈ batch/(n+1) fakes (6 of 64 on ten classes) while G's
        # own batches hold 64, so G was normalised by different statistics in each update and by running
        # averages of both when sampling; its rows collapsed to near-identical images (issue 9).
        self.G = Generator(cfg.latent_dim, data.img_shape, cfg.width, norm="none").to(dev)
        # D = D_e (same trunk as E) + D_d, a dense layer over n classes + fake (Fig. 1b).
        self.D = Discriminator(data.img_shape, n + 1, cfg.width, dropout=TRUNK_DROPOUT).to(dev)
        self.opt_ae = adam(list(self.E.parameters()) + list(self.G.parameters()), cfg)
        self.opt_g = adam(self.G.parameters(), cfg)
        self.opt_d = adam(self.D.parameters(), cfg)
        # Class-conditional latent generator: fitted after the autoencoder, fixed afterwards.
        self.mu = torch.zeros(n, cfg.latent_dim, device=dev)
        self.root = torch.zeros(n, cfg.latent_dim, cfg.latent_dim, device=dev)
        # BAGAN §4: "For each batch we supply, 1/(n+1) of the total images are fake". The official code
        # (balancing_gan.py, _train_one_epoch) does it by adding fake_size = ceil(batch / n) fakes to a full real
        # batch (128 + 13 at ten classes), and trains G on batches of that total size: so do we.
        self.n_real = cfg.batch_size
        self.n_fake = math.ceil(cfg.batch_size / n)
        self._fake_targets = torch.full((self.n_fake,), n, device=dev, dtype=torch.long)
        # LeCam's "D's output": log-odds of the image's class against "fake", logit[c] - logit[n], with c
        # the real image's label or the class a fake was asked for (D has no single real/fake logit).
        self.init_small_data_options(cfg, data)

    # --- a) autoencoder ----------------------------------------------------------------
    def pretrain_step(self) -> dict:
        x, _ = self.data.sample(self.cfg.batch_size)
        loss = F.mse_loss(self.G(self.E(x)), x)  # l2 reconstruction, no class knowledge (§4)
        self.update(self.opt_ae, loss)
        return {"ae_loss": loss.detach()}

    # --- b) GAN initialisation -----------------------------------------------------------
    @torch.no_grad()
    def finish_pretrain(self) -> None:
        self.E.eval()
        codes, labels = [], []
        for x, y in self.data.chunks():
            codes.append(self.E(x))
            labels.append(y)
        self.E.train()
        self.mu, self.root = fit_class_gaussians(torch.cat(codes), torch.cat(labels), self.data.num_classes)
        # D_e <- E's trunk; D_d stays freshly initialised (§4b).
        self.D.trunk.load_state_dict(self.E.trunk.state_dict())

    def latent(self, y: Tensor, noise: Tensor) -> Tensor:
        """z ~ N(μ_y, Σ_y) from standard normal noise."""
        return self.mu[y] + torch.einsum("nij,nj->ni", self.root[y], noise)

    # --- c) adversarial training ---------------------------------------------------------
    def train_step(self) -> dict:
        data, n_fake = self.data, self.n_fake
        x_real, y_real = data.sample(self.n_real)
        y_fake = data.uniform_labels(n_fake)
        x_fake = self.G(self.latent(y_fake, data.randn(n_fake, self.noise_dim)))
        # DiffAugment (identity when off) on every image D sees; the autoencoder stage sees none.
        logits = self.D(torch.cat(self.seen_by_D(x_real, x_fake.detach())))
        d_loss = F.cross_entropy(logits, torch.cat([y_real, self._fake_targets]))
        logs: dict = {}
        if self.lecam is not None:  # LeCam's "D's output": the log-odds of the image's class against "fake"
            odds = logits.gather(1, torch.cat([y_real, y_fake])[:, None]).squeeze(1) - logits[:, self.fake_label]
            d_loss = self.with_lecam(d_loss, odds[: self.n_real], odds[self.n_real:], logs)
        self.update(self.opt_d, d_loss)

        # G: a batch of D's size (real + fake, as the official code), labels uniform; the target is the class asked
        # for (§4c).
        b = self.n_real + n_fake
        y_g = data.uniform_labels(b)
        g_logits = self.run_D(self.G(self.latent(y_g, data.randn(b, self.noise_dim))))
        g_loss = F.cross_entropy(g_logits, y_g)
        self.update(self.opt_g, g_loss)

        with torch.no_grad():
            real_logits, fake_logits = logits[: self.n_real], logits[self.n_real:]
            out = {
                "d_loss": d_loss.detach(),
                "g_loss": g_loss.detach(),
                # D's class accuracy on real images, among the n real classes.
                "aux_acc": losses.accuracy(real_logits[:, : self.fake_label], y_real),
                # How often D calls a fake "fake", and how often G's images get the class asked.
                "d_fake_acc": (fake_logits.argmax(1) == self.fake_label).float().mean(),
                "g_class_acc": losses.accuracy(g_logits.detach(), y_g),
            }
        return out | self.mean_logs(logs)

    def draw(self, z: Tensor, y: Tensor) -> Tensor:
        return self.G(self.latent(y, z))
