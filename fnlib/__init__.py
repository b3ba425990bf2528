"""fnlib — the methods of "Adversarial Robustness in Deep Learning: Attacks on Fragile Neurons"
(Pravin, Martino, Nicosia, Ojha, ICANN 2021) as a small, tested library.

Modules, one paper concept each: ``data``, ``models``, ``train``, ``kernels`` (Sec 3.3), ``attacks``
(eq 1), ``targeting`` (Algorithm 1), ``defence`` (eqs 2-9), ``plots`` (Fig 1-4); plus ``profiles``,
``results``, ``summary`` (its claims table built in the subpackage ``claims``, one module per part of
the paper) and ``pipeline`` for the papermill runs that feed the book.
Submodules are imported on demand so that plotting does not load torch.
"""
__version__ = "0.1.0"
