"""The data-set complexities that Sec 3.1 of the paper cites (cumulative spectral gradient, Branchaud-Charron et
al. 2019): recomputed, shown without a verdict on the values, and the order of the two data sets tested."""
from __future__ import annotations

from .. import results
from ..stats import INCONCLUSIVE, NOT, PENDING, REPRODUCED
from .rules import NO_VERDICT
from .sheet import Sheet


def complexity(t: Sheet) -> None:
    """Rows csg_cifar10 and csg_mnist (the value, no verdict) and csg_order (CIFAR-10 the more complex)."""
    csg_means = {}
    for dataset in ("cifar10", "mnist"):
        key, path = f"csg_{dataset}", t.root / dataset / t.p.archs[0] / "csg.json"
        if not path.exists():
            t.row(key, None, "—", "—", PENDING, note="cited by the paper from Branchaud-Charron et al. (2019)",
                  rules=("csg_value",))
            continue
        info = results.read_json(path)
        main = max(info["summary"], key=lambda r: r["dim"])         # stated in advance: the largest PCA dimension
        csg_means[dataset] = {r["dim"]: r for r in info["summary"]}
        lo, hi = main["low"], main["high"]
        t.row(key, main["mean"], f"{dataset} training images ({info['params']['m']} per class per draw, from "
            f"{info['params']['n_images']:,})",
            f"PCA-{main['dim']}, 95 % t interval over {info['params']['resamples']} draws", NO_VERDICT, ci=(lo, hi),
            rules=("csg_value",), runs=[f"{dataset}/{t.p.archs[0]}"],
            reason="a value that depends on the embedding: recomputed, not judged (the order is the next row)",
            note="other embeddings: " + ", ".join(
                f"PCA-{r['dim']} {r['mean']:.2f} [{r['low']:.2f}, {r['high']:.2f}]" for r in info["summary"] if r is not main)
            + "; at 64 dimensions the Parzen volumes span tens of orders of magnitude and many hit the 1e-4 floor, "
              "so a few draws dominate")
    if len(csg_means) == 2:
        dims = sorted(set(csg_means["cifar10"]) & set(csg_means["mnist"]))
        above = [csg_means["cifar10"][d]["low"] > csg_means["mnist"][d]["high"] for d in dims]
        below = [csg_means["cifar10"][d]["high"] < csg_means["mnist"][d]["low"] for d in dims]
        t.row("csg_order", None, "cifar10 vs mnist", f"{len(dims)} embedding dimensions",
            PENDING if not dims else REPRODUCED if all(above) else NOT if any(below) else INCONCLUSIVE,
            rules=("csg_order",), runs=[f"{d}/{t.p.archs[0]}" for d in ("cifar10", "mnist")],
            reason=f"CIFAR-10's interval lies above MNIST's at {sum(above)} of {len(dims)} embedding dimensions", item="CIFAR-10 is the more complex data set (CSG CIFAR-10 > MNIST, Sec 3.1)",
            paper="1.00 > 0.11", note=f"disjoint and above at {sum(above)} of {len(dims)} dimensions")
