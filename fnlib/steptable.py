"""The step table: every step of the pipeline declared once.

One row per step: its notebook, its function in :mod:`fnlib.steps`, the profile fields it reads (its cache key
covers these and nothing else of the profile), the steps it reads from, the files it writes, whether those sit
beside ``train.csv`` (run level) or in ``e<E>/`` (epoch level), at which checkpoints it runs, and what it
needs of a machine. Its code identity is not declared: :mod:`fnlib.codeid` reads it from the code.

The planner (:mod:`fnlib.pipeline`), the notebooks' error messages (:mod:`fnlib.steps`) and the command line
all read this table; nothing else lists the steps.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Resources:
    """What a step needs of a machine: CPU cores, peak memory (GiB, measured at paper scale: ``train.json``
    and the analyses' runs on the 2-core CPU), and whether it uses a GPU when the profile's device is one."""
    cpus: int = 1
    memory_gib: float = 2.0
    gpu: bool = True


@dataclass(frozen=True)
class StepDef:
    name: str
    notebook: str
    function: str                        # in fnlib/steps.py
    fields: tuple[str, ...]              # the profile fields it reads
    needs: tuple[str, ...] = ()          # upstream steps (training: the checkpoint of the same epoch)
    outputs: tuple[str, ...] = ()
    level: str = "epoch"                 # "run": beside train.csv; "epoch": in e<E>/
    at: str = "each"                     # each | filter (the defence's epoch) | first (of the first arch) | last
    when: Callable | None = None         # (profile, arch) -> bool: an extra condition, e.g. a study switched on
    order: int = 0                       # position among the steps of one checkpoint
    resources: Resources = Resources()
    reads_weights: bool = True

    def runs_at(self, p, arch: str, epoch: int) -> bool:
        """Whether this step has a task at checkpoint ``epoch`` of ``arch`` in profile ``p``."""
        if p.steps is not None and self.name not in p.steps and self.name != "train":
            return False
        at = {"each": True, "filter": epoch == p.filter_epoch, "last": epoch == p.epochs[-1],
              "first": epoch == p.epochs[0] and arch == p.archs[0]}[self.at]
        return at and (self.when is None or bool(self.when(p, arch)))


_EVAL = ("test_limit", "eval_batch")
TRAIN_FIELDS = ("epochs", "schedule", "train_limit", "test_limit", "seed", "batch_size", "lr", "precision")

STEPS = {s.name: s for s in (
    StepDef("csg", "08_csg", "csg", ("csg_dims", "csg_m", "csg_k", "csg_resamples", "csg_limit", "seed"),
            outputs=("csg.csv", "csg.json"), level="run", at="first", order=-1, reads_weights=False,
            resources=Resources(memory_gib=2.0, gpu=False)),
    StepDef("train", "01_train", "train", TRAIN_FIELDS, outputs=("train.csv", "train.json"), level="run",
            order=0, resources=Resources(cpus=2, memory_gib=3.0)),
    StepDef("rank", "02_rank_kernels", "rank", ("drop", "rank_limit", *_EVAL), needs=("train",),
            outputs=("kernel_drop.csv", "meta.json"), order=1),
    StepDef("split", "11_split", "split", ("drop", "rank_limit", "split_resamples", "seed", *_EVAL),
            needs=("train", "rank"), outputs=("split.csv", "split.json"), order=9,
            when=lambda p, arch: p.split_resamples is not None),
    StepDef("rank_val", "12_rank_val", "rank_val", ("drop", "rank_val", "spaces", "log", "layer", *_EVAL),
            needs=("train", "rank"), outputs=("kernel_drop_val.csv", "targeting_val.csv", "rank_val.json"), order=10,
            when=lambda p, arch: p.rank_val is not None),
    StepDef("clamp", "13_clamp", "clamp", ("eq4_literal", "spaces", "log", "layer", "filter_eps", "n_sigma", "val_limit",
                                           *_EVAL),
            needs=("train", "rank"), outputs=("clamp.csv", "clamp.json"), at="filter", order=11,
            when=lambda p, arch: p.eq4_literal),
    StepDef("attack", "03_attack", "attack", ("spaces", "linear", *_EVAL), needs=("train",),
            outputs=("attack.csv",), order=2),
    StepDef("filter", "04_filter", "defence", ("spaces", "log", "layer", "filter_eps", "filter_mode", "n_sigma",
                                                "val_limit", *_EVAL),
            needs=("train", "rank"), outputs=("defence.csv", "defence.json"), at="filter", order=3),
    StepDef("algorithm1", "05_algorithm1", "algorithm1", ("spaces", "log", "layer", *_EVAL),
            needs=("train", "rank"), outputs=("targeting.csv",), order=4),
    StepDef("controls", "06_controls", "controls", ("spaces", "log", "layer", "n_sets", "seed", *_EVAL),
            needs=("train", "rank"), outputs=("controls.csv",), order=5),
    StepDef("robustness", "07_robustness", "robustness",
            ("spaces", "drop", "filter_eps", "n_sigma", "pgd_steps", "robust_eps", "robust_limit", "seed",
             "val_limit", "train_limit", *_EVAL),
            needs=("train", "rank", "filter"), outputs=("robustness.csv", "robustness.json"), at="filter", order=6),
    StepDef("seeds", "09_seeds", "seeds",
            ("seeds", "epochs", "schedule", "train_limit", "test_limit", "val_limit", "rank_limit", "batch_size",
             "lr", "precision", "spaces", "filter_eps", "filter_mode", "n_sigma", "eval_batch", "drop", "layer"),
            needs=("train",), outputs=("seeds.csv", "seeds_summary.csv"), level="run", at="last",
            when=lambda p, arch: bool(p.seeds), order=7, resources=Resources(cpus=2, memory_gib=3.0)),
    StepDef("layers", "10_layers", "layers", ("layer_limit", "filter_eps", "seed", *_EVAL), needs=("train",),
            outputs=("layers.csv", "layers_drop.csv"), at="last",
            when=lambda p, arch: p.layer_limit is not None and arch == "resnet18", order=8),
)}

NOTEBOOKS = {name: s.notebook for name, s in STEPS.items()}
