"""Keys of a trial's flat config that steer the run but are not part of its design."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

__all__ = ["RUNTIME_KEYS", "scalarize"]

#: ``score_weights``: objective name -> weight; a trial reports ``score``, the weighted sum of
#: its metrics (see :func:`scalarize`), for single-metric schedulers and searchers.
#: ``score_scales``: objective name -> ``[low, high]``, the range of that metric over the search
#: space; the score weighs ``(value - low) / (high - low)``, so that weights compare objectives
#: of different units (accuracies in [0, 1], parameters in millions).
#: ``gpu_share``: the GPUs a trial reserves (``--gpus-per-trial``; 0.25 = a quarter of one GPU,
#: four trials per GPU); a trial with a fraction of a GPU caps its CUDA memory at that fraction.
RUNTIME_KEYS: tuple[str, ...] = ("score_weights", "score_scales", "gpu_share")


def scalarize(
    metrics: Mapping[str, float],
    weights: Mapping[str, float],
    scales: Mapping[str, Sequence[float]] | None = None,
) -> float:
    """``sum(weight * scaled(value))`` over ``weights``, where a metric with a range
    ``scales[name] = [low, high]`` (``high > low``) is scaled to ``(value - low) / (high - low)``
    and any other is taken as it is. A metric missing from ``metrics`` is a ValueError."""
    missing = sorted(set(weights) - set(metrics))
    if missing:
        raise ValueError(f"cannot score: the trial does not report {', '.join(missing)}")
    scales = scales or {}
    total = 0.0
    for name, weight in weights.items():
        value = float(metrics[name])
        if name in scales:
            low, high = (float(bound) for bound in scales[name])
            if math.isfinite(low) and math.isfinite(high) and high > low:
                value = (value - low) / (high - low)
        total += float(weight) * value
    return total
