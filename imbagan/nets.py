"""DCGAN-style building blocks sized from the image shape (16, 28, 32 or 64 px; 1 or 3 channels).

The generator mirrors the discriminator's convolutional trunk, which is what lets BAGAN and
BAGAN-GP initialise G from a decoder and D's first layers from an encoder (BAGAN §4, Fig. 3).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

SIZES = {16: (4, 2), 28: (7, 2), 32: (4, 3), 64: (4, 4)}  # image side -> (base side, number of x2 stages)


def _plan(img_shape: tuple[int, int, int], width: int) -> tuple[int, list[int]]:
    c, h, w = img_shape
    if h != w or h not in SIZES:
        raise ValueError(f"Images must be square with side 16, 28, 32 or 64 (got {h}x{w}).")
    base, stages = SIZES[h]
    # Channels of the trunk from the image side inwards: width, 2*width, ... (capped at 8*width).
    chans = [min(width * 2**i, width * 8) for i in range(stages)]
    return base, chans


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation (Radford et al. 2016): N(0, 0.02) for conv/linear, N(1, 0.02) for norms."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d, nn.InstanceNorm2d)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class Generator(nn.Module):
    """z (N, latent_dim) -> image (N, C, H, W) in [-1, 1]. Batch norm + ReLU, tanh output.

    ``norm="none"`` drops the batch norm (IBM/BAGAN balancing_gan.py's generator has none): each
    image then depends on its own latent only, not on the other images of its batch.
    """

    def __init__(self, latent_dim: int, img_shape: tuple[int, int, int], width: int = 64, norm: str = "batch"):
        super().__init__()
        if norm not in ("batch", "none"):
            raise ValueError(f"norm must be 'batch' or 'none' (got {norm!r}).")
        bn = (lambda c: nn.BatchNorm2d(c)) if norm == "batch" else (lambda c: nn.Identity())
        self.latent_dim, self.img_shape = latent_dim, tuple(img_shape)
        base, chans = _plan(img_shape, width)
        chans = chans[::-1]  # widest first
        self.base, self.c0 = base, chans[0]
        self.fc = nn.Linear(latent_dim, chans[0] * base * base)
        layers: list[nn.Module] = []
        c_in = chans[0]
        for c_out in chans[1:] + [chans[-1]]:
            layers += [bn(c_in), nn.ReLU(inplace=True), nn.ConvTranspose2d(c_in, c_out, 4, 2, 1)]
            c_in = c_out
        layers += [bn(c_in), nn.ReLU(inplace=True), nn.Conv2d(c_in, img_shape[0], 3, 1, 1), nn.Tanh()]
        self.body = nn.Sequential(*layers)
        init_weights(self)
        if norm == "none":
            # Without normalisation DCGAN's N(0, 0.02) shrinks the signal layer by layer (the autoencoder
            # then barely trains); Glorot's scale keeps it, as IBM/BAGAN's glorot_normal does.
            for m in self.modules():
                if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                    nn.init.xavier_normal_(m.weight)

    def forward(self, z: Tensor) -> Tensor:
        return self.body(self.fc(z).view(-1, self.c0, self.base, self.base))


class ConvTrunk(nn.Module):
    """image -> flat features: strided 4x4 convs with LeakyReLU(0.2), the shared first layers of D and E."""

    def __init__(self, img_shape: tuple[int, int, int], width: int = 64, norm: str = "none", dropout: float = 0.0):
        super().__init__()
        if norm not in ("none", "batch", "instance"):
            raise ValueError(f"norm must be 'none', 'batch' or 'instance' (got {norm!r}).")
        base, chans = _plan(img_shape, width)
        layers: list[nn.Module] = []
        c_in = img_shape[0]
        for i, c_out in enumerate(chans):
            layers.append(nn.Conv2d(c_in, c_out, 4, 2, 1))
            # DCGAN: no normalisation on the first layer; WGAN-GP critics take none at all.
            if norm == "batch" and i > 0:
                layers.append(nn.BatchNorm2d(c_out))
            elif norm == "instance" and i > 0:
                # Per image and channel, with a learned scale and shift (CAGAN-MNIST Layers.NormLayer).
                layers.append(nn.InstanceNorm2d(c_out, affine=True))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            c_in = c_out
        self.body = nn.Sequential(*layers, nn.Flatten())
        self.out_dim = c_in * base * base

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class Encoder(nn.Module):
    """image -> latent code; same trunk as the discriminator so its weights can seed D (BAGAN §4)."""

    def __init__(self, img_shape: tuple[int, int, int], latent_dim: int, width: int = 64, norm: str = "none",
                 dropout: float = 0.0):
        super().__init__()
        self.trunk = ConvTrunk(img_shape, width, norm, dropout)
        self.to_latent = nn.Linear(self.trunk.out_dim, latent_dim)
        init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.to_latent(self.trunk(x))


class Discriminator(nn.Module):
    """image -> (N, out_dim) logits: the conv trunk followed by one dense layer.

    ``features(x)`` returns the trunk's output, for methods that add heads of their own.
    """

    def __init__(self, img_shape: tuple[int, int, int], out_dim: int, width: int = 64, norm: str = "none",
                 dropout: float = 0.0):
        super().__init__()
        self.trunk = ConvTrunk(img_shape, width, norm, dropout)
        self.head = nn.Linear(self.trunk.out_dim, out_dim)
        init_weights(self)

    def features(self, x: Tensor) -> Tensor:
        return self.trunk(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.trunk(x))


def adam(params, cfg) -> torch.optim.Adam:
    """The optimiser every method uses, from the config's lr and betas."""
    return torch.optim.Adam(params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
