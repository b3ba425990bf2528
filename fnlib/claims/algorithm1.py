"""Sec 6 and Algorithm 1 of the paper: the share of images whose FGSM perturbation attacks the fragile set S,
against the paper's; growing with ε; closer to half and half late in training."""
from __future__ import annotations

from .. import stats
from ..stats import INCONCLUSIVE, NOT, PENDING, REPRODUCED
from . import alg1_controls, margins, rules, sensitivity
from .evidence import fmt_ci, pct, read_csv, value_at
from .rules import all_up_so_far, earlier, number_interval, number_v1, number_verdict, pending_note
from .sheet import Sheet
from .spaces import SPACES, across_spaces, space_rule
from .fgsm import earlier_number_spaces, earlier_spaces, matched_number, number_reason
from .verdict import Verdict

TARGETING_MARGIN = 5.0    # points of the share of images attacking S


def attacking_s(t: Sheet, dataset: str, e: int) -> None:
    """Row <dataset>_attacking_S_e<e>: the share of images whose FGSM perturbation attacks S at ε = 0.015, at the
    epoch standing in for the paper's ``e``; judged in both ε spaces."""
    model = f"{dataset}/{t.arch} @{t.ep[e]}"
    tgt = read_csv(t.edir(dataset, t.ep[e]) / "targeting.csv")
    share, cnt, n = (value_at(tgt, 0.015, c, space="pixel") for c in ("percent", "fragile_count", "n"))
    ci = number_interval(cnt, int(n)) if n else None
    paper = t.pv[f"{dataset}_attacking_S_e{e}"]["value"]
    spaces = [space for space in SPACES if value_at(tgt, 0.015, "percent", space=space) is not None]
    refute = t.refuting(TARGETING_MARGIN, dataset, t.ep[e], "attacking_s", spaces)
    wide = margins.widened(TARGETING_MARGIN, refute)
    judged = by_space(tgt, paper, refute=refute)
    per = {space: j[4] for space, j in judged.items()}
    per_v1, parts = {}, []
    for space, (sh, k, m, c, v, _) in judged.items():
        per_v1[space] = number_v1(paper, k, int(m), TARGETING_MARGIN, refute[space]) if m else v
        g = tgt[(tgt["space"] == space) & (tgt["epsilon"] > 0)]["percent"]
        parts.append(f"{space} space {pct(sh)} %" + (f" {fmt_ci(*c)}" if c else "")
                     + f": {Verdict.of(v).value}; over the whole grid (ε > 0) {pct(g.min())}"
                     + (f"–{pct(g.max())}" if g.max() > g.min() else "") + " %")
    verdict, why = across_spaces(per) if per else (PENDING, "")
    ctrl = alg1_controls.read(t.edir(dataset, t.ep[e]))
    control = None if ctrl is None else {
        "rule": rules.cite("alg1_norm_control")[0], "follows_kernel_size": ctrl.follows_norms,
        "needs_no_adversary": ctrl.same_sign, "reading": ctrl.label(),
        "shares": {k: round(v, 2) for k, v in ctrl.share.items()},
        # version 1 did not consult the division by norm; where it read otherwise, its reading stands beside
        "earlier": [{"rule": {"id": "alg1_norm_control", "version": 1}, "reading": ctrl.label(1)}]
        if ctrl.label(1) != ctrl.label() else None}
    reason = number_reason(verdict, share, ci, paper, TARGETING_MARGIN, spaces=per, refute=refute,
                           values=value_at(tgt, 0.015, "percent", space="normalized"))
    if ctrl is not None:
        reason += "; " + ctrl.clause()
    readings = {"val_ranking": val_ranked(t.edir(dataset, t.ep[e]), paper, verdict, refute)} if per else {}
    stated = {space: j[5] for space, j in judged.items()}           # each space with the stated margin alone
    if len(per) > 1:                                                # eps_matched keeps the stated margin (seed_margin)
        readings["eps_matched"] = matched_number(tgt, dataset, 0.015, "percent", stated, paper, TARGETING_MARGIN,
                                                 across_spaces(stated)[0], lambda a: (a * n / 100, int(n)) if n else None)
    if per:
        readings |= t.margin_reading(TARGETING_MARGIN, dataset, t.ep[e], "attacking_s", list(per),
                                     across_spaces(stated)[0], verdict)
    reason += sensitivity.flip_reason(readings) + sensitivity.moved_reason(   # val_ranking is in pixel space as
        {k: x for k, x in readings.items() if k == "val_ranking"}, share, TARGETING_MARGIN)    # share; eps_matched not
    t.row(f"{dataset}_attacking_S_e{e}", share, model,
        f"± {TARGETING_MARGIN:g} points" + (f"; refuted beyond ± {wide}" if wide else "")
        + f"; ε = 0.015; {space_rule(list(per))}", verdict,
        ci=ci, n=None if n is None else int(n), rules=("number", "eps_spaces", "alg1_norm_control", "val_ranking")
        + (("eps_matched",) if "eps_matched" in readings else ())
        + (("seed_margin",) if "seed_margin" in readings else ()),
        sensitivity=readings,
        runs=[f"{dataset}/{t.arch}"], epochs=[t.ep[e]], spaces=list(per), reason=reason,
        earlier=earlier_number_spaces(verdict, per, per_v1), control=control,
        note="ε = 0.015, our choice: the paper names no ε for this number (0.015 is its filter ε); read as "
             "Algorithm 1's share on the original model (Sec 6; Sec 5's wording could also mean the filtered layer: "
             "methods); ours and its "
             "interval: pixel space" + "".join(f"; {x}" for x in parts) + why)


def by_space(tgt, paper: float, eps: float = 0.015, refute: dict | None = None) -> dict:
    """``{space: (share, count, n, interval, verdict, verdict with the stated margin alone)}`` of a
    ``targeting.csv``-like table at ``eps``: each ε space the table holds, judged by rule number against the paper's
    value ± the margin, refuting beyond ``refute[space]`` where given (rule seed_margin)."""
    out = {}
    for space in SPACES:
        sh, k, m = (value_at(tgt, eps, c, space=space) for c in ("percent", "fragile_count", "n"))
        if sh is None:
            continue
        c = number_interval(k, int(m)) if m else None
        lo, hi = c or (None, None)
        out[space] = (sh, k, m, c, number_verdict(paper, sh, lo, hi, TARGETING_MARGIN, (refute or {}).get(space)),
                      number_verdict(paper, sh, lo, hi, TARGETING_MARGIN))
    return out


def val_ranked(edir, paper: float, verdict, refute: dict | None = None) -> dict:
    """The share attacking S at ε = 0.015 with S and S' ranked on validation images and scored on the test set
    (step 12, rule ``val_ranking``), judged by the row's rule in both ε spaces; pending where step 12 has not run."""
    tgt = read_csv(edir / "targeting_val.csv")
    if tgt is None:
        return sensitivity.pending("val_ranking", "with S ranked on validation images: pending (step 12 has not "
                                                  "run on this checkpoint)")
    if tgt["percent"].isna().all():
        return sensitivity.reading("val_ranking", "with S ranked on validation images: S or S' is empty (every drop "
                                                  "accuracy equal there), so Algorithm 1 is undefined")
    judged = by_space(tgt, paper, refute=refute)
    parts = [f"{space} {pct(sh)} %" + (f" {fmt_ci(*c)}" if c else "") for space, (sh, _, _, c, _, _) in judged.items()]
    v, why = across_spaces({space: j[4] for space, j in judged.items()}) if judged else (PENDING, "")
    return sensitivity.reading("val_ranking", "with S ranked on validation images: " + ", ".join(parts)
                               + f", {Verdict.of(v).value}{why}", verdict=v,
                               ours=value_at(tgt, 0.015, "percent", space="pixel"), row_verdict=verdict)


def grows_with_eps(t: Sheet) -> None:
    """Row targeting_grows_with_eps: at every CIFAR-10 checkpoint, the share attacking S is higher at the largest ε
    than at the smallest."""
    epochs = list(t.p.epochs)
    dirs = {e: t.edir("cifar10", e) for e in epochs}
    tg = {e: read_csv(dirs[e] / "targeting.csv") for e in epochs}
    landed = [e for e in epochs if tg[e] is not None]
    missing = sorted(set(epochs) - set(landed))
    spaces = [s for s in SPACES if landed and all((tg[e]["space"] == s).any() for e in landed)]
    linear = t.p.layer in ("conv1", "bn1")     # then Algorithm 1 is flat in ε in normalized space by construction
    spaces = [s for s in spaces if s == "pixel"] if linear else spaces
    per_space, notes, lower = {}, [], []
    for space in spaces:
        grows = []
        for e in landed:
            df = tg[e][tg[e]["space"] == space].sort_values("epsilon")
            lo_, hi_ = df.iloc[0], df.iloc[-1]
            grows.append(stats.direction(stats.proportion_greater(hi_["fragile_count"], hi_["n"], lo_["fragile_count"], lo_["n"]),
                                         stats.proportion_greater(lo_["fragile_count"], lo_["n"], hi_["fragile_count"], hi_["n"])))
            notes.append(f"{space} @{e}: {pct(lo_['percent'])} % → {pct(hi_['percent'])} % "
                         f"({ {1: 'significantly higher', -1: 'significantly lower', 0: 'no significant change'}[grows[-1]] })")
        per_space[space] = all_up_so_far(grows, complete=not missing)
        lower += [f"epoch {e} ({space} space)" for e, s in zip(landed, grows) if s < 0]
    verdict, why = across_spaces(per_space) if per_space else (PENDING, "")
    t.row("targeting_grows_with_eps", None, f"cifar10/{t.arch} @{landed or epochs}",
        (f"pixel space only (at a linear layer, {t.p.layer}, the share cannot move with ε in normalized space)"
         if linear else space_rule(spaces)),
        verdict, rules=("grows_with_eps", "change", "eps_spaces"), runs=[f"cifar10/{t.arch}"], epochs=landed,
        spaces=spaces, reason=(f"the share is significantly lower at the largest ε than at the smallest at {', '.join(lower)}"
                               if lower else "higher at the largest ε at every checkpoint" if Verdict.of(verdict) is Verdict.REPRODUCED
                               else "no checkpoint significantly lower, but not every one significantly higher"
                               if Verdict.of(verdict) is Verdict.INCONCLUSIVE else ""), note="; ".join(notes) + why + (pending_note(missing, verdict, "a lower share at one epoch already decides "
                                                         "the row") if per_space else ""))


def late_model_balanced(t: Sheet) -> None:
    """Row late_model_balanced: on CIFAR-10, the last checkpoint's share attacking S (small ε) is closer to 50 %
    than the first's."""
    first, last = t.p.epochs[0], t.p.epochs[-1]
    tg = {e: read_csv(t.edir("cifar10", e) / "targeting.csv") for e in (first, last)}
    per, parts = {}, []
    for space in SPACES if tg[first] is not None and tg[last] is not None and first != last else ():
        shares = []
        for e in (first, last):     # the same images at each ε ≤ 1e-3: mean count out of n images, not a pool
            sm = tg[e][(tg[e]["space"] == space) & (tg[e]["epsilon"] <= 1e-3)]
            shares.append((sm["fragile_count"].mean(), sm["n"].max()) if len(sm) else None)
        if None in shares:
            continue
        ci_e, ci_l = stats.wilson(*shares[0]), stats.wilson(*shares[1])
        far = lambda ci: max(abs(ci[0] - 50), abs(ci[1] - 50))            # noqa: E731
        near = lambda ci: 0.0 if ci[0] <= 50 <= ci[1] else min(abs(ci[0] - 50), abs(ci[1] - 50))  # noqa: E731
        per[space] = REPRODUCED if far(ci_l) < near(ci_e) else NOT if far(ci_e) < near(ci_l) else INCONCLUSIVE
        parts.append(f"{space} space @{first} {fmt_ci(*ci_e)}, @{last} {fmt_ci(*ci_l)}")
    verdict, why = across_spaces(per) if per else (PENDING, "")
    note = ("% attacking S averaged over ε ≤ 1e-3 (n = images): " + "; ".join(parts) + why) if per else \
        "needs the first and last checkpoint"
    t.row("late_model_balanced", None, f"cifar10/{t.arch} @{first} vs @{last}",
        "ε ≤ 1e-3; " + space_rule(list(per)), verdict, note=note,
        rules=("late_balanced", "eps_spaces"), runs=[f"cifar10/{t.arch}"], epochs=[first, last] if per else [],
        spaces=list(per), earlier=earlier(verdict, *earlier_spaces(per)),
        reason={Verdict.NOT: "the last checkpoint is farther from an even split than the first",
                Verdict.REPRODUCED: "the last checkpoint is closer to an even split than the first",
                Verdict.INCONCLUSIVE: "the two intervals do not separate, or the ε spaces disagree"}.get(Verdict.of(verdict), ""))
