"""All zero-cost proxies by name, and ``compute_proxies`` to score a model with many at once.

Every proxy is ``score(model, batch=None, *, masks=None, ...) -> float``, higher = better,
``nan`` when undefined (never ``inf``). Data-independent: ``params``, ``macs``, ``synflow``
(they need only the input shape). Data-dependent on a batch ``(x, y)``: ``snip``, ``grasp``,
``fisher``, ``grad_norm``, ``jacob_cov``, ``nwot``, ``meco``, ``ntk_cond``, ``ntk_min_eig``. Each
data-dependent proxy also has an ``_adv`` variant scored on one FGSM step from the batch,
which takes ``eps`` (a fraction of the [0, 1] image range, e.g. 8/255).

Each proxy works on its own deep copy of the model, in the mode it needs: train mode
(BatchNorm on batch statistics, as NASLib on a fresh network) for ``snip``, ``grasp``,
``fisher``, ``grad_norm``, ``jacob_cov``, ``nwot``, ``meco`` and the FGSM step; eval mode for the
NTK (per-sample outputs) and ``macs``; BatchNorm bypassed, float64, for ``synflow``.
``compute_proxies(..., copy=False)`` skips the copies for a caller that owns a throwaway
model: the proxies then run in an order where none reads what an earlier one changed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import torch
from torch import nn

from robnas.search.proxies import (
    _fisher,
    _grad_norm,
    _grasp,
    _jacob_cov,
    _macs,
    _meco,
    _ntk,
    _ntk_cond,
    _ntk_min_eig,
    _nwot,
    _params,
    _snip,
    _synflow,
)
from robnas.search.proxies._adversarial import adversarial
from robnas.search.proxies._common import Masks, check_masks, in_place, input_shape_of, unpack
from robnas.search.proxies._fgsm import check_eps, fgsm_batch

__all__ = ["PROXIES", "DATA_FREE", "DATA_DEPENDENT", "ADVERSARIAL", "compute_proxies"]

DATA_FREE: tuple[str, ...] = ("params", "macs", "synflow")
_CLEAN: dict[str, Callable[..., float]] = {
    "snip": _snip.score,
    "grasp": _grasp.score,
    "fisher": _fisher.score,
    "grad_norm": _grad_norm.score,
    "jacob_cov": _jacob_cov.score,
    "nwot": _nwot.score,
    "meco": _meco.score,
    "ntk_cond": _ntk_cond.score,
    "ntk_min_eig": _ntk_min_eig.score,
}
DATA_DEPENDENT: tuple[str, ...] = tuple(_CLEAN)
ADVERSARIAL: tuple[str, ...] = tuple(f"{name}_adv" for name in _CLEAN)

#: Proxy name -> ``score`` function. ``*_adv`` functions need the keyword ``eps``.
PROXIES: dict[str, Callable[..., float]] = {
    "params": _params.score,
    "macs": _macs.score,
    "synflow": _synflow.score,
    **_CLEAN,
    **{f"{name}_adv": adversarial(fn, f"{name}_adv") for name, fn in _CLEAN.items()},
}

_NTK = {"ntk_cond": _ntk.cond_score, "ntk_min_eig": _ntk.min_eig_score}


def _stage(name: str) -> int:
    """When ``name`` runs on a shared model: 0 reads only weights and masks, 1 (the NTK)
    also reads BatchNorm statistics, 2 (train mode) changes them, 3 (synflow) changes weights.
    The FGSM batch is made before all of them, on a copy."""
    base = name.removesuffix("_adv")
    if base == "synflow":
        return 3
    if base in DATA_FREE:
        return 0
    return 1 if base in _NTK else 2


def _selected(names: Sequence[str] | None, batch: object, eps: float | None) -> list[str]:
    if names is None:
        chosen = list(DATA_FREE)
        if batch is not None:
            chosen += DATA_DEPENDENT
            if eps is not None:
                chosen += ADVERSARIAL
        return chosen
    if isinstance(names, str):
        names = [names]
    chosen = list(dict.fromkeys(names))
    unknown = [name for name in chosen if name not in PROXIES]
    if unknown:
        raise ValueError(f"unknown proxies {unknown}; choose from {', '.join(PROXIES)}")
    needs_batch = [name for name in chosen if name not in DATA_FREE]
    if needs_batch and batch is None:
        raise ValueError(f"proxies {needs_batch} need a batch (x, y)")
    needs_eps = [name for name in chosen if name in ADVERSARIAL]
    if needs_eps and eps is None:
        raise ValueError(f"proxies {needs_eps} need eps (a fraction of 1, e.g. 8/255)")
    return chosen


def compute_proxies(
    model: nn.Module,
    batch: tuple[torch.Tensor, torch.Tensor] | None = None,
    *,
    names: Sequence[str] | None = None,
    eps: float | None = None,
    seed: int = 0,
    masks: Masks | None = None,
    input_shape: Sequence[int] | None = None,
    ntk_samples: int = 32,
    copy: bool = True,
) -> dict[str, float]:
    """Score ``model`` with the named proxies (default: all that the arguments allow).

    ``names=None`` means the data-free proxies, plus the data-dependent ones if ``batch`` is
    given, plus the adversarial ones if ``eps`` is given too. ``eps`` is a fraction of 1;
    the FGSM batch is made once and shared, and each NTK spectrum is computed once for
    ``ntk_cond`` and ``ntk_min_eig``. ``seed`` drives every random choice (the NTK subset of
    ``ntk_samples`` <= 64 samples; dropout, if any). ``input_shape`` ``(C, H, W)`` is needed
    only without a batch. The model is left unchanged, unless ``copy=False``: then the
    proxies work on ``model`` itself, without deep copies, and leave it changed (same scores).
    Returns ``{name: score}`` in the order of ``names`` (registry order by default);
    undefined scores are ``nan``.
    """
    chosen = _selected(names, batch, eps)
    check_masks(model, masks)
    if batch is not None:
        unpack(batch)
    if eps is not None:
        eps = check_eps(eps)
    shape = input_shape_of(batch, input_shape) if any(n in ("macs", "synflow") for n in chosen) else None
    adv = None
    if any(name in ADVERSARIAL for name in chosen):
        adv = fgsm_batch(model, batch, eps=eps, masks=masks, seed=seed)
    spectra: dict[bool, torch.Tensor] = {}
    scores: dict[str, float] = {}
    with contextlib.nullcontext() if copy else in_place(model):
        for name in sorted(chosen, key=_stage):
            is_adv = name in ADVERSARIAL
            base = name.removesuffix("_adv") if is_adv else name
            data = adv if is_adv else batch
            if base == "params":
                scores[name] = _params.score(model, masks=masks)
            elif base in DATA_FREE:
                scores[name] = PROXIES[base](model, input_shape=shape, masks=masks)
            elif base in _NTK:
                if is_adv not in spectra:
                    spectra[is_adv] = _ntk.ntk_eigenvalues(
                        model, data[0], masks=masks, max_samples=ntk_samples, seed=seed
                    )
                scores[name] = _NTK[base](spectra[is_adv])
            else:
                scores[name] = _CLEAN[base](model, data, masks=masks, seed=seed)
    return {name: scores[name] for name in chosen}
