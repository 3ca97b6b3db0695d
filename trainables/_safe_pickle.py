"""Restricted unpickling of numpy-array pickles (the CIFAR "python version" batches).

A pickle can name any importable callable and run it while loading. `load_numpy_pickle`
admits only the few globals needed to rebuild numpy arrays of built-in numeric dtypes (and
the `_codecs.encode` that Python 3 writes for bytes at protocols 0-2, limited to latin-1);
any other global is refused before it is imported or called.

A pickle also declares sizes that the loader trusts: a length before its bytes, a memo
index, an array's shape. `load_numpy_pickle` checks the opcodes before loading (every
declared length is met by the bytes that follow, memo indices count up from 0) and refuses
an array that declares more bytes than the pickle holds, so loading a file allocates at most
a few times its size.
"""

from __future__ import annotations

import codecs
import functools
import importlib
import io
import math
import pickle
import pickletools
from pathlib import Path
from typing import Any, Callable

import numpy as np

__all__ = ["RefusedGlobalError", "load_numpy_pickle"]

_MEMO_PUTS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})


class RefusedGlobalError(pickle.UnpicklingError):
    """A pickle named a global outside the allow-list, or used one beyond what arrays need."""


def _numpy_attr(name: str, *modules: str) -> Callable[..., Any]:
    """First `module.name` found among `modules` (numpy 2 `_core`, numpy 1 `core`)."""
    for module in modules:
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
    raise ImportError(f"numpy has no {name} in any of {modules}")  # pragma: no cover


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """`_codecs.encode` as protocol 0-2 pickles use it for bytes: str -> latin-1 bytes only."""
    if not isinstance(text, str) or codecs.lookup(encoding).name != "iso8859-1":
        raise RefusedGlobalError(f"_codecs.encode is only admitted for str and latin-1, got {encoding!r}")
    return text.encode("latin1")


def _builtin_dtype(spec: Any, align: bool = False, copy: bool = False) -> np.dtype:
    """`numpy.dtype(spec)` for numpy's built-in numeric dtypes only, and never a copy.

    numpy ignores `__setstate__` on its built-in dtypes; on a copy, the state a pickle
    supplies can set flags that crash numpy. The byte order is therefore the native one.
    """
    dtype = np.dtype(spec)
    if dtype.isbuiltin != 1 or dtype.kind not in "biufc":
        raise RefusedGlobalError(f"refused dtype {dtype}: only built-in numeric dtypes are admitted")
    return dtype


class _NdarrayClass:
    """Stands for `numpy.ndarray` as pickles name it: the class `_reconstruct` builds.

    Calling it is refused: `ndarray(shape)` allocates any declared shape.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        raise RefusedGlobalError("numpy.ndarray is only admitted as the class _reconstruct builds")


_NDARRAY = _NdarrayClass()


def _array_bytes(shape: Any, dtype: Any) -> int:
    """Bytes of an array of `shape` (an int or a sequence of ints) and `dtype`."""
    dims = (shape,) if isinstance(shape, int) else tuple(shape)
    return math.prod(int(d) for d in dims) * np.dtype(dtype).itemsize


def _bounded_reconstruct(
    reconstruct: Callable[..., np.ndarray], max_bytes: int, subtype: Any, shape: Any, dtype: Any
) -> np.ndarray:
    """numpy's `reconstruct(ndarray, shape, dtype)`, refused above `max_bytes`."""
    if subtype is not _NDARRAY:
        raise RefusedGlobalError("_reconstruct is only admitted for numpy.ndarray")
    nbytes = _array_bytes(shape, dtype)
    if not 0 <= nbytes <= max_bytes:
        raise pickle.UnpicklingError(f"an array of {nbytes} bytes declared in a pickle of {max_bytes} bytes")
    return reconstruct(np.ndarray, shape, dtype)


def _allowed_globals(max_array_bytes: int) -> dict[tuple[str, str], Any]:
    reconstruct = functools.partial(
        _bounded_reconstruct,
        _numpy_attr("_reconstruct", "numpy._core.multiarray", "numpy.core.multiarray"),
        max_array_bytes,
    )
    frombuffer = _numpy_attr("_frombuffer", "numpy._core.numeric", "numpy.core.numeric")  # a view of its bytes
    return {
        ("numpy.core.multiarray", "_reconstruct"): reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): reconstruct,
        ("numpy.core.numeric", "_frombuffer"): frombuffer,
        ("numpy._core.numeric", "_frombuffer"): frombuffer,
        ("numpy", "ndarray"): _NDARRAY,
        ("numpy", "dtype"): _builtin_dtype,
        ("_codecs", "encode"): _latin1_encode,
    }


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """`pickle.Unpickler` whose `find_class` resolves only the allow-list."""

    def __init__(self, file: io.BytesIO, *, max_array_bytes: int) -> None:
        super().__init__(file, encoding="bytes")
        self._allowed = _allowed_globals(max_array_bytes)

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise RefusedGlobalError(f"refused global {module}.{name}") from None

    def persistent_load(self, pid: Any) -> Any:
        raise RefusedGlobalError("refused persistent id")


def _check_opcodes(data: bytes) -> None:
    """Raise `pickle.UnpicklingError` unless `data` is one complete pickle with sequential memo indices.

    `pickletools.genops` reads every length-prefixed argument, so a length the bytes do not
    meet fails here; the unpickler itself would allocate the declared length first. Memo
    indices are checked because the unpickler sizes its memo table by the largest one.
    """
    stored = 0
    try:
        for opcode, arg, pos in pickletools.genops(data):
            if opcode.name == "FRAME" and arg > len(data) - pos:
                raise pickle.UnpicklingError(f"a frame of {arg} bytes at byte {pos} runs past the end")
            if opcode.name in _MEMO_PUTS and not 0 <= arg <= stored:
                raise pickle.UnpicklingError(f"memo index {arg} at byte {pos} skips ahead of {stored}")
            stored += opcode.name in _MEMO_PUTS or opcode.name == "MEMOIZE"
    except ValueError as exc:  # pickletools: a truncated argument, an unknown opcode, no STOP
        raise pickle.UnpicklingError(str(exc)) from None


def load_numpy_pickle(path: Path) -> Any:
    """Unpickle `path` with `encoding="bytes"` (Python 2 str -> bytes), numpy arrays only.

    The file is read whole (callers bound its size). Raises `RefusedGlobalError` for any
    other global or dtype, `pickle.UnpicklingError` for a declared size the file does not
    hold, and what `pickle` raises for a damaged stream (`EOFError`, `ValueError`, ...).
    """
    data = path.read_bytes()
    _check_opcodes(data)
    return _NumpyOnlyUnpickler(io.BytesIO(data), max_array_bytes=len(data)).load()
