"""Robustness-aware variants: a data-dependent proxy scored on FGSM inputs.

``adversarial(score_fn, name)`` returns ``score(model, batch, *, eps, masks=None, seed=0,
**options)`` that builds ``(x_adv, y) = fgsm_batch(model, batch, eps=eps, ...)`` and returns
``score_fn(model, (x_adv, y), masks=..., seed=..., **options)``. Sign and units are those of
the underlying proxy (higher = better).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from robnas.search.proxies._common import Masks
from robnas.search.proxies._fgsm import fgsm_batch

__all__ = ["adversarial"]


def adversarial(score_fn: Callable[..., float], name: str) -> Callable[..., float]:
    """The proxy ``score_fn`` evaluated on one-step FGSM inputs at ``eps`` (fraction of 1)."""

    def score(
        model: nn.Module,
        batch: object = None,
        *,
        eps: float,
        masks: Masks | None = None,
        seed: int = 0,
        **options: object,
    ) -> float:
        adv = fgsm_batch(model, batch, eps=eps, masks=masks, seed=seed)
        return score_fn(model, adv, masks=masks, seed=seed, **options)

    score.__name__ = score.__qualname__ = name
    score.__doc__ = f"``{name}``: {score_fn.__module__}.score on FGSM inputs at ``eps``. Higher = better."
    return score
