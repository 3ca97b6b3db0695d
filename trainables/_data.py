"""In-memory image data sets: `load_dataset(name, data_dir)` -> `Dataset` of tensors, and
`load_split(name, split)` -> one of its three splits.

Nothing is ever downloaded: `digits` ships with scikit-learn, every other set is read from
files the user already has (see `robnas.trainables._formats` for the layouts).

Three splits, each the same images on every call:
- `train`: what trials train on;
- `val`: what every per-epoch number is measured on, and so what schedulers, searchers and
  the analysis select with. It is a fixed part of the official training set, stratified by
  class, drawn with seed 0: 10 % of it, at most 5,000 images (CIFAR-10/100, MNIST,
  Fashion-MNIST, SVHN: 5,000);
- `test`: the official test set, touched only by the final evaluation (`robnas evaluate`).
Digits (1,797 images) is split 70/15/15, stratified, seed 0.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from robnas.spaces._defaults import DATASETS
from robnas.trainables import _formats as fm
from robnas.trainables._formats import MAX_CLASSES, DatasetError, FileFormat, Splits, one_line

__all__ = ["SPLITS", "Dataset", "DatasetError", "clear_dataset_cache", "load_dataset", "load_split"]

#: The splits of every data set, in the order a search uses them.
SPLITS = ("train", "val", "test")
#: The validation split: this fraction of the official training set, at most this many images.
VAL_FRACTION = 0.1
MAX_VAL_IMAGES = 5000
#: Seed of the stratified draw of the validation split (fixed: the same images every time).
VAL_SEED = 0

_MNIST_STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
_IDX_LAYOUT = ", ".join(_MNIST_STEMS) + ", optionally .gz, optionally in raw/ or {}/raw/"

FILE_FORMATS: dict[str, FileFormat] = {
    "mnist": FileFormat(
        "mnist", "the MNIST IDX files " + _IDX_LAYOUT.format("MNIST"), fm.locate_idx, fm.read_idx,
        stems=_MNIST_STEMS, subdirs=("", "raw", "MNIST/raw"), num_classes=10,
    ),
    "fashion_mnist": FileFormat(
        "fashion_mnist", "the Fashion-MNIST IDX files " + _IDX_LAYOUT.format("FashionMNIST"), fm.locate_idx,
        fm.read_idx, stems=_MNIST_STEMS, subdirs=("", "raw", "FashionMNIST/raw"), num_classes=10,
    ),
    "cifar10": FileFormat(
        "cifar10", "the CIFAR-10 python version: data_batch_1..5 and test_batch, optionally in cifar-10-batches-py/",
        fm.locate_stems, fm.read_cifar, stems=tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",),
        subdirs=("", "cifar-10-batches-py"), num_classes=10,
    ),
    "cifar100": FileFormat(
        "cifar100", "the CIFAR-100 python version: train and test, optionally in cifar-100-python/",
        fm.locate_stems, fm.read_cifar, stems=("train", "test"), subdirs=("", "cifar-100-python"),
        num_classes=100, label_key=b"fine_labels",
    ),
    "svhn": FileFormat(
        "svhn", "the SVHN cropped-digits files train_32x32.mat and test_32x32.mat", fm.locate_stems,
        fm.read_svhn, stems=("train_32x32.mat", "test_32x32.mat"), num_classes=10,
    ),
    "npz": FileFormat(
        "npz", "a .npz file, or a directory holding exactly one, with arrays x_train, y_train, x_test, y_test",
        fm.locate_npz, fm.read_npz,
    ),
}
"""File-based data sets: where their files live under `data_dir` and how to read them."""

if set(DATASETS) != {"digits", *FILE_FORMATS}:  # pragma: no cover - guards edits of either list
    raise RuntimeError(f"robnas.spaces DATASETS {DATASETS} and the readers here {('digits', *FILE_FORMATS)} differ")

_CACHE_SIZE = 2  # loaded sets kept per process (CIFAR-10 is ~0.7 GB as float32)


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """Train, validation and test splits in memory (see the module docstring).

    x_*: float32 (N, C, H, W) in [0, 1], contiguous, square images (H == W);
    y_*: int64 (N,) in [0, num_classes), num_classes in [2, MAX_CLASSES]. Instances returned
    by `load_dataset` are cached and shared: treat the tensors as read-only (clone before any
    in-place change).
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    #: Indices (int64, sorted) of the validation images in the official training set, whose
    #: other images make up `x_train` in their original order.
    val_index: torch.Tensor | None = None

    def __post_init__(self) -> None:
        shapes = []
        for split in SPLITS:
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x.dtype != torch.float32 or x.dim() != 4 or not x.is_contiguous():
                raise DatasetError(f"{self.name}: x_{split} must be contiguous float32 (N, C, H, W), "
                                   f"got {x.dtype} {tuple(x.shape)}")
            if y.dtype != torch.int64 or y.dim() != 1 or len(y) != len(x):
                raise DatasetError(f"{self.name}: y_{split} must be int64 ({len(x)},), got {y.dtype} {tuple(y.shape)}")
            if y.numel() and (int(y.min()) < 0 or int(y.max()) >= self.num_classes):
                raise DatasetError(f"{self.name}: y_{split} has labels in [{int(y.min())}, {int(y.max())}], "
                                   f"outside [0, {self.num_classes - 1}]")
            if x.numel() and (float(x.min()) < 0.0 or float(x.max()) > 1.0):
                raise DatasetError(f"{self.name}: x_{split} has values outside [0, 1]")
            shapes.append(tuple(x.shape[1:]))
        if len(set(shapes)) != 1 or shapes[0][1] != shapes[0][2]:
            raise DatasetError(f"{self.name}: images must be square and alike in every split, "
                               f"got train {shapes[0]}, val {shapes[1]} and test {shapes[2]}")
        if not 2 <= self.num_classes <= MAX_CLASSES:
            raise DatasetError(f"{self.name}: num_classes must be in [2, {MAX_CLASSES}], got {self.num_classes}")

    @property
    def in_channels(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def input_size(self) -> int:
        """Image height (= width) in pixels."""
        return int(self.x_train.shape[2])

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return (self.in_channels, self.input_size, self.input_size)

    def __repr__(self) -> str:
        return (f"Dataset(name={self.name!r}, train={len(self.x_train)}, val={len(self.x_val)}, test={len(self.x_test)}, "
                f"input_shape={self.input_shape}, num_classes={self.num_classes})")


def _images(x: np.ndarray) -> torch.Tensor:
    """(N, C, H, W) uint8 or float in [0, 1] -> new contiguous float32 tensor in [0, 1]."""
    out = torch.from_numpy(np.array(x, dtype=np.float32, order="C", copy=True))
    return out.div_(255.0) if x.dtype == np.uint8 else out


def _labels(y: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(y, dtype=np.int64, copy=True))


def validation_indices(y: np.ndarray, size: int) -> np.ndarray:
    """Sorted indices of `size` of the labels `y` (N,), stratified by class where every class
    has two or more images (else a uniform draw), seed `VAL_SEED`."""
    from sklearn.model_selection import train_test_split

    counts = np.bincount(y)
    classes = np.count_nonzero(counts)
    can_stratify = counts[counts > 0].min() >= 2 and min(size, len(y) - size) >= classes
    stratify = y if can_stratify else None
    _, picked = train_test_split(np.arange(len(y)), test_size=size, stratify=stratify, random_state=VAL_SEED)
    return np.sort(picked)


def validation_size(name: str, train_images: int) -> int:
    """Images of the validation split taken out of `train_images` official training images."""
    if name == "digits":
        return fm.DIGITS_VAL_IMAGES
    return max(1, min(MAX_VAL_IMAGES, round(VAL_FRACTION * train_images))) if train_images > 1 else 0


def _to_dataset(name: str, splits: Splits) -> Dataset:
    size = validation_size(name, len(splits.y_train))
    if size == 0:
        raise DatasetError(f"{name}: the training set has {len(splits.y_train)} image(s); at least 2 are needed")
    val = validation_indices(np.asarray(splits.y_train), size)
    train = np.setdiff1d(np.arange(len(splits.y_train)), val, assume_unique=True)
    return Dataset(
        name=name,
        x_train=_images(splits.x_train[train]),
        y_train=_labels(splits.y_train[train]),
        x_val=_images(splits.x_train[val]),
        y_val=_labels(splits.y_train[val]),
        x_test=_images(splits.x_test),
        y_test=_labels(splits.y_test),
        num_classes=splits.num_classes,
        val_index=torch.from_numpy(val.astype(np.int64)),
    )


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _load_cached(name: str, files: tuple[Path, ...], stamps: tuple[tuple[int, int], ...]) -> Dataset:
    """`stamps` (mtime_ns, size) per file only keys the cache: a rewritten file reloads."""
    if name == "digits":
        return _to_dataset(name, fm.read_digits())
    fmt = FILE_FORMATS[name]
    return _to_dataset(name, fmt.read(fmt, files))


def load_dataset(name: str, data_dir: str | Path | None = None) -> Dataset:
    """Load data set `name` (one of `robnas.spaces.DATASETS`) into memory, or reuse it from this process.

    `digits` is embedded and takes no `data_dir`; the others need the directory (or, for
    `npz`, the file) holding their files. Repeated calls with unchanged files return the
    same `Dataset` object, whose tensors must not be modified in place. Raises
    `DatasetError` (a `ValueError`) with a one-line message naming the path and the
    expected layout.
    """
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    if name == "digits":
        if data_dir is not None:
            raise DatasetError(f"digits: embedded in scikit-learn, takes no data_dir, got {str(data_dir)!r}")
        return _load_cached(name, (), ())
    fmt = FILE_FORMATS[name]
    if data_dir is None or str(data_dir) == "":
        raise DatasetError(one_line(f"{name}: data_dir is required (expected {fmt.expected})"))
    root = Path(data_dir).expanduser().resolve()
    if not root.exists():
        raise fmt.error(root, "does not exist")
    files = fmt.locate(fmt, root)
    stamps = []
    for path in files:
        stat = path.stat()
        stamps.append((stat.st_mtime_ns, stat.st_size))
    return _load_cached(name, files, tuple(stamps))


def load_split(name: str, split: str, *, data_dir: str | Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Split `split` (``train``, ``val`` or ``test``) of data set `name`: images, float32 CPU
    tensor (N, C, H, W) in [0, 1], and int64 labels (N,); the same images on every call.
    The tensors are shared with the cached `Dataset`: clone before changing them in place."""
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    data = load_dataset(name, data_dir)
    return getattr(data, f"x_{split}"), getattr(data, f"y_{split}")


def clear_dataset_cache() -> None:
    """Forget every data set loaded in this process (frees their memory once unreferenced)."""
    _load_cached.cache_clear()
