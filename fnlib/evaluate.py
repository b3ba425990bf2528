"""Clean predictions and accuracy of a model, in fp32 and eval mode."""
from __future__ import annotations

import torch


@torch.no_grad()
def predict(model, x: torch.Tensor, batch_size: int = 1000, device=None) -> torch.Tensor:
    """Predicted labels for uint8 (N, C, H, W) or float [0, 1] images."""
    device = device or next(model.parameters()).device
    out = []
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size].to(device)
        xb = xb.float().div_(255) if xb.dtype == torch.uint8 else xb.float()
        out.append(model(xb).argmax(1).cpu())
    return torch.cat(out) if out else torch.empty(0, dtype=torch.long)


def correct(model, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Per-image correctness (bool), model in eval mode; for paired comparisons of two models."""
    was = model.training
    model.eval()
    hit = predict(model, x, batch_size) == y.cpu()
    model.train(was)
    return hit


def accuracy(model, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    """Top-1 accuracy in percent, model in eval mode."""
    return 100.0 * correct(model, x, y, batch_size).sum().item() / len(y)
