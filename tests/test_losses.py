"""Losses against values computed by hand."""

import math

import torch

from imbagan import losses


def test_bce_by_hand():
    real, fake = torch.tensor([0.0, 2.0]), torch.tensor([-1.0])
    sp = lambda v: math.log1p(math.exp(v))  # softplus  # noqa: E731
    # -log sigmoid(r) = softplus(-r); -log(1 - sigmoid(f)) = softplus(f)
    want = (sp(-0.0) + sp(-2.0)) / 2 + sp(-1.0)
    assert math.isclose(losses.bce_d(real, fake).item(), want, rel_tol=1e-6)
    assert math.isclose(losses.nonsat_g(fake).item(), sp(1.0), rel_tol=1e-6)
    assert math.isclose(losses.minimax_g(fake).item(), -sp(-1.0), rel_tol=1e-6)


def test_least_squares_and_wasserstein_by_hand():
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([0.5, -0.5])
    assert math.isclose(losses.ls_d(real, fake).item(), 0.5 * ((0 + 4) / 2 + (0.25 + 0.25) / 2))
    assert math.isclose(losses.ls_g(fake).item(), 0.5 * ((0.25 + 2.25) / 2))
    assert math.isclose(losses.wgan_d(real, fake).item(), 0.0 - 2.0)
    assert math.isclose(losses.wgan_g(fake).item(), 0.0)


def test_gradient_penalty_of_a_linear_critic():
    # For C(x) = w . x the gradient is w everywhere, so the penalty is (||w|| - 1)^2 exactly.
    w = torch.tensor([3.0, 4.0, 0.0, 0.0]).view(1, 1, 2, 2).requires_grad_(True)  # the critic's weight
    critic = lambda x: (x * w).flatten(1).sum(1)  # noqa: E731
    real, fake = torch.randn(5, 1, 2, 2), torch.randn(5, 1, 2, 2)
    gp = losses.gradient_penalty(critic, real, fake, torch.Generator().manual_seed(0))
    assert math.isclose(gp.item(), (5.0 - 1.0) ** 2, rel_tol=1e-5)
    # Kept in the graph for the critic's update: d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||.
    gp.backward()
    assert w.grad is not None
    assert torch.allclose(w.grad, 2 * (5.0 - 1.0) * w.detach() / 5.0)


def test_named_choices_and_accuracy():
    assert set(losses.D_LOSSES) == set(losses.G_LOSSES) == {"bce", "ls", "wgan-gp"}
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
    assert math.isclose(losses.accuracy(logits, torch.tensor([0, 1, 1])).item(), 2 / 3, rel_tol=1e-6)
