"""AGGAN: Annealing Genetic GAN for minority oversampling (Hao et al., BMVC 2020).

Training is an evolutionary process (AGGAN §3): the discriminator D is the *environment*, the
class-conditional generator G the *individual*. Every iteration
  0. D is updated on a real batch and G's fakes (BCE real/fake + class cross-entropy on real and
     fake, as in the official code, HIC-SYSU/AGGAN main.py, which is an ACGAN-style D);
  1. G gives birth to three offspring, copies of G each updated by ONE step under a different loss:
     minimax, modified minimax (non-saturating) and least squares (§5.1, after E-GAN), each plus
     the class loss on the fakes as in the official code; the fittest offspring is the candidate
     g_cbest (§3.1);
  2. the Metropolis criterion (§3.2, eq. (2)) decides whether g_cbest replaces G: always when it is
     fitter, with probability exp(-Δ/T) when it is worse by Δ; T <- α T every iteration;
  3. g_b, the best generator so far, is replaced by g_cbest when g_cbest is fitter (eq. (3)).
``generate()`` draws from G, the generator being evolved, as the official code does (HIC-SYSU/AGGAN
main.py samples and saves netG; it keeps no g_b). §4.1 adds g_b only as a device for its convergence
proof, "without changing the training mechanism"; ``aggan_sample_from="g_b"`` draws from it instead.

Fitness (E-GAN, Wang et al. 2019, eqs. (6)-(8); the official AGGAN code uses the same evaluation):
F = F_q + γ F_d with F_q = E[sigmoid(D(G(z)))] and F_d = -log ||∇_D L_D||. The official code's
``fitness_score`` uses D's fake loss as F_q and +log for F_d; we follow E-GAN's published forms.

Where the paper is silent: the "choice function" of §4.1 always picks g as the parent (as the
official code does); each offspring starts from G (§3.1's three children of one parent; the
official loop leaves its reload commented out, so there each offspring continues from the previous
one); every fitness is measured on the iteration's own noise and real batch (as the
official code does); and g_b's fitness is re-measured each iteration against the current D
before eq. (3) compares it, because a fitness is only meaningful relative to its environment.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from imbagan import losses
from imbagan.batches import DeviceData
from imbagan.methods.base import Method
from imbagan.nets import Discriminator, Generator, adam

# The three variation operators, in the order of the logged index "chosen_loss" (0, 1, 2).
LOSS_NAMES = ("minimax", "nonsat", "ls")


# --- simulated annealing, as pure functions (AGGAN §3.2, eq. (2)) ---------------------------
def temperature(t0: float, alpha: float, k: int) -> float:
    """T after k iterations: T_k = T0 · α^k (T <- α T once per iteration)."""
    return t0 * alpha ** k


def accept_prob(delta: float, t: float) -> float:
    """Probability that a candidate whose fitness is lower by ``delta`` replaces G: min(1, exp(-Δ/T))."""
    if delta <= 0:  # as fit or fitter: always accepted
        return 1.0
    return math.exp(-delta / t) if t > 0 else 0.0


def metropolis_accept(delta: float, t: float, u: float) -> bool:
    """Eq. (2): keep g when exp(-Δ/T) < γ (γ ~ U[0, 1) is ``u``), otherwise take g_cbest."""
    return u < accept_prob(delta, t)


# --- copying networks without building new ones ---------------------------------------------
@torch.no_grad()
def copy_module(dst: nn.Module, src: nn.Module) -> None:
    """Parameters and buffers (batch-norm statistics) of ``src`` into the same-shaped ``dst``."""
    torch._foreach_copy_(list(dst.parameters()), list(src.parameters()))
    torch._foreach_copy_(list(dst.buffers()), list(src.buffers()))


@torch.no_grad()
def copy_adam_state(dst: torch.optim.Optimizer, dst_params, src: torch.optim.Optimizer, src_params) -> None:
    """Adam's per-parameter state (step, moments) of ``src`` into ``dst``, copying into existing
    tensors: ``Optimizer.load_state_dict`` would alias the source's tensors, which Adam updates in place."""
    for pd, ps in zip(dst_params, src_params):
        s = src.state.get(ps)
        if not s:
            dst.state.pop(pd, None)
            continue
        d = dst.state[pd]
        for k, v in s.items():
            if isinstance(v, Tensor):
                if k in d and isinstance(d[k], Tensor) and d[k].shape == v.shape:
                    d[k].copy_(v)
                else:
                    d[k] = v.clone()
            else:
                d[k] = v


class AGGAN(Method):
    title = "AGGAN: annealing genetic GAN (Hao et al. 2020)"
    paper = "Hao et al. 2020, Annealing Genetic GAN for Imbalanced Web Data Learning"
    taxonomy = "Image level · inter-class, binary (AGGAN §5)"
    summary = ("Offspring generators from three losses, kept by E-GAN fitness and accepted by a Metropolis "
               "rule with an annealed temperature.")
    # Measured by bench/converge.py under imbagan.convergence's rule (bench/converge.py --write-cards).
    budgets = {'16px grey': {'machine': 'AMD EPYC, 2 cores, 1 thread, bf16',
                             'seconds_per_step': 0.1488,
                             'source': 'bench/results/converge-digits-drop-95-3-8-summary.csv',
                             'steps': 1750},
               '28px grey': {'machine': 'AMD EPYC, 2 cores, 1 thread, bf16',
                             'seconds_per_step': 0.4069,
                             'source': 'bench/results/converge-mnist-step-ir100-summary.csv, '
                                       'bench/results/converge-fashion_mnist-binary-5v7-ir100-summary.csv',
                             'steps': 500}}
    # bench/precision.py (bench/results/precision-digits-drop-95-3-8.csv): at 1,000 steps, 2 seeds each, bf16's
    # mean FID 4.24 against float32's 4.19 (seed spread 0.86), class accuracy 0.863 against 0.865 (spread 0.050).
    bf16_measured = True
    settings = {"aggan_t0": {"default": 1000.0, "above": 0, "help": "AGGAN §3.2: initial Metropolis temperature"},
                "aggan_alpha": {"default": 0.99, "above": 0, "max": 1,
                                "help": "AGGAN §3.2: temperature decay per iteration"},
                "aggan_gamma": {"default": 0.2, "min": 0, "help": "AGGAN fitness: weight of diversity (official code)"},
                "aggan_sample_from": {"default": "g", "choices": ("g", "g_b"),
                                      "help": "draw samples from g (the evolving generator, as the official code) | "
                                              "g_b (the best-so-far generator of §4.1's proof)"}}
    fields = ("diffaugment", "lecam_weight")
    demo = {"shows": "AGGAN on two digits, 1 against 0 at IR 10 (AGGAN §5's binary setting): three offspring "
                     "of the generator compete every step and simulated annealing decides which one survives.",
            "config": {"method": "aggan", "dataset": "digits", "imbalance": "binary", "majority": 1, "minority": (0,),
                       "ir": 10.0}}
    # Offspring and their optimisers are overwritten from G at the start of every iteration,
    # so G, its Adam state, g_b and the annealing clock are all a resume needs.
    state_attrs = ("G", "D", "G_b", "opt_g", "opt_d", "fit_b", "iteration")
    eval_modules = ("G",)  # set per run from cfg.options["aggan_sample_from"]

    def __init__(self, cfg, data: DeviceData):
        self.cfg, self.data = cfg, data
        n, dev = data.num_classes, data.device
        self.noise_dim = cfg.latent_dim
        self.classes_modeled = tuple(range(n))
        # G is conditioned by concatenating a one-hot label to z (the official code writes the one-hot
        # over the first n entries of z instead; concatenation keeps all latent_dim noise dimensions).
        make_g = lambda: Generator(cfg.latent_dim + n, data.img_shape, cfg.width).to(dev)  # noqa: E731
        self.G = make_g()
        # D: one real/fake logit + n class logits, batch norm as in the official _netD_28.
        self.D = Discriminator(data.img_shape, 1 + n, cfg.width, norm="batch").to(dev)
        self.opt_g = adam(self.G.parameters(), cfg)
        self.opt_d = adam(self.D.parameters(), cfg)
        # Offspring live in preallocated modules with their own Adam; each iteration they are
        # overwritten with G (weights, batch-norm statistics, Adam moments) before their one step.
        self.kids = [make_g() for _ in LOSS_NAMES]
        self.kid_opts = [adam(k.parameters(), cfg) for k in self.kids]
        # g_b: the best generator so far (Table 1), its fitness, the annealing clock.
        self.G_b = make_g()
        copy_module(self.G_b, self.G)
        self.fit_b = -math.inf
        self.iteration = 0
        self.sample_from = "G_b" if cfg.options["aggan_sample_from"] == "g_b" else "G"
        self.eval_modules = (self.sample_from,)
        self._d_params = list(self.D.parameters())
        # LeCam's "D's output": the real/fake logit (column 0). DiffAugment enters D's update and each
        # offspring's update; the fitness stays on plain images, one measurement for every candidate
        # (an augmentation drawn per candidate would add its noise to the selection), and without LeCam.
        self.init_small_data_options(cfg, data)

    @property
    def temperature(self) -> float:
        return temperature(self.cfg.options["aggan_t0"], self.cfg.options["aggan_alpha"], self.iteration)

    def _g_in(self, z: Tensor, y: Tensor) -> Tensor:
        return torch.cat([z, F.one_hot(y, self.data.num_classes).to(z.dtype)], 1)

    def _d(self, x: Tensor) -> tuple[Tensor, Tensor]:
        out = self.D(x)
        return out[:, 0], out[:, 1:]

    def _g_loss(self, k: int, adv: Tensor, cls: Tensor, y: Tensor) -> Tensor:
        """Variation operator k (§5.1): an adversarial loss plus the class loss (official code)."""
        if k == 0:
            adv_loss = losses.minimax_g(adv)
        elif k == 1:
            adv_loss = losses.nonsat_g(adv)
        else:
            # The least-squares mutation acts on D's probability (D is trained with BCE, so its logits
            # have no least-squares target): official main.py, nn.MSELoss()(sigmoid output, 1), which
            # has no 1/2, unlike LSGAN's losses.ls_g.
            adv_loss = (torch.sigmoid(adv) - 1).pow(2).mean()
        return adv_loss + F.cross_entropy(cls, y)

    def _fitness(self, fake: Tensor, y: Tensor, grad_real: list[Tensor]) -> Tensor:
        """E-GAN fitness F_q + γ F_d of a generator from its images ``fake`` (drawn for labels y with
        this iteration's noise), against the current D.

        L_D = (real terms) + (fake terms): the real part's gradient is shared by all candidates and
        computed once (``grad_real``); only the fake part is differentiated per candidate.
        """
        adv, cls = self._d(fake.detach())
        l_fake = F.binary_cross_entropy_with_logits(adv, torch.zeros_like(adv)) + F.cross_entropy(cls, y)
        grad_fake = torch.autograd.grad(l_fake, self._d_params)
        total = torch._foreach_add(grad_real, grad_fake)
        grad_norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(total)))
        f_q = torch.sigmoid(adv.detach()).mean()  # quality: how real D finds the samples
        f_d = -torch.log(grad_norm)  # diversity: a flat D loss surface means spread-out samples
        return f_q + self.cfg.options["aggan_gamma"] * f_d

    def train_step(self) -> dict:
        data, b = self.data, self.cfg.batch_size
        real, y_real = data.sample(b)
        y = data.uniform_labels(b)
        g_in = self._g_in(data.randn(b, self.noise_dim), y)

        # 0. The environment: D learns real/fake and the classes (official code: ACGAN losses).
        with torch.no_grad():
            fake = self.G(g_in)
        r_adv, r_cls = self._d(self.seen_by_D(real))
        f_adv, f_cls = self._d(self.seen_by_D(fake))
        d_loss = (losses.bce_d(r_adv, f_adv) + F.cross_entropy(r_cls, y_real) + F.cross_entropy(f_cls, y))
        logs: dict = {}
        d_loss = self.with_lecam(d_loss, r_adv, f_adv, logs)  # D's output: the real/fake logit
        self.update(self.opt_d, d_loss)

        # Gradient of L_D's real terms under the updated D, shared by every fitness evaluation.
        r_adv, r_cls = self._d(real)
        l_real = F.binary_cross_entropy_with_logits(r_adv, torch.ones_like(r_adv)) + F.cross_entropy(r_cls, y_real)
        grad_real = list(torch.autograd.grad(l_real, self._d_params))
        fit_parent = self._fitness(fake, y, grad_real)  # G is unchanged since it drew `fake`

        # 1. Offspring: copies of G, one step each under its own loss (§3.1); same z as the official code.
        g_params = list(self.G.parameters())
        kid_fit, kid_loss = [], []
        for k, (kid, opt) in enumerate(zip(self.kids, self.kid_opts)):
            copy_module(kid, self.G)
            copy_adam_state(opt, list(kid.parameters()), self.opt_g, g_params)
            adv, cls = self._d(self.seen_by_D(kid(g_in)))
            g_loss = self._g_loss(k, adv, cls, y)
            self.update(opt, g_loss, inputs=list(kid.parameters()))  # D's gradients are not touched
            kid_loss.append(g_loss.detach())
            with torch.no_grad():
                kid_fake = kid(g_in)
            kid_fit.append(self._fitness(kid_fake, y, grad_real))
        # f(g_b) is re-measured against today's D: fitness is relative to the environment, and a score
        # from an early, weak D would otherwise freeze g_b at an almost untrained generator.
        with torch.no_grad():
            fake_b = self.G_b(g_in)
        fit_b_now = self._fitness(fake_b, y, grad_real)
        u = torch.rand((), device=data.device, generator=data.gen)

        # 2. The Metropolis decision is a host decision by nature (which network becomes G): this
        # is the step's one sync, reading the five fitness values and u together.
        f_parent, *f_kids, f_b, u_host = torch.stack([fit_parent, *kid_fit, fit_b_now, u]).tolist()
        best = max(range(len(f_kids)), key=f_kids.__getitem__)
        t = self.temperature
        delta = f_parent - f_kids[best]  # the fitness drop (negative when the candidate is fitter)
        accepted = metropolis_accept(delta, t, u_host)
        # 3. Eq. (3): g_b follows g_cbest whenever g_cbest is fitter, accepted or not.
        if f_kids[best] > f_b:
            copy_module(self.G_b, self.kids[best])
            f_b = f_kids[best]
        self.fit_b = f_b
        if accepted:  # the candidate becomes G: swap modules rather than copy weights
            self.G, self.kids[best] = self.kids[best], self.G
            self.opt_g, self.kid_opts[best] = self.kid_opts[best], self.opt_g
        self.iteration += 1

        dev = data.device
        host = lambda v: torch.tensor(float(v), device=dev)  # noqa: E731  (host values, no sync)
        with torch.no_grad():
            out = {
                "d_loss": d_loss.detach(),
                "g_loss": kid_loss[best],
                "aux_acc": losses.accuracy(r_cls.detach(), y_real),
                "fit_parent": fit_parent.detach(),
                **{f"fit_{name}": f.detach() for name, f in zip(LOSS_NAMES, kid_fit)},
                "chosen_loss": host(best),
                **{f"chose_{name}": host(i == best) for i, name in enumerate(LOSS_NAMES)},
                "temperature": host(t),
                "accepted": host(accepted),
                "accepted_worse": host(accepted and delta > 0),
                "best_fitness": host(f_b),
            }
        return out | self.mean_logs(logs)

    def draw(self, z: Tensor, y: Tensor) -> Tensor:
        """Images of classes y from G (official code) or g_b (§4.1), per cfg.options["aggan_sample_from"]."""
        return getattr(self, self.sample_from)(self._g_in(z, y))
