"""Convolution weight gradients as one matrix product, for training on a CPU.

On CPUs without AVX-512, oneDNN (PyTorch's CPU convolution library) computes the gradient of a
convolution's *weights* with a slow generic kernel (``x64:gemm:jit`` in ``ONEDNN_VERBOSE=1``): for the
3×3 convolutions of a ResNet's last stage, whose feature maps are 1×1 or 2×2 on 28–32-pixel inputs, it
takes 20–30× as long as the forward pass, and it was most of a training step (measured on an AMD EPYC,
AVX2: see ``make bench``). The forward pass and the gradient of the *input* use fast kernels.

The weight gradient of ``y = conv2d(x, W)`` is a plain matrix product: with the image patches of every
image and output position as rows (``cols``, ``N·H'·W'`` × ``kh·kw·C``) and the output gradient as
``N·H'·W'`` × ``K``, ``dW = gᵀ · cols``. :func:`weight_grad` builds ``cols`` straight from the
channels-last input and calls one GEMM, which runs near the machine's matmul peak.
:func:`gemm_weight_grad` makes a model's plain convolutions use it for the duration of a ``with`` block;
the forward pass, the input gradient and the bias gradient stay PyTorch's own. The result equals
autograd's up to float rounding (the sums run in another order, as with another thread count).
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn as nn
import torch.nn.functional as F


def weight_grad(x: torch.Tensor, g: torch.Tensor, kernel, stride, padding) -> torch.Tensor:
    """dL/dW of ``conv2d(x, W, stride=stride, padding=padding)`` (groups 1, dilation 1) from the output
    gradient ``g``: one GEMM over every image and output position. Returned channels-last, (K, C, kh, kw)."""
    kh, kw = kernel
    n, c = x.shape[:2]
    k, ho, wo = g.shape[1:]
    gm = g.permute(0, 2, 3, 1).reshape(n * ho * wo, k)                 # a view when g is channels-last
    xh = x.permute(0, 2, 3, 1)                                          # N, H, W, C
    if padding[0] or padding[1]:
        xh = F.pad(xh, (0, 0, padding[1], padding[1], padding[0], padding[0]))
    patches = xh.unfold(1, kh, stride[0]).unfold(2, kw, stride[1])     # N, H', W', C, kh, kw (views)
    cols = patches.permute(0, 1, 2, 4, 5, 3).reshape(n * ho * wo, kh * kw * c)
    return (gm.t() @ cols).view(k, kh, kw, c).permute(0, 3, 1, 2)


class _Conv2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding):
        ctx.save_for_backward(x, weight)
        ctx.conf = (stride, padding, bias is not None)
        return F.conv2d(x, weight, bias, stride, padding)

    @staticmethod
    def backward(ctx, g):
        x, weight = ctx.saved_tensors
        stride, padding, has_bias = ctx.conf
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            dx = torch.ops.aten.convolution_backward(g, x, weight, None, stride, padding, (1, 1), False,
                                                     (0, 0), 1, (True, False, False))[0]
        if ctx.needs_input_grad[1]:
            dw = weight_grad(x, g, weight.shape[2:], stride, padding)
        if has_bias and ctx.needs_input_grad[2]:
            db = g.sum((0, 2, 3))
        return dx, dw, db, None, None


class GemmGradConv2d(nn.Conv2d):
    """An ``nn.Conv2d`` whose weight gradient is :func:`weight_grad`; the same parameters and state dict.
    Without gradients, or under autocast (mixed dtypes), it is the plain ``nn.Conv2d``."""

    def forward(self, x):
        if torch.is_grad_enabled() and self.weight.requires_grad and not torch.is_autocast_enabled(x.device.type):
            return _Conv2d.apply(x, self.weight, self.bias, self.stride, self.padding)
        return super().forward(x)


def eligible(m: nn.Module) -> bool:
    """A plain zero-padded 2-d convolution with groups 1 and dilation 1 (every conv of a torchvision ResNet)."""
    return (type(m) is nn.Conv2d and m.groups == 1 and m.dilation == (1, 1) and m.padding_mode == "zeros"
            and isinstance(m.padding, tuple))


@contextlib.contextmanager
def gemm_weight_grad(model: nn.Module, enabled: bool = True):
    """Inside the block, ``model``'s eligible convolutions compute weight gradients by :func:`weight_grad`;
    yields how many. Nothing else changes, and they are plain ``nn.Conv2d`` again when the block ends (a copy
    or pickle of the model made inside the block keeps the subclass: save state dicts, as fnlib does)."""
    convs = [m for m in model.modules() if eligible(m)] if enabled else []
    for m in convs:
        m.__class__ = GemmGradConv2d
    try:
        yield len(convs)
    finally:
        for m in convs:
            if type(m) is GemmGradConv2d:          # leave alone what was changed inside the block
                m.__class__ = nn.Conv2d
