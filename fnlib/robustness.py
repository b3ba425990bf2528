"""The defence under stronger and fairer tests than the paper's white-box FGSM.

Models, all scored on the same test images:

* ``original`` — the trained network;
* ``filtered`` — the paper's filter (S, S' ranked on the test images, σ_noise searched on validation);
* ``filtered_val`` — the same filter with S, S' ranked on the validation split, so no test image chose
  the kernels it then scores;
* ``filtered_bn`` — ``filtered`` with every BatchNorm's running statistics recomputed on training images.
  The filtered model keeps bn1's statistics of the unfiltered conv1: that mismatch is what lets α act at
  all. Recomputing them normalizes α·K_S back to the scale bn1 expects;
* ``original_bn`` — the original with its statistics recomputed the same way, the fair baseline of
  ``filtered_bn`` (a short training run's running averages can be off on their own).

Attacks, each at every ε: ``fgsm`` and ``pgd`` white-box (made on the model scored); ``fgsm_transfer``
and ``pgd_transfer`` made on ``original`` and scored on the filtered models (for ``original`` they are the
white-box rows). Each row records the images right for its baseline only and for the model only under
the same attack, the pairs of McNemar's test (:mod:`fnlib.stats`); the baseline is ``original``, and
``original_bn`` for ``filtered_bn`` (column ``baseline``).
"""
from __future__ import annotations

import copy

import torch
import torch.nn as nn

from .attacks import _floats, batches, check_epsilons, gradient_sign, perturb
from .pgd import pgd
from .stats import mcnemar_greater, wilson

ATTACKS = ("fgsm", "pgd", "fgsm_transfer", "pgd_transfer")
BASELINES = {"filtered_bn": "original_bn"}


def baseline(model: str) -> str:
    return BASELINES.get(model, "original")


def recompute_bn(model, x, batch_size: int = 500):
    """A copy of ``model`` whose BatchNorm running statistics are the exact averages over the images ``x``."""
    out = copy.deepcopy(model)
    bns = [m for m in out.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        raise ValueError("the model has no BatchNorm layer to recompute")
    device = next(out.parameters()).device
    for m in bns:
        m.reset_running_stats()
        m.momentum = None                   # cumulative average over every batch seen
    out.train()
    with torch.no_grad():
        for xb, _ in batches(x, torch.zeros(len(x)), batch_size):
            out(_floats(xb, device))
    return out.eval()


def _right(model, x_adv, y) -> torch.Tensor:
    with torch.no_grad():
        return (model(x_adv).argmax(1) == y).cpu()


def under_attack(models: dict, x, y, epsilons, steps: int = 20, seed: int = 0, batch_size: int = 500) -> dict:
    """Per-image correctness {(model, attack): bool (len(epsilons), N)}; ``models`` must hold ``original``."""
    if "original" not in models:
        raise ValueError("models must include 'original' (the transfer attacks are made on it)")
    epsilons = check_epsilons(epsilons)
    device = next(models["original"].parameters()).device
    g = torch.Generator().manual_seed(seed)
    for m in models.values():
        m.eval()
    hits = {}
    for xb, yb in batches(x, y, batch_size):
        xb, yb = _floats(xb, device), yb.to(device)
        signs = {name: gradient_sign(m, xb, yb) for name, m in models.items()}
        rows = {}
        for eps in epsilons:
            made = {"fgsm": perturb(models["original"], xb, signs["original"], eps, "pixel"),
                    "pgd": pgd(models["original"], xb, yb, eps, steps, generator=g)}
            for attack, xa in made.items():
                rows.setdefault(("original", attack), []).append(_right(models["original"], xa, yb))
            for name, m in models.items():
                if name == "original":
                    continue
                for attack, xa in made.items():
                    rows.setdefault((name, f"{attack}_transfer"), []).append(_right(m, xa, yb))
                rows.setdefault((name, "fgsm"), []).append(_right(m, perturb(m, xb, signs[name], eps, "pixel"), yb))
                rows.setdefault((name, "pgd"), []).append(_right(m, pgd(m, xb, yb, eps, steps, generator=g), yb))
        for key, per_eps in rows.items():
            hits.setdefault(key, []).append(torch.stack(per_eps))
    return {key: torch.cat(parts, dim=1) for key, parts in hits.items()}


def table(hits: dict, epsilons) -> list[dict]:
    """Rows: model, baseline, attack, epsilon, n, accuracy, low, high, only_original (right for the baseline
    only), only_model, p_better, p_worse (one-sided exact McNemar against the baseline)."""
    epsilons = check_epsilons(epsilons)
    rows = []
    for (name, attack), right in sorted(hits.items()):
        ref = baseline(name)
        base = hits.get((ref, attack)) if ref != "original" else None
        base = base if base is not None else hits[("original", attack.replace("_transfer", ""))]
        for j, eps in enumerate(epsilons):
            k, n = int(right[j].sum()), right.shape[1]
            lo, hi = wilson(k, n)
            only_o = int((base[j] & ~right[j]).sum())
            only_m = int((right[j] & ~base[j]).sum())
            rows.append({"model": name, "baseline": ref, "attack": attack, "epsilon": eps, "n": n,
                         "accuracy": 100.0 * k / n,
                         "low": lo, "high": hi, "only_original": only_o, "only_model": only_m,
                         "p_better": mcnemar_greater(only_m, only_o), "p_worse": mcnemar_greater(only_o, only_m)})
    return rows
