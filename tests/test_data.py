from __future__ import annotations

import codecs
import gzip
import io
import os
import pickle
import struct
import subprocess
import sys
import textwrap
import tracemalloc
import uuid
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

from robnas.spaces import DATASETS
from robnas.trainables._data import (
    SPLITS,
    Dataset,
    DatasetError,
    clear_dataset_cache,
    load_dataset,
    load_split,
    validation_size,
)
from robnas.trainables._formats import MAX_CLASSES, MAX_DATA_BYTES
from robnas.trainables._safe_pickle import RefusedGlobalError, load_numpy_pickle


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_dataset_cache()
    yield
    clear_dataset_cache()


def _u8(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


def _as_float(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x).to(torch.float32) / 255


def official_train(ds: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """The official training set of ``ds`` in file order: its train and val splits put back."""
    n = len(ds.y_train) + len(ds.y_val)
    keep = torch.ones(n, dtype=torch.bool)
    keep[ds.val_index] = False
    x, y = torch.empty((n, *ds.input_shape)), torch.empty(n, dtype=torch.int64)
    x[keep], y[keep], x[ds.val_index], y[ds.val_index] = ds.x_train, ds.y_train, ds.x_val, ds.y_val
    return x, y


def _check_invariants(ds: Dataset) -> None:
    for x, y in ((ds.x_train, ds.y_train), (ds.x_val, ds.y_val), (ds.x_test, ds.y_test)):
        assert x.dtype == torch.float32 and x.is_contiguous() and x.dim() == 4
        assert y.dtype == torch.int64 and len(y) == len(x)
        assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
        assert 0 <= int(y.min()) and int(y.max()) < ds.num_classes


def _error(name: str, data_dir=None) -> str:
    with pytest.raises(DatasetError) as info:
        load_dataset(name, data_dir)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{name}: ") or name not in DATASETS
    return message


#: Allocation ceiling for refusing a hostile file; the sizes such files declare are GiB to PB.
REFUSAL_PEAK_BYTES = 16 * 2**20


def _error_without_allocating(name: str, data_dir) -> str:
    """`_error`, asserting that the traced allocation peak stays below REFUSAL_PEAK_BYTES."""
    tracemalloc.start()
    try:
        message = _error(name, data_dir)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < REFUSAL_PEAK_BYTES, f"allocated {peak} bytes to refuse: {message}"
    return message


# --------------------------------------------------------------------------- writers of tiny files


def _write_cifar10(root: Path, rng: np.random.Generator, *, n: int = 4, protocol: int = 2) -> dict:
    root.mkdir(parents=True, exist_ok=True)
    files = {f"data_batch_{i}": n for i in range(1, 6)} | {"test_batch": n + 1}
    out = {}
    for name, count in files.items():
        data, labels = _u8(rng, count, 3072), [int(v) for v in rng.integers(0, 10, count)]
        batch = {b"batch_label": b"tiny", b"data": data, b"labels": labels, b"filenames": [b"f.png"] * count}
        with open(root / name, "wb") as handle:
            pickle.dump(batch, handle, protocol=protocol)
        out[name] = (data, labels)
    return out


def _write_idx(path: Path, array: np.ndarray) -> None:
    raw = struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    raw += array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)


def _write_mnist(folder: Path, rng: np.random.Generator, *, suffix: str = "") -> dict:
    arrays = {
        "train-images-idx3-ubyte": _u8(rng, 7, 6, 6),
        "train-labels-idx1-ubyte": rng.integers(0, 10, 7).astype(np.uint8),
        "t10k-images-idx3-ubyte": _u8(rng, 3, 6, 6),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, 3).astype(np.uint8),
    }
    for stem, array in arrays.items():
        _write_idx(folder / f"{stem}{suffix}", array)
    return arrays


# --------------------------------------------------------------------------- digits


def test_digits_shapes_values_and_stratified_70_15_15_split():
    ds = load_dataset("digits")
    from sklearn.datasets import load_digits

    target = load_digits().target
    assert (len(ds.x_train), len(ds.x_val), len(ds.x_test)) == (1257, 270, 270)
    assert (ds.in_channels, ds.input_size, ds.input_shape, ds.num_classes) == (1, 8, (1, 8, 8), 10)
    _check_invariants(ds)
    assert float(ds.x_train.max()) == 1.0
    assert torch.equal(ds.x_train * 16, torch.round(ds.x_train * 16))  # pixels are k/16 exactly
    counts = {split: torch.bincount(getattr(ds, f"y_{split}"), minlength=10).double() for split in SPLITS}
    total = sum(counts.values())
    assert total.tolist() == np.bincount(target).tolist()
    for split, share in (("train", 0.70), ("val", 0.15), ("test", 0.15)):
        assert torch.all((counts[split] / total - share).abs() < 0.02), (split, counts[split])  # stratified
    assert repr(ds) == "Dataset(name='digits', train=1257, val=270, test=270, input_shape=(1, 8, 8), num_classes=10)"


def test_the_splits_are_disjoint_stable_and_the_same_images_on_every_call():
    from sklearn.datasets import load_digits

    images = torch.from_numpy(load_digits().images.reshape(-1, 64) / 16.0).float()
    first = {split: load_split("digits", split) for split in SPLITS}
    clear_dataset_cache()
    for split in SPLITS:
        x, y = load_split("digits", split)
        assert torch.equal(x, first[split][0]) and torch.equal(y, first[split][1])
        assert x.dtype == torch.float32 and x.device.type == "cpu" and y.dtype == torch.int64
    # Each of the 1,797 images (digits has duplicates: compare indices, not pixels) is in one split.
    rows = {split: [] for split in SPLITS}
    for split in SPLITS:
        flat = first[split][0].reshape(-1, 64)
        distance = torch.cdist(flat, images)
        rows[split] = distance.argmin(1).tolist()
        assert torch.all(distance.min(1).values == 0)
    together = rows["train"] + rows["val"] + rows["test"]
    assert len(together) == 1797
    with pytest.raises(DatasetError, match="unknown split 'dev'"):
        load_split("digits", "dev")


@pytest.mark.parametrize("train_images, expected", [(50_000, 5000), (60_000, 5000), (73_257, 5000), (20, 2), (2, 1)])
def test_validation_takes_a_tenth_of_the_official_training_set_at_most_5000(train_images, expected):
    assert validation_size("cifar10", train_images) == expected


def test_validation_is_stratified_and_fixed_on_a_real_format(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    labels = np.repeat(np.arange(10), 20)  # 200 images per batch, 20 of each class
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": _u8(rng, 200, 3072), b"labels": rng.permutation(labels).tolist()}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    ds = load_dataset("cifar10", tmp_path)
    assert (len(ds.x_train), len(ds.x_val), len(ds.x_test)) == (900, 100, 200)
    assert torch.bincount(ds.y_val, minlength=10).tolist() == [10] * 10  # stratified: 10 % of each class
    index = ds.val_index.clone()
    clear_dataset_cache()
    assert torch.equal(load_dataset("cifar10", tmp_path).val_index, index)  # the same images every time


def test_digits_is_deterministic_and_cached():
    first = load_dataset("digits")
    assert load_dataset("digits") is first
    clear_dataset_cache()
    second = load_dataset("digits")
    assert second is not first
    for field in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        assert torch.equal(getattr(first, field), getattr(second, field))
    assert first.y_test[:10].tolist() == second.y_test[:10].tolist()


def test_digits_rejects_data_dir(tmp_path):
    message = _error("digits", tmp_path)
    assert message == f"digits: embedded in scikit-learn, takes no data_dir, got '{tmp_path}'"


# --------------------------------------------------------------------------- CIFAR


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_cifar10_round_trip(tmp_path, protocol):
    files = _write_cifar10(tmp_path / "cifar-10-batches-py", np.random.default_rng(protocol), protocol=protocol)
    ds = load_dataset("cifar10", tmp_path)
    train = [files[f"data_batch_{i}"] for i in range(1, 6)]
    expected_x = np.concatenate([d for d, _ in train]).reshape(-1, 3, 32, 32)
    assert torch.equal(official_train(ds)[0], _as_float(expected_x))
    assert official_train(ds)[1].tolist() == [v for _, labels in train for v in labels]
    assert torch.equal(ds.x_test, _as_float(files["test_batch"][0].reshape(-1, 3, 32, 32)))
    assert ds.y_test.tolist() == files["test_batch"][1]
    assert (ds.input_shape, ds.num_classes, len(official_train(ds)[0]), len(ds.x_test)) == ((3, 32, 32), 10, 20, 5)
    _check_invariants(ds)


def _py2_cifar_pickle(data: np.ndarray, labels: list[int]) -> bytes:
    """A batch as Python 2 with numpy 1.x pickled it: protocol 2, str opcodes, numpy.core names."""

    def text(raw: bytes) -> bytes:  # SHORT_BINSTRING or BINSTRING
        return (b"U" + bytes([len(raw)]) if len(raw) < 256 else b"T" + struct.pack("<i", len(raw))) + raw

    def integer(value: int) -> bytes:  # BININT
        return b"J" + struct.pack("<i", value)

    dtype = (b"cnumpy\ndtype\n" + text(b"u1") + integer(0) + integer(1) + b"\x87R(" + integer(3) + text(b"|")
             + b"NNN" + integer(-1) + integer(-1) + integer(0) + b"tb")
    array = (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n" + integer(0) + b"\x85" + text(b"b")
             + b"\x87R(" + integer(1) + integer(data.shape[0]) + integer(data.shape[1]) + b"\x86" + dtype
             + b"\x89" + text(data.tobytes()) + b"tb")
    items = text(b"data") + array + text(b"labels") + b"](" + b"".join(integer(v) for v in labels) + b"e"
    return b"\x80\x02}(" + items + b"u."


def test_cifar10_python2_pickles(tmp_path):
    rng = np.random.default_rng(9)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    data = {name: _u8(rng, 2, 3072) for name in names}
    labels = {name: [int(v) for v in rng.integers(0, 10, 2)] for name in names}
    for name in names:
        (tmp_path / name).write_bytes(_py2_cifar_pickle(data[name], labels[name]))
    assert pickle.loads((tmp_path / "test_batch").read_bytes(), encoding="bytes")[b"labels"] == labels["test_batch"]
    ds = load_dataset("cifar10", tmp_path)
    assert torch.equal(official_train(ds)[0], _as_float(np.concatenate([data[n] for n in names[:5]]).reshape(-1, 3, 32, 32)))
    assert official_train(ds)[1].tolist() == [v for n in names[:5] for v in labels[n]]
    assert torch.equal(ds.x_test, _as_float(data["test_batch"].reshape(-1, 3, 32, 32)))


def test_cifar100_round_trip_fine_labels_and_str_keys(tmp_path):
    rng = np.random.default_rng(1)
    written = {}
    for name, count in (("train", 6), ("test", 2)):
        data, fine = _u8(rng, count, 3072), rng.integers(0, 100, count)
        fine[0] = 99
        with open(tmp_path / name, "wb") as handle:  # numpy labels and str keys are accepted too
            pickle.dump({"data": data, "fine_labels": fine, "coarse_labels": fine // 5}, handle)
        written[name] = (data, fine)
    ds = load_dataset("cifar100", tmp_path)
    assert torch.equal(official_train(ds)[0], _as_float(written["train"][0].reshape(-1, 3, 32, 32)))
    assert official_train(ds)[1].tolist() == written["train"][1].tolist()
    assert ds.y_test.tolist() == written["test"][1].tolist()
    assert ds.num_classes == 100


def test_cifar_errors(tmp_path):
    assert "data_dir is required" in _error("cifar10", None)
    missing = tmp_path / "nowhere"
    assert f"{missing} does not exist (expected the CIFAR-10 python version" in _error("cifar10", missing)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert f"{empty} has no data_batch_1 (expected" in _error("cifar10", empty)
    root = tmp_path / "c10"
    _write_cifar10(root, np.random.default_rng(0))
    (root / "data_batch_3").unlink()
    assert f"{root} has no data_batch_3" in _error("cifar10", root)


def _cifar_dir_with(tmp_path: Path, batch_bytes: bytes) -> Path:
    root = tmp_path / "c10"
    _write_cifar10(root, np.random.default_rng(0))
    (root / "data_batch_2").write_bytes(batch_bytes)
    return root


def test_cifar_batch_of_random_bytes(tmp_path):
    junk = np.random.default_rng(5).integers(0, 256, 4000, dtype=np.uint8).tobytes()
    root = _cifar_dir_with(tmp_path, junk)
    message = _error("cifar10", root)
    assert str(root / "data_batch_2") in message


@pytest.mark.parametrize(
    ("batch", "problem"),
    [
        ({b"data": np.zeros((4, 1000), np.uint8), b"labels": [0] * 4}, "not uint8 (N, 3072)"),
        ({b"data": np.zeros((4, 3072), np.float32), b"labels": [0] * 4}, "not uint8 (N, 3072)"),
        ({b"data": np.zeros((4, 3072), np.uint8), b"labels": [0] * 3}, "not 4 integers"),
        ({b"data": np.zeros((4, 3072), np.uint8), b"labels": [0, 1, 2, 10]}, "labels in [0, 10], outside [0, 9]"),
        ({b"data": np.zeros((4, 3072), np.uint8)}, "has no key b'labels'"),
        ([1, 2, 3], "holds a list, not a dict"),
    ],
)
def test_cifar_batch_with_wrong_content(tmp_path, batch, problem):
    root = _cifar_dir_with(tmp_path, pickle.dumps(batch, protocol=4))
    message = _error("cifar10", root)
    assert f"{root / 'data_batch_2'} " in message and problem in message


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_cifar_pickle_payload_is_refused_without_side_effect(tmp_path, protocol):
    marker = tmp_path / f"pwned_{uuid.uuid4().hex}"
    payload = {b"data": _Exploit(marker), b"labels": [0]}
    root = _cifar_dir_with(tmp_path, pickle.dumps(payload, protocol=protocol))
    message = _error("cifar10", root)
    assert "refused global posix.system" in message and "data_batch_2" in message
    assert not marker.exists()


def test_restricted_unpickler_refuses_other_callables(tmp_path):
    class Rot13:
        def __reduce__(self):
            return (codecs.encode, ("abc", "rot13"))

    class Builtin:
        def __reduce__(self):
            return (eval, ("1 + 1",))

    path = tmp_path / "p"
    path.write_bytes(pickle.dumps(Rot13(), protocol=2))
    with pytest.raises(RefusedGlobalError, match="latin-1"):
        load_numpy_pickle(path)
    path.write_bytes(pickle.dumps(Builtin(), protocol=2))
    with pytest.raises(RefusedGlobalError, match=r"refused global (__builtin__|builtins)\.eval"):
        load_numpy_pickle(path)
    path.write_bytes(pickle.dumps({b"a": np.arange(5, dtype=np.int16)}, protocol=2))
    assert load_numpy_pickle(path)[b"a"].tolist() == [0, 1, 2, 3, 4]


def _short(raw: bytes) -> bytes:  # SHORT_BINSTRING
    return b"U" + bytes([len(raw)]) + raw


def _int(value: int) -> bytes:  # BININT
    return b"J" + struct.pack("<i", value)


def _pickled_array(n: int, dtype_code: bytes, flags: int, raw: bytes) -> bytes:
    """A 1-D array of `n` items as numpy pickles it at protocol 2, with `flags` in its dtype's state."""
    dtype = (b"cnumpy\ndtype\n" + _short(dtype_code) + b"\x89\x88\x87R(" + _int(3) + _short(b"|") + b"NNN"
             + _int(8) + _int(1) + _int(flags) + b"tb")
    return (b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n" + _int(0) + b"\x85" + _short(b"b")
            + b"\x87R(" + _int(1) + _int(n) + b"\x85" + dtype + b"\x89" + raw + b"tb.")


_GIB4 = struct.pack("<Q", 2**32)

#: A few bytes each that declare GiB: lengths, a memo table, arrays.
HOSTILE_PICKLES = {
    "bytes8 of 4 GiB": (b"\x80\x04\x8e" + _GIB4 + b"abc", "expected 4294967296 bytes in a bytes8, but only 3 remain"),
    "bytearray8 of 4 GiB": (b"\x80\x05\x96" + _GIB4 + b"abc", "expected 4294967296 bytes in a bytearray8"),
    "unicode8 of 4 GiB": (b"\x80\x04\x8d" + _GIB4 + b"abc", "expected 4294967296 bytes in a unicodestring8"),
    "frame of 4 GiB": (b"\x80\x04\x95" + _GIB4 + b"N.", "a frame of 4294967296 bytes at byte 2 runs past the end"),
    "memo index 2**28": (b"\x80\x02Nr" + struct.pack("<I", 2**28) + b".", "memo index 268435456 at byte 3 skips ahead"),
    "no STOP": (b"\x80\x02N", "pickle exhausted before seeing STOP"),
    "_reconstruct of 2 GiB": (
        b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n" + _int(2**31 - 1) + b"\x85" + _short(b"b")
        + b"\x87R.", "an array of 2147483647 bytes declared in a pickle of 65 bytes"),
    "ndarray((2**31,))": (b"\x80\x02cnumpy\nndarray\n" + _int(2**31 - 1) + b"\x85\x85R.",
                          "numpy.ndarray is only admitted as the class _reconstruct builds"),
    "_reconstruct of another class": (
        b"\x80\x02cnumpy.core.multiarray\n_reconstruct\nc_codecs\nencode\n" + _int(0) + b"\x85" + _short(b"b") + b"\x87R.",
        "_reconstruct is only admitted for numpy.ndarray"),
    "object dtype": (pickle.dumps(np.dtype("O"), protocol=2), "refused dtype object"),
    "void dtype": (pickle.dumps(np.dtype("V8"), protocol=4), "refused dtype |V8"),
    "big-endian dtype": (b"\x80\x02cnumpy\ndtype\n" + _short(b">i8") + b"\x89\x88\x87R.", "refused dtype >i8"),
}


@pytest.mark.parametrize("case", HOSTILE_PICKLES)
def test_cifar_pickle_declaring_more_than_it_holds_is_refused_without_allocating(tmp_path, case):
    batch, problem = HOSTILE_PICKLES[case]
    root = _cifar_dir_with(tmp_path, batch)
    message = _error_without_allocating("cifar10", root)
    assert f"{root / 'data_batch_2'} " in message and problem in message


def test_cifar_batch_larger_than_the_limit_is_refused_unread(tmp_path):
    root = _cifar_dir_with(tmp_path, b"")
    with open(root / "data_batch_2", "r+b") as handle:
        handle.truncate(MAX_DATA_BYTES + 1)  # sparse: nothing written
    message = _error_without_allocating("cifar10", root)
    assert f"data_batch_2 has {MAX_DATA_BYTES + 1} bytes, more than the {MAX_DATA_BYTES}-byte limit" in message


def test_pickled_dtype_state_cannot_alter_numpy(tmp_path):
    """numpy trusts a dtype's pickled flags: object flags on a void dtype crash the process.

    Run in a child process, which would die with the signal.
    """
    crash = tmp_path / "crash.pkl"
    crash.write_bytes(_pickled_array(1000, b"V8", 0x3F, b"](" + _int(7) * 2 + b"e"))
    ignored = tmp_path / "ignored.pkl"
    ignored.write_bytes(_pickled_array(2, b"i8", 0x3F, _short(b"\x01" * 16)))
    code = textwrap.dedent(f"""
        from pathlib import Path
        from robnas.trainables._safe_pickle import RefusedGlobalError, load_numpy_pickle
        try:
            load_numpy_pickle(Path({str(crash)!r}))
        except RefusedGlobalError as exc:
            print(exc)
        array = load_numpy_pickle(Path({str(ignored)!r}))
        print(array.dtype, array.dtype.hasobject, array.tolist())
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == [
        "refused dtype |V8: only built-in numeric dtypes are admitted",
        f"int64 False {[0x0101010101010101] * 2}",
    ]


# --------------------------------------------------------------------------- SVHN


def test_svhn_round_trip_maps_10_to_0(tmp_path):
    rng = np.random.default_rng(2)
    written = {}
    for name, count in (("train_32x32.mat", 5), ("test_32x32.mat", 3)):
        x = _u8(rng, 32, 32, 3, count)
        y = np.array([[10], [1], [9], [10], [5]][:count], dtype=np.uint8)
        scipy.io.savemat(tmp_path / name, {"X": x, "y": y})
        written[name] = x
    ds = load_dataset("svhn", tmp_path)
    assert official_train(ds)[1].tolist() == [0, 1, 9, 0, 5] and ds.y_test.tolist() == [0, 1, 9]
    x = written["train_32x32.mat"]
    assert float(official_train(ds)[0][4, 2, 7, 30]) == np.float32(x[7, 30, 2, 4]) / np.float32(255)
    assert torch.equal(official_train(ds)[0], _as_float(x.transpose(3, 2, 0, 1)))
    assert torch.equal(ds.x_test, _as_float(written["test_32x32.mat"].transpose(3, 2, 0, 1)))
    assert ds.input_shape == (3, 32, 32)


def test_svhn_errors(tmp_path):
    (tmp_path / "train_32x32.mat").write_bytes(b"not a matlab file at all" * 10)
    assert f"{tmp_path} has no test_32x32.mat" in _error("svhn", tmp_path)
    (tmp_path / "test_32x32.mat").write_bytes(b"x")
    assert f"{tmp_path / 'train_32x32.mat'} is not a readable MATLAB v5 file" in _error("svhn", tmp_path)
    scipy.io.savemat(tmp_path / "train_32x32.mat", {"X": np.zeros((32, 32, 3, 2), np.uint8), "y": [[0], [1]]})
    assert "labels in [0, 1], outside [1, 10]" in _error("svhn", tmp_path)


@pytest.mark.parametrize(
    ("name", "dims", "problem"),
    [
        ("X", (32, 32, 3, 10**8), "declares X (uint8) of shape (32, 32, 3, 100000000): 307200000000 bytes, more than"),
        ("X", (32, 32, 3, -2), "declares X (uint8) of shape (32, 32, 3, -2), with a negative dimension"),
        ("y", (2**30, 1), "declares y (double) of shape (1073741824, 1): 8589934592 bytes, more than"),
    ],
)
def test_svhn_variable_declaring_too_much_is_refused_before_loading(tmp_path, name, dims, problem):
    """Dims patched in an uncompressed file: the data is 2 images, the header declares more."""
    x, y = np.zeros((32, 32, 3, 2), np.uint8), np.array([[1.0], [2.0]])
    for stem in ("train_32x32.mat", "test_32x32.mat"):
        scipy.io.savemat(tmp_path / stem, {"X": x, "y": y})
    path = tmp_path / "train_32x32.mat"
    written = {"X": struct.pack("<4i", 32, 32, 3, 2), "y": struct.pack("<2i", 2, 1)}[name]
    raw = path.read_bytes()
    assert raw.count(written) == 1
    path.write_bytes(raw.replace(written, struct.pack(f"<{len(dims)}i", *dims)))
    message = _error_without_allocating("svhn", tmp_path)
    assert f"{path} {problem}" in message


# --------------------------------------------------------------------------- MNIST / Fashion-MNIST


@pytest.mark.parametrize(
    ("name", "subdir", "suffix"),
    [("mnist", "", ""), ("mnist", "MNIST/raw", ".gz"), ("fashion_mnist", "raw", ""), ("fashion_mnist", "FashionMNIST/raw", ".gz")],
)
def test_idx_round_trip(tmp_path, name, subdir, suffix):
    arrays = _write_mnist(tmp_path / subdir, np.random.default_rng(3), suffix=suffix)
    ds = load_dataset(name, tmp_path)
    assert torch.equal(official_train(ds)[0], _as_float(arrays["train-images-idx3-ubyte"][:, None]))
    assert official_train(ds)[1].tolist() == arrays["train-labels-idx1-ubyte"].tolist()
    assert torch.equal(ds.x_test, _as_float(arrays["t10k-images-idx3-ubyte"][:, None]))
    assert ds.y_test.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()
    assert (ds.input_shape, ds.num_classes) == ((1, 6, 6), 10)


def test_idx_errors(tmp_path):
    _write_mnist(tmp_path, np.random.default_rng(4))
    images = tmp_path / "train-images-idx3-ubyte"
    full = images.read_bytes()
    images.write_bytes(full[:-5])
    assert f"{images} is truncated: {len(full) - 5} bytes, header dims (7, 6, 6) need {len(full)}" in _error("mnist", tmp_path)
    images.write_bytes(full[:10])
    assert "shorter than its 16-byte header" in _error("mnist", tmp_path)
    images.write_bytes(b"\x00\x00\x08\x01" + full[4:])
    assert "has magic 0x00000801, not 0x00000803" in _error("mnist", tmp_path)
    images.write_bytes(full)
    labels = tmp_path / "t10k-labels-idx1-ubyte"
    _write_idx(labels, np.array([1, 2], np.uint8))
    assert f"{labels} has 2 labels for the 3 images" in _error("mnist", tmp_path)
    labels.unlink()
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip")
    assert "t10k-labels-idx1-ubyte.gz cannot be read (BadGzipFile" in _error("mnist", tmp_path)


def test_idx_gz_length_errors(tmp_path):
    _write_mnist(tmp_path, np.random.default_rng(4), suffix=".gz")
    images = tmp_path / "train-images-idx3-ubyte.gz"
    raw = gzip.decompress(images.read_bytes())
    images.write_bytes(gzip.compress(raw + bytes(1000)))
    assert f"{images} is too long: more than {len(raw)} bytes, header dims (7, 6, 6) need {len(raw)}" in _error("mnist", tmp_path)
    images.write_bytes(gzip.compress(raw[:-5]))
    assert f"{images} is truncated: {len(raw) - 5} bytes, header dims (7, 6, 6) need {len(raw)}" in _error("mnist", tmp_path)
    images.write_bytes(gzip.compress(raw[:10]))
    assert f"{images} is truncated: 10 bytes, shorter than its 16-byte header" in _error("mnist", tmp_path)
    images.write_bytes(gzip.compress(raw)[:-12])  # the gzip stream itself cut short
    assert f"{images} cannot be read (EOFError" in _error("mnist", tmp_path)


def _idx_header(*dims: int) -> bytes:
    return struct.pack(">I", 0x0800 + len(dims)) + struct.pack(f">{len(dims)}I", *dims)


@pytest.mark.parametrize(
    ("stem", "dims"),
    [
        ("train-images-idx3-ubyte", (60000, 100000, 100000)),
        ("train-images-idx3-ubyte", (2**32 - 1,) * 3),
        ("train-images-idx3-ubyte", (MAX_DATA_BYTES // 784 + 1, 28, 28)),  # just over the limit
        ("train-labels-idx1-ubyte", (2**32 - 1,)),
        ("t10k-images-idx3-ubyte", (10**9, 28, 28)),
    ],
)
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_header_declaring_too_much_is_refused_before_reading(tmp_path, stem, dims, suffix):
    """A small body (1 MiB of zeros) after a header that declares GiB to PB: refused at the header."""
    _write_mnist(tmp_path, np.random.default_rng(5), suffix=suffix)
    path = tmp_path / f"{stem}{suffix}"
    raw = _idx_header(*dims) + bytes(2**20)
    path.write_bytes(gzip.compress(raw) if suffix else raw)
    message = _error_without_allocating("mnist", tmp_path)
    size = int(np.prod(dims, dtype=object))
    assert f"{path} declares IDX data of shape {dims}: {size} bytes, more than the {MAX_DATA_BYTES}-byte limit" in message


def test_gz_idx_holding_less_than_it_declares_allocates_what_it_holds(tmp_path):
    """1.5 GB declared, within the limit, but 1 KiB present: memory follows the bytes read."""
    _write_mnist(tmp_path, np.random.default_rng(5), suffix=".gz")
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(_idx_header(2_000_000, 28, 28) + bytes(1024)))
    message = _error_without_allocating("mnist", tmp_path)
    assert f"{path} is truncated: 1040 bytes, header dims (2000000, 28, 28) need 1568000016" in message


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (2**20, "is truncated: 1048592 bytes, header dims (2000, 28, 28) need 1568016"),
        (MAX_DATA_BYTES, "is too long: 2147483664 bytes, header dims (2000, 28, 28) need 1568016"),
    ],
)
def test_plain_idx_size_is_checked_against_its_header_before_reading(tmp_path, body, problem):
    """The file size of an uncompressed IDX file (sparse here) decides before its body is read."""
    _write_mnist(tmp_path, np.random.default_rng(6))
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(_idx_header(2000, 28, 28))
    with open(path, "r+b") as handle:
        handle.truncate(16 + body)
    assert f"{path} {problem}" in _error_without_allocating("mnist", tmp_path)


# --------------------------------------------------------------------------- npz


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_npz_layouts_round_trip(tmp_path, save):
    rng = np.random.default_rng(6)
    x_train = _u8(rng, 4, 5, 5, 3)  # NHWC uint8
    x_test = np.asfortranarray(rng.random((2, 3, 5, 5)))  # NCHW float64, stored in Fortran order
    path = tmp_path / "mine.npz"
    save(path, x_train=x_train, y_train=np.array([0, 1, 2, 1]), x_test=x_test, y_test=np.array([2, 0]))
    for where in (path, tmp_path):
        ds = load_dataset("npz", where)
        assert torch.equal(official_train(ds)[0], _as_float(x_train.transpose(0, 3, 1, 2)))
        assert torch.equal(ds.x_test, torch.from_numpy(x_test.astype(np.float32)))
        assert official_train(ds)[1].tolist() == [0, 1, 2, 1] and ds.y_test.tolist() == [2, 0]
        assert (ds.input_shape, ds.num_classes) == ((3, 5, 5), 3)


def test_npz_gray_and_declared_classes(tmp_path):
    x = np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4)  # NHW
    np.savez(tmp_path / "g.npz", x_train=x, y_train=[0, 1], x_test=x, y_test=[1, 1], num_classes=7)
    ds = load_dataset("npz", tmp_path / "g.npz")
    assert ds.input_shape == (1, 4, 4) and ds.num_classes == 7
    assert torch.equal(ds.x_test[:, 0], _as_float(x))


def _npz(tmp_path: Path, **arrays) -> Path:
    base = {"x_train": np.zeros((2, 1, 4, 4), np.uint8), "y_train": [0, 1],
            "x_test": np.zeros((1, 1, 4, 4), np.uint8), "y_test": [1]}
    base.update(arrays)
    path = tmp_path / "d.npz"
    np.savez(path, **{k: v for k, v in base.items() if v is not None})
    return path


@pytest.mark.parametrize(
    ("arrays", "problem"),
    [
        ({"y_test": None}, "misses y_test"),
        ({"extra": np.zeros(2)}, "has unknown arrays extra"),
        ({"x_test": np.full((1, 1, 4, 4), 1.5)}, "has x_test values in [1.5, 1.5], outside [0, 1]"),
        ({"x_test": np.full((1, 1, 4, 4), np.nan)}, "outside [0, 1]"),
        ({"x_train": np.zeros((2, 1, 4, 4), np.int32)}, "has x_train of dtype int32"),
        ({"x_train": np.zeros((2, 3, 4, 5), np.uint8)}, "layout not square"),
        ({"x_train": np.zeros((2, 4, 4, 4), np.uint8)}, "layout ambiguous"),
        ({"y_train": [0.0, 1.0]}, "has y_train float64 (2,), not 2 integer labels"),
        ({"y_train": [0, -1]}, "labels in [-1, 0]"),
        ({"num_classes": 1}, "has num_classes"),
        ({"y_train": [0, 10**9]}, "has labels up to 1000000000: more than 100000 classes"),
        ({"y_test": [2**63 - 1]}, "has labels up to 9223372036854775807: more than 100000 classes"),
        ({"y_test": np.array([2**64 - 1], np.uint64)}, "labels in [18446744073709551615, 18446744073709551615]"),
        ({"y_test": [MAX_CLASSES]}, "has labels up to 100000: more than 100000 classes"),
        ({"num_classes": 10**9}, "has num_classes 1000000000: more than 100000 classes"),
        ({"num_classes": MAX_CLASSES + 1}, "has num_classes 100001: more than 100000 classes"),
        ({"x_train": np.zeros((2, 1, 4, 4), object)}, "has x_train of dtype object, holding Python objects"),
        ({"x_test": np.zeros((1, 1, 3, 3), np.uint8)}, "images must be square and alike"),
    ],
)
def test_npz_errors(tmp_path, arrays, problem):
    path = _npz(tmp_path, **arrays)
    message = _error("npz", path)
    assert problem in message and (str(path) in message or "images must be" in message)


def test_npz_allows_up_to_max_classes(tmp_path):
    path = _npz(tmp_path, y_train=[0, MAX_CLASSES - 1])
    assert load_dataset("npz", path).num_classes == MAX_CLASSES


def _npy(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array(out, array, allow_pickle=False)
    return out.getvalue()


def _npy_declaring(shape: tuple[int, ...], descr: str = "|u1", body: bytes = bytes(64)) -> bytes:
    """A .npy whose header declares `shape` of `descr` but whose body is only `body`."""
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, {"descr": descr, "fortran_order": False, "shape": shape})
    return out.getvalue() + body


def _zip_npz(path: Path, compression: int, **members: bytes) -> Path:
    """A .npz written member by member: the four arrays of `_npz`, then `members` (name -> .npy bytes)."""
    arrays = {"x_train": np.zeros((2, 1, 4, 4), np.uint8), "y_train": np.array([0, 1]),
              "x_test": np.zeros((1, 1, 4, 4), np.uint8), "y_test": np.array([1])}
    files = {f"{key}.npy": _npy(array) for key, array in arrays.items()}
    files.update({f"{key}.npy": data for key, data in members.items()})
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


#: .npy members that declare far more than they hold.
HOSTILE_NPZ = {
    "unknown array of 1 TB": ({"extra": _npy_declaring((10**6, 10**6))}, "has unknown arrays extra"),
    "many unknown arrays": ({f"extra{i}": _npy(np.zeros(1)) for i in range(8)},
                            "has unknown arrays extra0, extra1, extra2, extra3, extra4 and 3 more"),
    "x_train of 1 TB": ({"x_train": _npy_declaring((10**6, 10**6))},
                        f"declares x_train of shape (1000000, 1000000): 1000000000000 bytes, more than the {MAX_DATA_BYTES}-byte limit"),
    "y_train of 16 GiB": ({"y_train": _npy_declaring((2**31,), "<i8")}, "declares y_train of shape (2147483648,): 17179869184 bytes"),
    "x_train of -1 images": ({"x_train": _npy_declaring((-1, 1, 4, 4))}, "declares x_train of shape (-1, 1, 4, 4), with a negative dimension"),
    "x_train longer than its member": ({"x_train": _npy_declaring((1000, 1, 28, 28))},
                                       "has a truncated x_train: (1000, 1, 28, 28) uint8 need 784128 bytes, its member holds 192"),
    "x_train of objects": ({"x_train": _npy_declaring((2, 1, 4, 4), "|O")}, "has x_train of dtype object, holding Python objects"),
    "header of 4 GiB": ({"x_train": b"\x93NUMPY\x02\x00" + struct.pack("<I", 2**32 - 1) + bytes(64)},
                        "has an unreadable array x_train (ValueError: EOF: reading array header"),
    "not a .npy": ({"y_test": b"PK not numpy"}, "has an unreadable array y_test (ValueError: the magic string is not correct"),
    "num_classes of 8 GiB": ({"num_classes": _npy_declaring((2**30,), "<i8")}, "declares num_classes of shape (1073741824,)"),
}


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
@pytest.mark.parametrize("case", HOSTILE_NPZ)
def test_npz_member_declaring_too_much_is_refused_before_loading(tmp_path, case, compression):
    members, problem = HOSTILE_NPZ[case]
    path = _zip_npz(tmp_path / "d.npz", compression, **members)
    message = _error_without_allocating("npz", path)
    assert f"{path} {problem}" in message


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_npz_written_member_by_member_round_trip(tmp_path, compression):
    path = _zip_npz(tmp_path / "d.npz", compression, num_classes=_npy(np.array(5)))
    ds = load_dataset("npz", path)
    assert (ds.input_shape, ds.num_classes, official_train(ds)[1].tolist()) == ((1, 4, 4), 5, [0, 1])


def test_npz_locating_errors(tmp_path):
    assert f"{tmp_path} holds 0 .npz files (none) (expected a .npz file" in _error("npz", tmp_path)
    _npz(tmp_path)
    np.savez(tmp_path / "e.npz", a=np.zeros(1))
    assert "holds 2 .npz files (d.npz, e.npz)" in _error("npz", tmp_path)
    (tmp_path / "t.txt").write_text("x")
    assert "t.txt is not a .npz file" in _error("npz", tmp_path / "t.txt")
    (tmp_path / "f.npz").write_bytes(b"zzz")
    assert "f.npz is not a zip archive, as .npz files are" in _error("npz", tmp_path / "f.npz")


# --------------------------------------------------------------------------- dispatcher, cache, Dataset


def test_unknown_name_lists_known_names():
    message = _error("imagenet")
    # one list of names, robnas.spaces.DATASETS, in its order
    assert message == ("unknown dataset 'imagenet'; known: digits, cifar10, cifar100, svhn, mnist, fashion_mnist, npz")
    assert DATASETS == ("digits", "cifar10", "cifar100", "svhn", "mnist", "fashion_mnist", "npz")


def test_cache_returns_same_object_until_a_file_changes(tmp_path):
    path = _npz(tmp_path)
    first = load_dataset("npz", path)
    assert load_dataset("npz", str(path)) is first
    _npz(tmp_path, x_test=np.full((1, 1, 4, 4), 255, np.uint8))
    os.utime(path, ns=(1, 1))  # a distinct mtime even on coarse-grained file systems
    second = load_dataset("npz", path)
    assert second is not first and float(second.x_test.max()) == 1.0 and float(first.x_test.max()) == 0.0


def test_dataset_validates_tensors():
    x, y = torch.zeros(3, 1, 4, 4), torch.tensor([0, 1, 1])
    ok = Dataset("t", x, y, x, y, x, y, num_classes=2)
    assert ok.input_shape == (1, 4, 4) and ok != Dataset("t", x, y, x, y, x, y, num_classes=2)  # identity equality
    with pytest.raises(DatasetError, match="x_train must be contiguous float32"):
        Dataset("t", x.double(), y, x, y, x, y, num_classes=2)
    zeros = torch.zeros(3, dtype=torch.int64)
    with pytest.raises(DatasetError, match=r"y_test has labels in \[0, 1\], outside \[0, 0\]"):
        Dataset("t", x, zeros, x, zeros, x, y, num_classes=1)
    with pytest.raises(DatasetError, match=r"x_val has values outside \[0, 1\]"):
        Dataset("t", x, y, x + 2, y, x, y, num_classes=2)
    with pytest.raises(DatasetError, match=r"x_test has values outside \[0, 1\]"):
        Dataset("t", x, y, x, y, x + 2, y, num_classes=2)
    with pytest.raises(DatasetError, match="y_train must be int64"):
        Dataset("t", x, y.int(), x, y, x, y, num_classes=2)
    with pytest.raises(DatasetError, match="images must be square and alike in every split"):
        Dataset("t", x, y, torch.zeros(3, 1, 5, 5), y, x, y, num_classes=2)
    with pytest.raises(DatasetError, match=r"num_classes must be in \[2, 100000\], got 1000000000"):
        Dataset("t", x, y, x, y, x, y, num_classes=10**9)
    with pytest.raises(DatasetError, match=r"num_classes must be in \[2, 100000\], got 1"):
        Dataset("t", x, y * 0, x, y * 0, x, y * 0, num_classes=1)
    assert Dataset("t", x, y, x, y, x, y, num_classes=MAX_CLASSES).num_classes == MAX_CLASSES
