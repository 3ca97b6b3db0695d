"""``ntk_cond``: NTK conditioning, ``-ln(lambda_max / lambda_min)``. Higher = better.

The empirical NTK of the summed logits (see ``_ntk``) on at most ``max_samples`` (<= 64)
samples of the batch, chosen with ``seed`` when the batch is larger; the model copy is in
eval mode. Better-conditioned kernels train faster (TE-NAS, Chen et al. 2021); on FGSM
inputs (``ntk_cond_adv``) it relates to robust accuracy (Wu et al. 2024). Units: nats.
``nan`` if the NTK is singular (e.g. more samples than parameters; smallest eigenvalue
at most ``n * 2.2e-16`` times the largest). Labels are not used.
"""

from __future__ import annotations

from torch import nn

from robnas.search.proxies._common import Masks, unpack
from robnas.search.proxies._ntk import cond_score, ntk_eigenvalues

__all__ = ["score"]


def score(
    model: nn.Module,
    batch: object = None,
    *,
    masks: Masks | None = None,
    seed: int = 0,
    max_samples: int = 32,
) -> float:
    """``-ln`` of the condition number of the (masked) model's NTK on ``batch``."""
    x, _ = unpack(batch, labels=False)
    return cond_score(ntk_eigenvalues(model, x, masks=masks, max_samples=max_samples, seed=seed))
