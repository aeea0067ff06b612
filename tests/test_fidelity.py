"""Each method's default against its official code (issue 10, "Methods: deviations"): loss terms on tiny
tensors computed by hand, which networks are built and seeded, and that the CLI applies the presets."""

from __future__ import annotations

import argparse
import math

import pytest
import torch
import torch.nn.functional as F

from imbagan import losses, nets
from imbagan.config import TrainConfig
from imbagan.methods import METHODS
from imbagan.methods.bagan import BAGAN
from imbagan.methods.bagan_gp import BAGAN_GP, EmbeddingCritic, official_d_loss, official_gradient_penalty
from imbagan.methods.cagan import CAGAN
from tests.conftest import make_data, tiny_config


def softplus(v: float) -> float:
    return math.log1p(math.exp(v))


# --- nets ------------------------------------------------------------------------------------
def test_generator_without_batch_norm_treats_each_image_alone():
    g = nets.Generator(8, (1, 16, 16), 8, norm="none")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in g.modules())
    z = torch.randn(5, 8)
    # In training mode an image does not depend on the rest of its batch.
    assert torch.allclose(g(z)[:1], g(z[:1]), atol=1e-6)
    with pytest.raises(ValueError):
        nets.Generator(8, (1, 16, 16), 8, norm="layer")


def test_instance_norm_trunk_normalises_per_image():
    d = nets.Discriminator((1, 16, 16), 3, 8, norm="instance")
    assert any(isinstance(m, torch.nn.InstanceNorm2d) for m in d.modules())
    x = torch.randn(4, 1, 16, 16)
    assert torch.allclose(d(x)[:1], d(x[:1]), atol=1e-5)  # no batch statistics


# --- BAGAN (IBM/BAGAN balancing_gan.py) --------------------------------------------------------
def test_bagan_generator_has_no_batch_norm():
    m = BAGAN(tiny_config(method="bagan"), make_data())
    assert not any(isinstance(x, torch.nn.BatchNorm2d) for x in m.G.modules())


# --- BAGAN-GP (GH920/improved-bagan-gp codes/improved_bagan_gp.py) -------------------------------
def test_bagan_gp_official_d_loss_by_hand():
    real, fake, wrong = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0]), torch.tensor([1.0, 0.0])
    expected = ((softplus(-2.0) + softplus(1.0)) / 2 + (softplus(0.5) + softplus(-3.0)) / 2
                + (softplus(1.0) + softplus(0.0)) / 2)
    assert official_d_loss(real, fake, wrong).item() == pytest.approx(expected, rel=1e-6)


class LinearConditionalCritic(torch.nn.Module):
    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w, self.seen = w, []

    def forward(self, x, y):
        self.seen.append((x.detach().clone(), y.clone()))
        return (self.w[y] * x.flatten(1)).sum(1)


def test_bagan_gp_official_penalty_uses_normal_alpha_and_the_real_labels():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(3, 16, generator=g) * torch.tensor([[0.1], [1.0], [3.0]])
    critic = LinearConditionalCritic(w)
    real, fake = torch.randn(6, 1, 4, 4, generator=g), torch.randn(6, 1, 4, 4, generator=g)
    y = torch.tensor([0, 1, 2, 2, 1, 0])
    gp = official_gradient_penalty(critic, real, fake, y, torch.Generator().manual_seed(1))
    assert torch.allclose(gp, ((w[y].norm(dim=1) - 1) ** 2).mean(), atol=1e-5)
    (x_hat, labels), = critic.seen
    assert torch.equal(labels, y)
    alpha = torch.randn(6, 1, 1, 1, generator=torch.Generator().manual_seed(1))  # N(0, 1), not U[0, 1)
    assert torch.allclose(x_hat, real + alpha * (fake - real), atol=1e-6)


def test_bagan_gp_embedding_critic_by_hand():
    torch.manual_seed(0)
    crit = EmbeddingCritic((1, 16, 16), 3, 8)
    x, y = torch.randn(4, 1, 16, 16), torch.tensor([0, 2, 1, 2])
    h = crit.base.trunk(x) * F.leaky_relu(crit.label_map(crit.embed(y)), 0.2)
    assert torch.allclose(crit(x, y), crit.out(crit.hidden(h)).squeeze(1), atol=1e-6)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in crit.modules())


def _official(**kw) -> BAGAN_GP:
    return BAGAN_GP(tiny_config(method="bagan_gp", n_critic=2, **kw), make_data())


def test_bagan_gp_default_is_the_official_code():
    assert TrainConfig(method="bagan_gp").options["bagan_gp_variant"] == "official"
    assert BAGAN_GP.paper_defaults["bagan_gp_variant"] == "official"
    assert "improved_bagan_gp.py" in BAGAN_GP.defaults_source
    assert "wgan" in next(iter(BAGAN_GP.presets.values())).values()


def test_bagan_gp_official_autoencoder_is_mae_through_leaky_codes():
    m = _official()
    state = m.data.gen.get_state()
    x, y = m.data.sample(m.cfg.batch_size)  # the batch the step will draw
    with torch.no_grad():
        expected = (m.G(F.leaky_relu(m.E(x), 0.2), y) - x).abs().mean()
    m.data.gen.set_state(state)
    assert m.pretrain_step()["ae_loss"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_bagan_gp_official_keeps_a_fresh_d_and_samples_plain_normal_noise():
    m = _official()
    before = [p.detach().clone() for p in m.D.trunk.parameters()]
    for _ in range(m.pretrain_steps):
        m.pretrain_step()
    m.finish_pretrain()
    # D is not initialised from the encoder ("without initialization").
    for p, q, e in zip(before, m.D.trunk.parameters(), m.E.trunk.parameters()):
        assert torch.equal(p, q) and not torch.equal(q, e)
    # G(z, c) = decoder(z ⊙ e_c) with z ~ N(0, I): no fitted class Gaussians.
    y, z = torch.tensor([0, 1, 2]), torch.randn(3, m.noise_dim)
    m.G.eval()
    expected = m.G.net(z * m.G.embed(y)).detach()
    m.G.train()
    assert torch.equal(m.generate(y, z), expected)


def test_bagan_gp_official_step_labels():
    """Per D update: real under y, fake under uniform labels, real under wrong labels, the penalty under y;
    the same real batch for all n_critic updates; then G under uniform labels."""
    m = _official()
    for _ in range(m.pretrain_steps):
        m.pretrain_step()
    m.finish_pretrain()
    seen = []
    forward = m.D.forward

    def record(x, y):
        seen.append((x.detach().clone(), y.clone()))
        return forward(x, y)

    m.D.forward = record
    out = m.train_step()
    assert {"d_loss", "g_loss", "gp", "d_real", "d_fake", "d_wrong"} <= set(out)
    assert all(math.isfinite(v.item()) for v in out.values())
    assert len(seen) == 4 * m.cfg.options["n_critic"] + 1
    x_real, y_real = seen[0]
    for i in range(m.cfg.options["n_critic"]):
        (xr, yr), (_, yf), (xw, yw), (_, yg) = seen[4 * i: 4 * i + 4]
        assert torch.equal(xr, x_real) and torch.equal(xw, x_real)  # one real batch per train_step
        assert torch.equal(yr, y_real) and torch.equal(yg, y_real)  # the penalty under the real labels
        assert yf.shape == yw.shape == y_real.shape


# --- CAGAN (jeongik-jo/CAGAN-MNIST Train.py) ----------------------------------------------------
def test_zero_centered_gp_against_a_linear_score():
    w = torch.tensor([[1.0, 2.0], [0.0, -3.0]], requires_grad=True)  # score_i = <w_{y_i}, x_i>: gradient w_{y_i}
    x = torch.randn(2, 2, requires_grad=True)
    y = torch.tensor([0, 1])
    gp = losses.zero_centered_gp((w[y] * x).sum(1), x)
    assert gp.item() == pytest.approx((5.0 + 9.0) / 2)
    gp.backward()  # the graph is kept for D's update: d/dw_c of mean ||w_y||^2 = 2 w_c n_c / N
    assert torch.allclose(w.grad, w.detach())


def test_cagan_defaults_follow_the_paper_and_the_official_code():
    d = CAGAN.paper_defaults
    assert d["latent_dim"] == 256 and d["cagan_d_norm"] == "batch" and d["cagan_reg"] == "zero-gp"
    assert d["cagan_reg_weight"] == 1.0
    cfg = TrainConfig(method="cagan")
    assert (cfg.options["cagan_d_norm"], cfg.options["cagan_reg"], cfg.options["cagan_reg_weight"]) == ("batch", "zero-gp", 1.0)
    assert any(p.get("cagan_reg") == "wgan-gp" for p in CAGAN.presets.values())


def _cagan(**kw) -> CAGAN:
    return CAGAN(tiny_config(method="cagan", steps=20, **kw), make_data())


def test_cagan_zero_gp_is_the_official_penalty(monkeypatch):
    """d_loss = eq. (17) + weight · (E_real ||∇ D_y(x)||² + E_fake ||∇ D_y'(x')||²), the gradients of each
    image's own-condition logit, recomputed here with an independent autograd call per image."""
    m = _cagan(cagan_d_norm="instance", cagan_reg_weight=0.5)
    torch.manual_seed(0)
    gen_state = m.data.gen.get_state()
    d_state = {k: v.clone() for k, v in m.D.state_dict().items()}
    g_state = {k: v.clone() for k, v in m.G.state_dict().items()}
    out = m.train_step()
    # Replay the step's draws and recompute by hand with the D from before the update.
    m.data.gen.set_state(gen_state)
    m.D.load_state_dict(d_state)
    m.G.load_state_dict(g_state)
    real, y_real = m.data.sample(8)
    y_fake = m.data.uniform_labels(8)
    with torch.no_grad():
        fake = m._fake(y_fake)

    def per_image(x, y):
        total = 0.0
        for i in range(x.shape[0]):
            xi = x[i:i + 1].clone().requires_grad_(True)
            (g,) = torch.autograd.grad(m.D(xi)[0, y[i]], xi)
            total += g.pow(2).sum().item()
        return total / x.shape[0]

    expected_gp = per_image(real, y_real) + per_image(fake, y_fake)
    assert out["gp"].item() == pytest.approx(expected_gp, rel=1e-4)
    with torch.no_grad():
        adv = losses.cond_activation_d(m.D(real), F.one_hot(y_real, 3).float(), m.D(fake),
                                       F.one_hot(y_fake, 3).float(), m.kind)
    assert out["d_loss"].item() == pytest.approx(adv.item() + 0.5 * expected_gp, rel=1e-4)


@pytest.mark.parametrize("kw", [{"cagan_reg": "none"}, {"cagan_reg": "wgan-gp", "adv_loss": "wgan-gp", "n_critic": 2},
                                {"cagan_reg": "zero-gp", "cagan_mix_start": 0.0}])
def test_cagan_regulariser_options_train(kw):
    m = _cagan(**kw)
    for _ in range(2):
        out = m.train_step()
    assert ("gp" in out) == (kw["cagan_reg"] != "none")
    assert all(torch.isfinite(v) for v in out.values())


# --- presets reach the CLI ---------------------------------------------------------------------
@pytest.mark.parametrize("method", [m for m in METHODS if METHODS[m].presets])
def test_cli_applies_every_preset_over_the_paper_defaults(method):
    from imbagan.__main__ import _config_from_args

    for name, values in METHODS[method].presets.items():
        cfg = _config_from_args(argparse.Namespace(method=method, preset=name))
        for k, v in {**METHODS[method].paper_defaults, **values}.items():
            assert cfg.flat()[k] == v, (method, name, k)
    # The defaults without a preset are the paper's.
    cfg = _config_from_args(argparse.Namespace(method=method, preset=None))
    for k, v in METHODS[method].paper_defaults.items():
        assert cfg.flat()[k] == v


@pytest.mark.slow  # the app's pages through AppTest
def test_train_page_applies_the_acgan_preset(tmp_path, monkeypatch):
    """The app's Train page: choosing ACGAN's "modified" preset refills the method's fields with it."""
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("IMBAGAN_RUNS", str(tmp_path))
    page = str(Path(__file__).resolve().parent.parent / "pages" / "train.py")
    at = AppTest.from_file(page, default_timeout=60).run()
    at.selectbox(key="train.method").set_value("acgan").run()
    name = "modified (CAGAN eqs. 7-10)"
    preset = METHODS["acgan"].presets[name]
    at.selectbox(key="train.acgan.preset").set_value(name).run()
    assert not at.exception
    assert at.selectbox(key="train.acgan.acgan_variant").value == preset["acgan_variant"] == "modified"
    assert at.selectbox(key="train.acgan.adv_loss").value == preset["adv_loss"] == "ls"
    assert at.number_input(key="train.acgan.lambda_cls").value == preset["lambda_cls"]

