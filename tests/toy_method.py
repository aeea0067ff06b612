"""A toy method, the whole of what adding a method takes besides one registry line."""

from __future__ import annotations

import torch
from torch import nn

from imbagan.methods.base import Method
from imbagan.nets import adam


class Toy(Method):
    title = "Toy: a class-mean generator"
    paper = "nobody, 2026"
    taxonomy = "Image level · nowhere"
    summary = "Learns one image per class by least squares; the registry test's stand-in."
    # Its own setting: declared here, on its card, with nothing to add to TrainConfig, the CLI or the form.
    settings = {"rounds": {"default": 1, "min": 1, "help": "least-squares updates per step"}}
    demo = {"shows": "The toy at work.", "config": {"method": "toy", "dataset": "digits", "steps": 4}}
    state_attrs = ("G", "opt_g")

    def __init__(self, cfg, data):
        self.cfg, self.data = cfg, data
        self.noise_dim = 2
        self.classes_modeled = tuple(range(data.num_classes))
        self.G = nn.Embedding(data.num_classes, int(torch.tensor(data.img_shape).prod())).to(data.device)
        self.opt_g = adam(self.G.parameters(), cfg)

    def train_step(self) -> dict:
        for _ in range(self.cfg.options["rounds"]):
            x, y = self.data.sample(self.cfg.batch_size)
            loss = (self.G(y).view_as(x) - x).pow(2).mean()
            self.update(self.opt_g, loss)
        return {"g_loss": loss.detach()}

    def draw(self, z, y):  # the base's generate() moves y and z to the device, in eval mode, without gradients
        return self.G(y).view(-1, *self.data.img_shape).tanh()
