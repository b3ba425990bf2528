"""Controls for Algorithm 1: does the count follow the adversary, or the size of the kernels?

Algorithm 1 counts an image when the mean output distance over the fragile kernels S exceeds the mean
over the null kernels S'. conv1 is linear, so a kernel with a larger weight norm moves its output further
under *any* perturbation. Each control changes one ingredient and keeps the rest:

* ``algorithm1`` — the paper's: FGSM, S from nodal dropout;
* ``random_sign`` — a random ±1 perturbation of the same L∞ size instead of FGSM's sign;
* ``random_sets`` — S drawn at random, |S| kernels of the 64 (mean and 2.5–97.5 % range over draws, and the
  empirical one-sided p-values of the paper's S against those draws: ``p_above``, ``p_below``);
* ``norm_sets`` — S = the |S| kernels of largest weight norm, instead of nodal dropout;
* ``per_norm`` — distances divided by the kernel's weight norm, d_k / ‖W_k‖, with the paper's S.

If ``random_sign`` is as high as ``algorithm1`` and ``norm_sets`` as high as both, the count measures kernel
norms rather than where the adversary aims; ``per_norm`` shows what is left once norms are divided out.
"""
from __future__ import annotations

import torch
from tqdm import tqdm

from .attacks import _floats, batches, check_epsilons, check_space, gradient_sign, perturb
from .targeting import channel_distances, check_sets

CONTROLS = ("algorithm1", "random_sign", "random_sets", "norm_sets", "per_norm")


def set_means(d: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Mean of d (N, C) over each kernel set in ``masks`` (K, C) bool → (N, K)."""
    m = masks.to(d.dtype)
    return d @ m.T / m.sum(1)


def fragile_wins(d: torch.Tensor, fragile_masks: torch.Tensor) -> torch.Tensor:
    """For each set S in ``fragile_masks`` (its complement is S'), which images have S_f > S_n → (N, K) bool."""
    return set_means(d, fragile_masks) > set_means(d, ~fragile_masks)


def empirical_p(count: int, draws: torch.Tensor) -> tuple[float, float]:
    """One-sided permutation p-values of an observed ``count`` against random ``draws`` of the same statistic:
    (1 + #draws ≥ count) / (1 + #draws) for 'above', and the same with ≤ for 'below'. Ties count against the
    observed set, so a set that merely ties random ones is never called special."""
    n = len(draws)
    return (1 + int((draws >= count).sum())) / (1 + n), (1 + int((draws <= count).sum())) / (1 + n)


def random_masks(channels: int, size: int, n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    masks = torch.zeros(n, channels, dtype=torch.bool)
    for i in range(n):
        masks[i, torch.randperm(channels, generator=g)[:size]] = True
    return masks


def kernel_norms(model) -> torch.Tensor:
    return model.conv1.weight.detach().flatten(1).norm(dim=1).cpu()


def algorithm1_controls(model, x, y, fragile, null, epsilons, layer: str = "conv1", space: str = "pixel",
                        n_sets: int = 20, seed: int = 0, batch_size: int = 500, progress: bool = False) -> list[dict]:
    """Percent of images with S_f > S_n for every control and ε (rows: control, epsilon, n, percent, low, high;
    the ``random_sets`` rows add ``p_above`` and ``p_below``, :func:`empirical_p` of the paper's S)."""
    check_space(space)
    epsilons = check_epsilons(epsilons)
    fragile, null = check_sets(fragile, null, model.conv1.out_channels)
    channels = model.conv1.out_channels
    device = next(model.parameters()).device
    model.eval()
    paper = torch.zeros(1, channels, dtype=torch.bool)
    paper[0, fragile] = True
    norms = kernel_norms(model)
    by_norm = torch.zeros(1, channels, dtype=torch.bool)
    by_norm[0, norms.argsort(descending=True)[:len(fragile)]] = True
    rand = random_masks(channels, len(fragile), n_sets, seed)
    counts = {c: torch.zeros(len(epsilons), n_sets if c == "random_sets" else 1, dtype=torch.long) for c in CONTROLS}
    g = torch.Generator().manual_seed(seed)
    for xb, yb in tqdm(list(batches(x, y, batch_size)), desc="controls", disable=not progress, mininterval=5):
        xb, yb = _floats(xb, device), yb.to(device)
        sign = gradient_sign(model, xb, yb)
        noise = (torch.randint(0, 2, xb.shape, generator=g) * 2 - 1).to(device, xb.dtype)
        with torch.no_grad():
            clean = model.stem(model.normalize(xb), layer)
            for j, eps in enumerate(epsilons):
                d = channel_distances(clean, model.stem(model.normalize(perturb(model, xb, sign, eps, space)), layer)).cpu()
                d_rand = channel_distances(clean, model.stem(model.normalize(perturb(model, xb, noise, eps, space)),
                                                             layer)).cpu()
                counts["algorithm1"][j] += fragile_wins(d, paper).sum(0)
                counts["random_sign"][j] += fragile_wins(d_rand, paper).sum(0)
                counts["random_sets"][j] += fragile_wins(d, rand).sum(0)
                counts["norm_sets"][j] += fragile_wins(d, by_norm).sum(0)
                counts["per_norm"][j] += fragile_wins(d / norms.clamp_min(1e-12), paper).sum(0)
    n = len(x)
    rows = []
    for c in CONTROLS:
        for j, eps in enumerate(epsilons):
            pct = 100.0 * counts[c][j].double() / n
            lo, hi = (torch.quantile(pct, 0.025).item(), torch.quantile(pct, 0.975).item()) if len(pct) > 1 \
                else (pct.item(), pct.item())
            row = {"control": c, "epsilon": eps, "n": n, "percent": pct.mean().item(), "low": lo, "high": hi,
                   "layer": layer, "space": space}
            if c == "random_sets":
                row["p_above"], row["p_below"] = empirical_p(int(counts["algorithm1"][j, 0]), counts[c][j])
            rows.append(row)
    return rows
