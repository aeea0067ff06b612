"""BAGAN (Mariani et al. 2018): D's n+1 outputs, the fake label n, the 1/(n+1) fake share of a D batch,
G's target class, and the class-conditional Gaussians of the latent space against NumPy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from imbagan.methods import bagan
from imbagan.methods.bagan import BAGAN, fit_class_gaussians
from tests.conftest import make_data, tiny_config

N = 3  # classes
B = 8  # batch: 1/(n+1) of 8 is 2 fakes, exactly


def _ready(**kw) -> BAGAN:
    torch.manual_seed(0)
    m = BAGAN(tiny_config(method="bagan", batch_size=B, **kw), make_data(num_classes=N, size=16))
    for _ in range(m.pretrain_steps):
        m.pretrain_step()
    m.finish_pretrain()
    return m


def _spy_step(m: BAGAN, monkeypatch) -> dict:
    """One train_step, recording what G was asked for, what G made, what D saw and each loss's targets."""
    rec = {"latent_y": [], "g_out": [], "d_in": [], "ce": []}
    latent, g_fwd, d_fwd, ce = m.latent, m.G.forward, m.D.forward, F.cross_entropy

    def spy_latent(y, noise):
        rec["latent_y"].append(y.clone())
        return latent(y, noise)

    def spy_g(z):
        out = g_fwd(z)
        rec["g_out"].append(out.detach().clone())
        return out

    def spy_d(x):
        rec["d_in"].append(x.detach().clone())
        return d_fwd(x)

    def spy_ce(logits, target, *a, **k):
        rec["ce"].append((logits.detach().clone(), target.clone()))
        return ce(logits, target, *a, **k)

    monkeypatch.setattr(m, "latent", spy_latent)
    monkeypatch.setattr(m.G, "forward", spy_g)
    monkeypatch.setattr(m.D, "forward", spy_d)
    monkeypatch.setattr(bagan.F, "cross_entropy", spy_ce)  # torch.nn.functional's, undone after the test
    rec["out"] = m.train_step()
    return rec


def test_d_has_n_plus_one_outputs_and_the_fake_label_is_n():
    m = _ready()
    assert m.D(torch.zeros(4, 1, 16, 16)).shape == (4, N + 1)  # BAGAN §4b / Fig. 1b: n classes + fake
    assert m.fake_label == N


def test_a_d_batch_is_one_part_in_n_plus_one_fake_labelled_n(monkeypatch):
    m = _ready()
    rec = _spy_step(m, monkeypatch)
    (d_logits, d_target), (g_logits, g_target) = rec["ce"]  # D's loss, then G's
    # The official code: a full real batch of B plus ceil(B / n) fakes (BAGAN §4: "1/(n+1) of the total images").
    fakes = -(-B // N)
    assert d_logits.shape == (B + fakes, N + 1)
    fake = d_target == N
    assert int(fake.sum()) == fakes
    assert torch.equal(fake, torch.arange(B + fakes) >= B)  # real rows first, then the fakes
    assert (d_target[~fake] < N).all()  # real images keep their own class
    # The rows D classifies as fake are the images G made in this step, not real ones.
    d_batch, first_fakes = rec["d_in"][0], rec["g_out"][0]
    assert torch.equal(d_batch[fake], first_fakes)
    # ...and G drew them for real classes (uniform labels over 0..n-1), never for "fake".
    assert rec["latent_y"][0].shape == (int(fake.sum()),) and (rec["latent_y"][0] < N).all()


def test_g_is_asked_for_the_class_it_was_conditioned_on(monkeypatch):
    m = _ready()
    rec = _spy_step(m, monkeypatch)
    (_, _), (g_logits, g_target) = rec["ce"]
    y_g = rec["latent_y"][1]  # the labels G's second batch was conditioned on (BAGAN §4c)
    assert g_logits.shape == (B + -(-B // N), N + 1)  # the official code's G batch: D's whole batch size
    assert torch.equal(g_target, y_g) and (g_target < N).all()
    # G's loss is D's verdict on exactly those images.
    assert torch.equal(rec["d_in"][1], rec["g_out"][1])
    assert torch.allclose(rec["out"]["g_loss"], F.cross_entropy(g_logits, y_g))


def test_class_gaussians_match_numpy_on_hand_made_codes():
    rng = np.random.default_rng(0)
    d = 4
    a = rng.normal(size=(30, d)) @ rng.normal(size=(d, d)) + 5.0  # full-rank, correlated
    b = rng.normal(size=(3, d)) - 2.0  # fewer codes than dimensions: a singular covariance
    c = np.array([[1.0, -2.0, 0.5, 3.0]])  # one code: no spread at all
    codes = np.concatenate([a, b, c])
    labels = np.repeat([0, 1, 2], [len(a), len(b), len(c)])
    mu, root = fit_class_gaussians(torch.tensor(codes, dtype=torch.float32), torch.tensor(labels), 3)
    assert mu.shape == (3, d) and root.shape == (3, d, d)
    for k, z in enumerate((a, b)):
        np.testing.assert_allclose(mu[k].numpy(), z.mean(0), rtol=1e-5, atol=1e-5)
        cov = (root[k] @ root[k].T).double().numpy()
        np.testing.assert_allclose(cov, np.cov(z, rowvar=False), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(mu[2].numpy(), c[0], atol=1e-6)
    assert torch.count_nonzero(root[2]) == 0
    # The singular class samples stay in the span of its centred codes (rank 2 = 3 codes - 1).
    assert torch.linalg.matrix_rank(root[1]).item() == 2


def test_latent_samples_follow_the_fitted_gaussian():
    m = _ready()
    c = 1
    noise = torch.randn(20000, m.noise_dim, generator=torch.Generator().manual_seed(0))
    z = m.latent(torch.full((len(noise),), c), noise).double()
    sigma = (m.root[c] @ m.root[c].T).double()
    assert torch.allclose(z.mean(0), m.mu[c].double(), atol=0.05 * sigma.diag().sqrt().max().item() + 1e-6)
    emp = torch.cov(z.T)
    assert torch.allclose(emp, sigma, atol=0.05 * sigma.abs().max().item())


def test_finish_pretrain_fits_the_encoders_codes_per_class():
    m = _ready()
    m.E.eval()  # finish_pretrain encodes in eval mode (no dropout)
    with torch.no_grad():
        codes = torch.cat([m.E(x) for x, _ in m.data.chunks()])
        labels = torch.cat([y for _, y in m.data.chunks()])
    mu, root = fit_class_gaussians(codes, labels, N)
    assert torch.allclose(m.mu, mu, atol=1e-5) and torch.allclose(m.root @ m.root.transpose(1, 2),
                                                                 root @ root.transpose(1, 2), atol=1e-5)
    for k in range(N):
        np.testing.assert_allclose(m.mu[k].numpy(), codes[labels == k].mean(0).numpy(), atol=1e-5)


@pytest.mark.parametrize("batch,fakes", [(8, 3), (12, 4), (17, 6), (2, 1)])  # ceil(batch / n), n = 3 classes
def test_d_sees_a_full_real_batch_and_ceil_batch_over_n_fakes_as_the_official_code(batch, fakes):
    m = BAGAN(tiny_config(method="bagan", batch_size=batch), make_data(num_classes=N, size=16))
    assert (m.n_fake, m.n_real) == (fakes, batch)
    if batch >= 8:  # then the fakes are about 1/(n+1) of what D sees (BAGAN §4)
        assert abs(fakes / (batch + fakes) - 1 / (N + 1)) < 0.05
