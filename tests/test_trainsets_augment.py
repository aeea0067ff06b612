"""The augment condition's augmentation keeps shapes and labels' meaning, and never flips digits."""

import torch

from imbagan import trainsets as ts


def test_shift_keeps_shape_and_moves_content_by_at_most_the_shift():
    x = torch.zeros(64, 1, 16, 16)
    x[:, :, 8, 8] = 1.0  # one bright pixel in the middle
    g = torch.Generator().manual_seed(0)
    out = ts.shift_and_flip(2, flip=False)(x, g)
    assert out.shape == x.shape
    pos = out[:, 0].flatten(1).argmax(1)
    ys, xs = pos // 16, pos % 16
    assert ((ys - 8).abs() <= 2).all() and ((xs - 8).abs() <= 2).all()
    assert len(set(zip(ys.tolist(), xs.tolist()))) > 5  # it does move
    assert torch.equal(out.sum((1, 2, 3)), x.sum((1, 2, 3)))  # the pixel stays inside: nothing lost


def test_digits_are_never_flipped_fashion_may_be():
    x = torch.zeros(256, 1, 16, 16)
    x[:, :, 3:13, 2] = 1.0  # a vertical stroke on the far left
    g = torch.Generator().manual_seed(1)
    out = ts.augmentation_for("digits", 16)(x, g)
    assert (out[:, 0, :, 8:].sum((1, 2)) == 0).all()  # never on the right half: no flip
    out = ts.augmentation_for("fashion_mnist", 16)(x, g)
    assert (out[:, 0, :, 8:].sum((1, 2)) > 0).any()  # some flipped


def test_the_same_generator_state_gives_the_same_batch():
    x = torch.rand(8, 3, 32, 32)
    aug = ts.augmentation_for("cifar10", 32)
    a = aug(x, torch.Generator().manual_seed(5))
    b = aug(x, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
