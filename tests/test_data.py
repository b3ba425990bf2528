"""Data loading from the real offline mirror: shapes, splits, checksums and error messages."""
import gzip
import shutil

import numpy as np
import pytest
import torch

from fnlib import data

MIRROR = data.MIRROR


def test_mirror_is_present():
    # the unit tests run against the real data; they are never skipped for lack of it
    assert (MIRROR / "MNIST/raw/train-images-idx3-ubyte.gz").is_file()
    assert (MIRROR / "cifar10/cifar10-train.npz").is_file()


def read_idx(path):
    """An idx reader written here, independently of fnlib."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw[4 + 4 * ndim:], dtype=np.uint8).reshape(dims)


@pytest.fixture(scope="module")
def official():
    """The official train / test arrays read straight from the mirror files, NCHW uint8."""
    mn = MIRROR / "MNIST/raw"
    out = {"mnist": {"train": (read_idx(mn / "train-images-idx3-ubyte.gz")[:, None],
                               read_idx(mn / "train-labels-idx1-ubyte.gz")),
                     "test": (read_idx(mn / "t10k-images-idx3-ubyte.gz")[:, None],
                              read_idx(mn / "t10k-labels-idx1-ubyte.gz"))}}
    out["cifar10"] = {}
    for split in ("train", "test"):
        with np.load(MIRROR / f"cifar10/cifar10-{split}.npz") as z:
            out["cifar10"][split] = (z["x"].transpose(0, 3, 1, 2), z["y"], z["lossless"])
    return out


SHAPES = {
    ("mnist", "train"): (55000, 1, 28, 28), ("mnist", "val"): (5000, 1, 28, 28),
    ("mnist", "test"): (10000, 1, 28, 28),
    ("cifar10", "train"): (45000, 3, 32, 32), ("cifar10", "val"): (5000, 3, 32, 32),
    ("cifar10", "test"): (10000, 3, 32, 32),
}


@pytest.mark.parametrize("dataset,split", list(SHAPES))
def test_shapes_and_dtypes(dataset, split):
    x, y = data.load(dataset, split)
    assert tuple(x.shape) == SHAPES[dataset, split]
    assert x.dtype == torch.uint8 and y.dtype == torch.int64
    assert y.shape == (len(x),)
    assert int(y.min()) == 0 and int(y.max()) == 9
    assert x.max() > 200                                    # pixels in 0..255, not rescaled
    if split == "val":
        assert torch.bincount(y, minlength=10).tolist() == [500] * 10


def test_cifar_label_counts():
    _, y = data.load("cifar10", "test")
    assert torch.bincount(y, minlength=10).tolist() == [1000] * 10
    _, y = data.load("cifar10", "train")
    assert torch.bincount(y, minlength=10).tolist() == [4500] * 10
    _, y = data.load("cifar10", "test", limit=500)
    assert torch.bincount(y, minlength=10).tolist() == [50] * 10


def test_mnist_test_matches_official(official):
    x, y = data.load("mnist", "test")
    ox, oy = official["mnist"]["test"]
    assert torch.equal(x, torch.from_numpy(ox.copy()))
    assert torch.equal(y, torch.from_numpy(oy.astype(np.int64)))


@pytest.mark.parametrize("dataset", ["mnist", "cifar10"])
def test_val_and_train_partition_the_official_train_set(dataset, official):
    ox, oy = official[dataset]["train"][:2]
    # the hold-out, recomputed here: the last 500 official training images of every class
    held = np.zeros(len(oy), dtype=bool)
    for c in range(10):
        held[np.flatnonzero(oy == c)[-500:]] = True
    xt, yt = data.load(dataset, "train")
    xv, yv = data.load(dataset, "val")
    assert len(xt) + len(xv) == len(oy)
    assert torch.equal(xv, torch.from_numpy(np.ascontiguousarray(ox[held])))
    assert torch.equal(yv, torch.from_numpy(oy[held].astype(np.int64)))
    assert torch.equal(xt, torch.from_numpy(np.ascontiguousarray(ox[~held])))
    assert torch.equal(yt, torch.from_numpy(oy[~held].astype(np.int64)))


def test_cifar_test_and_lossless(official):
    ox, oy, ol = official["cifar10"]["test"]
    x, y = data.load("cifar10", "test")
    assert torch.equal(x, torch.from_numpy(np.ascontiguousarray(ox)))
    assert torch.equal(y, torch.from_numpy(oy.astype(np.int64)))
    mask = data.lossless_mask("cifar10", "test")
    assert mask.dtype == torch.bool and int((~mask).sum()) == 23
    assert torch.equal(mask, torch.from_numpy(ol))
    xl, yl = data.load("cifar10", "test", lossless_only=True)
    assert len(xl) == 10000 - 23
    assert torch.equal(xl, x[mask]) and torch.equal(yl, y[mask])
    n_bad = int((~data.lossless_mask("cifar10", "train")).sum()) + int((~data.lossless_mask("cifar10", "val")).sum())
    assert n_bad == 86
    assert bool(data.lossless_mask("mnist", "train").all())


def test_limit_is_class_balanced_and_first_of_each_class():
    x, y = data.load("mnist", "test", limit=25)
    assert torch.bincount(y, minlength=10).tolist() == [3] * 5 + [2] * 5
    xa, ya = data.load("mnist", "test")
    # the first images of each class, in official order
    idx = sorted(i for c in range(10) for i in torch.nonzero(ya == c).flatten()[:(3 if c < 5 else 2)].tolist())
    assert torch.equal(x, xa[idx]) and torch.equal(y, ya[idx])
    # deterministic
    x2, _ = data.load("mnist", "test", limit=25)
    assert torch.equal(x, x2)


@pytest.mark.parametrize("limit", [0, -3, 2.5, "10"])
def test_bad_limit_raises(limit):
    with pytest.raises(ValueError, match="limit"):
        data.load("mnist", "test", limit=limit)


def test_limit_too_large_raises():
    with pytest.raises(ValueError, match="limit"):
        data.load("mnist", "val", limit=5001)


def test_unknown_dataset_or_split_lists_allowed():
    with pytest.raises(ValueError, match="mnist, cifar10"):
        data.load("cifar100", "test")
    with pytest.raises(ValueError, match="train, val, test"):
        data.load("mnist", "validation")


def test_to_float():
    x = torch.tensor([0, 51, 255], dtype=torch.uint8)
    f = data.to_float(x)
    assert f.dtype == torch.float32
    assert torch.allclose(f, torch.tensor([0.0, 0.2, 1.0]))


# ------------------------------------------------------------------ checksums and error messages

def copy_mnist(root):
    dst = root / "MNIST/raw"
    dst.mkdir(parents=True)
    for name in data.MNIST_MD5:
        shutil.copyfile(MIRROR / "MNIST/raw" / name, dst / name)
    return dst


def flip_byte(path, offset=1000):
    b = bytearray(path.read_bytes())
    b[offset] ^= 0x01
    path.write_bytes(bytes(b))


def test_fresh_root_copies_from_mirror_and_matches(tmp_path):
    copy_mnist(tmp_path)                                     # a root with verified files and no cache
    x, y = data.load("mnist", "test", root=tmp_path, mirror=tmp_path / "no-mirror", limit=20)
    x0, y0 = data.load("mnist", "test", limit=20)
    assert torch.equal(x, x0) and torch.equal(y, y0)
    assert list((tmp_path / "cache").glob("mnist-*.pt"))    # decoded tensors cached under root


def test_corrupt_mnist_file_is_rejected(tmp_path):
    raw = copy_mnist(tmp_path)
    flip_byte(raw / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(data.DataError) as err:
        data.load("mnist", "test", root=tmp_path, mirror=None)
    msg = str(err.value)
    assert "corrupt" in msg and "t10k-labels-idx1-ubyte.gz" in msg
    assert "Fix" in msg and "shared/data" in msg and "Delete it" in msg
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").glob("*.pt"))


def test_missing_mnist_file_is_rejected(tmp_path):
    raw = copy_mnist(tmp_path)
    (raw / "train-images-idx3-ubyte.gz").unlink()
    with pytest.raises(data.DataError) as err:
        data.load("mnist", "train", root=tmp_path, mirror=tmp_path / "empty-mirror")
    msg = str(err.value)
    assert "missing" in msg and "train-images-idx3-ubyte.gz" in msg
    assert "Fix" in msg and "download=True" in msg


def test_missing_file_is_copied_from_the_mirror(tmp_path):
    raw = copy_mnist(tmp_path)
    (raw / "t10k-images-idx3-ubyte.gz").unlink()
    x, _ = data.load("mnist", "test", root=tmp_path, mirror=MIRROR, limit=10)
    assert (raw / "t10k-images-idx3-ubyte.gz").is_file()
    assert torch.equal(x, data.load("mnist", "test", limit=10)[0])


def test_corrupt_mirror_file_is_not_copied(tmp_path):
    mirror = tmp_path / "mirror"
    copy_mnist(mirror)
    flip_byte(mirror / "MNIST/raw/train-labels-idx1-ubyte.gz", offset=100)
    root = tmp_path / "root"
    with pytest.raises(data.DataError, match="corrupt"):
        data.load("mnist", "test", root=root, mirror=mirror)
    assert not (root / "MNIST/raw/train-labels-idx1-ubyte.gz").exists()


def test_corrupt_cifar_file_is_rejected(tmp_path):
    d = tmp_path / "cifar10"
    d.mkdir()
    (d / "cifar10-train.npz").symlink_to(MIRROR / "cifar10/cifar10-train.npz")
    shutil.copyfile(MIRROR / "cifar10/cifar10-test.npz", d / "cifar10-test.npz")
    flip_byte(d / "cifar10-test.npz", offset=5_000_000)
    with pytest.raises(data.DataError) as err:
        data.load("cifar10", "test", root=tmp_path, mirror=None)
    msg = str(err.value)
    assert "corrupt" in msg and "cifar10-test.npz" in msg and "sha256" in msg and "Fix" in msg


def test_missing_cifar_file_is_rejected(tmp_path):
    with pytest.raises(data.DataError, match=r"missing .*cifar10-train\.npz[\s\S]*Fix"):
        data.load("cifar10", "train", root=tmp_path, mirror=tmp_path / "nothing-here")


def test_cached_load_is_fast():
    import time
    data.load("cifar10", "test")                             # warm (the cache exists after the first call)
    t0 = time.perf_counter()
    data.load("mnist", "train")
    data.load("cifar10", "test")
    assert time.perf_counter() - t0 < 5.0


def test_altered_cache_is_rebuilt_not_used(tmp_path):
    """A flipped byte in data/cache/mnist-*.pt is detected by the cache's own sha256 and the cache rebuilt."""
    copy_mnist(tmp_path)
    x0, y0 = data.load("mnist", "test", root=tmp_path, mirror=None)
    (cache,) = (tmp_path / "cache").glob("mnist-*.pt")
    raw = bytearray(cache.read_bytes())
    # flip a pixel byte deep inside the tensor data (the file still loads without error)
    raw[len(raw) // 2] ^= 0x40
    cache.write_bytes(bytes(raw))
    x, y = data.load("mnist", "test", root=tmp_path, mirror=None)
    assert torch.equal(x, x0) and torch.equal(y, y0)
    assert cache.with_name(cache.name + ".sha256").read_text().strip() == data._digest(cache, "sha256")
