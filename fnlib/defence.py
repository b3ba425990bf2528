"""The paper's defence (Sec 4.1-4.2, eqs 3-9): filter the null kernels, amplify the fragile ones.

K_{S'} stacks the flattened null kernels of conv1 as rows and is decomposed as UΣVᵀ (eq 3). Singular
values are thresholded at τ = λ(β)·√max(m, n)·σ_noise (eqs 5-6, Gavish & Donoho), with β = min/max of
the matrix shape so that τ does not depend on which way the matrix is oriented:

* ``mode="hard"`` (default): σ̃ᵢ = σᵢ if σᵢ > τ else 0 — Gavish-Donoho's hard threshold, a lower-rank matrix;
* ``mode="clamp"``: σ̃ᵢ = min(σᵢ, τ) — eq (4) read literally (it caps the large values instead).

K̃_{S'} = UΣ̃Vᵀ replaces the null kernels (eq 7), and the fragile kernels become α·K_S (eq 8) with
α = 1 + ‖K_{S'} − K̃_{S'}‖₂ (our reading of eq 9, whose printed form is circular). σ_noise comes from a
grid search on a validation split (:func:`search_sigma`).
"""
from __future__ import annotations

import copy
import math

import torch
from tqdm import tqdm

from .attacks import accuracy_under_attack
from .targeting import check_sets

MODES = ("hard", "clamp")


def gd_lambda(beta: float) -> float:
    """λ(β) of eq (6) with c₁ = 8, c₂ = 14; λ(1) = 4/√3."""
    if not 0 < beta <= 1:
        raise ValueError(f"β must lie in (0, 1], got {beta}")
    return math.sqrt(2 * (beta + 1) + 8 * beta / ((beta + 1) + math.sqrt(beta ** 2 + 14 * beta + 1)))


def threshold(shape, sigma: float) -> float:
    """τ of eq (5) for an m×n matrix: λ(β)·√max(m, n)·σ_noise with β = min(m, n)/max(m, n)."""
    m, n = (int(s) for s in shape)
    if m < 1 or n < 1:
        raise ValueError(f"matrix shape must be positive, got {shape}")
    if sigma < 0:
        raise ValueError(f"σ_noise must be ≥ 0, got {sigma}")
    return gd_lambda(min(m, n) / max(m, n)) * math.sqrt(max(m, n)) * sigma


def shrink(singular_values: torch.Tensor, tau: float, mode: str = "hard") -> torch.Tensor:
    """Eq (4): hard threshold (drop σ ≤ τ) or literal clamp (cap σ at τ)."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; allowed: {', '.join(MODES)}")
    if mode == "hard":
        return torch.where(singular_values > tau, singular_values, torch.zeros_like(singular_values))
    return singular_values.clamp(max=tau)


def filter_kernels(weight: torch.Tensor, fragile, null, sigma: float, mode: str = "hard"):
    """Eqs 3-9 on a conv weight (C_out, C_in, kh, kw): returns (new weight, report dict)."""
    fragile, null = check_sets(fragile, null, weight.shape[0])
    w = weight.detach().double()
    k_null = w[null].flatten(1)                                   # K_{S'}: |S'| × (C_in·kh·kw)
    u, s, vt = torch.linalg.svd(k_null, full_matrices=False)      # eq 3
    tau = threshold(k_null.shape, sigma)
    s_new = shrink(s, tau, mode)                                  # eq 4
    k_null_new = u @ torch.diag(s_new) @ vt                       # eq 7
    alpha = 1.0 + torch.linalg.matrix_norm(k_null - k_null_new, ord=2).item()   # eq 9 (our reading)
    out = w.clone()
    out[null] = k_null_new.view(-1, *w.shape[1:])
    out[fragile] = alpha * w[fragile]                             # eq 8
    m, n = k_null.shape
    report = {"mode": mode, "sigma_noise": float(sigma), "tau": tau, "shape": [m, n],
              "beta": min(m, n) / max(m, n), "lambda": gd_lambda(min(m, n) / max(m, n)), "alpha": alpha,
              "singular_values_before": s.tolist(), "singular_values_after": s_new.tolist(),
              "rank_before": int((s > 0).sum()), "rank_after": int((s_new > 0).sum()),
              "fragile": fragile, "null": null}
    return out.to(weight.dtype), report


def filter_layer(model, fragile, null, sigma: float, mode: str = "hard"):
    """A filtered copy of ``model`` (conv1 replaced, eqs 3-9); the report is ``copy.filter_report``."""
    filtered = copy.deepcopy(model)
    new_weight, report = filter_kernels(model.conv1.weight, fragile, null, sigma, mode)
    with torch.no_grad():
        filtered.conv1.weight.copy_(new_weight)
    filtered.filter_report = report
    return filtered.eval()


def sigma_grid(weight: torch.Tensor, null, n: int = 12) -> list[float]:
    """σ_noise values whose τ run geometrically from the smallest to the largest singular value of K_{S'}."""
    null = sorted(int(k) for k in null)
    if not null:
        raise ValueError("S' (null) must be non-empty; rank the kernels first (fnlib.kernels.rank)")
    if not all(0 <= k < weight.shape[0] for k in null):
        raise ValueError(f"kernel indices must lie in 0..{weight.shape[0] - 1}")
    k_null = weight.detach().double()[null].flatten(1)
    s = torch.linalg.svdvals(k_null)
    lo, hi = max(s.min().item(), 1e-12), s.max().item()
    scale = threshold(k_null.shape, 1.0)
    if n == 1:
        return [lo * (1 + 1e-9) / scale]
    # τ a hair above each grid point, so that the smallest candidate removes at least one value
    return [lo * (hi / lo) ** (i / (n - 1)) * (1 + 1e-9) / scale for i in range(n)]


def search_sigma(model, fragile, null, x_val, y_val, eps: float = 0.015, space: str = "pixel",
                 mode: str = "hard", sigmas=None, n: int = 12, progress: bool = False):
    """Grid search of σ_noise maximizing FGSM accuracy at ``eps`` on a validation split (never the test set).

    Returns (best σ, rows) with one row per candidate: sigma, tau, removed, alpha, val_accuracy.
    Ties go to the smaller σ (the gentler filter).
    """
    fragile, null = check_sets(fragile, null, model.conv1.out_channels)
    sigmas = sigma_grid(model.conv1.weight, null, n) if sigmas is None else [float(s) for s in sigmas]
    if not sigmas:
        raise ValueError("the σ_noise grid is empty")
    rows = []
    for sigma in tqdm(sigmas, desc="σ_noise search", disable=not progress, mininterval=5):
        filtered = filter_layer(model, fragile, null, sigma, mode)
        (res,) = accuracy_under_attack(filtered, x_val, y_val, [eps], space)
        rep = filtered.filter_report
        rows.append({"sigma": sigma, "tau": rep["tau"], "removed": rep["rank_before"] - rep["rank_after"],
                     "alpha": rep["alpha"], "val_accuracy": res["accuracy"]})
    best = max(rows, key=lambda r: (r["val_accuracy"], -r["sigma"]))
    return best["sigma"], rows
