"""AGGAN: a few steps at 16x16 (binary and multi-class), the Metropolis rule, the annealing
schedule, G as the generator that ``generate`` draws from (official code), g_b on request (§4.1)."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch

from imbagan.batches import DeviceData
from imbagan.config import TrainConfig
from imbagan.methods.aggan import AGGAN, accept_prob, metropolis_accept, temperature


def make(n_classes: int = 3, seed: int = 0, **kw) -> AGGAN:
    cfg = TrainConfig.from_dict(dict(method="aggan", batch_size=8, width=8, latent_dim=16, steps=20, device="cpu",
                                     **kw))
    counts = [12, 6, 3][:n_classes] if n_classes == 3 else [12, 3]
    y = np.repeat(np.arange(n_classes), counts)
    x = np.random.default_rng(0).integers(0, 256, (len(y), 1, 16, 16), dtype=np.uint8)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    return AGGAN(cfg, DeviceData(x, y, tuple(str(c) for c in range(n_classes)), torch.device("cpu"), gen))


def roundtrip(state: dict) -> dict:
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_steps_generate_and_resume(n_classes):
    m = make(n_classes)
    for _ in range(3):
        out = m.train_step()
    for k in ("d_loss", "g_loss", "aux_acc", "fit_minimax", "fit_nonsat", "fit_ls", "chosen_loss",
              "temperature", "accepted_worse", "best_fitness"):
        assert k in out and out[k].dim() == 0 and torch.isfinite(out[k]), k
    assert out["chosen_loss"].item() in (0.0, 1.0, 2.0)
    y = torch.arange(n_classes).repeat(4)
    img = m.generate(y)
    assert img.shape == (4 * n_classes, 1, 16, 16)
    assert img.min() >= -1 and img.max() <= 1

    # Resume: a fresh method loaded from the checkpoint, with the same RNG state, continues identically.
    other = make(n_classes, seed=123)
    other.load_state_dict(roundtrip(m.state_dict()))
    other.data.gen.set_state(m.data.gen.get_state())
    noise = torch.randn(len(y), m.noise_dim)
    assert torch.equal(other.generate(y, noise), m.generate(y, noise))
    assert other.temperature == m.temperature
    for _ in range(2):
        a, b = m.train_step(), other.train_step()
        for k in a:
            assert torch.equal(a[k], b[k]), k
    for p, q in zip(m.G_b.parameters(), other.G_b.parameters()):
        assert torch.equal(p, q)


def test_accept_prob_values():
    assert accept_prob(0.5, 1.0) == pytest.approx(math.exp(-0.5))
    assert accept_prob(3.0, 2.0) == pytest.approx(math.exp(-1.5))
    assert accept_prob(-0.2, 1.0) == 1.0 and accept_prob(0.0, 1e-9) == 1.0
    assert accept_prob(0.1, 0.0) == 0.0  # a frozen system never takes a worse step


def test_worse_offspring_accepted_at_rate_exp_minus_delta_over_t():
    u = torch.rand(20_000, generator=torch.Generator().manual_seed(0)).tolist()
    for delta, t in [(0.5, 1.0), (2.0, 4.0), (0.05, 0.01)]:
        rate = sum(metropolis_accept(delta, t, ui) for ui in u) / len(u)
        assert abs(rate - math.exp(-delta / t)) < 0.01, (delta, t, rate)
    # A fitter (or equally fit) offspring is always accepted, whatever u is.
    assert all(metropolis_accept(-0.3, 1e-6, ui) for ui in u + [0.999999])
    assert all(metropolis_accept(0.0, 1.0, ui) for ui in u)


def test_temperature_schedule():
    assert temperature(1000.0, 0.99, 0) == 1000.0
    assert temperature(1000.0, 0.99, 5) == pytest.approx(1000.0 * 0.99 ** 5)
    m = make(aggan_t0=10.0, aggan_alpha=0.5)
    logged = [m.train_step()["temperature"].item() for _ in range(4)]
    # Step k anneals with T_k = T0 α^k, then T <- α T (§3.2).
    assert logged == pytest.approx([10.0, 5.0, 2.5, 1.25])
    assert m.temperature == pytest.approx(10.0 * 0.5 ** 4)
    assert m.state_dict()["iteration"] == 4


def _g_params(m: AGGAN) -> list[torch.Tensor]:
    return [p.detach().clone() for p in m.G.parameters()]


def _same(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


def test_metropolis_in_the_method():
    # T ~ 0: a worse candidate never replaces G, a fitter one always does.
    m = make(aggan_t0=1e-30)
    seen = set()
    for _ in range(40):  # offspring are usually fitter; a worse one turns up within ~10 steps here
        before = _g_params(m)
        out = m.train_step()
        fits = [out[f"fit_{n}"].item() for n in ("minimax", "nonsat", "ls")]
        better = max(fits) > out["fit_parent"].item()
        assert out["accepted"].item() == float(better)
        assert out["accepted_worse"].item() == 0.0
        assert _same(before, _g_params(m)) == (not better)
        # Eq. (3): g_b is at least as fit as the candidate.
        assert out["best_fitness"].item() >= max(fits) - 1e-6
        seen.add(better)
        if len(seen) == 2:
            break
    assert seen == {True, False}  # both branches happened
    # T huge: every candidate is accepted.
    m = make(aggan_t0=1e30)
    assert all(m.train_step()["accepted"].item() == 1.0 for _ in range(4))


def test_generate_draws_from_g_b_on_request():
    m = make(aggan_sample_from="g_b")
    for _ in range(3):
        m.train_step()
    y = torch.tensor([0, 1, 2, 0])
    noise = torch.randn(4, m.noise_dim)
    before = m.generate(y, noise)
    m.G_b.eval()
    expected = m.G_b(torch.cat([noise, torch.nn.functional.one_hot(y, 3).float()], 1)).detach()
    m.G_b.train()
    assert torch.equal(before, expected)
    with torch.no_grad():  # changing the current G leaves the samples alone...
        for p in m.G.parameters():
            p.add_(1.0)
    assert torch.equal(m.generate(y, noise), before)
    with torch.no_grad():  # ...changing g_b does not
        for p in m.G_b.parameters():
            p.add_(0.1)
    assert not torch.equal(m.generate(y, noise), before)


def test_generate_draws_from_g_by_default():
    """HIC-SYSU/AGGAN main.py samples netG; g_b exists only for §4.1's proof."""
    m = make()
    assert m.cfg.options["aggan_sample_from"] == "g"
    for _ in range(3):
        m.train_step()
    y = torch.tensor([0, 1, 2, 0])
    noise = torch.randn(4, m.noise_dim)
    before = m.generate(y, noise)
    m.G.eval()
    expected = m.G(torch.cat([noise, torch.nn.functional.one_hot(y, 3).float()], 1)).detach()
    m.G.train()
    assert torch.equal(before, expected)
    assert m.G.training  # generate() left G as it found it
    with torch.no_grad():  # changing g_b leaves the samples alone
        for p in m.G_b.parameters():
            p.add_(0.1)
    assert torch.equal(m.generate(y, noise), before)


def test_least_squares_mutation_is_the_official_mse_without_a_half():
    """main.py: ls_loss = nn.MSELoss() on D's sigmoid output against 1, plus the class loss."""
    m = make()
    adv = torch.tensor([0.0, 2.0, -1.0])
    cls = torch.zeros(3, 3)
    y = torch.tensor([0, 1, 2])
    p = torch.sigmoid(adv)
    expected = ((p - 1) ** 2).mean() + math.log(3)  # uniform class logits: cross-entropy log 3
    assert m._g_loss(2, adv, cls, y).item() == pytest.approx(expected.item(), rel=1e-6)
    assert ((1 - 0.5) ** 2 + (1 - 1 / (1 + math.exp(-2))) ** 2 + (1 - 1 / (1 + math.exp(1))) ** 2) / 3 == \
        pytest.approx(((p - 1) ** 2).mean().item(), rel=1e-6)
