"""Measure the spread that sets the tolerances of test_smoke_regression.py.

    python tests/calibrate.py REF_RESULTS VARIANT_RESULTS...      # each a results/smoke folder

Make the variants with, e.g. (each ≈ 3 min on 2 cores)::

    OMP_NUM_THREADS=1 python -m fnlib run --profile smoke --workdir /tmp/cal/omp1
    ONEDNN_MAX_CPU_ISA=AVX2 python -m fnlib run --profile smoke --workdir /tmp/cal/avx2
    python -m fnlib run --profile smoke --set seed=1 --workdir /tmp/cal/seed1

and pass ``/tmp/cal/<name>/results/smoke``. Prints, per compared column, the largest absolute difference
from the reference over every variant, and the tolerance rule's value (1.5 × spread, rounded up).
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from test_smoke_regression import EPOCHS, FILES, RUNS, TOL  # noqa: E402


def spread(ref: Path, variant: Path) -> dict:
    out = {}

    def note(col, diff):
        out[col] = max(out.get(col, 0.0), float(diff))
    for dataset, arch in RUNS:
        for pattern, _ in FILES:
            for e in EPOCHS if "{e}" in pattern else (None,):
                rel = Path(dataset, arch, pattern.format(e=e))
                if not (variant / rel).exists():
                    print(f"note: {variant / rel} missing, skipped")
                    continue
                a, b = pd.read_csv(variant / rel), pd.read_csv(ref / rel)
                for col in a.columns:
                    if col in TOL:
                        note(col, (a[col] - b[col]).abs().max())
        for e in EPOCHS:
            a, b = (json.loads((r / dataset / arch / f"e{e}" / "meta.json").read_text()) for r in (variant, ref))
            for k in ("base_accuracy", "mean", "fraction_fragile"):
                note(k, abs(a[k] - b[k]))
        a, b = (json.loads((r / dataset / arch / "e1" / "defence.json").read_text()) for r in (variant, ref))
        note("alpha (not compared)", abs(a["alpha"] - b["alpha"]))
        note("accuracy", max(abs(a[k] - b[k]) for k in ("clean_original", "clean_filtered")))
    return out


def main(argv) -> int:
    ref, variants = Path(argv[0]), [Path(v) for v in argv[1:]]
    table = pd.DataFrame({v.parent.parent.name if v.name == "smoke" else v.name: spread(ref, v) for v in variants})
    table["max"] = table.max(axis=1)
    table["rule 1.5×"] = [math.ceil(15 * m) / 10 if m >= 1 else math.ceil(150 * m) / 100 for m in table["max"]]
    table["TOL now"] = [TOL.get(c) for c in table.index]
    print(table.round(3).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
