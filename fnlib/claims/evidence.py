"""Values read from a checkpoint's results files (SPEC §4) for the claims table: a table's value at an ε, the
image count of a step, per-image correctness under FGSM, and percentages as the table prints them."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import results


def read_csv(path: Path) -> pd.DataFrame | None:
    return pd.read_csv(path) if path.exists() else None


def value_at(df, epsilon: float, column: str, **where):
    """The value of ``column`` at ``epsilon`` in a results table, rows filtered by ``where``; None when the
    table or the row is absent (a filter on a column the table lacks is a KeyError, never ignored)."""
    if df is None:
        return None
    for k, v in where.items():
        df = df[df[k] == v]
    hit = df[(df["epsilon"] - epsilon).abs() < 1e-9]
    return float(hit[column].iloc[0]) if len(hit) else None


def n_images(edir: Path, step: str) -> int | None:
    path = edir / f"{step}.json"
    return results.read_json(path).get("params", {}).get("n_images") if path.exists() else None


def correct_bits(edir: Path, space: str, epsilon: float) -> np.ndarray | None:
    """Per-image correctness at (space, ε) from ``attack_correct.npz`` (None when absent)."""
    path = edir / "attack_correct.npz"
    if not path.exists():
        return None
    with np.load(path) as z:
        eps = list(z["epsilons"])
        hit = [j for j, e in enumerate(eps) if abs(e - epsilon) < 1e-9]
        if not hit or space not in z:
            return None
        return np.unpackbits(z[space][hit[0]], count=int(z["n"])).astype(bool)


def pct(value: float, places: int = 1) -> str:
    """A percentage as text: ``places`` decimals, more where they would round a value strictly inside (0, 100) to
    0 or 100 (9,999 of 10,000 images reads 99.99, not 100.0)."""
    for p in range(places, places + 4):
        text = f"{value:.{p}f}"
        if not (0 < value < 100) or float(text) not in (0.0, 100.0):
            return text
    return text


def fmt_ci(lo: float, hi: float) -> str:
    """An interval in percent as text, '[99.96, 99.998]': two decimals, more where two would print an end strictly
    inside (0, 100) as 0 or 100 (never '[100.00, 100.00]' for an interval that does not reach 100)."""
    return f"[{pct(lo, 2)}, {pct(hi, 2)}]"
