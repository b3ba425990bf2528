"""The defence, Sec 4.1-4.2, eqs 3-9: Gavish-Donoho λ(β), the threshold τ, filtering and the σ search."""
import math

import numpy as np
import pytest
import torch

from fnlib import attacks, defence
from conftest import snapshot, state_equal

FRAGILE = [1, 4, 9, 16, 25, 36, 49, 60, 63]
NULL = [k for k in range(64) if k not in FRAGILE]


def lam_eq6(beta, c1=8.0, c2=14.0):
    """Eq (6) of the paper, typed in independently of fnlib."""
    return math.sqrt(2.0 * (beta + 1.0) + c1 * beta / ((beta + 1.0) + math.sqrt(beta * beta + c2 * beta + 1.0)))


# ------------------------------------------------------------------ λ(β), eq 6

def test_gd_lambda_at_one_is_four_over_root_three():
    assert defence.gd_lambda(1.0) == pytest.approx(4 / math.sqrt(3), abs=1e-12)
    assert defence.gd_lambda(1) == pytest.approx(2.309401076758503, abs=1e-12)


@pytest.mark.parametrize("beta", [0.5, 0.25, 0.1, 49 / 55, 1e-3])
def test_gd_lambda_matches_eq6(beta):
    assert defence.gd_lambda(beta) == pytest.approx(lam_eq6(beta), abs=1e-12)


def test_gd_lambda_tabulated_values():
    # hand values: β=0.5 -> √(3 + 4/(1.5+√8.25)); β=0.25 -> √(2.5 + 2/(1.25+√4.5625)); β=0.1 -> √(2.2 + 0.8/(1.1+√2.41))
    assert defence.gd_lambda(0.5) == pytest.approx(math.sqrt(3 + 4 / (1.5 + math.sqrt(8.25))), abs=1e-12)
    assert defence.gd_lambda(0.25) == pytest.approx(math.sqrt(2.5 + 2 / (1.25 + math.sqrt(4.5625))), abs=1e-12)
    assert defence.gd_lambda(0.1) == pytest.approx(math.sqrt(2.2 + 0.8 / (1.1 + math.sqrt(2.41))), abs=1e-12)
    # and a few digits, as a guard against a formula typo shared by the two expressions above
    assert defence.gd_lambda(0.5) == pytest.approx(1.97860, abs=1e-5)
    assert defence.gd_lambda(0.25) == pytest.approx(1.75803, abs=1e-5)
    assert defence.gd_lambda(0.1) == pytest.approx(1.58165, abs=1e-5)


def test_gd_lambda_monotone_increasing():
    betas = np.linspace(1e-4, 1.0, 200)
    values = [defence.gd_lambda(float(b)) for b in betas]
    assert all(b > a for a, b in zip(values, values[1:]))
    assert values[0] > math.sqrt(2)  # λ(β) -> √2 as β -> 0


@pytest.mark.parametrize("beta", [0.0, -0.5, 1.0000001, 2.0, float("nan")])
def test_gd_lambda_rejects_beta_outside_unit_interval(beta):
    with pytest.raises(ValueError, match="β"):
        defence.gd_lambda(beta)


# ------------------------------------------------------------------ τ, eq 5

def test_threshold_formula_and_orientation():
    s = 0.037
    expected = lam_eq6(40 / 49) * math.sqrt(49) * s          # √ of the LARGER dimension, β = min/max
    assert defence.threshold((40, 49), s) == pytest.approx(expected, rel=1e-12)
    assert defence.threshold((49, 40), s) == pytest.approx(expected, rel=1e-12)
    assert defence.threshold((40, 49), s) == defence.threshold((49, 40), s)
    # square matrix: λ(1)·√n·σ
    assert defence.threshold((64, 64), 1.0) == pytest.approx(4 / math.sqrt(3) * 8, rel=1e-12)
    # a shape given as torch.Size works too
    assert defence.threshold(torch.Size([55, 147]), s) == pytest.approx(lam_eq6(55 / 147) * math.sqrt(147) * s)


def test_threshold_linear_in_sigma():
    t1 = defence.threshold((37, 147), 1.0)
    for s in (0.0, 0.01, 0.5, 3.0):
        assert defence.threshold((37, 147), s) == pytest.approx(s * t1, rel=1e-12, abs=0)
    assert defence.threshold((37, 147), 0.0) == 0.0


def test_threshold_rejects_negative_sigma_and_bad_shape():
    with pytest.raises(ValueError, match="σ"):
        defence.threshold((10, 20), -1e-9)
    with pytest.raises(ValueError):
        defence.threshold((0, 20), 1.0)


# ------------------------------------------------------------------ filter_kernels, eqs 3-9

@pytest.fixture(scope="module")
def weight():
    """A conv1-like weight (64, 3, 7, 7) whose null block has well separated singular values."""
    g = torch.Generator().manual_seed(1)
    return torch.randn(64, 3, 7, 7, generator=g) * 0.1


def np_svals(m):
    return np.linalg.svd(np.asarray(m, dtype=np.float64), compute_uv=False)


def test_hard_mode_removes_small_singular_values_and_keeps_large_ones(weight):
    k = weight.double()[NULL].flatten(1).numpy()
    s = np_svals(k)
    tau_target = (s[10] + s[11]) / 2                       # keeps 11 values, removes the rest
    sigma = tau_target / defence.threshold(k.shape, 1.0)
    new, rep = defence.filter_kernels(weight, FRAGILE, NULL, sigma, mode="hard")
    assert rep["tau"] == pytest.approx(tau_target, rel=1e-12)
    kept = s[s > tau_target]
    assert len(kept) == 11
    assert rep["rank_before"] == len(s) and rep["rank_after"] == 11
    # the new null block: exactly the large singular values survive, unchanged
    s_new = np_svals(new.double()[NULL].flatten(1).numpy())
    np.testing.assert_allclose(s_new[:11], kept, rtol=1e-5)
    assert np.all(s_new[11:] < 1e-5 * s[0])
    assert np.linalg.matrix_rank(new.double()[NULL].flatten(1).numpy(), tol=1e-4 * s[0]) == 11
    # the report's singular values: before are the true ones, after zero the small ones
    np.testing.assert_allclose(rep["singular_values_before"], s, rtol=1e-10)
    after = np.array(rep["singular_values_after"])
    np.testing.assert_allclose(after[:11], kept, rtol=1e-10)
    assert np.all(after[11:] == 0)


def test_null_rows_are_the_truncated_svd_reconstruction(weight):
    k = weight.double()[NULL].flatten(1).numpy()
    u, s, vt = np.linalg.svd(k, full_matrices=False)
    r = 7
    sigma = ((s[r - 1] + s[r]) / 2) / defence.threshold(k.shape, 1.0)
    new, rep = defence.filter_kernels(weight, FRAGILE, NULL, sigma, mode="hard")
    expected = (u[:, :r] * s[:r]) @ vt[:r]
    np.testing.assert_allclose(new[NULL].flatten(1).double().numpy(), expected, atol=1e-6)
    assert new.shape == weight.shape and new.dtype == weight.dtype


def test_clamp_mode_caps_singular_values_and_keeps_rank(weight):
    k = weight.double()[NULL].flatten(1).numpy()
    s = np_svals(k)
    tau_target = float(s[5])
    sigma = tau_target / defence.threshold(k.shape, 1.0)
    new, rep = defence.filter_kernels(weight, FRAGILE, NULL, sigma, mode="clamp")
    assert rep["mode"] == "clamp"
    s_new = np_svals(new.double()[NULL].flatten(1).numpy())
    np.testing.assert_allclose(s_new, np.minimum(s, tau_target), rtol=1e-5)
    assert rep["rank_after"] == rep["rank_before"] == len(s)
    assert np.linalg.matrix_rank(new.double()[NULL].flatten(1).numpy()) == np.linalg.matrix_rank(k)
    # clamp reconstruction: U min(Σ, τ) Vᵀ
    u, _, vt = np.linalg.svd(k, full_matrices=False)
    np.testing.assert_allclose(new[NULL].flatten(1).double().numpy(), (u * np.minimum(s, tau_target)) @ vt,
                               atol=1e-6)


@pytest.mark.parametrize("mode", ["hard", "clamp"])
def test_alpha_is_one_plus_spectral_norm_of_removed_part(weight, mode):
    k = weight.double()[NULL].flatten(1).numpy()
    u, s, vt = np.linalg.svd(k, full_matrices=False)
    tau = float(s[3] * 0.999)
    sigma = tau / defence.threshold(k.shape, 1.0)
    new, rep = defence.filter_kernels(weight, FRAGILE, NULL, sigma, mode=mode)
    s_f = np.where(s > tau, s, 0.0) if mode == "hard" else np.minimum(s, tau)
    k_f = (u * s_f) @ vt
    alpha = 1.0 + np.linalg.norm(k - k_f, ord=2)
    # spectral norm of the removed part = largest removed (hard) / largest excess (clamp) singular value
    assert alpha == pytest.approx(1 + (s[4] if mode == "hard" else s[0] - tau), rel=1e-9)
    assert rep["alpha"] == pytest.approx(alpha, rel=1e-9)
    assert rep["alpha"] > 1.0
    # fragile rows are α·K_S, the rows outside S ∪ S' (none here) and S' handled above
    np.testing.assert_allclose(new[FRAGILE].double().numpy(), alpha * weight[FRAGILE].double().numpy(), rtol=1e-6)
    assert torch.equal(new[FRAGILE], (rep["alpha"] * weight[FRAGILE].double()).float())


def test_fragile_rows_scaled_exactly_by_alpha_others_untouched(weight):
    fragile, null = [0, 2, 5], [1, 3, 4, 6, 7, 8, 9, 10]          # kernels 11..63 belong to neither set
    k = weight.double()[null].flatten(1).numpy()
    s = np_svals(k)
    sigma = ((s[2] + s[3]) / 2) / defence.threshold(k.shape, 1.0)
    new, rep = defence.filter_kernels(weight, fragile, null, sigma)
    assert rep["alpha"] == pytest.approx(1 + s[3], rel=1e-9)
    ratio = new[fragile] / weight[fragile]
    assert torch.allclose(ratio, torch.full_like(ratio, rep["alpha"]), rtol=1e-6)
    assert torch.equal(new[11:], weight[11:])
    assert rep["fragile"] == fragile and rep["null"] == null
    assert rep["shape"] == [8, 147] and rep["beta"] == pytest.approx(8 / 147)
    assert rep["lambda"] == pytest.approx(lam_eq6(8 / 147))


@pytest.mark.parametrize("mode", ["hard", "clamp"])
def test_nothing_removed_gives_alpha_one_and_same_weights(weight, mode):
    k = weight.double()[NULL].flatten(1).numpy()
    s = np_svals(k)
    below_smallest = 0.5 * s[-1] / defence.threshold(k.shape, 1.0)
    sigmas = [0.0, below_smallest] if mode == "hard" else [s[0] * 2 / defence.threshold(k.shape, 1.0)]
    for sigma in sigmas:
        new, rep = defence.filter_kernels(weight, FRAGILE, NULL, sigma, mode=mode)
        assert rep["alpha"] == pytest.approx(1.0, abs=1e-12)
        assert rep["rank_after"] == rep["rank_before"]
        assert torch.allclose(new, weight, rtol=0, atol=1e-6)
        assert torch.equal(new[FRAGILE], weight[FRAGILE])


def test_filter_changes_the_model_when_something_is_removed(weight):
    sigma = defence.sigma_grid(weight, NULL, 6)[2]
    new, rep = defence.filter_kernels(weight, FRAGILE, NULL, sigma)
    assert rep["rank_after"] < rep["rank_before"]
    assert not torch.allclose(new[NULL], weight[NULL])


@pytest.mark.parametrize("fragile,null", [([], NULL), (FRAGILE, []), ([], [])])
def test_empty_sets_raise_with_an_explanation(weight, fragile, null):
    with pytest.raises(ValueError, match="non-empty"):
        defence.filter_kernels(weight, fragile, null, 0.01)


def test_bad_sets_and_mode_raise(weight):
    with pytest.raises(ValueError, match="both"):
        defence.filter_kernels(weight, [1, 2], [2, 3], 0.01)
    with pytest.raises(ValueError, match="0..63"):
        defence.filter_kernels(weight, [1, 64], [2, 3], 0.01)
    with pytest.raises(ValueError, match="hard, clamp"):
        defence.filter_kernels(weight, [1], [2, 3], 0.01, mode="soft")


# ------------------------------------------------------------------ filter_layer

def test_filter_layer_returns_a_filtered_copy(resnet):
    model = resnet("cifar10")
    model.train()
    before = snapshot(model)
    sigma = defence.sigma_grid(model.conv1.weight, NULL, 5)[1]
    filtered = defence.filter_layer(model, FRAGILE, NULL, sigma)
    assert filtered is not model
    assert state_equal(model, before)                        # original untouched
    assert model.training and not filtered.training          # copy returned in eval mode
    assert not hasattr(model, "filter_report")
    rep = filtered.filter_report
    assert rep["sigma_noise"] == sigma and rep["mode"] == "hard"
    expected, _ = defence.filter_kernels(before["body.conv1.weight"], FRAGILE, NULL, sigma)
    assert torch.equal(filtered.conv1.weight, expected)
    # every other tensor identical
    fs = filtered.state_dict()
    assert all(torch.equal(fs[k], v) for k, v in before.items() if k != "body.conv1.weight")
    assert not torch.equal(fs["body.conv1.weight"], before["body.conv1.weight"])
    # the copy is independent: changing it does not change the original
    with torch.no_grad():
        filtered.conv1.weight.zero_()
    assert state_equal(model, before)


def test_filter_layer_on_mnist_shape(resnet):
    model = resnet("mnist")
    filtered = defence.filter_layer(model, FRAGILE, NULL, 0.0, mode="clamp")
    rep = filtered.filter_report
    assert rep["shape"] == [len(NULL), 49]
    assert rep["beta"] == pytest.approx(49 / len(NULL))
    assert rep["tau"] == 0.0
    # clamp at τ = 0 wipes the null kernels entirely, α = 1 + ‖K_S'‖₂
    assert torch.count_nonzero(filtered.conv1.weight[NULL]) == 0
    k = model.conv1.weight.detach().double()[NULL].flatten(1)
    assert rep["alpha"] == pytest.approx(1 + torch.linalg.matrix_norm(k, ord=2).item(), rel=1e-9)


# ------------------------------------------------------------------ σ grid and search

def test_sigma_grid_smallest_removes_something_largest_removes_all(weight):
    grid = defence.sigma_grid(weight, NULL, n=8)
    assert len(grid) == 8
    assert all(b > a for a, b in zip(grid, grid[1:]))
    removed = []
    for sigma in grid:
        _, rep = defence.filter_kernels(weight, FRAGILE, NULL, sigma, mode="hard")
        removed.append(rep["rank_before"] - rep["rank_after"])
    assert removed[0] >= 1
    assert removed[-1] == min(len(NULL), 147)
    assert removed == sorted(removed)
    (one,) = defence.sigma_grid(weight, NULL, n=1)
    assert one == pytest.approx(grid[0])


def test_sigma_grid_on_real_conv1(resnet):
    model = resnet("mnist")
    grid = defence.sigma_grid(model.conv1.weight, NULL, n=4)
    _, rep = defence.filter_kernels(model.conv1.weight, FRAGILE, NULL, grid[0])
    assert rep["rank_before"] - rep["rank_after"] >= 1


def test_search_sigma_picks_best_validation_accuracy(monkeypatch, tiny):
    model = tiny(in_ch=1)
    table = {0.1: 40.0, 0.2: 70.0, 0.3: 55.0, 0.4: 70.0, 0.5: 10.0}
    seen = []

    def fake(filtered, x, y, epsilons, space):
        sigma = filtered.filter_report["sigma_noise"]
        seen.append((sigma, tuple(epsilons), space))
        return [{"space": space, "epsilon": epsilons[0], "accuracy": table[sigma]}]

    monkeypatch.setattr(defence, "accuracy_under_attack", fake)
    x, y = torch.rand(4, 1, 8, 8), torch.zeros(4, dtype=torch.long)
    best, rows = defence.search_sigma(model, FRAGILE, NULL, x, y, eps=0.02, space="normalized",
                                      sigmas=[0.3, 0.4, 0.1, 0.2, 0.5])
    assert best == 0.2                                           # ties go to the smaller σ
    assert [r["sigma"] for r in rows] == [0.3, 0.4, 0.1, 0.2, 0.5]
    assert [r["val_accuracy"] for r in rows] == [55.0, 70.0, 40.0, 70.0, 10.0]
    assert all(e == (0.02,) and sp == "normalized" for _, e, sp in seen)


def test_search_sigma_end_to_end_on_tiny_model(tiny):
    model = tiny(in_ch=1, seed=3)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(24, 1, 8, 8, generator=g)
    with torch.no_grad():
        y = model(x).argmax(1)                                   # labels the model gets right when clean
    before = snapshot(model)
    best, rows = defence.search_sigma(model, FRAGILE, NULL, x, y, eps=0.05, n=5)
    assert state_equal(model, before)
    assert len(rows) == 5
    assert [r["sigma"] for r in rows] == pytest.approx(defence.sigma_grid(model.conv1.weight, NULL, 5))
    for r in rows:                                               # each row is an independent evaluation
        f = defence.filter_layer(model, FRAGILE, NULL, r["sigma"])
        (res,) = attacks.accuracy_under_attack(f, x, y, [0.05])
        assert r["val_accuracy"] == res["accuracy"]
        assert r["tau"] == f.filter_report["tau"] and r["alpha"] == f.filter_report["alpha"]
        assert r["removed"] == f.filter_report["rank_before"] - f.filter_report["rank_after"] >= 1
    top = max(r["val_accuracy"] for r in rows)
    assert best == min(r["sigma"] for r in rows if r["val_accuracy"] == top)
    with pytest.raises(ValueError, match="empty"):
        defence.search_sigma(model, FRAGILE, NULL, x, y, sigmas=[])


def test_search_sigma_rejects_empty_or_bad_sets_with_value_error(tiny):
    """Like filter_kernels, the σ search must refuse an empty S or S' with the helpful ValueError
    (check_sets) before any work; an empty S' used to reach torch's min() on an empty tensor."""
    model = tiny()
    x, y = torch.rand(4, 1, 8, 8), torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match="non-empty"):
        defence.search_sigma(model, [], NULL, x, y)
    with pytest.raises(ValueError, match="non-empty"):
        defence.search_sigma(model, FRAGILE, [], x, y)
    with pytest.raises(ValueError, match="non-empty"):
        defence.sigma_grid(model.conv1.weight, [])
    with pytest.raises(ValueError, match="0..63"):
        defence.search_sigma(model, FRAGILE, NULL + [70], x, y)
