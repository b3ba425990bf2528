"""ResNet-18/50/101 from torchvision, trained from scratch, with input normalization inside the model.

Every model takes pixels in [0, 1]; ``model.normalize`` maps them to the normalized tensor z that the
torchvision body sees, and ``model.body(z)`` runs the rest, so attacks may work in either space.
For MNIST the first convolution takes one channel: ``Conv2d(1, 64, 7, 2, 3, bias=False)`` (SPEC §1),
initialised as torchvision initialises every conv of a ResNet (Kaiming normal, fan-out, ReLU gain), so
that the kernel norms Algorithm 1 follows start on the same footing on both data sets.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torchvision

ARCHS = ("resnet18", "resnet50", "resnet101")
# per-channel mean and std of the official training sets
STATS = {
    "mnist": ((0.1307,), (0.3081,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}
LAYERS = ("conv1", "bn1", "relu")


class Normalize(nn.Module):
    """x -> (x - mean) / std, per channel."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x):
        return (x - self.mean) / self.std


class PaperResNet(nn.Module):
    """Normalization followed by a torchvision ResNet; ``conv1`` is the layer the paper studies."""

    def __init__(self, arch: str, dataset: str):
        super().__init__()
        self.arch, self.dataset = arch, dataset
        self.normalize = Normalize(*STATS[dataset])
        self.body = getattr(torchvision.models, arch)(weights=None, num_classes=10)
        if dataset == "mnist":
            self.body.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
            # torchvision's ResNet init; PyTorch's default (Kaiming uniform, a=√5) gives conv1 std ≈ 0.082
            nn.init.kaiming_normal_(self.body.conv1.weight, mode="fan_out", nonlinearity="relu")

    @property
    def conv1(self) -> nn.Conv2d:
        return self.body.conv1

    def forward(self, x):
        return self.body(self.normalize(x).contiguous(memory_format=torch.channels_last))

    def stem(self, z, layer: str = "conv1"):
        """f_L of Algorithm 1 on a normalized input: the output of conv1, bn1 or the relu after them."""
        if layer not in LAYERS:
            raise ValueError(f"unknown layer {layer!r}; allowed: {', '.join(LAYERS)}")
        y = self.body.conv1(z)
        if layer in ("bn1", "relu"):
            y = self.body.bn1(y)
        if layer == "relu":
            y = torch.relu(y)
        return y


def check(arch: str, dataset: str) -> None:
    """Raise ValueError naming the allowed values when ``arch`` or ``dataset`` is unknown."""
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; allowed: {', '.join(ARCHS)}")
    if dataset not in STATS:
        raise ValueError(f"unknown dataset {dataset!r}; allowed: {', '.join(STATS)}")


def build(arch: str, dataset: str) -> PaperResNet:
    """A freshly initialised model (the caller seeds torch first for reproducible weights)."""
    check(arch, dataset)
    # channels_last doubles convolution speed on CPU (measured on 2 cores) and suits tensor cores on CUDA
    return PaperResNet(arch, dataset).to(memory_format=torch.channels_last)


def load_checkpoint(path, arch: str, dataset: str, map_location="cpu",
                    remake: str = "python -m fnlib run --step train --force") -> PaperResNet:
    """Build ``arch`` for ``dataset`` and load weights saved by :func:`fnlib.train.fit`.

    A missing, unreadable or mismatched checkpoint is rejected with ``remake``, the command that makes it.
    """
    from pathlib import Path
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}. Make it with: {remake}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated or corrupt file
        raise ValueError(f"checkpoint {path} cannot be read ({type(e).__name__}: {str(e)[:120]}). Remake it "
                         f"from scratch: {remake}") from None
    meta = state.get("meta", {})
    if (meta.get("arch"), meta.get("dataset")) != (arch, dataset):
        raise ValueError(f"checkpoint {path} holds {meta.get('arch')}/{meta.get('dataset')}, not {arch}/{dataset}; "
                         f"make the right one with: {remake}")
    model = build(arch, dataset)
    model.load_state_dict(state["model"])
    return model.eval()
