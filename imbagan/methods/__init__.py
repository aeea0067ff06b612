"""Balancing methods, one file each, all with the same small interface (see ``imbagan.methods.base``).

A method is built as ``Method(cfg, data)`` where ``data`` is an ``imbagan.batches.DeviceData``
(the imbalanced training set on the device plus the run's seeded generator). It owns its networks
and optimisers; the loop in ``imbagan.train`` owns everything else (ticks, samples, checkpoints).

    pretrain_steps: int                      # steps of a pre-training stage (0 when there is none)
    def pretrain_step(self) -> dict          # one step of that stage (e.g. BAGAN's autoencoder)
    def finish_pretrain(self) -> None        # after it (e.g. fit the class-conditional latents)
    def train_step(self) -> dict             # one adversarial step; returns 0-dim tensors to log
    def draw(self, z, y) -> Tensor           # the generator's map; the base's generate(y, noise=None) gives
                                             # (N, C, H, W) in [-1, 1] for labels y, noise ~ N(0, I)
    noise_dim: int                           # width of the noise generate() takes
    classes_modeled: tuple[int, ...]         # classes generate() can draw
    state_attrs: tuple[str, ...]             # what a checkpoint holds (tensors and plain numbers only)

``train_step`` draws its own batches through ``data`` (``sample``, ``sample_of``,
``uniform_labels``, ``randn``) because methods differ in what a step needs: a WGAN-GP critic
takes several real batches per generator update, the minority GAN only its class's images.

Adding a method: one file with a ``Method`` subclass (its card attributes say how the app and the
CLI present it), and one line in ``METHODS`` below.
"""


from __future__ import annotations

from imbagan.methods.acgan import ACGAN
from imbagan.methods.aggan import AGGAN
from imbagan.methods.bagan import BAGAN
from imbagan.methods.bagan_gp import BAGAN_GP
from imbagan.methods.cagan import CAGAN
from imbagan.methods.gan import GAN

METHODS = {
    "gan": GAN,
    "bagan": BAGAN,
    "acgan": ACGAN,
    "bagan_gp": BAGAN_GP,
    "aggan": AGGAN,
    "cagan": CAGAN,
}
