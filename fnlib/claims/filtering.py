"""Sec 6 and eqs 2-9 of the paper, the defence: the filtered model attacks S less and keeps more accuracy under
FGSM; beyond the paper, the filtered model under other attacks and against Step 7's controls (BatchNorm
statistics recomputed without the filter)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import profiles, results, stats
from ..stats import INCONCLUSIVE, NOT, PENDING, REPRODUCED
from .evidence import n_images, read_csv, value_at
from .rules import earlier
from . import sensitivity
from .sheet import Sheet
from .verdict import Verdict, combine


def paired_gain_interval(only_new: int, only_old: int, n: int) -> tuple[float, float]:
    """95 % Wald interval (points) of the accuracy gain of a new model over an old one on the same ``n`` images,
    from the discordant counts (right only for the new one, only for the old one)."""
    d = (only_new - only_old) / n
    se = float(np.sqrt(max(only_new + only_old - n * d * d, 0.0))) / n
    return 100 * (d - stats.Z * se), 100 * (d + stats.Z * se)


def gain_verdict(only_new: int, only_old: int, p_up: float, p_down: float) -> str:
    """A claimed gain of a new model over an old one on the same images (one-sided McNemar, ``p_up``/``p_down``):
    reproduced when significantly up; not reproduced when significantly down, or when the new model is right on
    no image the old one misses (its gain cannot be positive: nothing to test); inconclusive otherwise."""
    if p_up < stats.ALPHA:
        return REPRODUCED
    return NOT if p_down < stats.ALPHA or only_new == 0 else INCONCLUSIVE


def bn_alone(rob: pd.DataFrame | None, eps: float, attack: str = "fgsm") -> str:
    """What recomputing every BatchNorm's statistics does to the *unfiltered* model under ``attack`` at ``eps``
    (Step 7's ``original_bn`` against ``original``, same images), in words; '' before Step 7 has landed."""
    if rob is None:
        return ""
    pick = lambda m, a: rob[(rob["model"] == m) & (rob["attack"] == a) & np.isclose(rob["epsilon"], eps)]  # noqa: E731
    # an attack made on the original ("…_transfer") is, for the original itself, its own white-box attack
    r, b = pick("original_bn", attack), pick("original", attack.replace("_transfer", ""))
    if r.empty or b.empty:
        return ""
    r, b = r.iloc[0], b.iloc[0]
    up = r["p_better"] <= r["p_worse"]
    return (f"BatchNorm statistics recomputed alone, without the filter, on {subset(int(r['n']))}: original "
            f"{b['accuracy']:.2f} → {r['accuracy']:.2f} % (McNemar +{int(r['only_model'])}/−{int(r['only_original'])}, "
            f"p{'↑' if up else '↓'} {min(r['p_better'], r['p_worse']):.2g}, unadjusted)")


def subset(n: int) -> str:
    """The images Step 7 (the robustness tests) scores on, in words: the same number from each class, at most
    ``robust_limit``; where they are fewer than the filter step's, its FGSM numbers differ from that step's."""
    return (f"the {n:,} test images of the robustness tests (the same number from each class; where they are "
            "fewer than the filter step's, the original's accuracy differs from its number there)")


def filter_space(p: profiles.Profile) -> str:
    """The row's part saying in which ε space the defence rows are judged (rule ``eps_spaces``)."""
    return f"{p.spaces[0]} space only (the filter step attacks in no other)"


def rows(t: Sheet) -> None:
    """The rows of the filter, all read from MNIST at the epoch standing in for 10: the paper's two claims, then
    the filtered model beyond the paper (Step 7). Both cite what recomputed BatchNorm statistics do alone."""
    edir = t.edir("mnist", t.ep[10])
    rob = read_csv(edir / "robustness.csv")
    bn_only = bn_alone(rob, t.p.filter_eps)
    paper_rows(t, edir, read_csv(edir / "defence.csv"), bn_only)
    beyond_rows(t, rob, bn_only)


def paper_rows(t: Sheet, edir: Path, dfn: pd.DataFrame | None, bn_only: str) -> None:
    """Rows filter_lowers_targeting (fewer images attack S) and filter_improves_robustness (higher FGSM accuracy,
    eq 2), from the filter step's ``defence.csv``."""
    if dfn is not None:
        o = dfn[dfn["model"] == "original"].set_index("epsilon")
        f = dfn[dfn["model"] == "filtered"].set_index("epsilon")
        pos = [e for e in o.index if e > 0]          # at ε = 0 nothing is perturbed: both are 0 % by definition
        ns = o["n"] if "n" in o else pd.Series(n_images(edir, "targeting") or 0, index=o.index)
        cnt = lambda d, e: d.loc[e, "targeting_count"] if "targeting_count" in d else d.loc[e, "targeting_percent"] * ns[e] / 100  # noqa: E731
        dirs_ = [stats.direction(stats.proportion_greater(cnt(o, e), ns[e], cnt(f, e), ns[e]),
                                 stats.proportion_greater(cnt(f, e), ns[e], cnt(o, e), ns[e])) for e in pos]
        lower, higher = dirs_.count(1), dirs_.count(-1)
        verdict = REPRODUCED if higher == 0 and lower >= len(pos) / 2 else NOT if higher > lower else INCONCLUSIVE
        t.row("filter_lowers_targeting", None, f"mnist/{t.arch} @{t.ep[10]}", filter_space(t.p), verdict,
            rules=("filter_lowers", "change"), runs=[f"mnist/{t.arch}"], epochs=[t.ep[10]], spaces=[t.p.spaces[0]],
            reason=(f"the filtered model attacks S significantly more often at {higher} of {len(pos)} ε" if higher > lower
                    else f"lower at {lower} of {len(pos)} ε and higher at none" if Verdict.of(verdict) is Verdict.REPRODUCED
                    else f"lower at {lower}, higher at {higher} of {len(pos)} ε"),
            note=f"of {len(pos)} ε > 0: lower at {lower}, higher at {higher}, no significant difference at "
                 f"{len(pos) - lower - higher}; the filter's α > 1 raises S's conv1 distances by construction (Fig 3)")
        acc_o, acc_f = (value_at(dfn, 0.015, "accuracy", model=m) for m in ("original", "filtered"))
        t.numbers["mnist_filter_acc_original_0.015"], t.numbers["mnist_filter_acc_filtered_0.015"] = acc_o, acc_f
    else:
        t.row("filter_lowers_targeting", None, "—", "—", PENDING, rules=("filter_lowers",))
    eq2_row(t, edir, dfn, bn_only)


@dataclass(frozen=True)
class Pair:
    """A filtered model against its baseline on the same images: right only for the new one, only for the old one,
    the images and both accuracies (%)."""
    only_new: int
    only_old: int
    n: int
    acc_old: float
    acc_new: float


def literal_pair(dfn: pd.DataFrame | None, edir: Path, eps: float = 0.015) -> Pair | None:
    """Eq 2 read literally, from the filter step's ``defence.csv``: filtered against original under FGSM at ``eps``
    (None before the filter step has landed, or from results that kept no per-image pairs)."""
    if dfn is None or "only_filtered" not in dfn:
        return None
    of, oo = (value_at(dfn, eps, c, model="original") for c in ("only_filtered", "only_original"))
    n = value_at(dfn, eps, "n", model="original") if "n" in dfn else n_images(edir, "targeting")
    acc_o, acc_f = (value_at(dfn, eps, "accuracy", model=m) for m in ("original", "filtered"))
    if None in (of, oo, n, acc_o, acc_f):
        return None
    return Pair(int(of), int(oo), int(n), acc_o, acc_f)


def control_pair(rob: pd.DataFrame | None, eps: float, attack: str = "fgsm") -> Pair | None:
    """The BatchNorm control, from Step 7's ``robustness.csv``: the filtered model against the original, both
    with every BatchNorm's statistics recomputed (``filtered_bn`` against ``original_bn``)."""
    if rob is None:
        return None
    pick = lambda m: rob[(rob["model"] == m) & (rob["attack"] == attack) & np.isclose(rob["epsilon"], eps)]  # noqa: E731
    f, o = pick("filtered_bn"), pick("original_bn")
    if f.empty or o.empty:
        return None
    f, o = f.iloc[0], o.iloc[0]
    return Pair(int(f["only_model"]), int(f["only_original"]), int(f["n"]), float(o["accuracy"]), float(f["accuracy"]))


def eq2_tests(pairs: dict) -> dict:
    """``{(run, test): verdict}`` for the eq 2 row (rule ``filter_gain`` v2): each pair a one-sided exact McNemar
    test up and down, Holm-adjusted over every one-sided test of the row; None pairs stay pending."""
    pvals = {}
    for key, pair in pairs.items():
        if pair is not None:
            pvals[key + ("up",)] = stats.mcnemar_greater(pair.only_new, pair.only_old)
            pvals[key + ("down",)] = stats.mcnemar_greater(pair.only_old, pair.only_new)
    adj = stats.holm(pvals) if pvals else {}
    return {key: Verdict.PENDING if pair is None else Verdict.of(gain_verdict(pair.only_new, pair.only_old,
                                                                            adj[key + ("up",)], adj[key + ("down",)]))
            for key, pair in pairs.items()}


def eq2_verdict(tests: dict) -> Verdict:
    """The row's verdict from :func:`eq2_tests`: reproduced only if every test of every run is, not reproduced if
    any is not, pending while one could still decide, inconclusive otherwise."""
    return combine(tests.values())


NAMES = {"mnist": "MNIST", "cifar10": "CIFAR-10", "resnet18": "ResNet-18", "resnet50": "ResNet-50",
         "resnet101": "ResNet-101"}


MODELS = {"original": "original model", "original_bn": "original model with BatchNorm statistics recomputed",
          "filtered": "filtered model"}


def run_name(run: str) -> str:
    d, a = run.split("/")
    return f"{NAMES.get(d, d)} {NAMES.get(a, a)}"


def eq2_row(t: Sheet, edir: Path, dfn: pd.DataFrame | None, bn_only: str) -> None:
    """Row filter_improves_robustness (eq 2), rule ``filter_gain`` v2: every run of the filter step, each read
    literally and against the BatchNorm control; beside it, the verdict of v1 (the paper's model, literal only)."""
    eps = t.p.filter_eps
    runs = [(d, a) for d in ("mnist", "cifar10") if d in t.p.datasets
            for a in [t.arch] + [x for x in t.p.archs if x != t.arch]]
    pairs, numbers = {}, {}
    for d, a in runs:
        e = t.edir(d, t.ep[10], a)
        pairs[(f"{d}/{a}", "literal")] = literal_pair(read_csv(e / "defence.csv"), e, 0.015)
        pairs[(f"{d}/{a}", "control")] = control_pair(read_csv(e / "robustness.csv"), eps)
    tests = eq2_tests(pairs)
    verdict = eq2_verdict(tests)
    ref = f"mnist/{t.arch}"
    lit = pairs.get((ref, "literal"))
    gain = gain_ci = n_pairs = None
    if lit is not None:
        gain, gain_ci, n_pairs = 100 * (lit.only_new - lit.only_old) / lit.n, paired_gain_interval(
            lit.only_new, lit.only_old, lit.n), lit.n
    # v1: the literal test on the paper's model alone, unadjusted
    v1 = None if lit is None else Verdict.of(gain_verdict(lit.only_new, lit.only_old,
                                                          stats.mcnemar_greater(lit.only_new, lit.only_old),
                                                          stats.mcnemar_greater(lit.only_old, lit.only_new)))
    parts = []
    for (run, test), pair in pairs.items():
        if pair is None:
            parts.append(f"{run_name(run)} {test}: pending")
            continue
        parts.append(f"{run_name(run)} {'eq 2 as written' if test == 'literal' else 'BatchNorm recomputed on both'}: "
                     f"{pair.acc_old:.2f} → {pair.acc_new:.2f} % (McNemar +{pair.only_new}/−{pair.only_old}, "
                     f"n = {pair.n:,}): {tests[(run, test)].value}")
    readings = {"eq4_literal": eq4_literal(t, runs)}
    head, detail = eq2_reason(pairs, tests, verdict, ref)
    reason = head + sensitivity.flip_reason(readings)
    landed = sorted({run for (run, _), p in pairs.items() if p is not None})
    t.row("filter_improves_robustness", gain, f"{'; '.join(run_name(r) for r in landed) or '—'} @{t.ep[10]}",
        f"ε = {eps:g}; each run as written and with BatchNorm recomputed; Holm over the row; {filter_space(t.p)}",
        verdict, ci=gain_ci, n=n_pairs, rules=("filter_gain", "change", "eq4_literal"), runs=landed,
        epochs=[t.ep[10]] if landed else [], sensitivity=readings,
        spaces=[t.p.spaces[0]], reason=reason, detail=detail,
        earlier=earlier(verdict, ("filter_gain", 1, v1)),
        note=("ours: the gain in points on the paper's model (MNIST, as written), filtered − original, with its 95 % "
              "interval (paired); " if gain is not None else "") + "; ".join(parts)
             + (f"; {bn_only}" if bn_only else ""))
    for run in landed:
        numbers[run] = {test: None if pairs[(run, test)] is None else
                        round(pairs[(run, test)].acc_new - pairs[(run, test)].acc_old, 2) for test in ("literal", "control")}
    t.numbers["filter_gain_by_run"] = numbers


def clamp_detail(path) -> str:
    """What the clamp did on one run (step 13's ``clamp.json``): the τ the σ search chose, how many of the
    null-kernel matrix's singular values lie above it (those it caps) and the rescale α."""
    if not path.exists():
        return ""
    c = results.read_json(path)
    sv = c["singular_values_before"]
    capped = sum(v > c["tau"] for v in sv)
    # where the search kept the layer as it is: what every candidate that caps something does on validation images
    capping = [g["val_accuracy"] for g in c.get("grid", []) if any(v > g["tau"] for v in sv)]
    why = (f": every τ of the grid that caps any gives at most {max(capping):.2f} % FGSM accuracy on the validation "
           "images, so the search keeps the layer unchanged" if not capped and capping else "")
    return (f" (σ search: τ = {c['tau']:.3g}, " + (f"caps {capped} of {len(sv)} singular values"
                                                   if capped else f"at or above all {len(sv)} singular values, so it "
                                                                  f"caps none{why}") + f"; α = {c['alpha']:.2f})")


def eq4_literal(t: Sheet, runs: list) -> dict:
    """Test (a) of the eq 2 row on the filter with eq 4 read literally (step 13's ``clamp.csv``; rule
    ``eq4_literal``), Holm-adjusted over the runs where it ran. It flips where a run's verdict differs from test (a)
    of the hard filter on the same runs, adjusted the same way (the row's own tests are adjusted over every run and
    the BatchNorm control too, so equal counts could otherwise read as a flip). Pending where step 13 has run
    nowhere."""
    pairs, hard_pairs, detail = {}, {}, {}
    for d, a in runs:
        e = t.edir(d, t.ep[10], a)
        pair = literal_pair(read_csv(e / "clamp.csv"), e, 0.015)
        if pair is not None:
            pairs[(f"{d}/{a}", "clamp")] = pair
            detail[f"{d}/{a}"] = clamp_detail(e / "clamp.json")
            hard_pairs[(f"{d}/{a}", "literal")] = literal_pair(read_csv(e / "defence.csv"), e, 0.015)
    if not pairs:
        return sensitivity.pending("eq4_literal", "eq 4 read literally (clamp): pending (step 13 has not run on the "
                                                  "filter's checkpoints)")
    clamp, hard = eq2_tests(pairs), eq2_tests(hard_pairs)
    differ = [run for (run, _), v in clamp.items() if hard[(run, "literal")] is not Verdict.PENDING
              and v is not hard[(run, "literal")]]
    text = "; ".join(f"{run_name(run)}: {p.acc_old:.2f} → {p.acc_new:.2f} % (McNemar +{p.only_new}/−{p.only_old}, "
                     f"n = {p.n:,}): {clamp[(run, k)].value}" + (f", where the hard filter's test (a) is "
                                                                 f"{hard[(run, 'literal')].value}" if run in differ else "")
                     + detail[run] for (run, k), p in pairs.items())
    return sensitivity.reading("eq4_literal", "eq 4 read literally (clamp), FGSM at ε = 0.015: " + text,
                               verdict=eq2_verdict(clamp), flips=bool(differ)) | (
        {"clause": "with eq 4 read literally (clamp), test (a) judges "
                   + ", ".join(f"{run_name(r)} {clamp[(r, 'clamp')].value}" for r in differ)} if differ else {})


def eq2_reason(pairs: dict, tests: dict, verdict, ref: str) -> tuple[str, str]:
    """The eq 2 row in words, as (reason, detail). The reason is one plain sentence: the paper's model (or the run
    standing in for it) as written and with the BatchNorm control, whether landed or pending, then the other runs
    where the filter significantly changes FGSM accuracy (raises or lowers it). The detail holds the rest: the other
    runs where it changes nothing significantly, where recomputing BatchNorm leaves it no gain, and which are
    pending (in the reason when the row itself is pending)."""
    def gain(run, test):
        p = pairs.get((run, test))
        return "" if p is None else f" ({p.acc_new - p.acc_old:+.2f} points)"
    out, more = [], []
    lit, ctrl = tests.get((ref, "literal")), tests.get((ref, "control"))
    whose = "the paper's model" if ref == "mnist/resnet50" else "standing in for the paper's model"
    bn_lost = ctrl is Verdict.NOT
    if lit is Verdict.REPRODUCED:
        out.append(f"on {run_name(ref)}, {whose}, the filter raises FGSM accuracy{gain(ref, 'literal')}"
                   + (f" but not once BatchNorm statistics are recomputed on both models{gain(ref, 'control')}"
                      if bn_lost else ""))
    elif lit is not None and lit is not Verdict.PENDING:
        out.append(f"on {run_name(ref)}, {whose}, eq 2 as written is {lit.value}{gain(ref, 'literal')}"
                   + (f", and with BatchNorm statistics recomputed on both models the filter gains nothing"
                      f"{gain(ref, 'control')}" if bn_lost else ""))
    elif (ref, "literal") in pairs:
        out.append(f"{run_name(ref)}, {whose}, pending")
    others = [r for (r, k) in tests if k == "literal" and r != ref]
    for word, pick in (("raises", lambda v, p: v is Verdict.REPRODUCED),
                       ("lowers", lambda v, p: v is Verdict.NOT and p.only_old > p.only_new),
                       ("does not significantly change", lambda v, p: v is not Verdict.REPRODUCED
                        and not (v is Verdict.NOT and p.only_old > p.only_new))):
        hit = [f"{run_name(r)}{gain(r, 'literal')}" for r in others if pairs[(r, "literal")] is not None
               and pick(tests[(r, "literal")], pairs[(r, "literal")])]
        if hit:
            (more if word.startswith("does not") else out).append(f"it {word} FGSM accuracy on {', '.join(hit)}")
    lost = [f"{run_name(r)}{gain(r, 'control')}" for (r, k), v in tests.items()
            if k == "control" and v is Verdict.NOT and r != ref]
    if lost:
        more.append(f"with BatchNorm statistics recomputed on both models the filter gains nothing on {', '.join(lost)}")
    pending = sorted({run_name(r) for (r, k), p in pairs.items() if p is None and r != ref})
    if pending:      # in the reason where they are what the row waits for
        (out if Verdict.of(verdict) is Verdict.PENDING else more).append(f"{', '.join(pending)} pending")
    if not out:
        out, more = more[:1], more[1:]
    return ("; ".join(out) if out else ("its results have not landed yet" if Verdict.of(verdict) is Verdict.PENDING
                                         else "")), "; ".join(more)


def filter_test(df: pd.DataFrame | None, eps: float = 0.015) -> str | None:
    """The filter against the original at ``eps`` in words, from ``defence.csv``: the direction by one-sided exact
    McNemar (p < 0.05), unadjusted (None without per-image pairs)."""
    pair = literal_pair(df, Path("."), eps) if df is not None and "n" in df else None
    if pair is None:
        return None
    up, down = stats.mcnemar_greater(pair.only_new, pair.only_old), stats.mcnemar_greater(pair.only_old, pair.only_new)
    word = {1: "significantly higher", -1: "significantly lower", 0: "not significantly different"}[stats.direction(up, down)]
    return (f"{word} (McNemar: {pair.only_new} images right only when filtered, {pair.only_old} only when original, "
            f"one-sided p = {min(up, down):.2g})")


def bn_reading(rob: pd.DataFrame | None, eps: float = 0.015, paper_model: bool = False) -> str:
    """What recomputed BatchNorm statistics do, from Step 7's ``robustness.csv``, in words: the unfiltered model
    with fresh statistics against the original, and the filtered against the original with both fresh; when the
    first is a significant gain and the second is not, that the eq 2 gain belongs to bn1's stale statistics."""
    if rob is None:
        return "(Step 7 has not landed: the reading with recomputed statistics is pending.)"
    g = lambda m: rob[(rob["model"] == m) & (rob["attack"] == "fgsm") & np.isclose(rob["epsilon"], eps)]  # noqa: E731
    o, ob, f, fb = (g(m) for m in ("original", "original_bn", "filtered", "filtered_bn"))
    if any(x.empty for x in (o, ob, f, fb)):
        return ""
    o, ob, f, fb = (x.iloc[0] for x in (o, ob, f, fb))
    d_ob = stats.direction(ob["p_better"], ob["p_worse"])
    d_fb = stats.direction(fb["p_better"], fb["p_worse"])
    k = int(fb["only_model"] + fb["only_original"])
    text = (f"On {subset(int(o['n']))}, FGSM at ε = {eps:g}: recomputing every BatchNorm's statistics on "
            f"training images, with no filter at all, moves the original model from {o['accuracy']:.2f} % to "
            f"{ob['accuracy']:.2f} % ({ {1: 'significantly up', -1: 'significantly down', 0: 'no significant change'}[d_ob] }; "
            f"McNemar +{int(ob['only_model'])}/−{int(ob['only_original'])}, one-sided p = "
            f"{min(ob['p_better'], ob['p_worse']):.2g}); the filter with the kept statistics scores {f['accuracy']:.2f} %. "
            f"With statistics recomputed on both, the filtered and the original model are right on different "
            f"images for {k} of the {int(fb['n']):,} (+{int(fb['only_model'])} right only when filtered, "
            f"−{int(fb['only_original'])} right only unfiltered). ")
    if d_ob == 1 and d_fb != 1:
        text += ("So fresh statistics alone give a significant gain, and the filter adds no significant gain once "
                 "they are fresh" + (": the eq 2 gain is a property of the filtered weights together with bn1's "
                 "stale statistics, not of the filtered weights alone." if paper_model else "."))
    return text


def bn_caveat(rob: pd.DataFrame | None, bn_verdict, eps: float = 0.015) -> str | None:
    """The claims page's paragraph on the defence's control (None when the BatchNorm row reads reproduced or
    pending, or Step 7 has not landed): at the filter's ε, recomputed statistics alone against the filter."""
    v = Verdict.of(bn_verdict)
    if rob is None or v in (Verdict.REPRODUCED, Verdict.PENDING):
        return None
    pick = lambda m, e: rob[(rob["model"] == m) & (rob["attack"] == "fgsm") & np.isclose(rob["epsilon"], e)]  # noqa: E731
    alone = pick("original_bn", eps)
    if alone.empty:
        return None
    a = alone.iloc[0]
    f_same, o_same = pick("filtered", eps), pick("original", eps)
    moves = {1: "raises its accuracy significantly", 0: "does not change its accuracy significantly",
             -1: "lowers its accuracy significantly"}[stats.direction(a["p_better"], a["p_worse"])]
    return ("The filter keeps bn1's running statistics, which were estimated for the original conv1. With every "
            f"BatchNorm's statistics recomputed on both models, the filter shows no significant gain (*{v.value}*). "
            f"On {subset(int(a['n']))}, recomputing the statistics of the unfiltered model, with no "
            f"filter at all, {moves}: " + (f"{o_same.iloc[0]['accuracy']:.2f} → " if len(o_same) else "")
            + f"{a['accuracy']:.2f} % (McNemar +{int(a['only_model'])}/−{int(a['only_original'])})"
            + (f", where the filter reaches {f_same.iloc[0]['accuracy']:.2f} %" if len(f_same) else "")
            + ". The filtered model with its stale bn1 statistics is more robust than the original, but removing "
              "the null kernels' small directions is not by itself what makes it so.")


def beyond_rows(t: Sheet, rob: pd.DataFrame | None, bn_only: str) -> None:
    """Rows beyond_* (Step 7's ``robustness.csv``): the filtered model under PGD, a transfer attack, S ranked on
    validation images and recomputed BatchNorm statistics, each against its baseline, Holm-adjusted together."""
    beyond = []
    for model_, attack, what in (("filtered", "pgd", "PGD-{steps}, white-box"),
                                 ("filtered", "fgsm_transfer", "FGSM made on the original (transfer)"),
                                 ("filtered_val", "fgsm", "FGSM, with S ranked on validation images"),
                                 ("filtered_bn", "fgsm", "FGSM, with BatchNorm statistics recomputed")):
        key = f"beyond_{model_}_{attack}"
        item = f"(beyond the paper) filtered model's accuracy under {what.format(steps=t.p.pgd_steps)}, MNIST ε = 0.015"
        r = None if rob is None else rob[(rob["model"] == model_) & (rob["attack"] == attack)
                                         & np.isclose(rob["epsilon"], t.p.filter_eps)]
        ref = "original" if r is None or r.empty or "baseline" not in r else r.iloc[0]["baseline"]
        base = None if r is None or r.empty else \
            rob[(rob["model"] == ref) & (rob["attack"] == (attack if ref != "original" else attack.replace("_transfer", "")))
                & np.isclose(rob["epsilon"], t.p.filter_eps)]
        beyond.append((key, attack, item, ref, None if r is None or r.empty or base.empty else (r.iloc[0], base.iloc[0])))
    # Holm's step-down correction over the tests of this family (each row tests up and down: 2 × rows tests)
    pvals = {(k, d): got[0][f"p_{d}"] for k, _, _, _, got in beyond if got is not None for d in ("better", "worse")}
    adjusted = stats.holm(pvals)
    for key, attack, item, ref, got in beyond:
        if got is None:
            t.row(key, None, "—", "—", PENDING, item=item, paper="—", kind="beyond", rules=("beyond_gain",))
            continue
        r, base = got
        up, down = adjusted[(key, "better")], adjusted[(key, "worse")]
        same = int(r["only_model"]) == int(r["only_original"]) == 0      # the filter changes no prediction here
        verdict = gain_verdict(int(r["only_model"]), int(r["only_original"]), up, down)
        gap = r["accuracy"] - base["accuracy"]
        t.row(key, r["accuracy"], f"mnist/{t.arch} @{t.ep[10]}", f"against the {MODELS.get(ref, ref)}; Holm over {len(pvals)} "
            f"tests; {filter_space(t.p)}", verdict, ci=(r["low"], r["high"]), n=int(r["n"]), item=item, paper="—",
            kind="beyond", rules=("beyond_gain", "change"), runs=[f"mnist/{t.arch}"], epochs=[t.ep[10]],
            spaces=[t.p.spaces[0]],
            reason=(f"{gap:+.2f} points over the {MODELS.get(ref, ref)}" + {Verdict.REPRODUCED: ", significant after Holm",
                    Verdict.NOT: ": no image gained" if int(r["only_model"]) == 0 else ": significantly lower",
                    Verdict.INCONCLUSIVE: ", not significant after Holm"}.get(Verdict.of(verdict), "")),
            note=f"{MODELS.get(ref, ref)} {base['accuracy']:.2f} % → filtered {r['accuracy']:.2f} % (gain "
                 f"{r['accuracy'] - base['accuracy']:+.2f} points); right only when filtered {int(r['only_model'])}, "
                 f"only for the {MODELS.get(ref, ref)} {int(r['only_original'])}; "
                 f"Holm-adjusted p = {min(up, down):.3g}"
                 + ("; both models are right on exactly the same images (no discordant pair)" if same else "")
                 + (f"; {bn_only}" if key == "beyond_filtered_bn_fgsm" and bn_only else "")
                 # the control beside each gain over the plain original: the same recomputation without the filter
                 + (f"; {control}" if ref == "original" and (control := bn_alone(rob, t.p.filter_eps, attack)) else ""))
