"""``ntk_min_eig``: ``ln`` of the smallest NTK eigenvalue. Higher = better.

The empirical NTK of the summed logits (see ``_ntk``) on at most ``max_samples`` (<= 64)
samples of the batch, chosen with ``seed`` when the batch is larger; the model copy is in
eval mode. The smallest eigenvalue bounds the convergence rate of gradient descent in the
NTK regime; Wu et al. 2024 relate it on adversarial inputs (``ntk_min_eig_adv``) to
robust accuracy. Units: ln of logit^2 per parameter^2. ``nan`` if the NTK is singular
(smallest eigenvalue at most ``n * 2.2e-16`` times the largest). Labels are not used.
"""

from __future__ import annotations

from torch import nn

from robnas.search.proxies._common import Masks, unpack
from robnas.search.proxies._ntk import min_eig_score, ntk_eigenvalues

__all__ = ["score"]


def score(
    model: nn.Module,
    batch: object = None,
    *,
    masks: Masks | None = None,
    seed: int = 0,
    max_samples: int = 32,
) -> float:
    """``ln`` of the smallest eigenvalue of the (masked) model's NTK on ``batch``."""
    x, _ = unpack(batch, labels=False)
    return min_eig_score(ntk_eigenvalues(model, x, masks=masks, max_samples=max_samples, seed=seed))
