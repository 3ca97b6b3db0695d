"""A trial's network, rebuilt from its flat config and its newest good checkpoint.

The weights come from the newest ``checkpoint_*/trial.pt`` that reads, matches its SHA-256 and
fits the trial's network; its pruning masks are applied as training applies them after every
optimiser step (the saved weights are already zero where a mask is, so this changes nothing in
a checkpoint robnas wrote). torch is imported only when a model is loaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robnas.spaces._runtime import RUNTIME_KEYS
from robnas.trainables._layout import (
    SEARCH_SETTINGS_FILE,
    CorruptCheckpointError,
    checkpoint_files,
    first_good,
    read_checkpoint,
    read_params,
)

if TYPE_CHECKING:
    import torch

    from robnas.spaces._compose import TrialConfig


@dataclass(frozen=True, eq=False)
class TrialModel:
    """A trial's network in eval mode on the CPU, and where it came from.

    ``config``: the flat config (``params.json``); ``checkpoint``: the checkpoint directory's
    name; ``epoch``: the epoch it was saved after; ``masks``: keep-masks by parameter name (bool
    tensors, ``{}`` if none); ``notes``: one line per newer checkpoint skipped as unreadable.
    """

    trial_id: str
    model: torch.nn.Module
    config: dict[str, Any]
    trial_config: TrialConfig
    checkpoint: str
    epoch: int
    masks: dict[str, torch.Tensor]
    notes: list[str]

    @property
    def num_classes(self) -> int:
        return int(self.model.num_classes)

    @property
    def in_channels(self) -> int:
        return int(self.model.in_channels)


def trial_config_of(directory: Path) -> tuple[dict[str, Any], TrialConfig]:
    """The flat config in ``directory/params.json`` and the ``TrialConfig`` the trial ran with:
    the keys the config lacks come from its search's recorded ``resolved_trial`` (the
    ``robnas.json`` beside ``directory``) as its trainable filled them, else from today's defaults."""
    from robnas.spaces._compose import decode
    from robnas.spaces._resolve import fill_defaults

    config = read_params(directory)
    if config is None:
        raise ValueError(f"{directory} has no readable params.json")
    recorded = _recorded_trial(Path(directory).parent)
    filled = config if recorded is None else fill_defaults(config, recorded)
    return config, decode(filled, ignore=RUNTIME_KEYS)


def _recorded_trial(search_dir: Path) -> dict[str, Any] | None:
    """The completed ``resolved_trial`` of the search in ``search_dir``; None if there is none."""
    from robnas.spaces._resolve import complete_record

    try:
        data = json.loads((search_dir / SEARCH_SETTINGS_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    resolved = data.get("resolved_trial") if isinstance(data, dict) else None
    return complete_record(resolved) if isinstance(resolved, dict) else None


def load_trial_model(directory: str | Path, trial_id: str) -> TrialModel:
    """The network of the trial in ``directory`` at its newest good checkpoint.

    Raises:
        ValueError: no ``params.json``, no checkpoint, or none that reads and fits (the
            message names each one skipped).
    """
    directory = Path(directory)
    config, trial_config = trial_config_of(directory)
    files = checkpoint_files(directory)
    if not files:
        raise ValueError(f"trial {trial_id} in {directory.parent} has no checkpoint")
    file, loaded, skipped = first_good(files, lambda path: _load(path, trial_config))
    notes = [f"skipped {error.path.parent.name}: it {_one_line(error.reason)}" for error in skipped]
    if file is None:
        raise ValueError(f"no readable checkpoint of trial {trial_id} in {directory} ({'; '.join(notes)})")
    model, epoch, masks = loaded
    return TrialModel(trial_id, model, config, trial_config, file.parent.name, epoch, masks, notes)


def build_model(trial_config: TrialConfig, in_channels: int, num_classes: int) -> torch.nn.Module:
    """The untrained network of ``trial_config`` for images of ``in_channels`` channels (its
    random initial weights do not draw from the caller's global RNG)."""
    import torch

    from robnas.trainables._families import build_model as build_family_model

    with torch.random.fork_rng(devices=[]):
        return build_family_model(trial_config.network, in_channels=in_channels, num_classes=num_classes)


def apply_masks(model: torch.nn.Module, masks: dict[str, torch.Tensor]) -> None:
    """Zero the weights ``masks`` prune, as training does after every step (no-op for ``{}``)."""
    from robnas.trainables._pruning import MaskSet

    if masks:
        MaskSet(masks).apply(model)


def _load(file: Path, trial_config: TrialConfig) -> tuple[torch.nn.Module, int, dict[str, torch.Tensor]]:
    """``(model in eval mode, epoch, masks)`` of one checkpoint; CorruptCheckpointError if it
    lacks what a model needs or does not fit the trial's network."""
    state = read_checkpoint(file, map_location="cpu")
    for key in ("model", "epoch"):
        if key not in state:
            raise CorruptCheckpointError(file, f"has no {key!r}")
    weights = state["model"]
    for key in ("classifier.weight", "stem.0.weight"):
        if not isinstance(weights, dict) or key not in weights:
            raise CorruptCheckpointError(file, f"has a model without {key!r}")
    masks = dict(state.get("masks") or {})
    try:
        num_classes, in_channels = weights["classifier.weight"].shape[0], weights["stem.0.weight"].shape[1]
        model = build_model(trial_config, int(in_channels), int(num_classes))
        model.load_state_dict(weights)
        apply_masks(model, masks)
        epoch = int(state["epoch"])
    except (RuntimeError, ValueError, TypeError, AttributeError, IndexError) as error:
        raise CorruptCheckpointError(file, f"does not fit the trial's network ({_one_line(str(error))})") from None
    return model.eval(), epoch, masks


def _one_line(text: str) -> str:
    return " ".join(text.split())[:200]
