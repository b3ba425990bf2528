"""The headline numbers again for other training seeds: how much of a result is the seed's?

One interval over images (Wilson) says how sure a number is for *this* network; a second network trained
from another seed (other initial weights, other batch order) can differ by more. :func:`measure` computes,
for one checkpoint, the numbers the claims rest on; :func:`spread` gives their mean and a t interval over
seeds (n seeds: t with n − 1 degrees of freedom, wide for n = 3, which is the honest width).
"""
from __future__ import annotations

import math

from scipy import stats as _st

from .attacks import accuracy_under_attack
from .defence import filter_layer, search_sigma
from .evaluate import accuracy
from .kernels import rank
from .targeting import algorithm1


def measure(model, test, ranked, val=None, attack_eps=(0.015,), target_eps=(0.015,), spaces=("pixel",),
            filter_eps=0.015, filter_mode="hard", n_sigma=10, batch_size=500) -> list[dict]:
    """Rows {quantity, epsilon, space, value} for one model: clean accuracy, fraction fragile, mean drop
    accuracy, FGSM accuracy, % attacking S (Algorithm 1, conv1) and, with ``val``, the filter's FGSM gain."""
    x, y = test
    r = rank(model, *ranked, batch_size=batch_size)
    rows = [{"quantity": "clean_accuracy", "value": accuracy(model, x, y, batch_size)},
            {"quantity": "fraction_fragile", "value": 100.0 * len(r.fragile) / len(r.accuracies)},
            {"quantity": "mean_drop", "value": r.mean}]
    for space in spaces:
        rows += [{"quantity": "fgsm_accuracy", "epsilon": a["epsilon"], "space": space, "value": a["accuracy"]}
                 for a in accuracy_under_attack(model, x, y, attack_eps, space, batch_size)]
        if r.fragile and r.null:
            rows += [{"quantity": "attacking_s", "epsilon": t["epsilon"], "space": space, "value": t["percent"]}
                     for t in algorithm1(model, x, y, r.fragile, r.null, target_eps, "conv1", space, batch_size)]
    if val is not None and r.fragile and r.null:
        sigma, _ = search_sigma(model, r.fragile, r.null, *val, filter_eps, spaces[0], filter_mode, n=n_sigma)
        filtered = filter_layer(model, r.fragile, r.null, sigma, filter_mode)
        (before,) = accuracy_under_attack(model, x, y, [filter_eps], spaces[0], batch_size)
        (after,) = accuracy_under_attack(filtered, x, y, [filter_eps], spaces[0], batch_size)
        rows.append({"quantity": "filter_gain", "epsilon": filter_eps, "space": spaces[0],
                     "value": after["accuracy"] - before["accuracy"]})
    return [{"epsilon": "", "space": "", **row} for row in rows]


def t_interval(values, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and the two ends of the t interval of the mean (NaN ends for fewer than two values)."""
    values = [float(v) for v in values if v == v]
    if not values:
        return float("nan"), float("nan"), float("nan")
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, float("nan"), float("nan")
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    half = _st.t.ppf((1 + level) / 2, len(values) - 1) * sd / math.sqrt(len(values))
    return mean, mean - half, mean + half


def spread(rows: list[dict]) -> list[dict]:
    """Mean, t interval, min and max over seeds for each (epoch, quantity, epsilon, space)."""
    groups: dict[tuple, list[float]] = {}
    for r in rows:
        groups.setdefault((int(r["epoch"]), r["quantity"], str(r["epsilon"]), r["space"]), []).append(float(r["value"]))
    out = []
    for (epoch, quantity, eps, space), values in sorted(groups.items()):
        mean, lo, hi = t_interval(values)
        finite = [v for v in values if v == v]
        out.append({"epoch": epoch, "quantity": quantity, "epsilon": eps, "space": space, "seeds": len(values),
                    "mean": mean, "low": lo, "high": hi, "min": min(finite, default=float("nan")),
                    "max": max(finite, default=float("nan"))})
    return out
