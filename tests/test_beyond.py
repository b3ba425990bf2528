"""PGD, the robustness table, CSG, the seed study and every-layer ranking: known answers on small inputs."""
import numpy as np
import pytest
import torch

from fnlib import csg, layers, pgd, robustness, seeds, stats, targeting
from fnlib.attacks import fgsm


# ------------------------------------------------------------------------------------------------ PGD
def test_pgd_stays_in_the_ball_and_the_pixel_range(tiny, mnist_small):
    model = tiny(in_ch=1, channels=8)
    x, y = mnist_small
    xf = x.float() / 255
    adv = pgd.pgd(model, x, y, 0.1, steps=5, generator=torch.Generator().manual_seed(0))
    assert (adv - xf).abs().max() <= 0.1 + 1e-6
    assert adv.min() >= 0 and adv.max() <= 1
    assert torch.equal(pgd.pgd(model, x, y, 0.0, steps=3), xf)          # ε = 0 changes nothing


def test_pgd_raises_the_loss_at_least_as_much_as_fgsm(tiny, mnist_small):
    """A planted sign flip (stepping down the gradient) makes PGD lower the loss: this test fails then."""
    model = tiny(in_ch=1, channels=8)
    x, y = mnist_small
    loss = lambda z: torch.nn.functional.cross_entropy(model(z), y).item()     # noqa: E731
    clean = loss(x.float() / 255)
    with torch.no_grad():
        l_fgsm = loss(fgsm(model, x, y, 0.05))
        l_pgd = loss(pgd.pgd(model, x, y, 0.05, steps=10, random_start=False))
    assert l_fgsm > clean and l_pgd > clean
    assert l_pgd >= l_fgsm - 1e-4


def test_pgd_step_size_and_random_start_are_the_documented_ones(tiny, mnist_small, monkeypatch):
    """Known answers for a = 2.5·ε/steps and the start U(−ε, ε): with a gradient sign that alternates +1, −1, +1
    (no projection binds, a < ε), three steps end at x + a; with no gradient the start stays at x + ε·(2u − 1).
    (The fixed-model tests cannot see the step size: on its images PGD's verdicts are the same with 2.0·ε/steps.)"""
    model = tiny(in_ch=1, channels=8)
    x, y = mnist_small
    xf = x.float() / 255
    calls = []

    def alternating(_model, z, _y):
        calls.append(1)
        return torch.ones_like(z) * (1 if len(calls) % 2 else -1)
    monkeypatch.setattr(pgd, "gradient_sign", alternating)
    eps, inner = 0.3, (xf > 0.35) & (xf < 0.65)      # pixels that no clip onto [0, 1] can reach
    adv = pgd.pgd(model, x, y, eps, steps=3, random_start=False)
    assert torch.allclose(adv[inner], xf[inner] + 2.5 * eps / 3, atol=1e-6)
    assert len(calls) == 3
    monkeypatch.setattr(pgd, "gradient_sign", lambda _m, z, _y: torch.zeros_like(z))     # no step: the start stays
    u = torch.rand(x.shape, generator=torch.Generator().manual_seed(7))
    start = pgd.pgd(model, x, y, eps, steps=2, random_start=True, generator=torch.Generator().manual_seed(7))
    assert torch.allclose(start[inner], (xf + eps * (2 * u - 1))[inner], atol=1e-6)


def test_pgd_repeats_from_a_seed_and_rejects_bad_input(tiny, mnist_small):
    model = tiny(in_ch=1, channels=8)
    x, y = mnist_small
    a = pgd.correct_under_pgd(model, x, y, [0.05, 0.2], steps=2, seed=1)
    assert a.shape == (2, len(y)) and torch.equal(a, pgd.correct_under_pgd(model, x, y, [0.05, 0.2], steps=2, seed=1))
    with pytest.raises(ValueError, match="at least one step"):
        pgd.pgd(model, x, y, 0.1, steps=0)
    with pytest.raises(ValueError, match="ε must be"):
        pgd.pgd(model, x, y, -0.1)


# ----------------------------------------------------------------------------------------- robustness
def test_recompute_bn_sets_the_statistics_to_the_data_averages(tiny, mnist_small):
    model = tiny(in_ch=1, channels=8)
    x, _ = mnist_small
    fresh = robustness.recompute_bn(model, x, batch_size=len(x))
    with torch.no_grad():
        h = fresh.body.conv1(fresh.normalize(x.float() / 255))
    assert torch.allclose(fresh.body.bn1.running_mean, h.mean((0, 2, 3)), atol=1e-5)
    assert fresh.body.bn1.running_var.sub(h.var((0, 2, 3), unbiased=True)).abs().max() < 1e-4
    assert not torch.allclose(model.body.bn1.running_mean, fresh.body.bn1.running_mean)   # the original is untouched
    assert not fresh.training


def test_table_pairs_each_model_with_its_baseline():
    t, f = True, False
    hits = {("original", "fgsm"): torch.tensor([[t, t, f, f]]), ("original", "pgd"): torch.tensor([[t, f, f, f]]),
            ("filtered", "fgsm"): torch.tensor([[t, f, t, t]]), ("filtered", "fgsm_transfer"): torch.tensor([[f, f, f, f]]),
            ("original_bn", "fgsm"): torch.tensor([[f, f, f, f]]), ("filtered_bn", "fgsm"): torch.tensor([[t, t, t, t]])}
    rows = {(r["model"], r["attack"]): r for r in robustness.table(hits, [0.1])}
    r = rows[("filtered", "fgsm")]
    assert (r["accuracy"], r["only_original"], r["only_model"], r["baseline"]) == (75.0, 1, 2, "original")
    assert rows[("filtered", "fgsm_transfer")]["only_original"] == 2         # against the original's own FGSM
    bn = rows[("filtered_bn", "fgsm")]
    assert (bn["baseline"], bn["only_original"], bn["only_model"]) == ("original_bn", 0, 4)
    assert bn["p_better"] < 0.1 < bn["p_worse"]
    assert rows[("original", "fgsm")]["low"] <= 50.0 <= rows[("original", "fgsm")]["high"]


def test_under_attack_needs_the_original(tiny, mnist_small):
    x, y = mnist_small
    with pytest.raises(ValueError, match="original"):
        robustness.under_attack({"filtered": tiny(in_ch=1, channels=8)}, x, y, [0.1])


def test_transfer_examples_are_made_on_the_original_and_scored_on_the_other(tiny, mnist_small):
    """A transfer attack made on the scored model instead of the original fails this test."""
    original, other = tiny(in_ch=1, channels=8, seed=0), tiny(in_ch=1, channels=8, seed=2)
    x, y = mnist_small
    hits = robustness.under_attack({"original": original, "other": other}, x, y, [0.5], steps=2, seed=0)
    with torch.no_grad():
        want_transfer = other(fgsm(original, x, y, 0.5)).argmax(1) == y
        want_white = other(fgsm(other, x, y, 0.5)).argmax(1) == y
    assert torch.equal(hits[("other", "fgsm_transfer")][0], want_transfer)
    assert torch.equal(hits[("other", "fgsm")][0], want_white)
    assert not torch.equal(want_transfer, want_white)          # the two attacks differ on these models


# ------------------------------------------------------------------------------------------------ CSG
def _blobs(spread, n=60, classes=4, dim=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.eye(classes, dim) * 10 if classes <= dim else torch.randn(classes, dim, generator=g) * 10
    z = torch.cat([centres[c] + spread * torch.randn(n, dim, generator=g) for c in range(classes)]).double()
    return z, torch.arange(classes).repeat_interleave(n)


def test_csg_of_separated_classes_is_zero_and_grows_with_overlap():
    z, y = _blobs(0.1)
    s = csg.similarity(z, y, m=30, k=3)
    assert np.allclose(s, np.eye(4))
    assert csg.csg(csg.spectrum(s)) == pytest.approx(0.0, abs=1e-9)
    values = [np.mean(csg.resample(*_blobs(spread), m=30, k=3, resamples=3)) for spread in (0.1, 5.0, 50.0)]
    assert values[0] < values[1] < values[2]


def test_csg_formula_on_known_eigenvalues():
    # gaps 1, 0, 3 over K - i = 4, 3, 2 -> ratios 0.25, 0, 1.5 -> cummax 0.25, 0.25, 1.5
    assert csg.csg(np.array([0.0, 1.0, 1.0, 4.0])) == pytest.approx(2.0)


def test_embed_pca_keeps_the_leading_axis():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 1, 2, 2, generator=g) * torch.tensor([5.0, 0.1, 0.1, 0.1]).view(1, 1, 2, 2)
    z = csg.embed_pca(x, 1)
    assert z.shape == (200, 1)
    assert abs(torch.corrcoef(torch.stack([z[:, 0], x.flatten(1)[:, 0].double()]))[0, 1]) > 0.99
    with pytest.raises(ValueError, match="dim"):
        csg.embed_pca(x, 5)


# ---------------------------------------------------------------------------------------------- seeds
def test_t_interval_and_spread():
    mean, lo, hi = stats.t_interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and hi - mean == pytest.approx(4.302653 * 1.0 / np.sqrt(3), rel=1e-5)
    assert np.isnan(stats.t_interval([5.0])[1])
    rows = [{"seed": s, "epoch": 1, "quantity": "clean_accuracy", "epsilon": "", "space": "", "value": v}
            for s, v in ((0, 90.0), (1, 92.0), (2, 94.0))]
    (out,) = seeds.spread(rows)
    assert (out["seeds"], out["mean"], out["min"], out["max"]) == (3, 92.0, 90.0, 94.0)


def test_measure_reports_every_number(tiny, mnist_small):
    model = tiny(in_ch=1, channels=8)
    x, y = mnist_small
    rows = seeds.measure(model, (x, y), (x, y), val=(x, y), attack_eps=[0.01, 0.3], target_eps=[0.015],
                         spaces=("pixel",), n_sigma=2)
    got = {(r["quantity"], r["epsilon"]) for r in rows}
    assert {("clean_accuracy", ""), ("fraction_fragile", ""), ("mean_drop", ""), ("fgsm_accuracy", 0.01),
            ("fgsm_accuracy", 0.3)} <= got


# --------------------------------------------------------------------------------------------- layers
def test_every_convolution_of_resnet18_in_forward_order(resnet):
    convs = layers.convolutions(resnet("mnist"))
    names = [n for n, _ in convs]
    assert len(convs) == 20 and names[0] == "conv1" and names[1] == "layer1.0.conv1"
    assert sum(m.out_channels for _, m in convs) == 4800


def test_rank_layer_restores_the_weights_and_targeting_counts(tiny, mnist_small):
    model = tiny(in_ch=1, channels=8)
    x, y = mnist_small
    before = model.conv1.weight.detach().clone()
    splits = layers.rank_all(model, x, y)
    assert torch.equal(model.conv1.weight, before)
    assert set(splits) == {"accuracy", "loss"} and list(splits["loss"]) == ["conv1"]
    assert len(splits["accuracy"]["conv1"].accuracies) == 8 and len(splits["loss"]["conv1"].losses) == 8
    from fnlib.kernels import Ranking
    sets = {"conv1": Ranking([10.0, 50.0, 10.0, 50.0, 50.0, 10.0, 50.0, 50.0], 60.0, "weights")}   # S = {0, 2, 5}
    r = sets["conv1"]
    assert r.fragile == [0, 2, 5]
    counts = layers.targeting_all(model, x, y, sets, [0.05, 0.3])
    assert counts["conv1"].shape == (2, 2)
    # row 0 (FGSM) at conv1 is exactly Algorithm 1 of the paper
    paper = targeting.algorithm1(model, x, y, r.fragile, r.null, [0.05, 0.3], "conv1", "pixel")
    assert counts["conv1"][0].tolist() == [p["fragile_count"] for p in paper]
    split = layers.LossSplit([0.1, 0.9, 0.2, 0.8, 0.1, 0.1, 0.1, 0.1])      # mean 0.3125: S = {1, 3}
    assert split.fragile == [1, 3] and split.null == [0, 2, 4, 5, 6, 7]
    rows = layers.layer_table(model, {"accuracy": sets, "loss": {"conv1": split}},
                              {"accuracy": counts, "loss": counts}, [0.05, 0.3], len(y))
    acc_rows = [row for row in rows if row["criterion"] == "accuracy"]
    assert acc_rows[0]["depth"] == 0 and acc_rows[0]["kernels"] == 8 and acc_rows[0]["percent"] == paper[0]["percent"]
    assert [row["n_fragile"] for row in rows if row["criterion"] == "loss"] == [2, 2]


def test_batched_drop_equals_zeroing_each_kernel(resnet, mnist_small):
    """The hook-based, several-kernels-per-pass drop gives the logits of zeroing each kernel's weights."""
    model = resnet("mnist")
    x, y = mnist_small
    xf = x.float() / 255
    conv = dict(layers.convolutions(model))["layer1.0.conv2"]
    got = layers.dropped_logits(model, conv, xf, [3, 7, 8])
    for g, k in enumerate([3, 7, 8]):
        saved = conv.weight.data[k].clone()
        conv.weight.data[k].zero_()
        with torch.no_grad():
            want = model(xf)
        conv.weight.data[k].copy_(saved)
        assert torch.allclose(got[g], want, atol=1e-4)
        assert not torch.allclose(got[g], got[(g + 1) % 3], atol=1e-4)      # each copy dropped its own kernel
    accs, losses = layers.rank_layer(model, conv, x, y, batch_size=40)
    assert len(accs) == len(losses) == conv.out_channels and all(0 <= a <= 100 for a in accs)
    want = torch.nn.functional.cross_entropy(got[1], y).item()                  # kernel 7 is the second of [3, 7, 8]
    assert layers.rank_layer(model, conv, x, y, batch_size=16)[1][7] == pytest.approx(want, rel=1e-4)
