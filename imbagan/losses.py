"""Adversarial objectives as pure functions of logits.

None of these calls ``backward()`` or steps an optimiser; methods combine them and own their updates.
Every function returns a scalar tensor (mean over the batch) to be *minimised*.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn


# --- Binary cross-entropy (Goodfellow et al. 2014) ---------------------------------------
def bce_d(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """D's loss: -log D(x) - log(1 - D(G(z)))."""
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def minimax_g(fake_logits: Tensor) -> Tensor:
    """G's original (saturating) minimax loss: log(1 - D(G(z))), minimised."""
    return -F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))


def nonsat_g(fake_logits: Tensor) -> Tensor:
    """G's non-saturating ("modified minimax") loss: -log D(G(z))."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


# --- Least squares (Mao et al. 2017), targets a=0, b=1, c=1 ------------------------------
def ls_d(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """D's LSGAN loss: 1/2 (D(x) - 1)^2 + 1/2 D(G(z))^2."""
    return 0.5 * ((real_logits - 1).pow(2).mean() + fake_logits.pow(2).mean())


def ls_g(fake_logits: Tensor) -> Tensor:
    """G's LSGAN loss: 1/2 (D(G(z)) - 1)^2."""
    return 0.5 * (fake_logits - 1).pow(2).mean()


# --- Wasserstein (Arjovsky et al. 2017; Gulrajani et al. 2017) ---------------------------
def wgan_d(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """Critic's loss: E[C(G(z))] - E[C(x)]."""
    return fake_scores.mean() - real_scores.mean()


def wgan_g(fake_scores: Tensor) -> Tensor:
    """G's loss: -E[C(G(z))]."""
    return -fake_scores.mean()


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor,
                     generator: torch.Generator | None = None) -> Tensor:
    """WGAN-GP penalty E[(||grad_x C(x_hat)||_2 - 1)^2] on random interpolates x_hat.

    ``critic`` maps images to one score per image (reduce a multi-output critic before passing it).
    The graph is kept so the penalty can be back-propagated into the critic's weights.
    """
    eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype,
                     generator=generator)
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    scores = critic(x_hat)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1).pow(2).mean()


def zero_centered_gp(scores: Tensor, inputs: Tensor) -> Tensor:
    """E[||grad_x s(x)||_2^2]: a zero-centred gradient penalty on the images themselves (R1 on reals,
    Mescheder et al. 2018; on reals and fakes alike in CAGAN's official code, jeongik-jo/CAGAN-MNIST Train.py).

    ``scores`` (N,) must come from ``inputs`` (N, ...) with ``inputs.requires_grad``; the gradient of their
    sum is taken, so with batch-independent D each image's gradient is that of its own score. The graph
    is kept so the penalty can be back-propagated into D's weights.
    """
    (grad,) = torch.autograd.grad(scores.sum(), inputs, create_graph=True)
    return grad.flatten(1).pow(2).sum(1).mean()


# --- Choice of adversarial loss by name (used by ACGAN, CAGAN) -----------------------------
D_LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {"bce": bce_d, "ls": ls_d, "wgan-gp": wgan_d}
G_LOSSES: dict[str, Callable[[Tensor], Tensor]] = {"bce": nonsat_g, "ls": ls_g, "wgan-gp": wgan_g}


def accuracy(logits: Tensor, labels: Tensor) -> Tensor:
    """Fraction of argmax predictions equal to labels, as a tensor (no host sync)."""
    return (logits.argmax(1) == labels).float().mean()


# --- Conditional activation loss (CAGAN, Cho & Yoon) -------------------------------------
# One logit per condition; each condition is its own GAN sharing D's hidden layers (CAGAN §3).
# (f_r^d, f_g^d, f_g^g) of eqs. (13)-(14) for each adversarial loss; "ls" is eqs. (15)-(16) without
# LSGAN's 1/2, exactly as the paper writes it; "bce" is the non-saturating form of CAGAN's code.
_CA_TERMS: dict[str, tuple[Callable[[Tensor], Tensor], Callable[[Tensor], Tensor], Callable[[Tensor], Tensor]]] = {
    "ls": (lambda l: (l - 1).pow(2), lambda l: l.pow(2), lambda l: (l - 1).pow(2)),
    "bce": (lambda l: F.softplus(-l), F.softplus, lambda l: F.softplus(-l)),
    "wgan-gp": (lambda l: -l, lambda l: l, lambda l: -l),
}


def cond_activation_d(real_logits: Tensor, real_onehot: Tensor, fake_logits: Tensor, fake_onehot: Tensor,
                      kind: str = "ls") -> Tensor:
    """D's conditional activation loss, CAGAN eq. (17) (eq. (19) for kind="ls").

    E_x[f_r(D(x)) . cnd] + E_x'[f_g(D(x')) . cnd']: the inner product with the binary condition
    vector keeps each image's loss on the heads of its active conditions only; the expectation is
    the mean over the batch. Logits and conditions are (N, n_conditions).
    """
    f_r, f_g, _ = _CA_TERMS[kind]
    return (f_r(real_logits) * real_onehot).sum(1).mean() + (f_g(fake_logits) * fake_onehot).sum(1).mean()


def cond_activation_g(fake_logits: Tensor, fake_onehot: Tensor, kind: str = "ls") -> Tensor:
    """G's conditional activation loss, CAGAN eq. (18) (eq. (20) for kind="ls"): E_x'[f_g^g(D(x')) . cnd']."""
    return (_CA_TERMS[kind][2](fake_logits) * fake_onehot).sum(1).mean()


# --- LeCam regulariser (Tseng et al. 2021, "Regularizing GANs under Limited Data") -----------
LECAM_DECAY = 0.99  # the paper's and its official code's (google/lecam-gan) EMA decay


def lecam(real_logits: Tensor, fake_logits: Tensor, alpha_real: Tensor, alpha_fake: Tensor) -> Tensor:
    """R_LC = E[(D(x) - α_F)²] + E[(D(G(z)) - α_R)²] (Tseng et al. eq. (3)), added to D's loss times λ.

    α_R, α_F are moving averages of D's outputs on real and on generated images (``LeCamEMA``): each
    side is pulled toward where the *other* side has been, which keeps D's outputs from drifting apart
    when it can memorise a small real set. The paper's two-sided form; the official code keeps only
    the part where D(x) > α_F and D(G(z)) < α_R (a ReLU inside the square), the same wherever D ranks
    reals above fakes.
    """
    return (real_logits - alpha_fake).pow(2).mean() + (fake_logits - alpha_real).pow(2).mean()


class LeCamEMA(nn.Module):
    """α_R and α_F, moving averages (decay 0.99) of D's mean output on real and on generated images.

    Zero-debiased, as the official code's ``assign_moving_average(..., zero_debias=True)``: after the
    first update α equals that batch's mean, not 1% of it. Buffers, so it is saved with the method's
    state and moves with ``.to(device)``; updates are in place and never read a value to the host.
    """

    def __init__(self, decay: float = LECAM_DECAY):
        super().__init__()
        self.decay = decay
        self.register_buffer("real_sum", torch.zeros(()))
        self.register_buffer("fake_sum", torch.zeros(()))
        self.register_buffer("weight", torch.zeros(()))  # 1 - decay^t after t updates

    @torch.no_grad()
    def update(self, real_logits: Tensor, fake_logits: Tensor) -> None:
        d = self.decay
        self.real_sum.mul_(d).add_(real_logits.detach().float().mean(), alpha=1 - d)
        self.fake_sum.mul_(d).add_(fake_logits.detach().float().mean(), alpha=1 - d)
        self.weight.mul_(d).add_(1 - d)

    @property
    def alpha_real(self) -> Tensor:
        return self.real_sum / self.weight

    @property
    def alpha_fake(self) -> Tensor:
        return self.fake_sum / self.weight

    def penalty(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """Update the averages with this batch (as the official code, before using them), then R_LC."""
        self.update(real_logits, fake_logits)
        return lecam(real_logits, fake_logits, self.alpha_real, self.alpha_fake)
