"""The contract every registered method keeps: finite losses, generate's shape and range, state round trip."""

import io
import math

import pytest
import torch

from imbagan import catalog
from imbagan.methods import METHODS
from tests.conftest import make_data, tiny_config


def _train(method, steps: int) -> list[dict]:
    outs = []
    for _ in range(method.pretrain_steps):
        outs.append(method.pretrain_step())
    method.finish_pretrain()
    for _ in range(steps):
        outs.append(method.train_step())
    return outs


@pytest.mark.parametrize("name", list(METHODS))
def test_steps_are_finite_and_generate_has_shape_and_range(name):
    data = make_data(num_classes=3, size=16)
    m = METHODS[name](tiny_config(method=name), data)
    outs = _train(m, 3)
    assert outs and {"d_loss", "g_loss"} <= set(outs[-1]), f"{name}'s train_step logged {sorted(outs[-1])}"
    for out in outs:
        for k, v in out.items():
            if isinstance(v, torch.Tensor):
                assert v.dim() == 0 and not v.requires_grad, f"{name}.{k} must be a detached scalar"
                assert math.isfinite(v.item()), f"{name}.{k} = {v.item()}"
    assert "d_loss" in outs[-1] and "g_loss" in outs[-1]
    y = torch.tensor([c for c in m.classes_modeled for _ in range(2)])
    img = m.generate(y)
    assert img.shape == (len(y), 1, 16, 16)
    assert img.min() >= -1 and img.max() <= 1


# Every method at its defaults and under each of its card's presets (ACGAN's modified form, BAGAN-GP's WGAN-GP
# form, CAGAN's alternatives): one round trip each, rather than a copy of this test in each method's file.
ROUND_TRIPS = [(name, "defaults", {}) for name in METHODS] + [
    (name, preset, dict(fields)) for name in METHODS for preset, fields in catalog.methods()[name].presets.items()]


@pytest.mark.parametrize("name,preset,fields", ROUND_TRIPS, ids=[f"{n}-{p}" for n, p, _ in ROUND_TRIPS])
def test_state_round_trip_through_weights_only_load(name, preset, fields):
    data = make_data(num_classes=3, size=16, channels=3)
    cfg = tiny_config(method=name, **fields)
    a = METHODS[name](cfg, data)
    _train(a, 2)
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)  # tensors and plain numbers only
    b = METHODS[name](cfg, make_data(num_classes=3, size=16, channels=3))
    b.load_state_dict(state)
    y = torch.tensor(list(a.classes_modeled))
    noise = torch.randn(len(y), a.noise_dim, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a.generate(y, noise), b.generate(y, noise))


def test_the_minority_gan_models_every_minority_class_by_default():
    from imbagan.methods.gan import GAN
    from tests.conftest import make_data, tiny_config

    data = make_data(num_classes=4, per_class=(12, 3, 12, 4))  # classes 1 and 3 have under half of 12
    assert GAN(tiny_config(method="gan"), data).classes_modeled == (1, 3)
    assert GAN(tiny_config(method="gan", gan_classes=(2,)), data).classes_modeled == (2,)
    balanced = make_data(num_classes=3, per_class=(10, 9, 8))  # no minority: the rarest class
    assert GAN(tiny_config(method="gan"), balanced).classes_modeled == (2,)
