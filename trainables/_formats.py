"""Readers for the on-disk formats of the supported image datasets (never downloads).

Each reader returns `Splits`: numpy images (N, C, H, W), either uint8 (0..255) or float in
[0, 1], and int64 labels (N,). Every problem is a one-line `DatasetError` naming the file
and what was expected.

Sizes a file declares are checked before anything of that size is allocated: no array may
declare more than `MAX_DATA_BYTES` (an IDX body, one .npz array, one SVHN variable, one CIFAR
batch file), and a data set has at most `MAX_CLASSES` classes.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, NamedTuple

import numpy as np

from robnas.trainables._safe_pickle import RefusedGlobalError, load_numpy_pickle

__all__ = [
    "MAX_CLASSES", "MAX_DATA_BYTES", "DatasetError", "FileFormat", "Splits", "one_line", "locate_idx",
    "locate_npz", "locate_stems", "read_cifar", "read_digits", "read_idx", "read_npz", "read_svhn",
]

MAX_DATA_BYTES = 2 * 1024**3
"""Largest array a data file may declare, in bytes (2 GiB): checked before reading it.

Applies to an IDX body (decompressed), each .npz array, each SVHN variable and each CIFAR
batch file. MNIST's train images are 47 MB, SVHN's train X 225 MB, CIFAR-100's train batch
150 MB; the float32 copy used for training is 4x a uint8 array.
"""

MAX_CLASSES = 100_000
"""Most classes a data set may have (the network's output width): bounds labels and num_classes."""


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


#: Digits' 1,797 images split 70/15/15: test and validation images (stratified, seed 0).
DIGITS_TEST_IMAGES = 270
DIGITS_VAL_IMAGES = 270
#: Digits' pixels are integers 0..16; robnas divides them by this to get [0, 1].
DIGITS_SCALE = 16.0


def read_digits() -> Splits:
    """scikit-learn's 8x8 digits (shipped with sklearn), / `DIGITS_SCALE`: 1,527 "official"
    training images (validation is split off them later) and 270 test images, stratified, seed 0."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = (bunch.images[:, None] / DIGITS_SCALE).astype(np.float32)  # (1797, 1, 8, 8) in [0, 1]
    y = bunch.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=DIGITS_TEST_IMAGES, stratify=y, random_state=0)
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


# --------------------------------------------------------------------------- declared sizes


def _check_size(fmt: FileFormat, path: Path, what: str, shape: tuple[int, ...], itemsize: int) -> int:
    """Bytes of `what`, an array of `shape` with `itemsize`-byte elements, at most MAX_DATA_BYTES."""
    if min(shape, default=0) < 0:
        raise fmt.error(path, f"declares {what} of shape {shape}, with a negative dimension")
    nbytes = math.prod(shape) * itemsize
    if nbytes > MAX_DATA_BYTES:
        raise fmt.error(path, f"declares {what} of shape {shape}: {nbytes} bytes, "
                              f"more than the {MAX_DATA_BYTES}-byte limit")
    return nbytes


def _check_file_size(fmt: FileFormat, path: Path) -> None:
    """A file read whole must hold at most MAX_DATA_BYTES."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise fmt.error(path, f"cannot be read ({type(exc).__name__}: {exc})") from exc
    if size > MAX_DATA_BYTES:
        raise fmt.error(path, f"has {size} bytes, more than the {MAX_DATA_BYTES}-byte limit")


def _check_classes(fmt: FileFormat, path: Path, what: str, num_classes: int) -> None:
    """`num_classes` (described by `what` in the error) is at most MAX_CLASSES."""
    if num_classes > MAX_CLASSES:
        raise fmt.error(path, f"has {what}: more than {MAX_CLASSES} classes")


# --------------------------------------------------------------------------- CIFAR (pickles)


def _cifar_batch(fmt: FileFormat, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR python batch -> x (N, 3, 32, 32) uint8, y (N,) int64."""
    _check_file_size(fmt, path)
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


def _mat_itemsize(matlab_class: str) -> int:
    """Bytes per element of a MATLAB class as `whosmat` names it ('uint8', 'double', ...); 8 for others."""
    try:
        return np.dtype(matlab_class).itemsize
    except TypeError:  # 'char', 'logical', 'cell', 'struct', 'sparse', ...
        return 8


def _mat_unreadable(fmt: FileFormat, path: Path, exc: Exception) -> DatasetError:
    return fmt.error(path, f"is not a readable MATLAB v5 file ({type(exc).__name__}: {exc})")


def _check_mat_sizes(fmt: FileFormat, path: Path) -> None:
    """X and y exist and their declared dims fit MAX_DATA_BYTES; reads only the variable headers.

    A compressed variable holds far fewer bytes in the file than it declares.
    """
    from scipy.io import whosmat

    try:
        found = {name: (shape, cls) for name, shape, cls in whosmat(path)}
    except Exception as exc:  # scipy raises ValueError, MatReadError, NotImplementedError (v7.3), ...
        raise _mat_unreadable(fmt, path, exc) from exc
    if "X" not in found or "y" not in found:
        raise fmt.error(path, "has no variables X and y")
    for name in ("X", "y"):
        shape, cls = found[name]
        _check_size(fmt, path, f"{name} ({cls})", tuple(shape), _mat_itemsize(cls))


def _svhn_split(fmt: FileFormat, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """X (32, 32, 3, N) uint8 -> (N, 3, 32, 32); y (N, 1) in 1..10, 10 meaning digit 0."""
    from scipy.io import loadmat

    _check_mat_sizes(fmt, path)
    try:
        mat = loadmat(path, variable_names=("X", "y"))
    except Exception as exc:  # as in _check_mat_sizes
        raise _mat_unreadable(fmt, path, exc) from exc
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


_READ_CHUNK = 1 << 20  # bytes per read of an IDX body (1 MiB)


def _idx_header(fmt: FileFormat, path: Path, handle: IO[bytes], ndim: int) -> tuple[int, ...]:
    """The dims of a uint8 IDX stream at its start (magic 0x0000_08_<ndim>, big-endian uint32 dims)."""
    magic, header = 0x0800 + ndim, 4 + 4 * ndim
    raw = handle.read(header)
    if len(raw) < 4 or struct.unpack(">I", raw[:4])[0] != magic:
        raise fmt.error(path, f"has magic 0x{raw[:4].hex()}, not 0x{magic:08x} (uint8 IDX, {ndim}-D)")
    if len(raw) < header:
        raise fmt.error(path, f"is truncated: {len(raw)} bytes, shorter than its {header}-byte header")
    dims = struct.unpack(f">{ndim}I", raw[4:])
    _check_size(fmt, path, "IDX data", dims, 1)
    return dims


def _check_idx_length(fmt: FileFormat, path: Path, length: int, dims: tuple[int, ...], *, probed: bool = False) -> None:
    """`length` bytes (the whole file, decompressed) against what the header and `dims` need.

    With `probed`, reading stopped one byte past the need, so a longer file shows as need + 1.
    """
    need = 4 + 4 * len(dims) + math.prod(dims)
    if length != need:
        state = "truncated" if length < need else "too long"
        shown = f"more than {need}" if probed and length > need else str(length)
        raise fmt.error(path, f"is {state}: {shown} bytes, header dims {dims} need {need}")


def _read_at_most(handle: IO[bytes], count: int) -> np.ndarray:
    """The next `count` bytes of `handle` (fewer at its end) as a uint8 array (n,).

    Read in chunks into one growing buffer: memory follows the bytes the stream holds (a
    gzip stream may hold far fewer than its header declares), not `count`.
    """
    body = bytearray()
    while len(body) < count:
        chunk = handle.read(min(_READ_CHUNK, count - len(body)))
        if not chunk:
            break
        body += chunk
    return np.frombuffer(body, np.uint8)


def _idx_array(fmt: FileFormat, path: Path, ndim: int) -> np.ndarray:
    """A uint8 IDX file, optionally gzipped, as an array of its header's dims.

    The header is checked first (magic, dims within MAX_DATA_BYTES, and for a plain file its
    size); the body is then read up to its declared size plus one byte that tells a
    too-long file (a plain file may change after its size was checked).
    """
    gz = path.suffix == ".gz"
    try:
        with gzip.open(path, "rb") if gz else open(path, "rb") as handle:
            dims = _idx_header(fmt, path, handle, ndim)
            if not gz:
                _check_idx_length(fmt, path, os.fstat(handle.fileno()).st_size, dims)
            body = _read_at_most(handle, math.prod(dims) + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise fmt.error(path, f"cannot be read ({type(exc).__name__}: {exc})") from exc
    _check_idx_length(fmt, path, 4 + 4 * ndim + len(body), dims, probed=True)
    return body.reshape(dims)


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
_NPZ_OPTIONAL = ("num_classes",)
_NPY_HEAD_BYTES = 1 << 16  # enough for a .npy magic, version and header (numpy refuses headers over 10000)
_NPY_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def _listing(names: list[str], shown: int = 5) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _npz_members(fmt: FileFormat, path: Path, archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """Array name -> zip member of the four arrays (and num_classes); any other member is refused."""
    known = {f"{key}.npy": key for key in (*_NPZ_KEYS, *_NPZ_OPTIONAL)}
    names = archive.namelist()
    missing = [key for key in _NPZ_KEYS if f"{key}.npy" not in names]
    if missing:
        raise fmt.error(path, f"misses {', '.join(missing)}")
    unknown = sorted({name.removesuffix(".npy") for name in names if name not in known})
    if unknown:
        raise fmt.error(path, f"has unknown arrays {_listing(unknown)}")
    return {known[name]: archive.getinfo(name) for name in names}


def _npy_header(fmt: FileFormat, path: Path, key: str, member: IO[bytes]) -> tuple[tuple[int, ...], np.dtype, int]:
    """Shape, dtype and header length (bytes) of the .npy at the start of `member`; reads the header only."""
    head = io.BytesIO(member.read(_NPY_HEAD_BYTES))
    version = np.lib.format.read_magic(head)
    reader = _NPY_HEADER_READERS.get(version)
    if reader is None:
        raise fmt.error(path, f"has {key} in .npy format version {version}, not (1, 0) or (2, 0)")
    shape, _, dtype = reader(head)
    return shape, dtype, head.tell()


def _npz_array(fmt: FileFormat, path: Path, archive: zipfile.ZipFile, key: str, info: zipfile.ZipInfo) -> np.ndarray:
    """One member's array, read once its header passes: no objects, within MAX_DATA_BYTES and the member."""
    try:
        with archive.open(info) as member:
            shape, dtype, header = _npy_header(fmt, path, key, member)
            if dtype.hasobject:
                raise fmt.error(path, f"has {key} of dtype {dtype}, holding Python objects")
            size = header + _check_size(fmt, path, key, shape, dtype.itemsize)
            if size > info.file_size:
                raise fmt.error(path, f"has a truncated {key}: {shape} {dtype} need {size} bytes, "
                                      f"its member holds {info.file_size}")
            member.seek(0)
            return np.lib.format.read_array(member, allow_pickle=False)
    except DatasetError:
        raise
    except Exception as exc:  # ValueError (a bad .npy header, a short body), zipfile.BadZipFile (CRC), zlib.error, ...
        raise fmt.error(path, f"has an unreadable array {key} ({type(exc).__name__}: {exc})") from exc


def _npz_arrays(fmt: FileFormat, path: Path) -> dict[str, np.ndarray]:
    """Name -> array; names are checked before any array is read, each header before its array."""
    try:
        archive = zipfile.ZipFile(path)
    except Exception as exc:  # zipfile.BadZipFile, OSError, ...
        raise fmt.error(path, f"is not a readable .npz ({type(exc).__name__}: {exc})") from exc
    with archive:
        members = _npz_members(fmt, path, archive)
        return {key: _npz_array(fmt, path, archive, key, info) for key, info in members.items()}


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


def _npz_split(fmt: FileFormat, path: Path, arrays: dict[str, np.ndarray], split: str) -> list[np.ndarray]:
    """[x (N, C, H, W), y (N,) int64] of `split` ("train" or "test")."""
    x = _npz_images(fmt, path, f"x_{split}", arrays[f"x_{split}"])
    y = arrays[f"y_{split}"]
    if y.ndim != 1 or y.dtype.kind not in "iu" or len(y) != len(x):
        raise fmt.error(path, f"has y_{split} {y.dtype} {y.shape}, not {len(x)} integer labels")
    _check_labels(fmt, path, y, 0, np.iinfo(np.int64).max)
    return [x, y.astype(np.int64)]


def _npz_num_classes(fmt: FileFormat, path: Path, given: np.ndarray | None, labels_max: int) -> int:
    """The declared `num_classes` array, else the largest label + 1; in [2, MAX_CLASSES]."""
    _check_classes(fmt, path, f"labels up to {labels_max}", labels_max + 1)
    num_classes = labels_max + 1
    if given is not None:
        if given.shape != () or given.dtype.kind not in "iu" or int(given) <= labels_max:
            raise fmt.error(path, f"has num_classes {given!r}, not an integer above the largest label {labels_max}")
        num_classes = int(given)
        _check_classes(fmt, path, f"num_classes {num_classes}", num_classes)
    if num_classes < 2:
        raise fmt.error(path, f"has {num_classes} class(es); at least 2 are needed")
    return num_classes


def read_npz(fmt: FileFormat, paths: tuple[Path, ...]) -> Splits:
    """x_train, y_train, x_test, y_test (and optionally num_classes) from one .npz."""
    path = paths[0]
    with open(path, "rb") as handle:
        if handle.read(2) != b"PK":
            raise fmt.error(path, "is not a zip archive, as .npz files are")
    arrays = _npz_arrays(fmt, path)
    out = _npz_split(fmt, path, arrays, "train") + _npz_split(fmt, path, arrays, "test")
    labels_max = max((int(y.max()) for y in out[1::2] if y.size), default=-1)
    return Splits(*out, _npz_num_classes(fmt, path, arrays.get("num_classes"), labels_max))
