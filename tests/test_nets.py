"""Networks sized from the image shape."""

import pytest
import torch

from imbagan.nets import Discriminator, Encoder, Generator


@pytest.mark.parametrize("size", [16, 28, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes(size, channels):
    shape = (channels, size, size)
    g, e, d = Generator(10, shape, 8), Encoder(shape, 10, 8), Discriminator(shape, 4, 8)
    x = g(torch.randn(2, 10))
    assert x.shape == (2, *shape) and x.abs().max() <= 1
    assert e(x).shape == (2, 10) and d(x).shape == (2, 4)
    # The encoder's trunk and D's trunk are interchangeable (BAGAN §4b).
    d.trunk.load_state_dict(e.trunk.state_dict())


def test_bad_size_is_refused():
    with pytest.raises(ValueError, match="16, 28, 32 or 64"):
        Generator(10, (1, 20, 20))
