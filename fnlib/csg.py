"""Cumulative spectral gradient (CSG), a data set's complexity (Branchaud-Charron et al., CVPR 2019).

The paper (Sec 3.1) quotes CSG 1.00 for CIFAR-10 and 0.11 for MNIST from that work. We recompute it with
the algorithm of the authors' package ``spectral-metric`` (0.6.1), written here in a few lines because the
package pins ``seaborn<0.12``, needs scikit-learn and draws its samples unseeded:

1. embed the images: ``pca`` — pixels in [0, 1], centred, projected on their ``dim`` leading principal
   axes (exact eigendecomposition of the covariance; the original work used t-SNE of CNN-autoencoder codes,
   so absolute values differ with the embedding, the order of data sets is what compares);
2. draw M images per class; for each, its k nearest neighbours among all embedded images give class
   proportions p(C_j | x), divided by the volume of the box spanning the neighbours (a Parzen window,
   at least 1e-4); the class-i row S_i is their sum over the M images, normalized to sum 1;
3. W_ij = 1 − Bray-Curtis(S_i, S_j), L = D − W (unnormalized Laplacian), eigenvalues λ₀ ≤ … ≤ λ_{K−1};
4. CSG = Σᵢ cummax((λᵢ₊₁ − λᵢ) / (K − i)), i = 0 … K − 2.

Draws repeat from a seed; the spread over resamples gives the interval.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.sparse.csgraph import laplacian


def embed_pca(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Images (N, C, H, W), uint8 or [0, 1] floats → (N, dim) float64 coordinates on the leading principal axes."""
    z = x.flatten(1).double()
    z = z / 255 if x.dtype == torch.uint8 else z
    if not 1 <= dim <= z.shape[1]:
        raise ValueError(f"dim must lie in 1..{z.shape[1]}, got {dim}")
    z = z - z.mean(0)
    _, vecs = torch.linalg.eigh(z.T @ z / len(z))      # ascending eigenvalues
    return z @ vecs[:, -dim:].flip(1)


def similarity(z: torch.Tensor, y: torch.Tensor, m: int = 250, k: int = 3, seed: int = 0) -> np.ndarray:
    """S (K, K): row i estimates E_{x∼C_i}[p(C_j | x)] with k-NN proportions over Parzen-window volumes."""
    y = y.long()
    classes = int(y.max()) + 1
    g = torch.Generator().manual_seed(seed)
    s = np.zeros((classes, classes))
    for c in range(classes):
        members = torch.nonzero(y == c).flatten()
        if len(members) <= k:
            raise ValueError(f"class {c} has {len(members)} images; CSG needs more than k = {k}")
        pick = members[torch.randperm(len(members), generator=g)[:m]]
        near = torch.cdist(z[pick], z).argsort(dim=1)[:, :k + 1]          # self first (distance 0)
        for row, idx in zip(pick, near):
            idx = idx[idx != row][:k] if (idx == row).any() else idx[1:]
            prob = torch.bincount(y[idx], minlength=classes).double() / k
            volume = max(1e-4, ((z[idx] - z[row]).abs().amax(0) * 2).prod().item())
            s[c] += (prob / volume).numpy()
        s[c] /= s[c].sum()
    s[~np.isfinite(s)] = 0
    return s


def spectrum(s: np.ndarray) -> np.ndarray:
    """Eigenvalues (ascending) of the Laplacian of W = 1 − Bray-Curtis distance between the rows of S."""
    num = np.abs(s[:, None, :] - s[None, :, :]).sum(-1)
    den = np.abs(s[:, None, :] + s[None, :, :]).sum(-1)
    w = 1 - np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    return np.linalg.eigvalsh(laplacian(w, normed=False))


def csg(evals: np.ndarray) -> float:
    """Σ cummax of the eigengaps λᵢ₊₁ − λᵢ divided by K − i."""
    gaps = np.diff(evals)
    return float(np.maximum.accumulate(gaps / np.arange(len(evals), 1, -1)).sum())


def resample(z: torch.Tensor, y: torch.Tensor, m: int = 250, k: int = 3, resamples: int = 10,
             seed: int = 0) -> list[float]:
    """CSG of ``resamples`` independent draws of M images per class."""
    return [csg(spectrum(similarity(z, y, m, k, seed * 1000 + r))) for r in range(resamples)]
