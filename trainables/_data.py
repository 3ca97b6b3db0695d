"""In-memory image data sets: `load_dataset(name, data_dir)` -> `Dataset` of tensors.

Nothing is ever downloaded: `digits` ships with scikit-learn, every other set is read from
files the user already has (see `robnas.trainables._formats` for the layouts).
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

__all__ = ["Dataset", "DatasetError", "clear_dataset_cache", "load_dataset"]

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
    """Train and test splits in memory.

    x_*: float32 (N, C, H, W) in [0, 1], contiguous, square images (H == W);
    y_*: int64 (N,) in [0, num_classes), num_classes in [2, MAX_CLASSES]. Instances returned
    by `load_dataset` are cached and shared: treat the tensors as read-only (clone before any
    in-place change).
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int

    def __post_init__(self) -> None:
        shapes = []
        for split in ("train", "test"):
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
        if shapes[0] != shapes[1] or shapes[0][1] != shapes[0][2]:
            raise DatasetError(f"{self.name}: images must be square and alike in both splits, "
                               f"got train {shapes[0]} and test {shapes[1]}")
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
        return (f"Dataset(name={self.name!r}, train={len(self.x_train)}, test={len(self.x_test)}, "
                f"input_shape={self.input_shape}, num_classes={self.num_classes})")


def _images(x: np.ndarray) -> torch.Tensor:
    """(N, C, H, W) uint8 or float in [0, 1] -> new contiguous float32 tensor in [0, 1]."""
    out = torch.from_numpy(np.array(x, dtype=np.float32, order="C", copy=True))
    return out.div_(255.0) if x.dtype == np.uint8 else out


def _to_dataset(name: str, splits: Splits) -> Dataset:
    return Dataset(
        name=name,
        x_train=_images(splits.x_train),
        y_train=torch.from_numpy(np.array(splits.y_train, dtype=np.int64, copy=True)),
        x_test=_images(splits.x_test),
        y_test=torch.from_numpy(np.array(splits.y_test, dtype=np.int64, copy=True)),
        num_classes=splits.num_classes,
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


def clear_dataset_cache() -> None:
    """Forget every data set loaded in this process (frees their memory once unreferenced)."""
    _load_cached.cache_clear()
