"""Keys of a trial's flat config that steer the run but are not part of its design."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["RUNTIME_KEYS", "scalarize"]

#: ``score_weights``: objective name -> weight; a trial reports ``score``, the weighted sum of
#: its metrics (see :func:`scalarize`), for single-metric schedulers and searchers.
#: ``gpu_share``: the GPUs a trial reserves (``--gpus-per-trial``; 0.25 = a quarter of one GPU,
#: four trials per GPU); a trial with a fraction of a GPU caps its CUDA memory at that fraction.
RUNTIME_KEYS: tuple[str, ...] = ("score_weights", "gpu_share")


def scalarize(metrics: Mapping[str, float], weights: Mapping[str, float]) -> float:
    """Weighted sum of reported metrics; a metric missing from ``metrics`` is a ValueError."""
    missing = sorted(set(weights) - set(metrics))
    if missing:
        raise ValueError(f"cannot score: the trial does not report {', '.join(missing)}")
    return float(sum(float(w) * float(metrics[name]) for name, w in weights.items()))
