"""Controls for Algorithm 1: set means, random sets, and known answers on hand-built models."""
import pytest
import torch

from fnlib import controls, targeting


def test_set_means_and_fragile_wins_match_the_definition():
    d = torch.tensor([[1.0, 2.0, 3.0, 10.0], [4.0, 0.0, 0.0, 0.0]])
    masks = torch.tensor([[True, False, False, False], [False, False, False, True]])
    assert torch.allclose(controls.set_means(d, masks), torch.tensor([[1.0, 10.0], [4.0, 0.0]]))
    wins = controls.fragile_wins(d, masks)
    assert wins.tolist() == [[False, True], [True, False]]
    # equals Algorithm 1's own comparison for the paper's sets
    assert torch.equal(wins[:, 0], targeting.attacks_fragile(d, [0], [1, 2, 3]))


def test_random_masks_have_the_size_and_are_seeded():
    m = controls.random_masks(64, 24, 10, seed=3)
    assert m.shape == (10, 64) and (m.sum(1) == 24).all()
    assert torch.equal(m, controls.random_masks(64, 24, 10, seed=3))
    assert not torch.equal(m, controls.random_masks(64, 24, 10, seed=4))


def test_norm_controls_on_a_model_whose_fragile_kernels_are_large(tiny, mnist_small):
    """S = the big kernels: any perturbation moves them most, so the random sign scores like FGSM (100 %),
    norm-chosen sets equal the paper's, and dividing by the norm removes the advantage."""
    model = tiny(in_ch=1, channels=8, seed=0)
    with torch.no_grad():
        w = model.conv1.weight
        w.copy_(w.sign() * 0.1)                               # every kernel the same size ...
        w[:3] *= 20.0                                         # ... but kernels 0-2 twenty times larger
    x, y = mnist_small
    rows = controls.algorithm1_controls(model, x, y, [0, 1, 2], [3, 4, 5, 6, 7], [0.01], n_sets=30, space="normalized")
    pct = {r["control"]: r for r in rows}
    assert set(pct) == set(controls.CONTROLS)
    assert pct["algorithm1"]["percent"] == 100.0
    assert pct["random_sign"]["percent"] == 100.0
    assert pct["norm_sets"]["percent"] == 100.0
    assert pct["per_norm"]["percent"] < 100.0
    assert pct["random_sets"]["low"] <= pct["random_sets"]["percent"] <= pct["random_sets"]["high"]
    assert pct["random_sets"]["percent"] < 100.0
    # S wins on every image; a random set does no better, so S is at the top of the draws, never below them
    assert pct["random_sets"]["p_below"] == 1.0 and pct["random_sets"]["p_above"] < 1.0
    assert all("p_above" not in r for r in rows if r["control"] != "random_sets")
    # the algorithm1 row is Algorithm 1 itself
    (ref,) = targeting.algorithm1(model, x, y, [0, 1, 2], [3, 4, 5, 6, 7], [0.01], space="normalized")
    assert pct["algorithm1"]["percent"] == ref["percent"]


def test_empirical_p_counts_ties_against_the_observed_set():
    draws = torch.tensor([0, 0, 5, 10, 10])
    assert controls.empirical_p(11, draws) == (1 / 6, 1.0)         # above every draw: the smallest p of 5 draws
    assert controls.empirical_p(10, draws) == (3 / 6, 1.0)         # ties with two draws: not above them
    assert controls.empirical_p(0, draws) == (1.0, 3 / 6)
    assert controls.empirical_p(-1, draws) == (1.0, 1 / 6)


def test_controls_reject_bad_sets(tiny, mnist_small):
    with pytest.raises(ValueError, match="non-empty"):
        controls.algorithm1_controls(tiny(channels=8), *mnist_small, [], [0, 1], [0.1])


def test_random_sets_row_is_the_mean_and_the_central_95_percent_of_the_draws(tiny, mnist_small, monkeypatch):
    """Known answer for the random_sets row, on channel distances fixed here (random, so that random sets win on
    varied shares of the images): its percent is the mean over the seeded sets, low/high their 2.5 % and 97.5 %
    quantiles (a planted 5 %/95 % fails), p the empirical one of the paper's S."""
    model = tiny(in_ch=1, channels=64, seed=2)
    x, y = mnist_small
    d = torch.rand(len(y), 64, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    monkeypatch.setattr(controls, "channel_distances", lambda clean, adv: d)
    fragile, null = list(range(0, 64, 3)), [k for k in range(64) if k % 3]
    (row,) = [r for r in controls.algorithm1_controls(model, x, y, fragile, null, [0.1], n_sets=40, seed=5)
              if r["control"] == "random_sets"]
    pct = 100.0 * controls.fragile_wins(d, controls.random_masks(64, len(fragile), 40, 5)).sum(0).double() / len(y)
    assert torch.quantile(pct, 0.05) != torch.quantile(pct, 0.025), "the draws cannot tell the quantiles apart"
    assert torch.quantile(pct, 0.95) != torch.quantile(pct, 0.975), "the draws cannot tell the quantiles apart"
    assert row["percent"] == pytest.approx(pct.mean().item())
    assert (row["low"], row["high"]) == pytest.approx((torch.quantile(pct, 0.025).item(),
                                                       torch.quantile(pct, 0.975).item()))
    mine = int(targeting.attacks_fragile(d, fragile, null).sum())
    assert (row["p_above"], row["p_below"]) == controls.empirical_p(mine, (pct * len(y) / 100).round().long())
