"""Readers for the on-disk formats of the supported image datasets (never downloads).

Each reader returns `Splits`: numpy images (N, C, H, W), either uint8 (0..255) or float in
[0, 1], and int64 labels (N,). Every problem is a one-line `DatasetError` naming the file
and what was expected.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from robnas.trainables._safe_pickle import RefusedGlobalError, load_numpy_pickle

__all__ = [
    "DatasetError", "FileFormat", "Splits", "one_line", "locate_idx", "locate_npz", "locate_stems",
    "read_cifar", "read_digits", "read_idx", "read_npz", "read_svhn",
]


class DatasetError(ValueError):
    """A data set cannot be loaded; the message is one line naming the path and what was expected."""


class Splits(NamedTuple):
    """Raw arrays: x (N, C, H, W) uint8 or float in [0, 1]; y (N,) int64 in [0, num_classes)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int


def one_line(text: object) -> str:
    """`text` with whitespace runs (newlines included) collapsed to single spaces."""
    return " ".join(str(text).split())


def read_digits() -> Splits:
    """scikit-learn's 8x8 digits (shipped with sklearn), /16, stratified 80/20 split, seed 0."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = (bunch.images[:, None] / 16.0).astype(np.float32)  # (1797, 1, 8, 8) in [0, 1]
    y = bunch.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
    return Splits(x_tr, y_tr, x_te, y_te, 10)


# --------------------------------------------------------------------------- locating files


@dataclass(frozen=True)
class FileFormat:
    """Where a data set's files live under `data_dir` and how to read them."""

    name: str
    expected: str  # the layout, quoted in every error message
    locate: Callable[[FileFormat, Path], tuple[Path, ...]]
    read: Callable[[FileFormat, tuple[Path, ...]], Splits]
    stems: tuple[str, ...] = ()
    subdirs: tuple[str, ...] = ("",)
    num_classes: int = 0
    label_key: bytes = b"labels"

    def error(self, path: Path, problem: str) -> DatasetError:
        return DatasetError(one_line(f"{self.name}: {path} {problem} (expected {self.expected})"))


def _existing(folder: Path, stem: str, gz: bool) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz") if gz else (folder / stem,):
        if candidate.is_file():
            return candidate
    return None


def locate_stems(fmt: FileFormat, root: Path, *, gz: bool = False) -> tuple[Path, ...]:
    """`fmt.stems` inside the first of `root/<subdir>` that holds the first stem."""
    if not root.is_dir():
        raise fmt.error(root, "is not a directory")
    for sub in fmt.subdirs:
        folder = root / sub
        if _existing(folder, fmt.stems[0], gz) is None:
            continue
        found = []
        for stem in fmt.stems:
            path = _existing(folder, stem, gz)
            if path is None:
                raise fmt.error(folder, f"has no {stem}")
            found.append(path)
        return tuple(found)
    raise fmt.error(root, f"has no {fmt.stems[0]}")


def locate_idx(fmt: FileFormat, root: Path) -> tuple[Path, ...]:
    return locate_stems(fmt, root, gz=True)


def locate_npz(fmt: FileFormat, root: Path) -> tuple[Path, ...]:
    if root.is_file():
        if root.suffix != ".npz":
            raise fmt.error(root, "is not a .npz file")
        return (root,)
    if not root.is_dir():
        raise fmt.error(root, "does not exist")
    found = sorted(p for p in root.glob("*.npz") if p.is_file())
    if len(found) != 1:
        names = ", ".join(p.name for p in found) or "none"
        raise fmt.error(root, f"holds {len(found)} .npz files ({names})")
    return (found[0],)


# --------------------------------------------------------------------------- CIFAR (pickles)


def _cifar_batch(fmt: FileFormat, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR python batch -> x (N, 3, 32, 32) uint8, y (N,) int64."""
    try:
        batch = load_numpy_pickle(path)
    except RefusedGlobalError as exc:
        raise fmt.error(path, f"is not a plain CIFAR batch: {exc}; only numpy arrays are unpickled") from None
    except Exception as exc:  # a damaged pickle stream raises almost any exception type
        raise fmt.error(path, f"is not a readable pickle ({type(exc).__name__}: {exc})") from exc
    if not isinstance(batch, dict):
        raise fmt.error(path, f"holds a {type(batch).__name__}, not a dict")
    batch = {k.encode() if isinstance(k, str) else k: v for k, v in batch.items()}
    for key in (b"data", fmt.label_key):
        if key not in batch:
            raise fmt.error(path, f"has no key {key!r}")
    data, labels = batch[b"data"], np.asarray(batch[fmt.label_key])
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        desc = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise fmt.error(path, f"has data {desc}, not uint8 (N, 3072)")
    if labels.ndim != 1 or labels.dtype.kind not in "iu" or len(labels) != len(data):
        raise fmt.error(path, f"has labels {labels.dtype} {labels.shape}, not {len(data)} integers")
    _check_labels(fmt, path, labels, 0, fmt.num_classes - 1)
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def _check_labels(fmt: FileFormat, path: Path, y: np.ndarray, low: int, high: int) -> None:
    if y.size and (y.min() < low or y.max() > high):
        raise fmt.error(path, f"has labels in [{y.min()}, {y.max()}], outside [{low}, {high}]")


def read_cifar(fmt: FileFormat, paths: tuple[Path, ...]) -> Splits:
    """The last path is the test batch; the others are concatenated into the train split."""
    batches = [_cifar_batch(fmt, p) for p in paths]
    train = batches[:-1]
    x_train = np.concatenate([b[0] for b in train]) if len(train) > 1 else train[0][0]
    y_train = np.concatenate([b[1] for b in train]) if len(train) > 1 else train[0][1]
    return Splits(x_train, y_train, *batches[-1], fmt.num_classes)


# --------------------------------------------------------------------------- SVHN (.mat)


def _svhn_split(fmt: FileFormat, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """X (32, 32, 3, N) uint8 -> (N, 3, 32, 32); y (N, 1) in 1..10, 10 meaning digit 0."""
    from scipy.io import loadmat

    try:
        mat = loadmat(path, variable_names=("X", "y"))
    except Exception as exc:  # scipy raises ValueError, MatReadError, NotImplementedError (v7.3), ...
        raise fmt.error(path, f"is not a readable MATLAB v5 file ({type(exc).__name__}: {exc})") from exc
    x, y = mat.get("X"), mat.get("y")
    if x is None or y is None:
        raise fmt.error(path, "has no variables X and y")
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[2] != 3 or x.shape[0] != x.shape[1]:
        raise fmt.error(path, f"has X {x.dtype} {x.shape}, not uint8 (H, W, 3, N)")
    y = y.reshape(-1)
    if y.dtype.kind not in "iuf" or len(y) != x.shape[3] or not np.array_equal(y, np.round(y)):
        raise fmt.error(path, f"has y {y.dtype} {y.shape}, not {x.shape[3]} integer labels")
    _check_labels(fmt, path, y, 1, 10)
    y = y.astype(np.int64)
    return x.transpose(3, 2, 0, 1), np.where(y == 10, 0, y)


def read_svhn(fmt: FileFormat, paths: tuple[Path, ...]) -> Splits:
    return Splits(*_svhn_split(fmt, paths[0]), *_svhn_split(fmt, paths[1]), fmt.num_classes)


# --------------------------------------------------------------------------- MNIST (IDX)


def _idx_array(fmt: FileFormat, path: Path, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes (magic 0x0000_08_<ndim>, big-endian uint32 dims)."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise fmt.error(path, f"cannot be read ({type(exc).__name__}: {exc})") from exc
    magic = 0x0800 + ndim
    if len(raw) < 4 or struct.unpack(">I", raw[:4])[0] != magic:
        raise fmt.error(path, f"has magic 0x{raw[:4].hex()}, not 0x{magic:08x} (uint8 IDX, {ndim}-D)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise fmt.error(path, f"is truncated: {len(raw)} bytes, shorter than its {header}-byte header")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    size = header + int(np.prod(dims, dtype=np.int64))
    if len(raw) != size:
        state = "truncated" if len(raw) < size else "too long"
        raise fmt.error(path, f"is {state}: {len(raw)} bytes, header dims {dims} need {size}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _idx_split(fmt: FileFormat, images: Path, labels: Path) -> tuple[np.ndarray, np.ndarray]:
    x = _idx_array(fmt, images, 3)
    y = _idx_array(fmt, labels, 1)
    if len(x) != len(y):
        raise fmt.error(labels, f"has {len(y)} labels for the {len(x)} images of {images.name}")
    _check_labels(fmt, labels, y, 0, fmt.num_classes - 1)
    return x[:, None], y.astype(np.int64)


def read_idx(fmt: FileFormat, paths: tuple[Path, ...]) -> Splits:
    return Splits(*_idx_split(fmt, *paths[:2]), *_idx_split(fmt, *paths[2:]), fmt.num_classes)


# --------------------------------------------------------------------------- .npz

_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def _npz_images(fmt: FileFormat, path: Path, key: str, x: np.ndarray) -> np.ndarray:
    """(N, H, W), (N, C, H, W) or (N, H, W, C) with square H == W -> (N, C, H, W)."""
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4:
        nchw, nhwc = x.shape[2] == x.shape[3], x.shape[1] == x.shape[2]
        if nchw == nhwc:
            why = "ambiguous" if nchw else "not square"
            raise fmt.error(path, f"has {key} {x.shape}: layout {why} as NCHW or NHWC")
        x = x if nchw else x.transpose(0, 3, 1, 2)
    else:
        raise fmt.error(path, f"has {key} with shape {x.shape}, not (N, H, W), NCHW or NHWC")
    if x.dtype == np.uint8:
        return x
    if x.dtype.kind != "f":
        raise fmt.error(path, f"has {key} of dtype {x.dtype}, not uint8 or float in [0, 1]")
    if x.size and not (np.isfinite(x).all() and x.min() >= 0.0 and x.max() <= 1.0):
        raise fmt.error(path, f"has {key} values in [{x.min()}, {x.max()}], outside [0, 1]")
    return x


def read_npz(fmt: FileFormat, paths: tuple[Path, ...]) -> Splits:
    path = paths[0]
    with open(path, "rb") as handle:
        if handle.read(2) != b"PK":
            raise fmt.error(path, "is not a zip archive, as .npz files are")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except Exception as exc:  # zipfile.BadZipFile, ValueError (object arrays), OSError, ...
        raise fmt.error(path, f"is not a readable .npz ({type(exc).__name__}: {exc})") from exc
    missing = [k for k in _NPZ_KEYS if k not in arrays]
    unknown = sorted(set(arrays) - set(_NPZ_KEYS) - {"num_classes"})
    if missing or unknown:
        problem = f"misses {', '.join(missing)}" if missing else f"has unknown arrays {', '.join(unknown)}"
        raise fmt.error(path, problem)
    out = []
    for split in ("train", "test"):
        x = _npz_images(fmt, path, f"x_{split}", arrays[f"x_{split}"])
        y = arrays[f"y_{split}"]
        if y.ndim != 1 or y.dtype.kind not in "iu" or len(y) != len(x):
            raise fmt.error(path, f"has y_{split} {y.dtype} {y.shape}, not {len(x)} integer labels")
        _check_labels(fmt, path, y, 0, np.iinfo(np.int64).max)
        out += [x, y.astype(np.int64)]
    labels_max = max((int(y.max()) for y in out[1::2] if y.size), default=-1)
    num_classes = labels_max + 1
    if "num_classes" in arrays:
        given = arrays["num_classes"]
        if given.shape != () or given.dtype.kind not in "iu" or int(given) <= labels_max:
            raise fmt.error(path, f"has num_classes {given!r}, not an integer above the largest label {labels_max}")
        num_classes = int(given)
    if num_classes < 2:
        raise fmt.error(path, f"has {num_classes} class(es); at least 2 are needed")
    return Splits(*out, num_classes)
