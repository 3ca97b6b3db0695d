"""``macs``: dense multiply-accumulates per image of Conv2d and Linear layers. Higher = better.

The sign follows NASLib's ``flops`` proxy (compute correlates positively with accuracy on
NB201). Units: MACs for one input (a count, not millions). The count is dense, so pruning
``masks`` do not change it; they are accepted for the common proxy signature only. The
input shape comes from ``input_shape=(C, H, W)`` or else from the batch ``(x, y)``.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from robnas.search.proxies._common import Masks, input_shape_of
from robnas.trainables._counting import count_macs

__all__ = ["score"]


def score(
    model: nn.Module,
    batch: object = None,
    *,
    input_shape: Sequence[int] | None = None,
    masks: Masks | None = None,
) -> float:
    """Dense MACs per image; runs one no-grad eval-mode forward, modes restored."""
    del masks  # dense count: independent of pruning
    return float(count_macs(model, input_shape_of(batch, input_shape)))
