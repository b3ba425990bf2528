"""MNIST and CIFAR-10 as uint8 tensors (N, C, H, W) plus int64 labels.

Sources, in the order they are tried:

1. a prepared copy in the project's ``data/`` folder (git-ignored),
2. the offline mirror ``../shared/data`` or ``$FNLIB_DATA_MIRROR`` (copied into ``data/`` after its checksums are verified),
3. torchvision's own layout under ``data/`` (``MNIST/raw`` or ``cifar-10-batches-py``), downloaded
   with ``download=True`` when nothing else exists and the caller allows it.

Every file is checked against the checksums below before it is used; a missing or corrupt file raises
:class:`DataError` naming the command that fixes it. Decoded tensors are cached in ``data/cache/`` under
the checksum of their source and verified by their own sha256 at every load.

Splits: ``train`` is the official training set minus a fixed validation hold-out, ``val`` is that
hold-out (used only by the noise-level search of the defence), ``test`` is the official test set.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import torch

DATASETS = ("mnist", "cifar10")
SPLITS = ("train", "val", "test")
NUM_CLASSES = 10
VAL_PER_CLASS = 500  # the hold-out: the last 500 training images of each class (5,000 in all)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ROOT = PROJECT_ROOT / "data"
MIRROR = Path(os.environ.get("FNLIB_DATA_MIRROR") or PROJECT_ROOT.parent / "shared" / "data")

MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
CIFAR_SHA256 = {
    "cifar10-train.npz": "156c3deea7aa9bfb93d6fd09ec3873b38a54731411781dbf61ec141bc8de262b",
    "cifar10-test.npz": "13be98539223a427271782fdb7ab7275e9a1a63692bd83af0f42c1be8b4ac00b",
}
FIX = ("Fix: put the offline mirror at ../shared/data beside the project (see data/README.md), "
       "or call fnlib.data.load(..., download=True) on a machine with internet.")


class DataError(RuntimeError):
    """A data file is missing or does not match its published checksum."""


def _digest(path: Path, algo: str) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _verified(path: Path, algo: str, expected: str) -> Path:
    if not path.is_file():
        raise DataError(f"missing data file {path}. {FIX}")
    got = _digest(path, algo)
    if got != expected:
        raise DataError(f"corrupt data file {path}: {algo} {got} != expected {expected}. "
                        f"Delete it and load again to re-copy it from the mirror. {FIX}")
    return path


def _fetch(name: str, subdir: str, algo: str, expected: str, root: Path, mirror: Path | None) -> Path:
    """Return a verified copy of ``subdir/name`` under ``root``, copying it from the mirror if needed."""
    dst = root / subdir / name
    if not dst.exists() and mirror is not None and (mirror / subdir / name).exists():
        src = _verified(mirror / subdir / name, algo, expected)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst.with_suffix(".part"))
        dst.with_suffix(".part").rename(dst)
    return _verified(dst, algo, expected)


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape).copy()


def _decode_mnist(root: Path, mirror: Path | None, download: bool):
    files = {}
    for name, md5 in MNIST_MD5.items():
        if download and not (root / "MNIST/raw" / name).exists() and not (mirror and (mirror / "MNIST/raw" / name).exists()):
            import torchvision
            torchvision.datasets.MNIST(str(root), download=True)
        files[name] = _fetch(name, "MNIST/raw", "md5", md5, root, mirror)
    out = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        x = _read_idx(files[f"{prefix}-images-idx3-ubyte.gz"])[:, None]
        y = _read_idx(files[f"{prefix}-labels-idx1-ubyte.gz"])
        out[split] = (x, y, np.ones(len(y), dtype=bool))
    return out


def _decode_cifar(root: Path, mirror: Path | None, download: bool):
    have_npz = all((root / "cifar10" / n).exists() or (mirror and (mirror / "cifar10" / n).exists())
                   for n in CIFAR_SHA256)
    if not have_npz and ((root / "cifar-10-batches-py").exists() or download):
        # torchvision's layout: md5-checked by torchvision itself, every image lossless.
        import torchvision
        out = {}
        for split in ("train", "test"):
            ds = torchvision.datasets.CIFAR10(str(root), train=split == "train", download=download)
            out[split] = (ds.data.transpose(0, 3, 1, 2), np.asarray(ds.targets, dtype=np.uint8),
                          np.ones(len(ds.targets), dtype=bool))
        return out
    out = {}
    for split in ("train", "test"):
        name = f"cifar10-{split}.npz"
        path = _fetch(name, "cifar10", "sha256", CIFAR_SHA256[name], root, mirror)
        with np.load(path) as z:
            out[split] = (z["x"].transpose(0, 3, 1, 2), z["y"], z["lossless"])
    return out


def source_key(dataset: str) -> str:
    """A short digest of the published checksums of ``dataset``'s source files (what the data *is*)."""
    sums = MNIST_MD5 if dataset == "mnist" else CIFAR_SHA256
    return hashlib.sha256("".join(sums.values()).encode()).hexdigest()[:12]


def _full(dataset: str, root: Path, mirror: Path | None, download: bool) -> dict:
    """Both official splits of ``dataset`` as tensors, decoded once and cached under ``root/cache``.

    The cache file's sha256 is stored beside it and checked at every load; a cache that is cut short or
    altered is rebuilt from the verified source files.
    """
    cache = root / "cache" / f"{dataset}-{source_key(dataset)}.pt"
    digest = cache.with_name(cache.name + ".sha256")
    if cache.exists():
        if digest.exists() and digest.read_text().strip() == _digest(cache, "sha256"):
            return torch.load(cache, weights_only=True)
        cache.unlink()  # interrupted, altered, or written before digests were kept: rebuild it
    decode = _decode_mnist if dataset == "mnist" else _decode_cifar
    arrays = decode(root, mirror, download)
    full = {split: {"x": torch.from_numpy(np.ascontiguousarray(x)),
                    "y": torch.from_numpy(y.astype(np.int64)),
                    "lossless": torch.from_numpy(np.asarray(l, dtype=bool))}
            for split, (x, y, l) in arrays.items()}
    cache.parent.mkdir(parents=True, exist_ok=True)
    part = cache.with_suffix(".part")
    torch.save(full, part)
    digest.write_text(_digest(part, "sha256") + "\n")
    part.rename(cache)
    return full


def val_indices(y: torch.Tensor, per_class: int = VAL_PER_CLASS) -> torch.Tensor:
    """Indices of the validation hold-out: the last ``per_class`` training images of every class."""
    return torch.cat([torch.nonzero(y == c).flatten()[-per_class:] for c in range(NUM_CLASSES)]).sort().values


def balanced_subset(y: torch.Tensor, limit: int) -> torch.Tensor:
    """The first images of every class in official order, ``limit`` in all, classes as equal as possible."""
    per_class = [limit // NUM_CLASSES + (c < limit % NUM_CLASSES) for c in range(NUM_CLASSES)]
    idx = [torch.nonzero(y == c).flatten()[:k] for c, k in enumerate(per_class)]
    if sum(len(i) for i in idx) < limit:
        raise ValueError(f"limit={limit} asks for more images than the split holds ({len(y)})")
    return torch.cat(idx).sort().values


def _split(full: dict, split: str):
    """(x, y, lossless) of one split: test as published; train and val partition the official train set."""
    part = full["test" if split == "test" else "train"]
    x, y, lossless = part["x"], part["y"], part["lossless"]
    if split == "test":
        return x, y, lossless
    held = torch.zeros(len(y), dtype=torch.bool)
    held[val_indices(y)] = True
    keep = held if split == "val" else ~held
    return x[keep], y[keep], lossless[keep]


def load(dataset: str, split: str, root=None, limit: int | None = None, download: bool = False,
         lossless_only: bool = False, mirror=None):
    """Return ``(x, y)``: uint8 images (N, C, H, W) in [0, 255] and int64 labels.

    ``limit`` takes a deterministic class-balanced subset (the first images of each class);
    ``lossless_only`` drops the 109 CIFAR-10 images that the mirror holds only as JPEG re-encodings.
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; allowed: {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; allowed: {', '.join(SPLITS)}")
    if limit is not None and (not isinstance(limit, int) or limit <= 0):
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}")
    root = Path(root) if root is not None else DEFAULT_ROOT
    mirror = Path(mirror) if mirror is not None else (MIRROR if MIRROR.is_dir() else None)
    x, y, lossless = _split(_full(dataset, root, mirror, download), split)
    if lossless_only:
        x, y = x[lossless], y[lossless]
    if limit is not None:
        idx = balanced_subset(y, limit)
        x, y = x[idx], y[idx]
    return x, y


def lossless_mask(dataset: str, split: str, root=None) -> torch.Tensor:
    """Which images of a split are pixel-exact originals (all of MNIST; all but 109 of CIFAR-10)."""
    root = Path(root) if root is not None else DEFAULT_ROOT
    return _split(_full(dataset, root, MIRROR if MIRROR.is_dir() else None, False), split)[2]


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 pixels in [0, 255] -> float32 in [0, 1]."""
    return x.float().div_(255)
