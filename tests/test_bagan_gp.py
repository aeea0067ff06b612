"""BAGAN-GP: stages run, the class latents separate, the conditional penalty is the WGAN-GP one."""

import math

import numpy as np
import torch

from imbagan import losses
from imbagan.batches import DeviceData
from imbagan.methods import bagan_gp
from imbagan.methods.bagan_gp import BAGAN_GP, ProjectionCritic, conditional_gradient_penalty
from tests.conftest import make_data, tiny_config
from tests.paper_defaults import assert_cli_and_app_apply


def _trained(steps: int = 2, channels: int = 1, **kw) -> BAGAN_GP:
    kw.setdefault("bagan_gp_variant", "wgan")  # these tests pin the "wgan" variant
    m = BAGAN_GP(tiny_config(method="bagan_gp", n_critic=2, **kw), make_data(num_classes=3, size=16, channels=channels))
    for _ in range(m.pretrain_steps):
        out = m.pretrain_step()
        assert math.isfinite(out["ae_loss"].item())
    m.finish_pretrain()
    m.outs = [m.train_step() for _ in range(steps)]
    return m


def test_steps_finite_and_generate_shape_and_range():
    m = _trained()
    for out in m.outs:
        assert set(out) == {"d_loss", "g_loss", "gp", "w_dist"}
        assert all(v.dim() == 0 and not v.requires_grad and math.isfinite(v.item()) for v in out.values())
        assert out["gp"].item() >= 0
    img = m.generate(torch.tensor([0, 1, 2, 2]))
    assert img.shape == (4, 1, 16, 16)
    assert img.min() >= -1 and img.max() <= 1


def test_pretraining_separates_class_means_and_seeds_the_critic():
    # Class c has mean brightness c (0, 1, 2 on a -1..1 scale: -1, 0, +1), plus a little noise.
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 10)
    x = np.clip(y[:, None, None, None] * 110 + 15 + rng.integers(0, 20, (30, 1, 16, 16)), 0, 255).astype(np.uint8)
    data = DeviceData(x, y, ("a", "b", "c"), torch.device("cpu"), torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    m = BAGAN_GP(tiny_config(method="bagan_gp", ae_steps=60, lr=2e-3, bagan_gp_variant="wgan"), data)
    first = m.pretrain_step()["ae_loss"].item()
    for _ in range(m.pretrain_steps - 1):
        last = m.pretrain_step()["ae_loss"].item()
    assert last < first
    m.finish_pretrain()
    # Means of the fitted Gaussians equal the per-class means of the codes, and they differ by class.
    with torch.no_grad():
        codes = m.E(torch.from_numpy(x).float() / 127.5 - 1)
    for c in range(3):
        assert torch.allclose(m.mu[c], codes[torch.from_numpy(y) == c].mean(0), atol=1e-5)
    gaps = [(m.mu[a] - m.mu[b]).norm().item() for a, b in ((0, 1), (1, 2), (0, 2))]
    spread = max(codes[torch.from_numpy(y) == c].std(0).norm().item() for c in range(3))
    assert min(gaps) > 0.5 * spread, (gaps, spread)
    # D's trunk starts as E's.
    for p, q in zip(m.D.trunk.parameters(), m.E.trunk.parameters()):
        assert torch.equal(p, q)
    # The class-mean images of the initialised G are ordered by brightness like the classes.
    bright = [m.generate(torch.full((16,), c), torch.zeros(16, m.noise_dim)).mean().item() for c in range(3)]
    assert bright[0] < bright[1] < bright[2], bright


class LinearConditionalCritic(torch.nn.Module):
    """C(x, c) = w_c · x: its gradient in x is w_c everywhere, so the penalty is (||w_c|| - 1)^2."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = w

    def forward(self, x, y):
        return (self.w[y] * x.flatten(1)).sum(1)


def test_conditional_penalty_against_a_linear_critic():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(3, 16, generator=g) * torch.tensor([[0.1], [1.0], [3.0]])
    critic = LinearConditionalCritic(w)
    real, fake = torch.randn(6, 1, 4, 4, generator=g), torch.randn(6, 1, 4, 4, generator=g)
    y = torch.tensor([0, 1, 2, 2, 1, 0])
    expected = ((w[y].norm(dim=1) - 1) ** 2).mean()
    gp = conditional_gradient_penalty(critic, real, fake, y, torch.Generator().manual_seed(1))
    assert torch.allclose(gp, expected, atol=1e-5)
    # It is losses.gradient_penalty with the labels bound: the same numbers for the same interpolates.
    ref = losses.gradient_penalty(lambda x: critic(x, y), real, fake, torch.Generator().manual_seed(1))
    assert torch.equal(gp, ref)


def test_train_step_uses_the_conditional_penalty(monkeypatch):
    calls = []
    real_fn = bagan_gp.conditional_gradient_penalty

    def spy(critic, real, fake, labels, generator=None):
        calls.append(labels)
        return real_fn(critic, real, fake, labels, generator)

    monkeypatch.setattr(bagan_gp, "conditional_gradient_penalty", spy)
    m = _trained(steps=1)
    assert len(calls) == m.cfg.options["n_critic"]  # one penalty per critic update


def test_critic_scores_real_and_fake_under_the_same_labels():
    """Matched label marginals keep the conditional Wasserstein objective bounded (module docstring)."""
    m = _trained(steps=0)
    seen = []
    forward = m.D.forward

    def record(x, y):
        seen.append(y.clone())
        return forward(x, y)

    m.D.forward = record
    m.train_step()
    # Per critic step: real, fake, penalty interpolates; then G's batch. All critic calls share labels.
    assert len(seen) == 3 * m.cfg.options["n_critic"] + 1
    for i in range(m.cfg.options["n_critic"]):
        real, fake, interp = seen[3 * i: 3 * i + 3]
        assert torch.equal(real, fake) and torch.equal(real, interp)


def test_projection_critic_by_hand():
    torch.manual_seed(0)
    crit = ProjectionCritic((1, 16, 16), 3, 8)
    torch.nn.init.normal_(crit.embed.weight)
    x, y = torch.randn(4, 1, 16, 16), torch.tensor([0, 2, 1, 2])
    h = crit.base.trunk(x)
    expected = h @ crit.base.head.weight[0] + crit.base.head.bias[0] + (crit.embed.weight[y] * h).sum(1)
    assert torch.allclose(crit(x, y), expected, atol=1e-5)
    assert not any(isinstance(mod, torch.nn.BatchNorm2d) for mod in crit.modules())  # WGAN-GP critic


def test_cli_and_app_apply_the_paper_defaults():
    assert_cli_and_app_apply("bagan_gp")
