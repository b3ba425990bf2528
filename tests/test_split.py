"""The fragile split redrawn over bootstrap resamples of the test images (fnlib.split, issue 33)."""
import pytest
import torch

from fnlib import kernels, split
from conftest import snapshot, state_equal


def test_per_image_drops_give_the_ranking_back_and_restore_the_model(tiny, mnist_small):
    model = tiny(in_ch=1, seed=3)
    x, y = mnist_small
    before = snapshot(model)
    c = split.drop_correct(model, x, y, batch_size=5)
    assert c.shape == (64, len(y)) and c.dtype == torch.bool
    ranking = kernels.rank(model, x, y, batch_size=5)
    assert (100 * c.double().mean(dim=1)).tolist() == pytest.approx(ranking.accuracies, abs=1e-9)
    assert state_equal(model, before)


def separated(n: int = 400) -> torch.Tensor:
    """Kernels 0-9 right on 30 % of the images, 10-63 on 90 %: far from the mean either way."""
    c = torch.zeros(64, n, dtype=torch.bool)
    c[:10, : int(0.3 * n)] = True
    c[10:, : int(0.9 * n)] = True
    return c


def test_a_split_far_from_the_mean_never_moves():
    b = split.bootstrap(separated(), resamples=200, seed=0)
    assert b.fragile_frequency == [1.0] * 10 + [0.0] * 54
    assert set(b.counts) == {10} and b.count_interval() == (10.0, 10.0)
    assert b.share_within(paper=15.6, margin=1.0) == 100.0         # 10 / 64 = 15.625 %
    assert b.share_within(paper=37.0, margin=5.0) == 0.0


def test_a_kernel_at_the_mean_falls_on_either_side():
    """Kernel 63 differs from the mean on a handful of images only: the resamples put it on both sides."""
    n = 2000
    c = separated(n)
    mean = c.double().mean(dim=1)
    mean_acc = mean.mean().item()
    c[63] = False
    c[63, : round(mean_acc * n)] = True                  # its accuracy at the mean of the others (to one image)
    b = split.bootstrap(c, resamples=400, seed=1)
    assert 0.05 < b.fragile_frequency[63] < 0.95, b.fragile_frequency[63]
    assert b.fragile_frequency[:10] == [1.0] * 10 and b.fragile_frequency[10:63] == [0.0] * 53
    assert set(b.counts) == {10, 11}


def test_the_bootstrap_is_seeded():
    c = separated()
    c[20, :100] = ~c[20, :100]
    assert split.bootstrap(c, 50, seed=2).counts == split.bootstrap(c, 50, seed=2).counts


def test_a_kernel_exactly_at_the_mean_is_null_as_in_sec_3_3():
    c = torch.zeros(64, 100, dtype=torch.bool)
    c[:, :50] = True                                   # every kernel at the mean in every resample
    assert split.bootstrap(c, 20).counts == [0] * 20
