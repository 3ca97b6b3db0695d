"""Restricted unpickling of numpy-array pickles (the CIFAR "python version" batches).

A pickle can name any importable callable and run it while loading. `load_numpy_pickle`
admits only the few globals needed to rebuild numpy arrays (and the `_codecs.encode`
that Python 3 writes for bytes at protocols 0-2, limited to latin-1); any other global
is refused before it is imported or called.
"""

from __future__ import annotations

import codecs
import importlib
import pickle
from pathlib import Path
from typing import Any, Callable

import numpy as np

__all__ = ["RefusedGlobalError", "load_numpy_pickle"]


class RefusedGlobalError(pickle.UnpicklingError):
    """A pickle named a global outside the allow-list."""


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


def _allowed_globals() -> dict[tuple[str, str], Any]:
    reconstruct = _numpy_attr("_reconstruct", "numpy._core.multiarray", "numpy.core.multiarray")
    frombuffer = _numpy_attr("_frombuffer", "numpy._core.numeric", "numpy.core.numeric")
    return {
        ("numpy.core.multiarray", "_reconstruct"): reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): reconstruct,
        ("numpy.core.numeric", "_frombuffer"): frombuffer,
        ("numpy._core.numeric", "_frombuffer"): frombuffer,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
    }


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """`pickle.Unpickler` whose `find_class` resolves only the allow-list."""

    _allowed: dict[tuple[str, str], Any] | None = None

    def find_class(self, module: str, name: str) -> Any:
        if _NumpyOnlyUnpickler._allowed is None:
            _NumpyOnlyUnpickler._allowed = _allowed_globals()
        try:
            return _NumpyOnlyUnpickler._allowed[(module, name)]
        except KeyError:
            raise RefusedGlobalError(f"refused global {module}.{name}") from None

    def persistent_load(self, pid: Any) -> Any:
        raise RefusedGlobalError("refused persistent id")


def load_numpy_pickle(path: Path) -> Any:
    """Unpickle `path` with `encoding="bytes"` (Python 2 str -> bytes), numpy arrays only.

    Raises `RefusedGlobalError` for any other global, and what `pickle` raises for a
    damaged stream (`UnpicklingError`, `EOFError`, `ValueError`, ...).
    """
    with open(path, "rb") as handle:
        return _NumpyOnlyUnpickler(handle, encoding="bytes").load()
