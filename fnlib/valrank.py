"""The fragile split made on validation images, scored on the test set (issue 33; beyond the paper).

Sec 3.3 ranks the conv1 kernels on the test images, and Algorithm 1, FGSM and the filter are then scored on the
same images: the images that chose S also judge it. Step 12 ranks the kernels again on the validation hold-out
(training images the network never trained on, :func:`fnlib.data.val_indices`) and scores Algorithm 1 with that
S and S' on the test set. :func:`agreement` says how far the two splits agree.
"""
from __future__ import annotations

from scipy import stats as sps


def agreement(test_fragile, val_fragile, test_accuracies: list[float], val_accuracies: list[float]) -> dict:
    """How the split on validation images agrees with step 2's on test images, each as its step made it (the
    ranking's own fragile set, split at its mean: :class:`fnlib.kernels.Ranking`).

    ``overlap`` kernels fragile in both, ``jaccard`` = overlap / kernels fragile in either, ``moved`` the kernels
    on different sides, and ``spearman`` the rank correlation of the two lists of drop accuracies."""
    if len(test_accuracies) != len(val_accuracies) or not test_accuracies:
        raise ValueError(f"the two rankings cover {len(test_accuracies)} and {len(val_accuracies)} kernels; "
                         "rank the same layer of the same checkpoint on both image sets")
    t, v = set(test_fragile), set(val_fragile)
    rho = sps.spearmanr(test_accuracies, val_accuracies).statistic if len(set(test_accuracies)) > 1 \
        and len(set(val_accuracies)) > 1 else float("nan")
    return {"overlap": len(t & v), "jaccard": len(t & v) / len(t | v) if t | v else float("nan"),
            "moved": sorted(t ^ v), "spearman": float(rho)}
