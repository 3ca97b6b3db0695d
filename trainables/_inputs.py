"""What a robnas network takes as input, and how each loader brought raw pixels there.

Networks built here (``NB201Network``) have no normalisation layer: they take float32 images
``(N, C, H, W)``, H == W, with values in [0, 1], exactly as ``load_dataset`` returns them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from robnas.trainables._formats import DIGITS_SCALE

__all__ = ["NORMALIZATION", "VALUE_RANGE", "input_spec", "loader_scaling"]

#: Pixel values the networks take (and every loader returns).
VALUE_RANGE = (0.0, 1.0)
NORMALIZATION = "none: the network takes [0, 1] images as they are (no mean/std subtraction)"

_BYTES = "uint8 pixels (0..255) divided by 255"
#: Data set -> how its loader mapped raw values to [0, 1] (see ``_formats``' readers).
_SCALING = {
    "digits": f"pixel values divided by {DIGITS_SCALE:g} (scikit-learn's 8x8 digits are integers 0..16)",
    "mnist": _BYTES,
    "fashion_mnist": _BYTES,
    "cifar10": _BYTES,
    "cifar100": _BYTES,
    "svhn": _BYTES,
    "npz": f"{_BYTES}; float arrays taken as stored (they must already lie in [0, 1])",
}


def loader_scaling(dataset: str) -> str:
    """How the loader of ``dataset`` scaled raw values to [0, 1], one sentence ("" if unknown)."""
    return _SCALING.get(dataset, "")


def input_spec(dataset: str, shape: Sequence[int]) -> dict[str, Any]:
    """What to feed a network trained on ``dataset`` with images of ``shape`` ``(C, H, W)``:
    ``shape``, ``channels``, ``height``, ``width`` (pixels; 0 if unknown), ``dtype``, ``layout``,
    ``range``, ``scaling`` and ``normalization``."""
    shape = [int(v) for v in shape]
    channels, height, width = shape if len(shape) == 3 else (0, 0, 0)
    return {
        "shape": shape, "channels": channels, "height": height, "width": width,
        "dtype": "float32", "layout": "NCHW", "range": list(VALUE_RANGE),
        "scaling": loader_scaling(dataset), "normalization": NORMALIZATION,
    }
