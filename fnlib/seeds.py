"""The headline numbers again for other training seeds: how much of a result is the seed's?

One interval over images (Wilson) says how sure a number is for *this* network; a second network trained
from another seed (other initial weights, other batch order) can differ by more. :func:`measure` computes,
for one checkpoint, the numbers the claims rest on; :func:`spread` gives their mean and a t interval over
seeds (n seeds: t with n − 1 degrees of freedom, wide for n = 3, which is the honest width). A seed whose
S or S' is empty has no Algorithm 1 number; ``seeds`` counts the seeds behind each mean.
"""
from __future__ import annotations

from .attacks import accuracy_under_attack
from .defence import filter_layer, search_sigma
from .evaluate import accuracy
from .kernels import rank
from .stats import t_interval
from .targeting import algorithm1


def measure(model, test, ranked, val=None, attack_eps=(0.015,), target_eps=(0.015,), spaces=("pixel",),
            filter_eps=0.015, filter_mode="hard", n_sigma=10, batch_size=500, drop="weights",
            layer="conv1") -> list[dict]:
    """Rows {quantity, epsilon, space, value} for one model: clean accuracy, fraction fragile, mean drop
    accuracy, FGSM accuracy, % attacking S (Algorithm 1 at ``layer``) and, with ``val``, the filter's FGSM
    gain — each computed as the pipeline's own steps compute it (same ``drop``, ``layer``, images)."""
    x, y = test
    r = rank(model, *ranked, drop=drop, batch_size=batch_size)
    rows = [{"quantity": "clean_accuracy", "value": accuracy(model, x, y, batch_size)},
            {"quantity": "fraction_fragile", "value": 100.0 * len(r.fragile) / len(r.accuracies)},
            {"quantity": "mean_drop", "value": r.mean}]
    for space in spaces:
        rows += [{"quantity": "fgsm_accuracy", "epsilon": a["epsilon"], "space": space, "value": a["accuracy"]}
                 for a in accuracy_under_attack(model, x, y, attack_eps, space, batch_size)]
        if r.fragile and r.null:
            rows += [{"quantity": "attacking_s", "epsilon": t["epsilon"], "space": space, "value": t["percent"]}
                     for t in algorithm1(model, x, y, r.fragile, r.null, target_eps, layer, space, batch_size)]
    if val is not None and r.fragile and r.null:
        sigma, _ = search_sigma(model, r.fragile, r.null, *val, filter_eps, spaces[0], filter_mode, n=n_sigma)
        filtered = filter_layer(model, r.fragile, r.null, sigma, filter_mode)
        (before,) = accuracy_under_attack(model, x, y, [filter_eps], spaces[0], batch_size)
        (after,) = accuracy_under_attack(filtered, x, y, [filter_eps], spaces[0], batch_size)
        rows.append({"quantity": "filter_gain", "epsilon": filter_eps, "space": spaces[0],
                     "value": after["accuracy"] - before["accuracy"]})
    return [{"epsilon": "", "space": "", **row} for row in rows]


def spread(rows: list[dict]) -> list[dict]:
    """Mean, t interval, min and max over seeds for each (epoch, quantity, epsilon, space)."""
    groups: dict[tuple, list[float]] = {}
    for r in rows:
        groups.setdefault((int(r["epoch"]), r["quantity"], str(r["epsilon"]), r["space"]), []).append(float(r["value"]))
    out = []
    for (epoch, quantity, eps, space), values in sorted(groups.items()):
        finite = [v for v in values if v == v]
        mean, lo, hi = t_interval(finite)
        out.append({"epoch": epoch, "quantity": quantity, "epsilon": eps, "space": space, "seeds": len(finite),
                    "mean": mean, "low": lo, "high": hi, "min": min(finite, default=float("nan")),
                    "max": max(finite, default=float("nan"))})
    return out
