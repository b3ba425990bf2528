"""The claims table of ``summary.json``, which :func:`fnlib.summary.build` writes: one module per part of
the paper, each adding its rows (the paper's value, ours, its interval, the rule, the verdict) to a
:class:`~fnlib.claims.sheet.Sheet`.

- :mod:`.fgsm`: Sec 3.1. Clean and FGSM accuracy at epoch 100, FGSM on the more complex data set,
  accuracy over epochs.
- :mod:`.complexity`: Sec 3.1. The data-set complexities the paper cites (CSG).
- :mod:`.fragile`: Sec 5 and Fig 4. The share of fragile kernels, fragile kernels against depth, the mean
  drop accuracy over epochs.
- :mod:`.algorithm1`: Sec 6 and Algorithm 1. The share of images attacking S, against ε, and its balance
  over epochs.
- :mod:`.filtering`: Sec 6 and eqs 2-9. The filter's rows and, beyond the paper, its controls (Step 7).

What they share: :mod:`.sheet` (the rows being written, the model standing in for the paper's),
:mod:`.evidence` (values read from results files), :mod:`.rules` (verdict rules on top of
:mod:`fnlib.stats`) and :mod:`.spaces` (a claim judged in both ε spaces). Nothing here imports torch.
"""
