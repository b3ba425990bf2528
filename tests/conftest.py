"""Shared fixtures for the fnlib unit tests: tiny hand-built models, small real data, resnet18 factories.

Everything here is session-scoped and cheap; tests that mutate a model get a fresh deep copy.
"""
from __future__ import annotations

import copy
import os

import pytest
import torch
import torch.nn as nn

from fnlib import data, models
from fnlib.models import LAYERS, Normalize

# The unit tests use tiny batches: one intra-op thread is faster than two (measured: ~0.03 s against
# ~0.4 s per resnet18 forward of 8 images on a shared 2-core machine) and avoids oversubscription
# when the CPU is busy. FNLIB_TEST_THREADS overrides it.
torch.set_num_threads(int(os.environ.get("FNLIB_TEST_THREADS", "1")))


class TinyBody(nn.Module):
    """conv1 -> bn1 -> relu -> global average pool -> fc, with the attribute names of torchvision's ResNet."""

    def __init__(self, in_ch: int, channels: int = 64, kernel: int = 3, classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, channels, kernel, padding=kernel // 2, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(channels, classes)

    def forward(self, z):
        h = self.relu(self.bn1(self.conv1(z)))
        return self.fc(h.mean((2, 3)))


class TinyNet(nn.Module):
    """A stand-in for :class:`fnlib.models.PaperResNet`: ``.normalize``, ``.body``, ``.conv1``, ``.stem()``."""

    def __init__(self, in_ch: int = 1, channels: int = 64, kernel: int = 3, classes: int = 10,
                 mean=None, std=None):
        super().__init__()
        mean = mean if mean is not None else tuple(0.5 for _ in range(in_ch))
        std = std if std is not None else tuple(0.25 for _ in range(in_ch))
        self.normalize = Normalize(mean, std)
        self.body = TinyBody(in_ch, channels, kernel, classes)

    @property
    def conv1(self):
        return self.body.conv1

    def forward(self, x):
        return self.body(self.normalize(x))

    def stem(self, z, layer: str = "conv1"):
        if layer not in LAYERS:
            raise ValueError(layer)
        y = self.body.conv1(z)
        if layer in ("bn1", "relu"):
            y = self.body.bn1(y)
        if layer == "relu":
            y = torch.relu(y)
        return y


def make_tiny(in_ch: int = 1, seed: int = 0, **kw) -> TinyNet:
    """A seeded TinyNet in eval mode with non-trivial batch-norm statistics."""
    g = torch.Generator().manual_seed(seed)
    net = TinyNet(in_ch, **kw)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        net.body.bn1.running_mean.copy_(torch.randn(net.body.bn1.num_features, generator=g) * 0.1)
        net.body.bn1.running_var.copy_(torch.rand(net.body.bn1.num_features, generator=g) + 0.5)
    return net.eval()


@pytest.fixture
def tiny():
    """Factory for seeded TinyNets: ``tiny(in_ch=1, seed=0, channels=64, kernel=3)``."""
    return make_tiny


# ---------------------------------------------------------------- real data (cached under data/)

@pytest.fixture(scope="session")
def mnist_small():
    """16 class-balanced MNIST test images (uint8) and labels."""
    return data.load("mnist", "test", limit=16)


@pytest.fixture(scope="session")
def cifar_small():
    """16 class-balanced CIFAR-10 test images (uint8) and labels."""
    return data.load("cifar10", "test", limit=16)


@pytest.fixture(scope="session")
def mnist_train64():
    """64 class-balanced MNIST training images for the tiny training runs."""
    return data.load("mnist", "train", limit=64)


# ---------------------------------------------------------------- resnet18, built once per data set

@pytest.fixture(scope="session")
def _resnets():
    built = {}
    for ds in ("mnist", "cifar10"):
        torch.manual_seed(0)
        built[ds] = models.build("resnet18", ds).eval()
    return built


@pytest.fixture
def resnet(_resnets):
    """Factory: a fresh (deep-copied, eval-mode) seeded resnet18 for ``"mnist"`` or ``"cifar10"``."""
    return lambda ds="mnist": copy.deepcopy(_resnets[ds]).eval()


def state_equal(a: nn.Module, b_state: dict) -> bool:
    """True when every tensor of ``a.state_dict()`` equals the saved one bit for bit."""
    sa = a.state_dict()
    return sa.keys() == b_state.keys() and all(torch.equal(sa[k], b_state[k]) for k in sa)


def snapshot(model: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}
