"""Profiles: one name selects a whole set of papermill parameters (SPEC §3).

``smoke`` runs in CI on every test run, ``quick`` is the CPU default of the book, ``paper`` is the
paper's scale (a GPU when there is one, else the CPU over several sessions). Notebook parameters left at ``None`` are filled from the profile, so
``-p profile quick`` alone reproduces a profile's step and any ``-p name value`` overrides one value.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import numpy as np

PAPER_EPSILONS = (0.01, 0.015, 0.34)   # the ε values the paper quotes: every grid holds those in its range


def _grid(values, extra=()) -> tuple[float, ...]:
    return tuple(sorted({round(float(v), 6) for v in list(values) + list(extra)}))


LINEAR = {
    "cifar10": _grid(np.linspace(0, 0.05, 11)),                       # 0, 0.005, …, 0.05
    "mnist": _grid(np.linspace(0, 0.4, 21), extra=(0.01, 0.015)),     # 0, 0.02, …, 0.4 (+0.01, 0.015)
}
LOG = _grid(np.logspace(-4, 0, 13), extra=(0.015,))                   # 1e-4 … 1, three per decade
# the smoke profile checks wiring, not curves: coarse grids that still hold the paper's ε values
COARSE_LINEAR = {"cifar10": _grid(np.linspace(0, 0.05, 6), extra=(0.015,)),
                 "mnist": _grid(np.linspace(0, 0.4, 5), extra=(0.01, 0.015, 0.34))}
COARSE_LOG = _grid(np.logspace(-4, 0, 5), extra=(0.015,))
# the defence's stronger tests (PGD, transfer): the filter's ε, the paper's ε and one step past it
ROBUST_EPS = {"cifar10": (0.01, 0.015, 0.03), "mnist": (0.015, 0.1, 0.34)}


@dataclass(frozen=True)
class Profile:
    name: str
    datasets: tuple[str, ...]
    archs: tuple[str, ...]
    epochs: tuple[int, ...]                 # checkpoint epochs; the schedule runs to the last one
    train_limit: int | None                 # None: the whole training split (official train minus val)
    test_limit: int | None
    val_limit: int | None
    rank_limit: int | None = None           # test images for the kernel ranking (None: test_limit)
    spaces: tuple[str, ...] = ("pixel", "normalized")
    drop: str = "weights"
    layer: str = "conv1"
    filter_eps: float = 0.015               # ε at which σ_noise is searched (the paper filters at 0.015)
    filter_mode: str = "hard"
    n_sigma: int = 12
    n_sets: int = 100                       # random kernel sets drawn by the controls of Algorithm 1 (p ≥ 1/101)
    pgd_steps: int = 20                     # PGD (L∞, random start) against original and filtered models
    robust_eps: dict = field(default_factory=lambda: dict(ROBUST_EPS))   # ε of the PGD / transfer tests
    robust_limit: int | None = None         # test images of those tests (None: test_limit); PGD costs 21 passes
    seeds: tuple[int, ...] = ()             # training seeds of the seed study (empty: no study)
    layer_limit: int | None = None          # test images per kernel drop at every conv (None: no per-layer step)
    csg_dims: tuple[int, ...] = (4, 16, 64) # PCA dimensions of the CSG embedding
    csg_m: int = 250                        # CSG: images drawn per class
    csg_k: int = 3                          # CSG: nearest neighbours
    csg_resamples: int = 10                 # CSG: independent draws (the interval)
    csg_limit: int = 10000                  # CSG: training images embedded (the neighbour pool)
    device: str = "auto"
    precision: str = "auto"                 # training precision: auto | fp32 | bf16 (evaluation is fp32)
    seed: int = 0
    batch_size: int = 512
    lr: float = 0.1                         # peak of the one-cycle schedule
    eval_batch: int = 500
    description: str = ""
    linear: dict = field(default_factory=lambda: dict(LINEAR))
    log: tuple[float, ...] = LOG

    @property
    def filter_epoch(self) -> int:
        """The defence runs on the earliest checkpoint (the paper: 10 epochs)."""
        return self.epochs[0]

    def runs(self):
        return [(d, a) for d in self.datasets for a in self.archs]

    def as_dict(self) -> dict:
        return asdict(self)


PROFILES = {
    "smoke": Profile("smoke", ("mnist", "cifar10"), ("resnet18",), (1, 2), train_limit=2000, test_limit=250,
                     val_limit=200, rank_limit=200, n_sigma=4, device="cpu", precision="fp32", batch_size=128, lr=0.02,
                     linear=COARSE_LINEAR, log=COARSE_LOG, robust_eps={"cifar10": (0.015,), "mnist": (0.015,)},
                     seeds=(0, 1), layer_limit=20, csg_dims=(16,), csg_m=100, csg_resamples=2, csg_limit=2000,
                     description="smoke profile on CPU: 2,000 training images, 2 epochs — a wiring check, "
                                 "not a result"),
    "quick": Profile("quick", ("mnist", "cifar10"), ("resnet18",), (1, 3, 5), train_limit=10000, test_limit=1000,
                     val_limit=1000, n_sigma=10, device="cpu", precision="fp32", batch_size=256, lr=0.05,
                     seeds=(0, 1, 2), layer_limit=200,
                     description="quick profile on CPU: ResNet-18, 10,000 training images, 5 epochs — "
                                 "not paper scale"),
    # run order: ResNet-50 first (the paper's figures), then ResNet-18, then ResNet-101; CIFAR-10 before MNIST
    "paper": Profile("paper", ("cifar10", "mnist"), ("resnet50", "resnet18", "resnet101"), (10, 50, 100),
                     train_limit=None, test_limit=None, val_limit=None, robust_limit=2000,
                     description="paper profile: ResNet-18/50/101, full data sets, 10/50/100 epochs"),
}


def get(name: str, **overrides) -> Profile:
    """The named profile, with any non-None overrides applied."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; allowed: {', '.join(PROFILES)}")
    overrides = {k: v for k, v in overrides.items() if v is not None}
    unknown = set(overrides) - set(Profile.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown profile fields {sorted(unknown)}")
    return replace(PROFILES[name], **overrides)


# --set name=value: how each settable field is read from text
_TUPLES = {"datasets": str, "archs": str, "epochs": int, "spaces": str, "log": float, "seeds": int, "csg_dims": int}
_SCALARS = {"train_limit": int, "test_limit": int, "val_limit": int, "rank_limit": int, "n_sigma": int, "n_sets": int, "seed": int,
            "pgd_steps": int, "layer_limit": int, "robust_limit": int, "csg_m": int, "csg_k": int, "csg_resamples": int, "csg_limit": int,
            "batch_size": int, "eval_batch": int, "lr": float, "filter_eps": float, "drop": str, "layer": str,
            "filter_mode": str, "device": str, "precision": str}


def parse_settings(items) -> dict:
    """``["test_limit=200", "epochs=1,2"]`` -> typed overrides, checked against the profile's fields."""
    out = {}
    for item in items or ():
        name, sep, text = item.partition("=")
        name, text = name.strip(), text.strip()
        if not sep or not name:
            raise ValueError(f"--set wants name=value, got {item!r}")
        if name in _TUPLES:
            try:
                out[name] = tuple(_TUPLES[name](v) for v in text.replace("[", "").replace("]", "").split(",") if v.strip())
            except ValueError:
                raise ValueError(f"--set {name}: {text!r} is not a comma-separated list of {_TUPLES[name].__name__}") from None
        elif name in _SCALARS:
            try:
                out[name] = _SCALARS[name](text)
            except ValueError:
                raise ValueError(f"--set {name}: {text!r} is not a {_SCALARS[name].__name__}") from None
        else:
            raise ValueError(f"--set {name}: not a setting of a profile; settable: "
                             f"{', '.join(sorted({**_TUPLES, **_SCALARS}))} (the linear ε grid is per data set: "
                             "use -p epsilons on notebooks/03_attack.ipynb)")
    return out


def describe(p: Profile) -> str:
    """One profile's settings as aligned text lines (``python -m fnlib profiles``)."""
    lines = [f"{p.name}: {p.description}"]
    for name, value in p.as_dict().items():
        if name in ("name", "description"):
            continue
        if name == "linear":
            value = {d: f"{len(v)} values {v[0]:g}…{v[-1]:g}" for d, v in value.items()}
        elif name == "log":
            value = f"{len(value)} values {value[0]:g}…{value[-1]:g}"
        lines.append(f"  {name:<14} {value}")
    return "\n".join(lines)
