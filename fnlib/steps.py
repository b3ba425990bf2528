"""The five steps of the pipeline (SPEC §1), each reading its inputs and writing its results files (SPEC §4).

Notebooks call exactly one of these after their ``parameters`` cell. Every argument left at ``None`` comes
from the profile (:mod:`fnlib.profiles`). Arguments are checked, and missing inputs reported with the
command that makes them, before any long work starts.
"""
from __future__ import annotations

from . import profiles, results
from .steptable import NOTEBOOKS as STEP_NOTEBOOKS


def floats(value) -> list[float] | None:
    """Accept one number, a list, a tuple, or a comma-separated string (as ``papermill -p`` passes it)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = [v for v in value.replace("[", "").replace("]", "").split(",") if v.strip()]
    elif not isinstance(value, (list, tuple)):
        value = [value]
    return [float(v) for v in value]


def ints(value) -> list[int] | None:
    return None if value is None else [int(v) for v in floats(value)]


def words(value) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [v.strip() for v in value.replace("[", "").replace("]", "").replace("'", "").split(",")]
    return [str(v) for v in value if v]


def command(step: str, profile: str, dataset: str, arch: str, epoch: int | None = None) -> str:
    """The papermill command that runs ``step``; quoted in errors about missing inputs."""
    cmd = (f"papermill notebooks/{STEP_NOTEBOOKS[step]}.ipynb out.ipynb -p profile {profile} "
           f"-p dataset {dataset} -p arch {arch}")
    return cmd + (f" -p epoch {epoch}" if epoch is not None else "")


class Step:
    """Checked settings of one step for one (profile, dataset, arch[, epoch])."""

    def __init__(self, profile="quick", dataset="mnist", arch="resnet18", epoch=None, epsilons=None, overrides=None,
                 seed=None, **settings):
        """``settings`` (notebook parameters; None = the profile's) win over ``overrides`` (the pipeline's --set).

        ``seed`` is the seed of this step's own random draws (PGD's start, random kernel sets, CSG's draws;
        default: the profile's). It never names another training: the training seed is the profile's, or
        ``overrides["seed"]`` (``--set seed=N``; the training notebook's ``-p seed N`` passes it there).
        Every profile field is checked by :func:`fnlib.profiles.check` (types, ranges, allowed values)."""
        overrides = {**(overrides or {}), **{k: v for k, v in settings.items() if v is not None}}
        for key in ("epochs", "spaces"):
            if overrides.get(key) is not None:
                overrides[key] = tuple(ints(overrides[key]) if key == "epochs" else words(overrides[key]))
        self.p = profiles.get(profile, **overrides)
        self.seed = self.p.seed if seed is None else int(seed)
        self.epsilons = floats(epsilons) if epsilons is not None else None
        if self.epsilons is not None and not self.epsilons:
            raise ValueError("epsilons is empty; give at least one ε ≥ 0")
        if self.epsilons is not None and any(not 0 <= e < float("inf") for e in self.epsilons):
            raise ValueError(f"ε must be finite and ≥ 0, got {[e for e in self.epsilons if not 0 <= e < float('inf')]}")
        for name, value in (("dataset", dataset), ("arch", arch)):
            if value not in profiles.allowed(name + "s"):
                raise ValueError(f"unknown {name} {value!r}; allowed: {', '.join(profiles.allowed(name + 's'))}")
        self.profile, self.dataset, self.arch = profile, dataset, arch
        self.epoch = int(epoch) if epoch is not None else self.p.epochs[0]
        if self.epoch < 1:
            raise ValueError(f"epoch must be ≥ 1, got {self.epoch}")
        self.dir = results.run_dir(profile, dataset, arch)
        self.edir = results.epoch_dir(profile, dataset, arch, self.epoch)

    # inputs -------------------------------------------------------------------------------------------------
    def require(self, path, step: str, epoch=None):
        if not path.exists():
            raise FileNotFoundError(f"missing input {path}. Make it first with:\n  "
                                    + command(step, self.profile, self.dataset, self.arch, epoch)
                                    + f"\nor run the whole profile: python -m fnlib run --profile {self.profile}")
        return path

    def device(self):
        from .hardware import resolve_device
        return resolve_device(self.p.device)

    def load(self, split):
        from .data import load
        limit = {"train": self.p.train_limit, "val": self.p.val_limit, "test": self.p.test_limit}[split]
        return load(self.dataset, split, limit=limit)

    def recipe(self):
        from .train import Recipe
        return Recipe(epochs=self.p.cycle, batch_size=self.p.batch_size, lr=self.p.lr, seed=self.p.seed,
                      precision=self.p.precision)

    def train_identity(self) -> dict:
        from .train import identity
        return identity(self.arch, self.dataset, self.recipe(), self.p.train_limit)

    def ckpt_dir(self):
        from .train import identity_key
        return results.checkpoint_dir(self.profile, self.dataset, self.arch, identity_key(self.train_identity()))

    def remake(self) -> str:
        """The command that trains this run's checkpoints again from scratch."""
        return (f"python -m fnlib run --profile {self.profile} --only {self.dataset}/{self.arch} --step train "
                f"--force" + ("" if tuple(self.p.epochs) == profiles.get(self.profile).epochs
                              else f" --set epochs={','.join(map(str, self.p.epochs))}"))

    def model(self):
        from .models import load_checkpoint
        path = results.checkpoint(self.profile, self.dataset, self.arch, self.ckpt_dir().name, self.epoch)
        if not path.exists():
            epochs = ",".join(str(e) for e in self.p.epochs)
            if self.epoch not in self.p.epochs:
                raise FileNotFoundError(
                    f"epoch {self.epoch} is not a checkpoint of this run (epochs {epochs}). Train with it added, "
                    f"e.g. python -m fnlib run --profile {self.profile} --only {self.dataset}/{self.arch} "
                    f"--set epochs={','.join(str(e) for e in sorted({*self.p.epochs, self.epoch}))}, and pass the "
                    f"same epochs to this step (-p epochs ...)")
            raise FileNotFoundError(
                f"missing checkpoint {path}. Make it with:\n  python -m fnlib run --profile {self.profile} "
                f"--only {self.dataset}/{self.arch} --step train"
                + ("" if tuple(self.p.epochs) == profiles.get(self.profile).epochs else f" --set epochs={epochs}")
                + f"\nor: {command('train', self.profile, self.dataset, self.arch)}"
                + ("" if tuple(self.p.epochs) == profiles.get(self.profile).epochs else f" -p epochs {epochs}"))
        return load_checkpoint(path, self.arch, self.dataset, remake=self.remake()).to(self.device())

    def ranking(self) -> dict:
        return results.read_json(self.require(self.edir / "meta.json", "rank", self.epoch))

    def degenerate(self, meta: dict) -> bool:
        """True (with a message) when every kernel drop gave the same accuracy, so S or S' is empty."""
        if meta["fragile"] and meta["null"]:
            return False
        print(f"S or S' is empty at epoch {self.epoch}: all 64 drop accuracies equal {meta['mean']:.2f} % "
              "(a model that predicts one class). Algorithm 1 and the filter are undefined; NaN is recorded.")
        return True

    def linear(self):
        """The linear ε grid of this data set (or the ``epsilons`` override)."""
        return self.epsilons or list(self.p.linear[self.dataset])

    def log(self):
        """The logarithmic ε grid of Algorithm 1 (or the ``epsilons`` override)."""
        return self.epsilons or list(self.p.log)

    def provenance(self, **params):
        return dict(params=params, profile=self.p.as_dict(), provenance=results.provenance(self.seed, self.device()))


def train(progress=True, until=None, **kw):
    """Step 1: train with checkpoints at the profile's epochs, up to epoch ``until`` (default: the last).

    Writes ``train.csv`` (one row per epoch trained so far) and ``train.json``, whose ``seconds`` is the
    real training time of the weights (summed over every session that trained part of them).
    """
    from . import models
    from .train import fit, identity_key, run_record, seed_everything
    if kw.get("seed") is not None:          # the training notebook's seed is the training's: it names the run
        kw["overrides"] = {**(kw.get("overrides") or {}), "seed": int(kw.pop("seed"))}
    s = Step(**kw)
    device = s.device()
    x, y = s.load("train")
    xt, yt = s.load("test")
    recipe, ident, ckpt_dir = s.recipe(), s.train_identity(), s.ckpt_dir()
    seed_everything(s.p.seed)
    model = models.build(s.arch, s.dataset)
    history = fit(model, x, y, xt, yt, checkpoints=s.p.epochs, recipe=recipe, device=device, progress=progress,
                  ckpt_dir=ckpt_dir, ident=ident, until=until, remake=s.remake(),
                  meta={"arch": s.arch, "dataset": s.dataset, "profile": s.profile})
    results.write_csv(history, s.dir / "train.csv", ["epoch", "train_loss", "train_acc", "test_acc", "seconds"])
    record = run_record(ckpt_dir)
    info = s.provenance(epochs=list(s.p.epochs), n_train=len(y), n_test=len(yt), recipe=recipe.__dict__)
    info.update(identity=ident, identity_key=identity_key(ident), precision=record["precision"],
                sessions=record["sessions"], epochs_done=len(history),
                seconds=sum(r["seconds"] for r in history),
                weights={r["epoch"]: r["weights"] for r in history if "weights" in r})
    # the peak over every process that trained part of the run (each session records its own)
    peaks = [x["peak_memory_gib"] for x in record["sessions"] if "peak_memory_gib" in x]
    if peaks:
        info["peak_gpu_memory_gib" if device.type == "cuda" else "peak_rss_gib"] = max(peaks)
    results.write_json(info, s.dir / "train.json")
    return history


def rank(progress=True, **kw):
    """Step 2 (Sec 3.3): drop each conv1 kernel; writes ``e<E>/kernel_drop.csv`` and ``e<E>/meta.json``."""
    from .data import load
    from .kernels import rank as rank_kernels
    s = Step(**kw)
    model = s.model()
    x, y = load(s.dataset, "test", limit=s.p.rank_limit or s.p.test_limit)
    r = rank_kernels(model, x, y, drop=s.p.drop, batch_size=s.p.eval_batch, progress=progress)
    fragile = set(r.fragile)
    results.write_csv([{"kernel": k, "accuracy": a, "fragile": k in fragile} for k, a in enumerate(r.accuracies)],
                      s.edir / "kernel_drop.csv")
    results.write_json(dict(s.provenance(epoch=s.epoch, n_images=len(y)), base_accuracy=r.base_accuracy,
                            mean=r.mean, drop=r.drop, fragile=r.fragile, null=r.null,
                            fraction_fragile=len(r.fragile) / len(r.accuracies)), s.edir / "meta.json")
    return r


def split(progress=True, **kw):
    """How firmly the test images fix step 2's split (:mod:`fnlib.split`): each kernel's drop accuracy image by
    image, on the images step 2 ranked on, and the split redrawn over bootstrap resamples of them. Checks that
    the per-image data give step 2's accuracies back. Writes ``e<E>/split.csv`` and ``e<E>/split.json``."""
    import pandas as pd

    from .data import load
    from .split import bootstrap, drop_correct
    s = Step(**kw)
    if s.p.split_resamples is None:
        raise ValueError(f"profile {s.profile} does not redraw the split; pass -p split_resamples 1000")
    meta = results.read_json(s.require(s.edir / "meta.json", "rank", s.epoch))
    ranked = pd.read_csv(s.edir / "kernel_drop.csv").to_dict("records")
    model = s.model()
    x, y = load(s.dataset, "test", limit=s.p.rank_limit or s.p.test_limit)
    c = drop_correct(model, x, y, drop=s.p.drop, batch_size=s.p.eval_batch, progress=progress)
    acc = (100 * c.double().mean(dim=1)).tolist()
    off = max(abs(a - r["accuracy"]) for a, r in zip(acc, ranked))
    ranked_n = meta["params"]["n_images"]
    if len(y) != ranked_n or off > 1e-3:
        raise ValueError(f"the per-image drops do not give step 2's accuracies back (largest difference {off:.3g} "
                         f"points, {len(y)} images against {ranked_n}): the checkpoint or the images differ from "
                         "the ones step 2 ranked on; run step 2 again")
    b = bootstrap(c, resamples=s.p.split_resamples, seed=s.seed)
    fragile = set(meta["fragile"])
    results.write_csv([{"kernel": k, "accuracy": a, "fragile": k in fragile, "fragile_frequency": f,
                        "from_mean": a - meta["mean"]} for k, (a, f) in enumerate(zip(acc, b.fragile_frequency))],
                      s.edir / "split.csv")
    lo, hi = b.count_interval()
    results.write_json(dict(s.provenance(epoch=s.epoch, n_images=len(y), resamples=b.resamples, drop=s.p.drop),
                            fragile=len(fragile), count_low=lo, count_high=hi,
                            count_mean=sum(b.counts) / len(b.counts), counts=b.counts,
                            unstable=[k for k, f in enumerate(b.fragile_frequency) if 0.05 <= f <= 0.95]),
                       s.edir / "split.json")
    return b


def rank_val(progress=True, **kw):
    """Step 12 (beyond the paper, :mod:`fnlib.valrank`): rank conv1's kernels again on ``rank_val`` validation
    images, and score Algorithm 1 with that S and S' on the test set, as step 5 does with the test-ranked ones.
    Writes ``e<E>/kernel_drop_val.csv`` (each kernel's drop accuracy on both image sets), ``e<E>/targeting_val.csv``
    (step 5's columns) and ``e<E>/rank_val.json`` (the split and its agreement with step 2's)."""
    import pandas as pd

    from .data import load
    from .kernels import rank as rank_kernels
    from .targeting import algorithm1 as run
    from .valrank import agreement
    s = Step(**kw)
    if s.p.rank_val is None:
        raise ValueError(f"profile {s.profile} does not rank on validation images; pass -p rank_val 5000")
    meta = s.ranking()
    tested = pd.read_csv(s.require(s.edir / "kernel_drop.csv", "rank", s.epoch))["accuracy"].tolist()
    model = s.model()
    xv, yv = load(s.dataset, "val", limit=s.p.rank_val)
    r = rank_kernels(model, xv, yv, drop=s.p.drop, batch_size=s.p.eval_batch, progress=progress)
    fragile, fragile_test = set(r.fragile), set(meta["fragile"])
    results.write_csv([{"kernel": k, "accuracy": a, "fragile": k in fragile, "accuracy_test": b,
                        "fragile_test": k in fragile_test} for k, (a, b) in enumerate(zip(r.accuracies, tested))],
                      s.edir / "kernel_drop_val.csv")
    x, y = s.load("test")
    if r.fragile and r.null:
        rows = [row for space in s.p.spaces for row in run(model, x, y, r.fragile, r.null, s.log(), s.p.layer, space,
                                                           s.p.eval_batch, progress)]
    else:
        print(f"ranked on validation images, S or S' is empty at epoch {s.epoch}: Algorithm 1 is undefined; NaN")
        rows = [{"space": sp, "epsilon": e, "n": len(y), "fragile_count": 0, "percent": float("nan"),
                 "layer": s.p.layer} for sp in s.p.spaces for e in s.log()]
    results.write_csv(rows, s.edir / "targeting_val.csv", ["space", "epsilon", "n", "fragile_count", "percent", "layer"])
    results.write_json(dict(s.provenance(epoch=s.epoch, n_val=len(yv), n_test=len(y), epsilons=s.log(),
                                         layer=s.p.layer, drop=r.drop),
                            base_accuracy=r.base_accuracy, mean=r.mean, fragile=r.fragile, null=r.null,
                            fraction_fragile=len(r.fragile) / len(r.accuracies), fragile_test=sorted(fragile_test),
                            **agreement(meta["fragile"], r.fragile, tested, r.accuracies)), s.edir / "rank_val.json")
    return r


def attack(progress=True, **kw):
    """Step 3 (eq 1, Fig 2 left): FGSM accuracy over the linear ε grid in every space; ``e<E>/attack.csv``.

    Also ``e<E>/attack_correct.npz``: which test image was classified right at every (space, ε), bit-packed,
    for paired tests between checkpoints (:mod:`fnlib.stats`).
    """
    import numpy as np

    from .attacks import accuracy_under_attack, correct_under_attack
    s = Step(**kw)
    model = s.model()
    x, y = s.load("test")
    rows, packed = [], {}
    for space in s.p.spaces:
        hit = correct_under_attack(model, x, y, s.linear(), space, s.p.eval_batch, progress)
        rows += accuracy_under_attack(model, x, y, s.linear(), space, correct=hit)
        packed[space] = np.packbits(hit.numpy(), axis=1)
    results.write_csv(rows, s.edir / "attack.csv", ["space", "epsilon", "accuracy"])
    path = s.edir / "attack_correct.npz"
    np.savez_compressed(path.with_suffix(".part.npz"), epsilons=np.array(s.linear()), n=len(y), **packed)
    path.with_suffix(".part.npz").replace(path)
    results.write_json(s.provenance(epoch=s.epoch, n_images=len(y), epsilons=s.linear()), s.edir / "attack.json")
    return rows


def algorithm1(progress=True, **kw):
    """Step 5 (Algorithm 1, Fig 2 right): % of test images attacking S over the log ε grid; ``targeting.csv``."""
    from .targeting import algorithm1 as run
    s = Step(**kw)
    meta = s.ranking()
    model = s.model()
    x, y = s.load("test")
    rows = []
    if s.degenerate(meta):
        rows = [{"space": sp, "epsilon": e, "n": len(y), "fragile_count": 0, "percent": float("nan"),
                 "layer": s.p.layer} for sp in s.p.spaces for e in s.log()]
    for space in [] if rows else s.p.spaces:
        rows += run(model, x, y, meta["fragile"], meta["null"], s.log(), s.p.layer, space,
                    s.p.eval_batch, progress)
    results.write_csv(rows, s.edir / "targeting.csv", ["space", "epsilon", "n", "fragile_count", "percent", "layer"])
    results.write_json(s.provenance(epoch=s.epoch, n_images=len(y), epsilons=s.log(), layer=s.p.layer),
                       s.edir / "targeting.json")
    return rows


def defence(progress=True, **kw):
    """Step 4 (eqs 2-9, Fig 3): search σ_noise on val, filter conv1, compare original and filtered on test."""
    from .attacks import accuracy_under_attack, correct_under_attack
    from .defence import filter_layer, search_sigma
    from .targeting import algorithm1 as run
    from .evaluate import accuracy
    s = Step(**kw)
    meta = s.ranking()
    model = s.model()
    xv, yv = s.load("val")
    x, y = s.load("test")
    space = s.p.spaces[0]
    if s.degenerate(meta):
        raise ValueError(f"the filter needs non-empty S and S'; epoch {s.epoch} of {s.dataset}/{s.arch} has not "
                         "learned enough to rank its kernels — train longer (-p epochs) or use a later epoch")
    sigma, grid = search_sigma(model, meta["fragile"], meta["null"], xv, yv, s.p.filter_eps, space,
                               s.p.filter_mode, n=s.p.n_sigma, progress=progress)
    filtered = filter_layer(model, meta["fragile"], meta["null"], sigma, s.p.filter_mode)
    epsilons = sorted(set(s.log()) | {0.0})   # Fig 3's axis; ε = 0 gives clean accuracy
    rows, hits = [], {}
    for name, m in (("original", model), ("filtered", filtered)):
        hits[name] = correct_under_attack(m, x, y, epsilons, space, s.p.eval_batch, progress)
        acc = accuracy_under_attack(m, x, y, epsilons, space, correct=hits[name])
        tgt = run(m, x, y, meta["fragile"], meta["null"], epsilons, s.p.layer, space, s.p.eval_batch, progress)
        rows += [{"model": name, "epsilon": a["epsilon"], "accuracy": a["accuracy"], "n": len(y),
                  "targeting_count": t["fragile_count"], "targeting_percent": t["percent"]} for a, t in zip(acc, tgt)]
    # the pairs McNemar's test needs: images right for one model only, per ε (same rows for both models)
    only_o = (hits["original"] & ~hits["filtered"]).sum(1).tolist()
    only_f = (hits["filtered"] & ~hits["original"]).sum(1).tolist()
    for r in rows:
        j = epsilons.index(r["epsilon"])
        r["only_original"], r["only_filtered"] = only_o[j], only_f[j]
    results.write_csv(rows, s.edir / "defence.csv", ["model", "epsilon", "accuracy", "targeting_percent", "n",
                                                     "targeting_count", "only_original", "only_filtered"])
    report = dict(filtered.filter_report, search_eps=s.p.filter_eps, space=space, grid=grid,
                  clean_original=accuracy(model, x, y), clean_filtered=accuracy(filtered, x, y),
                  n_val=len(yv), n_test=len(y))
    results.write_json(dict(s.provenance(epoch=s.epoch), **report), s.edir / "defence.json")
    return report, rows


def clamp(progress=True, **kw):
    """Step 13 (beyond the paper): step 4 with eq 4 read literally (``filter_mode`` clamp: every singular value of
    the null-kernel matrix capped at τ, not dropped below it) on the same checkpoint and step 2's S and S'. Step 4
    runs unchanged, σ_noise searched again in that mode, in a scratch work root that holds this checkpoint and
    step 2's ranking; its two files land here as ``e<E>/clamp.csv`` and ``e<E>/clamp.json``."""
    import os
    import shutil
    import tempfile
    s = Step(**kw)
    if not s.p.eq4_literal:
        raise ValueError(f"profile {s.profile} does not read eq 4 literally; pass -p eq4_literal True")
    meta = s.require(s.edir / "meta.json", "rank", s.epoch)
    ckpt = results.checkpoint(s.profile, s.dataset, s.arch, s.ckpt_dir().name, s.epoch)
    if not ckpt.exists():
        s.model()                               # raises, naming the command that makes the checkpoint
    before = os.environ.get("FNLIB_WORKDIR")
    with tempfile.TemporaryDirectory(prefix="fnlib-clamp-") as scratch:
        os.environ["FNLIB_WORKDIR"] = scratch
        try:
            t = Step(**kw)
            link = results.checkpoint(t.profile, t.dataset, t.arch, t.ckpt_dir().name, t.epoch)
            link.parent.mkdir(parents=True)
            link.symlink_to(ckpt.resolve())
            t.edir.mkdir(parents=True)
            shutil.copy(meta, t.edir / "meta.json")
            out = defence(progress, **{**kw, "filter_mode": "clamp"})
        finally:
            if before is None:
                os.environ.pop("FNLIB_WORKDIR", None)
            else:
                os.environ["FNLIB_WORKDIR"] = before
        for name in ("csv", "json"):
            shutil.copy(t.edir / f"defence.{name}", s.edir / f"clamp.{name}")
    return out


def controls(progress=True, **kw):
    """Controls of Algorithm 1 over the log ε grid (:mod:`fnlib.controls`); writes ``e<E>/controls.csv``.

    Besides the controls (at the profile's layer and first space), Algorithm 1 itself at every layer
    (conv1, bn1, relu) and in both spaces (pixel: clipped; normalized: unclipped), rows ``control=algorithm1``.
    """
    from .controls import CONTROLS, algorithm1_controls
    s = Step(**kw)
    meta = s.ranking()
    model = s.model()
    x, y = s.load("test")
    space = s.p.spaces[0]
    if s.degenerate(meta):
        rows = [{"control": c, "epsilon": e, "n": len(y), "percent": float("nan"), "low": float("nan"),
                 "high": float("nan"), "layer": s.p.layer, "space": space} for c in CONTROLS for e in s.log()]
    else:
        rows = algorithm1_controls(model, x, y, meta["fragile"], meta["null"], s.log(), s.p.layer, space,
                                   s.p.n_sets, s.seed, s.p.eval_batch, progress)
        # why the count moves with ε: Algorithm 1 at every layer (conv1, bn1, relu), clipped and unclipped steps
        from .attacks import SPACES
        from .models import LAYERS
        from .targeting import algorithm1 as run
        for layer in LAYERS:
            for sp in SPACES:
                if (layer, sp) != (s.p.layer, space):
                    rows += [dict(r, control="algorithm1", low=r["percent"], high=r["percent"]) for r in
                             run(model, x, y, meta["fragile"], meta["null"], s.log(), layer, sp, s.p.eval_batch)]
    results.write_csv(rows, s.edir / "controls.csv", ["control", "epsilon", "n", "percent", "low", "high", "layer",
                                                      "space", "p_above", "p_below"])
    results.write_json(s.provenance(epoch=s.epoch, n_images=len(y), epsilons=s.log(), layer=s.p.layer, space=space,
                                    n_sets=s.p.n_sets), s.edir / "controls.json")
    return rows


def robustness(progress=True, **kw):
    """The defence under PGD, transfer, a validation-ranked filter and recomputed BatchNorm statistics.

    Reads the filter of step 4 (``defence.json``: S, S', σ_noise) so that ``filtered`` is the model of Fig 3;
    ranks the kernels again on the validation split for ``filtered_val`` (its σ searched there too) and
    recomputes every BatchNorm's statistics on training images for ``filtered_bn``. Writes
    ``e<E>/robustness.csv`` (:func:`fnlib.robustness.table`) and ``e<E>/robustness.json``.
    """
    from .defence import filter_layer, search_sigma
    from .kernels import rank as rank_kernels
    from .robustness import recompute_bn, table, under_attack
    s = Step(**kw)
    report = results.read_json(s.require(s.edir / "defence.json", "filter", s.epoch))
    model = s.model()
    xv, yv = s.load("val")
    from .data import load
    x, y = load(s.dataset, "test", limit=s.p.robust_limit or s.p.test_limit)
    xt, _ = s.load("train")
    space = report["space"]
    filtered = filter_layer(model, report["fragile"], report["null"], report["sigma_noise"], report["mode"])
    val_rank = rank_kernels(model, xv, yv, drop=s.p.drop, batch_size=s.p.eval_batch)
    if not (val_rank.fragile and val_rank.null):
        raise ValueError(f"ranking on the validation split left S or S' empty at epoch {s.epoch}; train longer")
    val_sigma, _ = search_sigma(model, val_rank.fragile, val_rank.null, xv, yv, s.p.filter_eps, space,
                                report["mode"], n=s.p.n_sigma)
    models = {"original": model, "filtered": filtered,
              "filtered_val": filter_layer(model, val_rank.fragile, val_rank.null, val_sigma, report["mode"]),
              "filtered_bn": recompute_bn(filtered, xt[:5000], s.p.eval_batch),
              "original_bn": recompute_bn(model, xt[:5000], s.p.eval_batch)}
    epsilons = list(s.p.robust_eps[s.dataset]) if s.epsilons is None else s.epsilons
    hits = under_attack(models, x, y, epsilons, s.p.pgd_steps, s.seed, s.p.eval_batch)
    rows = table(hits, epsilons)
    results.write_csv(rows, s.edir / "robustness.csv")
    overlap = len(set(val_rank.fragile) & set(report["fragile"]))
    results.write_json(dict(s.provenance(epoch=s.epoch, n_images=len(y), epsilons=epsilons, pgd_steps=s.p.pgd_steps,
                                         pgd_step_size="2.5·ε/steps", random_start=True, space="pixel",
                                         bn_images=min(5000, len(xt))),
                            sigma_test_ranked=report["sigma_noise"], sigma_val_ranked=val_sigma,
                            alpha_val_ranked=models["filtered_val"].filter_report["alpha"],
                            fragile_val=val_rank.fragile, null_val=val_rank.null, fragile_overlap=overlap,
                            jaccard=overlap / len(set(val_rank.fragile) | set(report["fragile"]))),
                       s.edir / "robustness.json")
    return rows


def csg(progress=True, **kw):
    """CSG complexity of the data set (:mod:`fnlib.csg`) for every embedding dimension; ``csg.csv``, ``csg.json``."""
    from .csg import embed_pca, resample
    from .data import load
    from .stats import t_interval
    if kw.get("csg_dims") is not None:
        kw["csg_dims"] = tuple(ints(kw["csg_dims"]))
    s = Step(**kw)
    x, y = load(s.dataset, "train", limit=s.p.csg_limit)
    rows, summary = [], []
    for dim in s.p.csg_dims:
        values = resample(embed_pca(x, dim), y, s.p.csg_m, s.p.csg_k, s.p.csg_resamples, s.seed)
        rows += [{"embedding": "pca", "dim": dim, "resample": i, "csg": v} for i, v in enumerate(values)]
        mean, lo, hi = t_interval(values)
        summary.append({"embedding": "pca", "dim": dim, "mean": mean, "low": lo, "high": hi})
        if progress:
            print(f"CSG {s.dataset}, PCA-{dim}: {mean:.3f} [{lo:.3f}, {hi:.3f}] over {len(values)} draws")
    results.write_csv(rows, s.dir / "csg.csv")
    results.write_json(dict(s.provenance(n_images=len(y), m=s.p.csg_m, k=s.p.csg_k, resamples=s.p.csg_resamples,
                                         dims=list(s.p.csg_dims)), summary=summary), s.dir / "csg.json")
    return summary


def seeds(progress=True, **kw):
    """The headline numbers for every seed of ``profile.seeds`` at every checkpoint (:mod:`fnlib.seeds`).

    The profile's own seed reads the pipeline's checkpoints; the others are trained here, each in its own
    checkpoint folder (the seed is part of a run's identity). Writes ``seeds.csv`` (one row per seed, epoch
    and number) and ``seeds_summary.csv`` (mean, t interval, min, max over seeds).
    """
    from . import models
    from .seeds import measure, spread
    from .train import fit, seed_everything
    if kw.get("seeds") is not None:
        kw["seeds"] = tuple(ints(kw["seeds"]))
    s = Step(**kw)
    if not s.p.seeds:
        raise ValueError(f"profile {s.profile} studies no seeds; pass e.g. -p seeds 0,1,2")
    x_train, y_train = s.load("train")
    test, val = s.load("test"), s.load("val")
    from .data import load
    ranked = load(s.dataset, "test", limit=s.p.rank_limit or s.p.test_limit)
    paper_eps = {"cifar10": 0.01, "mnist": 0.34}[s.dataset]
    rows, seconds = [], {}
    for seed in s.p.seeds:
        t = Step(**dict(kw, overrides={**(kw.get("overrides") or {}), "seed": seed}))
        seed_everything(seed)
        model = models.build(t.arch, t.dataset)
        history = fit(model, x_train, y_train, *test, checkpoints=t.p.epochs, recipe=t.recipe(), device=t.device(),
                      progress=progress, ckpt_dir=t.ckpt_dir(), ident=t.train_identity(), remake=t.remake(),
                      meta={"arch": t.arch, "dataset": t.dataset, "profile": t.profile})
        seconds[seed] = sum(r["seconds"] for r in history)
        for epoch in t.p.epochs:
            t.epoch = epoch
            m = t.model()
            got = measure(m, test, ranked, val if epoch == t.p.filter_epoch else None,
                          attack_eps=sorted({paper_eps, s.p.filter_eps}), target_eps=[s.p.filter_eps],
                          spaces=s.p.spaces, filter_eps=s.p.filter_eps, filter_mode=s.p.filter_mode,
                          n_sigma=s.p.n_sigma, batch_size=s.p.eval_batch, drop=s.p.drop, layer=s.p.layer)
            rows += [dict(r, seed=seed, epoch=epoch) for r in got]
            if progress:
                print(f"seed {seed}, epoch {epoch}: " + ", ".join(
                    f"{r['quantity']}{'@' + format(r['epsilon'], 'g') if r['epsilon'] != '' else ''}"
                    f"{'/' + r['space'] if r['space'] else ''} {r['value']:.1f}" for r in got))
    results.write_csv(rows, s.dir / "seeds.csv", ["seed", "epoch", "quantity", "epsilon", "space", "value"])
    results.write_csv(spread(rows), s.dir / "seeds_summary.csv")
    results.write_json(dict(s.provenance(seeds=list(s.p.seeds), n_test=len(test[1]), n_rank=len(ranked[1])),
                            training_seconds=seconds), s.dir / "seeds.json")
    return rows


def layers(progress=True, **kw):
    """Every convolution ranked by nodal dropout and targeted (:mod:`fnlib.layers`); ``e<E>/layers.csv``."""
    from .data import load
    from .layers import layer_table, rank_all, targeting_all
    s = Step(**kw)
    if s.p.layer_limit is None:
        raise ValueError(f"profile {s.profile} ranks conv1 only; pass -p layer_limit 200 to rank every layer")
    model = s.model()
    xr, yr = load(s.dataset, "test", limit=s.p.layer_limit)
    x, y = s.load("test")
    splits = rank_all(model, xr, yr, s.p.eval_batch, progress)
    epsilons = sorted({s.p.filter_eps, {"cifar10": 0.01, "mnist": 0.34}[s.dataset]}) if s.epsilons is None \
        else s.epsilons
    counts = {c: targeting_all(model, x, y, sets, epsilons, s.seed, s.p.eval_batch) for c, sets in splits.items()}
    results.write_csv(layer_table(model, splits, counts, epsilons, len(y)), s.edir / "layers.csv")
    acc, loss = splits["accuracy"], splits["loss"]
    results.write_csv([{"layer": n, "kernel": k, "accuracy": a, "loss": loss[n].losses[k],
                        "fragile_accuracy": k in set(r.fragile), "fragile_loss": k in set(loss[n].fragile)}
                       for n, r in acc.items() for k, a in enumerate(r.accuracies)], s.edir / "layers_drop.csv")
    results.write_json(s.provenance(epoch=s.epoch, n_rank=len(yr), n_images=len(y), epsilons=epsilons),
                       s.edir / "layers.json")
    return splits
