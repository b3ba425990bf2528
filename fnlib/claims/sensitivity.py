"""A row's sensitivity: its own rule applied once more under another reading of the same data, stored beside the
verdict (``sensitivity`` in ``summary.json``: one entry per reading) and never replacing it.

Each reading names the rule that defines it (:data:`~fnlib.claims.rules.RULES`), the value it gives, the verdict
the row's rule then gives, and whether that verdict differs from the row's (``flips``). A reading whose data have
not landed is ``pending`` and says what brings it. :func:`flip_reason` is the clause a row's reason gains when a
reading flips its verdict; :func:`moved_reason` the one it gains when a reading moves its value by more than the
row's margin without flipping it.
"""
from __future__ import annotations

from .verdict import Verdict


def reading(rule: str, text: str, verdict=None, ours: float | None = None, row_verdict=None,
            flips: bool | None = None, flip_percent: float | None = None) -> dict:
    """One measured reading. ``flips``: whether it judges otherwise than the row (default: whether ``verdict``
    differs from ``row_verdict``, both decided). A reading over many resamples has no one verdict: it gives
    ``flip_percent``, the percentage of resamples whose verdict differs, and ``flips`` stays None."""
    v = None if verdict is None else Verdict.of(verdict)
    if flips is None and flip_percent is None:
        flips = v is not None and row_verdict is not None and v.decided and Verdict.of(row_verdict).decided \
            and v is not Verdict.of(row_verdict)
    out = {"rule": rule, "status": "measured", "verdict": None if v is None else v.value,
           "ours": None if ours is None else round(float(ours), 2), "flips": flips, "text": text}
    return out if flip_percent is None else out | {"flip_percent": round(float(flip_percent), 2)}


def pending(rule: str, text: str) -> dict:
    """A reading that needs data not landed yet (``text``: what brings them)."""
    return _without_data(rule, "pending", text)


def unavailable(rule: str, text: str) -> dict:
    """A reading the results cannot give (``text``: why), e.g. a value the ε grid does not hold."""
    return _without_data(rule, "unavailable", text)


def _without_data(rule: str, status: str, text: str) -> dict:
    return {"rule": rule, "status": status, "verdict": None, "ours": None, "flips": None, "text": text}


def flip_reason(readings: dict[str, dict]) -> str:
    """'; inconclusive with S ranked on validation images (rule val_ranking)' for every reading whose own verdict
    differs from the row's (a reading's own ``clause``, where it has one, in place of the verdict and label); ''
    when none does."""
    return "".join(f"; {r.get('clause') or r['verdict'] + ' ' + LABELS.get(name, name)} (rule {r['rule']})"
                   for name, r in readings.items() if r["flips"] is True and r["verdict"])


def moved_reason(readings: dict[str, dict], ours: float | None, margin: float) -> str:
    """'; with S ranked on validation images 98.56 %, the same verdict (rule val_ranking)' for every reading that
    leaves the row's verdict as it is but moves its value by more than the row's stated ``margin`` (points): a
    reading that changes the number that much is worth a reader's eye even where the verdict survives it."""
    if ours is None:
        return ""
    return "".join(f"; {LABELS.get(name, name)} {r['ours']:.2f} %, the same verdict (rule {r['rule']})"
                   for name, r in readings.items()
                   if r["status"] == "measured" and r["flips"] is False and r.get("ours") is not None
                   and abs(r["ours"] - ours) > margin)


LABELS = {"val_ranking": "with S ranked on validation images",
          "eps_matched": "with the ε spaces matched in pixel step size",
          "eq4_literal": "with eq 4 read literally (clamp)",
          "test_images": "over bootstrap resamples of the test images",
          "seed_margin": "with the stated margin alone",
          "schedule": "trained on a schedule of its own",
          "seeds": "over three seeds"}
TITLES = {"val_ranking": "S ranked on validation images (step 12)",
          "eps_matched": "the ε spaces matched in pixel step size",
          "eq4_literal": "eq 4 read literally (step 13)",
          "test_images": "the split redrawn over the test images (step 11)",
          "seed_margin": "the refuting margin grounded in the seed spread",
          "schedule": "the model trained on a schedule that ends at the row's epoch (rule schedule)",
          "seeds": "the seed replicates (rule seeds)"}
