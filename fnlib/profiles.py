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
    epochs: tuple[int, ...]                 # checkpoint epochs
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
    split_resamples: int | None = None      # step 11: bootstrap resamples of the test images redrawing the fragile
                                            # split (None: off; on where the checkpoints are at hand)
    rank_val: int | None = None             # step 12: validation images the kernels are ranked on again, with
                                            # Algorithm 1 scored on test (None: no such step; at most 5,000)
    eq4_literal: bool = False               # step 13: the defence again with eq 4 read literally (filter_mode clamp)
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
    schedule: int | None = None             # length of the one-cycle schedule (None: the last checkpoint epoch)
    steps: tuple[str, ...] | None = None    # the analyses this profile runs (None: every step of the table)
    runs_only: tuple[str, ...] | None = None   # "dataset/arch" runs of datasets × archs to run (None: all)
    until: dict = field(default_factory=dict)  # "dataset/arch" -> last checkpoint epoch of that run (default: all)
    folder: str = ""                        # where under results/, checkpoints/, book/runs/ (default: the name)

    def __post_init__(self):
        if not self.folder:
            object.__setattr__(self, "folder", self.name)

    @property
    def cycle(self) -> int:
        """Epochs of the one-cycle schedule: ``schedule``, or the last checkpoint epoch."""
        return self.schedule or self.epochs[-1]

    def run_epochs(self, dataset: str, arch: str) -> tuple[int, ...]:
        """The checkpoint epochs of one run (``until`` may stop a run early on the same schedule)."""
        last = self.until.get(f"{dataset}/{arch}")
        return tuple(e for e in self.epochs if last is None or e <= last)

    @property
    def filter_epoch(self) -> int:
        """The defence runs on the earliest checkpoint (the paper: 10 epochs)."""
        return self.epochs[0]

    def runs(self):
        every = [(d, a) for d in self.datasets for a in self.archs]
        return every if self.runs_only is None else [r for r in every if f"{r[0]}/{r[1]}" in self.runs_only]

    def as_dict(self) -> dict:
        return asdict(self)


PROFILES = {
    "smoke": Profile("smoke", ("mnist", "cifar10"), ("resnet18",), (1, 2), train_limit=2000, test_limit=250,
                     val_limit=200, rank_limit=200, n_sigma=4, device="cpu", precision="fp32", batch_size=128, lr=0.02,
                     linear=COARSE_LINEAR, log=COARSE_LOG, robust_eps={"cifar10": (0.015,), "mnist": (0.015,)},
                     seeds=(0, 1), layer_limit=20, csg_dims=(16,), csg_m=100, csg_resamples=2, csg_limit=2000,
                     split_resamples=1000, rank_val=200, eq4_literal=True,
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
# Beside the main paper runs: seed replicates and separately trained schedules (issue 31), each its own profile,
# so that one command re-runs it and the pipeline caches, resumes and lands it like the main runs. Each has its
# own training identity (the seed, the schedule) and its own folder under results/paper/, which the main
# summary never reads. The four analyses the claims rows read; no defence, robustness, CSG or per-layer study.
_REPLICATE_STEPS = ("rank", "split", "rank_val", "attack", "algorithm1", "controls")
for _seed in (1, 2):
    PROFILES[f"paper-seed{_seed}"] = replace(
        PROFILES["paper"], name=f"paper-seed{_seed}", folder=f"paper/seed{_seed}", seed=_seed,
        archs=("resnet18", "resnet50"), schedule=100, steps=_REPLICATE_STEPS, split_resamples=1000, rank_val=5000,
        until={"mnist/resnet50": 10, "cifar10/resnet50": 50},
        description=f"seed replicate {_seed} of the paper profile: ResNet-18 to 100 epochs, ResNet-50 to the "
                    "checkpoints the claims read (MNIST 10, CIFAR-10 50) on the same 100-epoch schedule")
for _cycle, _r50 in ((10, "mnist/resnet50"), (50, "cifar10/resnet50")):
    PROFILES[f"paper-sched{_cycle}"] = replace(
        PROFILES["paper"], name=f"paper-sched{_cycle}", folder=f"paper/sched{_cycle}", epochs=(_cycle,),
        archs=("resnet18", "resnet50"), steps=_REPLICATE_STEPS, split_resamples=1000, rank_val=5000,
        runs_only=("cifar10/resnet18", "mnist/resnet18", _r50),
        description=f"the paper profile trained on a {_cycle}-epoch one-cycle schedule of its own (not a snapshot "
                    f"of the 100-epoch run): ResNet-18 on both data sets and {_r50}")


def get(name: str, **overrides) -> Profile:
    """The named profile, with any non-None overrides applied."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; allowed: {', '.join(PROFILES)}")
    overrides = {k: v for k, v in overrides.items() if v is not None}
    unknown = set(overrides) - set(Profile.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown profile fields {sorted(unknown)}")
    return check(replace(PROFILES[name], **overrides))


# Every field of a profile, declared once: its type and valid values. ``get`` checks a whole profile with
# them before any work starts, and ``--set name=value`` reads text with them. ``choices`` names the module
# constant that lists the allowed values (read at check time: the modules own their vocabularies).
@dataclass(frozen=True)
class Field:
    kind: type = int                      # int | float | str | bool | dict (dict: not settable from the command line)
    many: bool = False                    # a tuple of ``kind``
    optional: bool = False                # None allowed (None means: see the field's comment above)
    low: float | None = None              # smallest allowed value (inclusive)
    above: float | None = None            # values must be greater than this
    high: float | None = None             # largest allowed value (inclusive)
    choices: str | None = None            # "module.CONSTANT" holding the allowed values
    empty: bool = True                    # for ``many``: may the tuple be empty?
    settable: bool = True


_COUNT, _OPT_COUNT = Field(low=1), Field(low=1, optional=True)
FIELDS = {
    "name": Field(str, settable=False), "description": Field(str, settable=False),
    "folder": Field(str, settable=False),
    "datasets": Field(str, many=True, choices="data.DATASETS", empty=False),
    "archs": Field(str, many=True, choices="models.ARCHS", empty=False),
    "epochs": Field(int, many=True, low=1, empty=False),
    "schedule": _OPT_COUNT,
    "train_limit": _OPT_COUNT, "test_limit": _OPT_COUNT, "val_limit": _OPT_COUNT, "rank_limit": _OPT_COUNT,
    "spaces": Field(str, many=True, choices="attacks.SPACES", empty=False),
    "drop": Field(str, choices="kernels.DROPS"), "layer": Field(str, choices="models.LAYERS"),
    "filter_eps": Field(float, above=0, high=1), "filter_mode": Field(str, choices="defence.MODES"),
    "n_sigma": Field(low=2), "n_sets": _COUNT, "split_resamples": _OPT_COUNT,
    "rank_val": Field(low=1, high=5000, optional=True),     # the hold-out holds 5,000 (data.VAL_PER_CLASS × 10)
    "eq4_literal": Field(bool),
    "pgd_steps": _COUNT,
    "robust_eps": Field(dict, settable=False), "robust_limit": _OPT_COUNT,
    "seeds": Field(int, many=True, low=0), "layer_limit": _OPT_COUNT,
    "csg_dims": Field(int, many=True, low=1, empty=False), "csg_m": Field(low=2), "csg_k": _COUNT,
    "csg_resamples": _COUNT, "csg_limit": _COUNT,
    "device": Field(str), "precision": Field(str, choices="hardware.PRECISIONS"),
    "seed": Field(low=0), "batch_size": _COUNT, "lr": Field(float, above=0, high=10), "eval_batch": _COUNT,
    "linear": Field(dict, settable=False), "log": Field(float, many=True, low=0, high=1, empty=False),
    "steps": Field(str, many=True, optional=True, choices="steptable.STEPS", empty=False),
    "runs_only": Field(str, many=True, optional=True, empty=False),
    "until": Field(dict, settable=False),
}


def allowed(name: str) -> tuple:
    """The values field ``name`` allows, read from the module constant its declaration names."""
    import importlib
    module, const = FIELDS[name].choices.split(".")
    return tuple(getattr(importlib.import_module(f"fnlib.{module}"), const))


def _allowed(spec: Field):
    import importlib
    module, name = spec.choices.split(".")
    return tuple(getattr(importlib.import_module(f"fnlib.{module}"), name))


def check_value(name: str, value, spec: Field | None = None) -> None:
    """Raise ValueError naming the field, the bad value and what is allowed."""
    spec = spec or FIELDS[name]
    if value is None:
        if spec.optional:
            return
        raise ValueError(f"{name} must be set (None is not allowed)")
    items = value if spec.many else (value,)
    if spec.many:
        if not isinstance(value, tuple):
            raise ValueError(f"{name} must be a tuple of {spec.kind.__name__}, got {value!r}")
        if not value and not spec.empty:
            raise ValueError(f"{name} must not be empty")
    if spec.kind is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{name} must be a dict, got {value!r}")
        return
    for v in items:
        ok = isinstance(v, bool) if spec.kind is bool else \
            isinstance(v, spec.kind) and not isinstance(v, bool) or spec.kind is float and isinstance(v, int)
        if not ok:
            raise ValueError(f"{name}: {v!r} is not a {spec.kind.__name__}")
        bound = [f"≥ {spec.low:g}" for _ in [0] if spec.low is not None and not v >= spec.low] + \
                [f"> {spec.above:g}" for _ in [0] if spec.above is not None and not v > spec.above] + \
                [f"≤ {spec.high:g}" for _ in [0] if spec.high is not None and not v <= spec.high]
        if bound:
            raise ValueError(f"{name}={v!r} is out of range: it must be " + " and ".join(bound))
        if spec.choices and v not in _allowed(spec):
            raise ValueError(f"unknown {name} {v!r}; allowed: {', '.join(_allowed(spec))}")


def check(p: "Profile") -> "Profile":
    """Every field of ``p`` against :data:`FIELDS`, and the rules that tie fields together."""
    for name in Profile.__dataclass_fields__:
        check_value(name, getattr(p, name))
    if list(p.epochs) != sorted(set(p.epochs)):
        raise ValueError(f"epochs must be distinct and increasing, got {p.epochs}")
    if p.schedule is not None and p.schedule < p.epochs[-1]:
        raise ValueError(f"schedule={p.schedule} is shorter than the last checkpoint epoch {p.epochs[-1]}; "
                         f"give schedule ≥ {p.epochs[-1]} or leave it unset (the last checkpoint epoch)")
    if p.device not in ("auto", "cpu", "cuda") and not p.device.startswith("cuda:"):
        raise ValueError(f"unknown device {p.device!r}; allowed: auto, cpu, cuda, cuda:N")
    for run in p.runs_only or ():
        if run.count("/") != 1 or tuple(run.split("/")) not in {(d, a) for d in p.datasets for a in p.archs}:
            raise ValueError(f"runs_only: {run!r} is not a dataset/arch of this profile")
    return p


def _truth(text: str) -> bool:
    """'true'/'false' (also yes/no, on/off, 1/0) of ``--set name=value``, never Python's bool('false')."""
    words = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}
    if text.lower() not in words:
        raise ValueError(text)
    return words[text.lower()]


def parse_settings(items) -> dict:
    """``["test_limit=200", "epochs=1,2"]`` -> typed overrides, checked against :data:`FIELDS`."""
    out = {}
    settable = sorted(n for n, f in FIELDS.items() if f.settable)
    for item in items or ():
        name, sep, text = item.partition("=")
        name, text = name.strip(), text.strip()
        if not sep or not name:
            raise ValueError(f"--set wants name=value, got {item!r}")
        spec = FIELDS.get(name)
        if spec is None or not spec.settable:
            raise ValueError(f"--set {name}: not a setting of a profile; settable: {', '.join(settable)} (the linear "
                             "ε grid is per data set: use -p epsilons on notebooks/03_attack.ipynb)")
        kind = _truth if spec.kind is bool else float if spec.kind is float else spec.kind
        try:
            if spec.optional and text.lower() == "none":
                value = None
            elif spec.many:
                value = tuple(kind(v.strip()) for v in text.replace("[", "").replace("]", "").split(",") if v.strip())
            else:
                value = kind(text)
        except ValueError:
            what = "true or false" if spec.kind is bool else \
                f"comma-separated list of {kind.__name__}" if spec.many else kind.__name__
            raise ValueError(f"--set {name}: {text!r} is not a {what}") from None
        check_value(name, value)
        out[name] = value
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
