"""CAGAN: the conditional activation loss against hand computations, mixed batch training, and
a few steps at 16x16 with each adversarial loss and D normalisation."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch

from imbagan import losses
from imbagan.batches import DeviceData
from imbagan.config import TrainConfig
from imbagan.methods.cagan import CAGAN
from tests.paper_defaults import assert_cli_and_app_apply

B = 8


def make(seed: int = 0, **kw) -> CAGAN:
    cfg = TrainConfig.from_dict(dict(method="cagan", batch_size=B, width=8, latent_dim=16, steps=20, device="cpu", **kw))
    y = np.repeat(np.arange(3), [12, 6, 3])
    x = np.random.default_rng(0).integers(0, 256, (len(y), 1, 16, 16), dtype=np.uint8)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    return CAGAN(cfg, DeviceData(x, y, ("a", "b", "c"), torch.device("cpu"), gen))


# A tiny batch: 2 real images with conditions 2 and 0, 2 fakes asked for condition 1.
REAL = torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.0, -0.5]])
FAKE = torch.tensor([[0.2, 0.3, -0.4], [-1.0, 1.0, 0.0]])
C_REAL = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
C_FAKE = torch.tensor([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])


def softplus(v: float) -> float:
    return math.log1p(math.exp(v))


def test_cond_activation_ls_by_hand():
    # Eq. (19): only D_2(x_1)=2.0, D_0(x_2)=1.5 on reals and D_1 = 0.3, 1.0 on fakes count.
    d = ((2.0 - 1) ** 2 + (1.5 - 1) ** 2) / 2 + (0.3 ** 2 + 1.0 ** 2) / 2
    g = ((0.3 - 1) ** 2 + (1.0 - 1) ** 2) / 2  # eq. (20)
    assert losses.cond_activation_d(REAL, C_REAL, FAKE, C_FAKE, "ls").item() == pytest.approx(d)
    assert losses.cond_activation_g(FAKE, C_FAKE, "ls").item() == pytest.approx(g)
    # Two active conditions: the inner product adds both heads' losses.
    two = torch.tensor([[1.0, 0.0, 1.0]])
    assert losses.cond_activation_g(REAL[:1], two, "ls").item() == pytest.approx((0.5 - 1) ** 2 + (2.0 - 1) ** 2)


def test_cond_activation_bce_and_wgan_by_hand():
    d = (softplus(-2.0) + softplus(-1.5)) / 2 + (softplus(0.3) + softplus(1.0)) / 2
    g = (softplus(-0.3) + softplus(-1.0)) / 2
    assert losses.cond_activation_d(REAL, C_REAL, FAKE, C_FAKE, "bce").item() == pytest.approx(d)
    assert losses.cond_activation_g(FAKE, C_FAKE, "bce").item() == pytest.approx(g)
    assert losses.cond_activation_d(REAL, C_REAL, FAKE, C_FAKE, "wgan-gp").item() == pytest.approx(
        -(2.0 + 1.5) / 2 + (0.3 + 1.0) / 2)


def test_inactive_conditions_get_no_gradient():
    real, fake = REAL.clone().requires_grad_(True), FAKE.clone().requires_grad_(True)
    losses.cond_activation_d(real, C_REAL, fake, C_FAKE, "ls").backward()
    assert torch.equal(real.grad == 0, C_REAL == 0)
    assert torch.equal(fake.grad == 0, C_FAKE == 0)


@pytest.mark.parametrize("kw", [
    {"adv_loss": "ls"},
    {"adv_loss": "bce", "cagan_d_norm": "batch"},
    {"adv_loss": "wgan-gp", "n_critic": 2, "cagan_mix_start": 0.0},
])
def test_steps_generate_and_resume(kw):
    m = make(**kw)
    for _ in range(3):
        out = m.train_step()
    for k in ("d_loss", "g_loss", "aux_acc", "mixed") + (("gp",) if kw["adv_loss"] == "wgan-gp" else ()):
        assert k in out and out[k].dim() == 0 and torch.isfinite(out[k]), k
    y = torch.tensor([0, 1, 2, 2, 1])
    img = m.generate(y)
    assert img.shape == (5, 1, 16, 16) and img.min() >= -1 and img.max() <= 1

    buf = io.BytesIO()
    torch.save(m.state_dict(), buf)
    buf.seek(0)
    other = make(seed=99, **kw)
    other.load_state_dict(torch.load(buf, weights_only=True))
    other.data.gen.set_state(m.data.gen.get_state())
    noise = torch.randn(5, m.noise_dim)
    assert torch.equal(other.generate(y, noise), m.generate(y, noise))
    for _ in range(2):
        a, b = m.train_step(), other.train_step()
        for k in a:
            assert torch.equal(a[k], b[k]), k


def test_mixed_batches_start_after_the_configured_fraction():
    m = make(cagan_mix_start=0.3, cagan_d_norm="batch")  # 20 steps * 0.3 -> mixing from step 6
    sizes: list[int] = []
    m.D.register_forward_pre_hook(lambda mod, inp: sizes.append(inp[0].shape[0]))
    flags = []
    for _ in range(8):
        sizes.clear()
        flags.append(m.train_step()["mixed"].item())
        # Unmixed: real, fake, then G's fakes, each its own batch; mixed: real+fake in one pass twice.
        assert sizes == ([B, B, B] if flags[-1] == 0 else [2 * B, 2 * B])
    assert flags == [0, 0, 0, 0, 0, 0, 1, 1]
    # The counter travels in the state: a resumed run keeps mixing.
    other = make(cagan_mix_start=0.3, cagan_d_norm="batch")
    other.load_state_dict(m.state_dict())
    assert other.train_step()["mixed"].item() == 1.0


def test_d_norm_option():
    bn = lambda m: any(isinstance(x, torch.nn.BatchNorm2d) for x in m.D.modules())  # noqa: E731
    assert bn(make(cagan_d_norm="batch")) and not bn(make(cagan_d_norm="none"))
    assert make(cagan_d_norm="batch").D(torch.zeros(4, 1, 16, 16)).shape == (4, 3)  # one logit per class


def test_cli_and_app_apply_the_paper_defaults():
    paper, _, _ = assert_cli_and_app_apply("cagan")
    assert paper.get("adv_loss") == "ls"  # CAGAN §5: LSGAN's adversarial loss, eqs. (19)-(20)
