"""Every rule the book applies lives in ``fnlib.claims`` and is tested here on inputs whose right verdict is known
(reproduced, not reproduced, inconclusive); a planted inverted rule (reproduced ↔ not reproduced) must fail those
cases, which shows they can catch one. The rule texts are frozen with their versions: a change to what a rule says
must raise its version (and, if its data have been seen, keep the earlier version in its history)."""
import hashlib

import pandas as pd
import pytest

from fnlib import stats
from fnlib.claims import alg1_controls, filtering, fragile, rules, spaces
from fnlib.claims.verdict import Verdict as V, combine

# (id, version) → the first 12 hex digits of the SHA-256 of the rule's text, as committed with that version
FROZEN = {("number", 2): "0b226905b7bc", ("fragile_share", 2): "e815b2e19486", ("change", 1): "16db59184b22",
          ("eps_spaces", 2): "5cc3af0abcca", ("accuracy_grows", 1): "8c01a42eca46",
          ("stronger_on_complex", 1): "faaaa83166ab", ("grows_with_eps", 1): "2eb96370c26f",
          ("late_balanced", 1): "a4d2d5443039", ("alg1_norm_control", 2): "686d6ef2f36d",
          ("filter_lowers", 1): "45aaf1a40104", ("filter_gain", 2): "6b0cb0e4bc44", ("beyond_gain", 1): "7a0c5d9489f2",
          ("depth", 1): "098013ae5ce7", ("mean_drop_saturates", 1): "adc92f653233",
          ("mean_drop_rises_falls", 2): "aad0f041d17e", ("csg_value", 1): "44711ce82068",
          ("seeds", 1): "28ef2df3fa37", ("schedule", 1): "c0d693664be6", ("csg_order", 1): "e00d7fc78ff5",
          ("val_ranking", 1): "c2be662f28df", ("eps_matched", 1): "180e1e299e8a",
          ("eq4_literal", 1): "6d1ab8754156", ("seed_margin", 2): "6e1a8c735563"}


def test_rule_texts_are_frozen_with_their_versions():
    now = {(r.id, r.version): hashlib.sha256(r.text.encode()).hexdigest()[:12] for r in rules.RULES.values()}
    changed = sorted(k for k in now if FROZEN.get(k) != now[k])
    assert not changed, (f"rules {changed} say something else than their frozen version: raise the version, keep the "
                         "old text in its history (with whether its data had been seen), and update FROZEN")


def test_a_rule_changed_after_its_data_were_seen_keeps_its_earlier_version():
    for r in rules.RULES.values():
        for version, until, text, seen, why in r.history:
            assert version < r.version and until and text and isinstance(seen, bool) and why, r.id
    assert rules.RULES["eps_spaces"].earlier(1)[3] is True and rules.RULES["filter_gain"].earlier(1)[3] is True
    assert rules.RULES["number"].earlier(1)[3] is True and rules.RULES["alg1_norm_control"].earlier(1)[3] is True


def test_number_rows_judge_family_wise_intervals():
    """Rule number v2: each of the 10 intervals of the number rows at 1 - 0.05/10 (Bonferroni), as its text says;
    a verdict v2 changes carries v1's (a 95 % interval on its own) beside it."""
    from statistics import NormalDist
    assert rules.NUMBER_FAMILY == 10 and "10 intervals" in rules.RULES["number"].text
    assert NormalDist().cdf(rules.NUMBER_Z) == pytest.approx(1 - 0.05 / 20)
    assert f"z = {rules.NUMBER_Z:.2f}" in rules.RULES["number"].text
    lo, hi = rules.number_interval(7488, 10000)                  # CIFAR-10 clean at epoch 100: 74.88 %
    assert (round(lo, 2), round(hi, 2)) == (73.64, 76.08)
    assert rules.number_verdict(75.87, 74.88, lo, hi, margin=2) == V.INCONCLUSIVE       # 73.64 < 75.87 - 2
    assert rules.number_v1(75.87, 7488, 10000, margin=2) == V.REPRODUCED                # [74.02, 75.72] inside
    assert rules.earlier(V.INCONCLUSIVE, ("number", 1, V.REPRODUCED)) == [
        {"verdict": "reproduced", "rule": {"id": "number", "version": 1}}]
    assert rules.earlier(V.NOT, ("number", 1, V.NOT), ("eps_spaces", 1, None)) is None
    lo, hi = rules.number_interval(1119, 10000)                  # far from the paper's 79.4: no change
    assert rules.number_verdict(79.4, 11.19, lo, hi, margin=2) == V.NOT


def test_every_cited_rule_exists():
    for rid in ("number", "eps_spaces", "filter_gain", "alg1_norm_control"):
        assert rules.cite(rid) == [{"id": rid, "version": rules.RULES[rid].version}]


# ---- known inputs → known verdicts, for each pure rule -------------------------------------------------------
def _controls(algorithm1, random_sign, norm_sets, per_norm=50.0):
    rows = [dict(control=c, epsilon=0.015, n=100, percent=v, low=v, high=v, layer="conv1", space="pixel",
                 p_above=float("nan"), p_below=float("nan"))
            for c, v in (("algorithm1", algorithm1), ("random_sign", random_sign), ("norm_sets", norm_sets),
                         ("per_norm", per_norm))]
    rows.append(dict(control="random_sets", epsilon=0.015, n=100, percent=50.0, low=0.0, high=100.0, layer="conv1",
                     space="pixel", p_above=0.4, p_below=0.6))
    return pd.DataFrame(rows)


def follows(algorithm1, random_sign, norm_sets, per_norm=50.0):
    return V.REPRODUCED if alg1_controls.reading(_controls(algorithm1, random_sign, norm_sets, per_norm)).follows_norms \
        else V.NOT


def test_the_lead_says_what_every_quoted_count_reads():
    f = {"follows_kernel_size": True, "needs_no_adversary": True}
    n = {"follows_kernel_size": False, "needs_no_adversary": True}
    x = {"follows_kernel_size": False, "needs_no_adversary": False}
    assert "kernels' size" in alg1_controls.lead([f, f])
    assert "random perturbation" in alg1_controls.lead([f, n])          # both need no adversary; not both size
    assert alg1_controls.lead([f, x]) == alg1_controls.lead([]) == "Algorithm 1's count against its controls"


CASES = {
    "number (equivalence)": (lambda *a: V.of(rules.number_verdict(*a[:2], *a[2:4], margin=a[4])), [
        ((75.87, 75.0, 74.5, 77.0, 2.0), V.REPRODUCED), ((58.88, 34.4, 33.5, 35.3, 2.0), V.NOT),
        ((75.0, 75.5, 73.5, 77.5, 2.0), V.INCONCLUSIVE)]),
    "fragile share (point)": (lambda paper, ours: V.of(rules.number_verdict(paper, ours, margin=5.0)), [
        ((37.0, 35.0), V.REPRODUCED), ((37.0, 26.56), V.NOT)]),
    "all up so far": (lambda steps, complete: V.of(rules.all_up_so_far(steps, complete)), [
        (([1, 1], True), V.REPRODUCED), (([1, -1], True), V.NOT), (([1, 0], True), V.INCONCLUSIVE),
        (([-1], False), V.NOT)]),
    "both ε spaces": (lambda per: V.of(spaces.across_spaces(per)[0]), [
        ({"pixel": stats.REPRODUCED, "normalized": stats.REPRODUCED}, V.REPRODUCED),
        ({"pixel": stats.NOT, "normalized": stats.INCONCLUSIVE}, V.NOT),
        ({"pixel": stats.NOT, "normalized": stats.REPRODUCED}, V.INCONCLUSIVE)]),
    "a gain on the same images": (lambda of, oo: V.of(filtering.gain_verdict(
            of, oo, stats.mcnemar_greater(of, oo), stats.mcnemar_greater(oo, of))), [
        ((158, 48), V.REPRODUCED), ((260, 360), V.NOT), ((0, 0), V.NOT), ((64, 55), V.INCONCLUSIVE)]),
    "eq 2 over runs and control": (lambda pairs: filtering.eq2_verdict(filtering.eq2_tests(
            {k: filtering.Pair(a, b, 10000, 90.0, 90.0) for k, (a, b) in pairs.items()})), [
        ({("mnist/r50", "literal"): (158, 48), ("mnist/r50", "control"): (60, 10)}, V.REPRODUCED),
        ({("mnist/r50", "literal"): (158, 48), ("mnist/r50", "control"): (0, 0)}, V.NOT),       # the BN control
        ({("mnist/r50", "literal"): (158, 48), ("cifar/r50", "literal"): (260, 360)}, V.NOT),
        ({("mnist/r50", "literal"): (158, 48), ("mnist/r18", "literal"): (64, 60)}, V.INCONCLUSIVE)]),
    "combine": (lambda vs: combine(vs), [
        ([V.REPRODUCED, V.REPRODUCED, V.NO_VERDICT], V.REPRODUCED), ([V.REPRODUCED, V.NOT, V.PENDING], V.NOT),
        ([V.REPRODUCED, V.INCONCLUSIVE], V.INCONCLUSIVE)]),
    "mean drop saturates": (lambda *means: V.of(fragile.mean_drop_verdict(
            "cifar10", [{"mean": m, "params": {"n_images": 10000}} for m in means])[0]), [
        ((60.0, 70.0, 70.5), V.REPRODUCED), ((60.58, 69.80, 74.04), V.NOT), ((60.0, 70.0, 71.5), V.INCONCLUSIVE)]),
    "mean drop rises then falls": (lambda *means: V.of(fragile.mean_drop_verdict(
            "mnist", [{"mean": m, "params": {"n_images": 10000}} for m in means])[0]), [
        ((97.0, 99.0, 98.0), V.REPRODUCED), ((97.67, 98.89, 99.48), V.NOT), ((97.0, 99.0, 98.9), V.INCONCLUSIVE)]),
    "Algorithm 1 follows kernel size": (follows, [
        ((0.0, 0.0, 100.0), V.REPRODUCED), ((99.99, 99.64, 99.99, 67.81), V.REPRODUCED), ((59.9, 86.42, 100.0), V.NOT),
        ((60.0, 60.0, 50.0), V.NOT), ((0.0, 0.0, 100.0, 0.01), V.NOT)]),      # the last: v2's (c), MNIST R50 @10
}


def mismatches(rule, cases):
    return [(args, want, got) for args, want in cases
            if (got := rule(*args) if isinstance(args, tuple) else rule(args)) is not want]


@pytest.mark.parametrize("name", CASES)
def test_each_rule_gives_the_known_verdicts(name):
    rule, cases = CASES[name]
    assert not mismatches(rule, cases)


def inverted(rule):
    """A planted bug: the rule with reproduced and not reproduced swapped."""
    swap = {V.REPRODUCED: V.NOT, V.NOT: V.REPRODUCED}
    return lambda *a: swap.get(rule(*a), rule(*a))


@pytest.mark.parametrize("name", CASES)
def test_a_planted_inverted_rule_fails_the_known_cases(name):
    rule, cases = CASES[name]
    assert mismatches(inverted(rule), cases), f"the cases of {name!r} cannot tell the rule from its inverse"


def test_an_inverted_gain_rule_planted_in_fnlib_fails_the_cases(monkeypatch):
    """The same, planted where the row builders call it (fnlib.claims.filtering.gain_verdict)."""
    rule, cases = CASES["eq 2 over runs and control"]
    original = filtering.gain_verdict
    monkeypatch.setattr(filtering, "gain_verdict", lambda *a: {stats.REPRODUCED: stats.NOT, stats.NOT: stats.REPRODUCED}
                        .get(original(*a), original(*a)))
    assert mismatches(rule, cases)


# ---- what the chapters display, computed here (moved out of fig2.md, fig3.md, claims.md) -------------------------
def _rob(ob=(43, 18), fb=(0, 0)):
    def row(model, base, acc, om, oo):
        return dict(model=model, baseline=base, attack="fgsm", epsilon=0.015, n=2000, accuracy=acc, only_model=om,
                    only_original=oo, p_better=stats.mcnemar_greater(om, oo), p_worse=stats.mcnemar_greater(oo, om))
    return pd.DataFrame([row("original", "original", 94.65, 0, 0), row("original_bn", "original", 95.9, *ob),
                         row("filtered", "original", 96.05, 41, 13), row("filtered_bn", "original_bn", 95.9, *fb)])


def test_bn_reading_says_the_gain_belongs_to_the_stale_statistics_only_when_it_does():
    text = filtering.bn_reading(_rob(), paper_model=True)
    assert "94.65 % to 95.90 % (significantly up" in text and "stale statistics" in text, text
    assert "stale statistics" not in filtering.bn_reading(_rob(fb=(60, 10)), paper_model=True)   # the filter adds a gain
    assert "stale statistics" not in filtering.bn_reading(_rob(ob=(18, 18)), paper_model=True)   # fresh stats do nothing
    assert "pending" in filtering.bn_reading(None)


def test_bn_caveat_appears_only_when_the_control_row_is_not_reproduced():
    assert "94.65 → 95.90 %" in filtering.bn_caveat(_rob(), V.NOT)
    assert filtering.bn_caveat(_rob(), V.REPRODUCED) is None and filtering.bn_caveat(None, V.NOT) is None


def test_filter_test_reads_the_direction_of_the_pairs():
    def dfn(of, oo):
        return pd.DataFrame([dict(model=m, epsilon=0.015, accuracy=50.0, n=10000, only_filtered=of, only_original=oo)
                             for m in ("original", "filtered")])
    assert filtering.filter_test(dfn(260, 360)).startswith("significantly lower")
    assert filtering.filter_test(dfn(158, 48)).startswith("significantly higher")
    assert filtering.filter_test(dfn(231, 247)).startswith("not significantly different")
    assert filtering.filter_test(None) is None


def test_the_controls_sentence_follows_its_stated_rules():
    r = alg1_controls.reading(_controls(0.0, 0.0, 100.0, per_norm=0.01))
    text = r.sentence()
    # v2 (c): dividing by the norm leaves S's share where it is, so size alone does not make the count (v1: it did)
    assert r.label() == "needs no adversary" and r.label(1) == "follows kernel size", (r.label(), r.label(1))
    assert "does not need the adversary" in text and "leaves the share within 5 points" in text, text
    assert "neither higher nor lower" in text                               # p_above 0.4, p_below 0.6
    r = alg1_controls.reading(_controls(99.99, 99.64, 99.99, per_norm=67.81))    # CIFAR-10 ResNet-50 @50
    assert r.label() == "follows kernel size" and r.label(1) == "follows kernel size"
    assert "dividing by the norm 67.8 %" in r.clause(), r.clause()
    r = alg1_controls.reading(_controls(59.9, 86.42, 100.0, per_norm=37.44))
    assert "fewer images than a random sign" in r.sentence() and r.label() == "not kernel size alone"


def test_over_seeds_is_unanimity_and_waits_for_three():
    from fnlib.claims.variants import over_seeds
    R, N, I, P = V.REPRODUCED, V.NOT, V.INCONCLUSIVE, V.PENDING
    assert over_seeds({0: R, 1: R, 2: R}) is R
    assert over_seeds({0: N, 1: N, 2: N}) is N
    assert over_seeds({0: N, 1: R, 2: N}) is I          # "not reproduced for one seed; inconclusive over three"
    assert over_seeds({0: R, 1: I, 2: R}) is I
    assert over_seeds({0: R, 1: R}) is P                # seed 2 not landed
    assert over_seeds({0: R, 1: R, 2: P}) is P


def test_a_reading_that_moves_the_value_past_the_margin_is_named_even_without_a_flip():
    from fnlib.claims import sensitivity
    far = sensitivity.reading("val_ranking", "t", verdict=V.NOT, ours=98.56, row_verdict=V.NOT)
    near = sensitivity.reading("val_ranking", "t", verdict=V.NOT, ours=3.0, row_verdict=V.NOT)
    flip = sensitivity.reading("val_ranking", "t", verdict=V.REPRODUCED, ours=90.0, row_verdict=V.NOT)
    assert sensitivity.moved_reason({"val_ranking": far}, 0.0, 5.0) == \
        "; with S ranked on validation images 98.56 %, the same verdict (rule val_ranking)"
    assert sensitivity.moved_reason({"val_ranking": near}, 0.0, 5.0) == ""
    assert sensitivity.moved_reason({"val_ranking": flip}, 0.0, 5.0) == ""     # flip_reason names it instead
    assert sensitivity.moved_reason({"val_ranking": far}, None, 5.0) == ""
