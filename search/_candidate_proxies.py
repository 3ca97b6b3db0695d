"""Zero-cost proxies of a candidate configuration, on the real network built from it.

``CandidateScorer(config)`` decodes a flat trial config, builds its network with the same
initialisation as the trial would (the CPU RNG seeded with ``training.seed`` in a forked RNG, as
``TrialRunner``), prunes it once to the config's target sparsity with ``MaskSet`` when the
schedule is not ``none`` (a gradual schedule is scored at its final sparsity; ``set`` and
``rigl`` at the trial's own random sparse start), and scores it
with the chosen proxies on a fixed batch of the config's data set. Nobody else sees that
network, so the proxies score it in place, without deep copies (same scores). ``synflow`` is
reported in NASLib's log form (``sign * ln|score|``). Scores are cached by the exact config:
isomorphic cells build networks with their weights drawn in another order (and dead edges may
hold parameters), so each is scored as itself and a score never depends on what was scored
before. Scoring runs torch on one thread (restored afterwards).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from robnas.search._encoding import decode_trial
from robnas.search.proxies import _synflow
from robnas.search.proxies._registry import ADVERSARIAL, PROXIES, compute_proxies
from robnas.spaces._attack import budget_fraction
from robnas.spaces._compose import TrialConfig
from robnas.spaces._genotype import Genotype
from robnas.trainables._data import load_dataset
from robnas.trainables._families import build_model
from robnas.trainables._dynamic_sparsity import SEED_OFFSET, random_start
from robnas.trainables._network import build_network
from robnas.trainables._pruning import MaskSet

__all__ = [
    "DEFAULT_PROXIES",
    "CandidateScorer",
    "check_proxy_names",
    "dataset_batch",
    "network_of",
    "score_network",
    "single_thread",
]

#: Proxies scored for every candidate by default (benchmarks/RESULTS.md): ``meco`` alone ranks
#: robust accuracy on NAS-RobBench-201 better than any vote of the other proxies, and with
#: ``params`` it feeds a surrogate better than ``params, synflow, jacob_cov`` did, at half their
#: cost (build and pruning included, under 2% of the cheapest digits training epoch). Adding
#: ``jacob_cov`` (a backward pass) gains the surrogate 0.005 Kendall tau at twice the cost.
DEFAULT_PROXIES: tuple[str, ...] = ("params", "meco")


def check_proxy_names(names: Sequence[str]) -> tuple[str, ...]:
    """``names`` as a tuple of known proxy names (a comma-separated string is split)."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    names = tuple(dict.fromkeys(names))
    unknown = [n for n in names if n not in PROXIES]
    if not names or unknown:
        raise ValueError(f"unknown proxies {unknown or list(names)}; choose from {', '.join(PROXIES)}")
    return names


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run a block with one torch thread; the previous thread count comes back afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def dataset_batch(
    dataset: str = "digits", data_dir: str | None = None, *, size: int = 32, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``size`` training images ``(size, C, H, W)`` and labels ``(size,)`` of ``dataset``,
    drawn without replacement by a generator seeded with ``seed``."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 2:
        raise ValueError(f"proxy batch size must be an integer >= 2, got {size!r}")
    data = load_dataset(dataset, data_dir)
    generator = torch.Generator().manual_seed(seed)
    index = torch.randperm(len(data.x_train), generator=generator)[: min(size, len(data.x_train))]
    return data.x_train[index].clone(), data.y_train[index].clone()


def shaped_batch(
    batch: tuple[torch.Tensor, torch.Tensor], *, input_size: int, channels: int, num_classes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch`` as a stand-in batch of another network's shape: images ``(n, C, H, W)`` resized
    (bilinear) to ``input_size`` x ``input_size``, grey images copied to ``channels`` channels
    (colour images averaged to grey first), labels taken modulo ``num_classes``."""
    import torch.nn.functional as F

    x, y = batch
    if x.shape[-1] != input_size or x.shape[-2] != input_size:
        x = F.interpolate(x, size=(input_size, input_size), mode="bilinear", align_corners=False)
    if x.shape[1] != channels:
        grey = x if x.shape[1] == 1 else x.mean(dim=1, keepdim=True)
        x = grey.repeat(1, channels, 1, 1)
    return x.clamp(0, 1).contiguous(), y % num_classes


def score_cell(
    genotype: Genotype,
    batch: tuple[torch.Tensor, torch.Tensor],
    *,
    width: int,
    cells_per_stage: int,
    num_classes: int,
    names: Sequence[str],
    eps: float | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """``{proxy: score}`` of the NB201 network of ``genotype`` initialised with ``seed``, on
    ``batch`` (its channels set the network's); ``eps`` a fraction of 1 (``*_adv`` proxies)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_network(
            genotype, width=width, cells_per_stage=cells_per_stage,
            in_channels=batch[0].shape[1], num_classes=num_classes,
        )
    return score_network(model, batch, names=names, eps=eps, seed=seed, copy=False)


def network_of(
    trial: TrialConfig, *, in_channels: int, num_classes: int
) -> tuple[nn.Module, dict[str, torch.Tensor] | None]:
    """The trial's freshly initialised network and its pruning masks (``None`` when dense)."""
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(trial.training.seed)
        model = build_model(trial.network, in_channels=in_channels, num_classes=num_classes)
    if not trial.sparsity.active:
        return model, None
    masks = MaskSet.for_model(model, trial.sparsity.granularity)
    if trial.sparsity.dynamic:
        generator = torch.Generator().manual_seed(trial.training.seed + SEED_OFFSET)
        random_start(model, masks, trial.sparsity.target, generator)
    else:
        masks.prune_to(model, trial.sparsity.target)
    return model, masks.state_dict()


def score_network(
    model: nn.Module,
    batch: tuple[torch.Tensor, torch.Tensor],
    *,
    names: Sequence[str],
    masks: Mapping[str, torch.Tensor] | None = None,
    eps: float | None = None,
    seed: int = 0,
    copy: bool = True,
) -> dict[str, float]:
    """``{name: score}`` in the order of ``names``; ``synflow`` in log form; one torch thread.

    ``eps`` (a fraction of 1) is needed only by the ``*_adv`` proxies. ``copy=False`` scores
    ``model`` itself, without deep copies, and leaves it changed (``compute_proxies``).
    """
    names = check_proxy_names(names)
    needs_eps = any(n in ADVERSARIAL for n in names)
    with single_thread():
        scores = compute_proxies(
            model, batch, names=names, masks=masks, eps=eps if needs_eps else None, seed=seed, copy=copy
        )
    if "synflow" in scores:
        scores["synflow"] = _synflow.log_form(scores["synflow"])
    return scores


def attack_eps(trial: TrialConfig) -> float:
    """The budget of the adversarial proxies, a fraction of 1: the training attack's eps, or
    the evaluation eps when the trial trains without an attack."""
    eps = trial.attack.eps if trial.attack.method != "none" and trial.attack.eps > 0 else trial.evaluation.eps
    return budget_fraction(eps)


class CandidateScorer:
    """Proxies of flat trial configs, cached by the exact config.

    Args:
        names: proxies to compute (default ``DEFAULT_PROXIES``).
        batch_size: images in the fixed batch drawn from each config's data set.
        seed: seed of the batch draw and of the proxies' own random choices.
    """

    def __init__(
        self, *, names: Sequence[str] = DEFAULT_PROXIES, batch_size: int = 32, seed: int = 0
    ) -> None:
        self.names = check_proxy_names(names)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2:
            raise ValueError(f"batch_size must be an integer >= 2, got {batch_size!r}")
        self.batch_size = batch_size
        self.seed = seed
        self.cache: dict[str, dict[str, float]] = {}
        self._batches: dict[tuple[str, str | None], tuple[torch.Tensor, torch.Tensor, int]] = {}

    def __call__(self, config: Mapping[str, Any]) -> dict[str, float]:
        """The proxies of ``config``; all ``nan`` when it cannot be decoded or built."""
        key = repr(sorted(config.items()))
        if key not in self.cache:
            self.cache[key] = self._score(config)
        return dict(self.cache[key])

    def _score(self, config: Mapping[str, Any]) -> dict[str, float]:
        try:
            trial = decode_trial(config)
            x, y, num_classes = self._batch(trial.training.dataset, trial.training.data_dir)
            model, masks = network_of(trial, in_channels=x.shape[1], num_classes=num_classes)
            return score_network(
                model, (x, y), names=self.names, masks=masks, eps=attack_eps(trial), seed=self.seed, copy=False
            )
        except ValueError:  # an invalid config fails as a trial too; it only loses its screen
            return dict.fromkeys(self.names, math.nan)

    def _batch(self, dataset: str, data_dir: str | None) -> tuple[torch.Tensor, torch.Tensor, int]:
        if (dataset, data_dir) not in self._batches:
            x, y = dataset_batch(dataset, data_dir, size=self.batch_size, seed=self.seed)
            num_classes = load_dataset(dataset, data_dir).num_classes
            self._batches[(dataset, data_dir)] = (x, y, num_classes)
        return self._batches[(dataset, data_dir)]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_batches"] = {}  # images are reloaded on demand, never pickled
        return state
