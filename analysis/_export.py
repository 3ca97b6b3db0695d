"""Export a found network for use outside robnas, and rebuild it: ``load_model(path)``.

An export is one ``torch.save`` file of plain values and tensors, readable with
``torch.load(path, weights_only=True)``::

    {"format": "robnas-model/1", "trial_id": str, "epoch": int, "arch": NB201 string,
     "config": flat trial config (params.json), "state_dict": model weights,
     "masks": pruning keep-masks (bool tensors), "masks_sparsity": float, "weight_sparsity": float,
     "num_classes": int, "in_channels": int, "input_shape": [C, H, W] ([] if unknown),
     "reported": the metrics the trial reported for these weights, "versions": {...}}
"""

from __future__ import annotations

import io
import json
import pickle
import os
from pathlib import Path
from typing import Any

import torch

from robnas.analysis._files import atomic_write_bytes
from robnas.analysis._front import analyze_trials, numeric_columns, parse_objectives
from robnas.analysis._load import Experiment, load_experiment

EXPORT_FORMAT = "robnas-model/1"
CHECKPOINT_FILE = "trial.pt"
#: (C, H, W) of the data sets that are files; used when the data are not at hand at export time.
_INPUT_SHAPES = {"cifar10": [3, 32, 32], "cifar100": [3, 32, 32], "svhn": [3, 32, 32],
                 "mnist": [1, 28, 28], "fashion_mnist": [1, 28, 28]}


def select_trial(
    experiment: Experiment,
    *,
    trial_id: str | None = None,
    knee: bool = False,
    best: str | None = None,
    objectives: str | None = None,
    all_fidelities: bool = False,
) -> str:
    """The id of the trial named, the knee of the front, or the best trial on one objective.

    The knee and the best trial are taken over the trials eligible for the front (full length
    unless ``all_fidelities``; not failed, diverged or NaN). Exactly one of ``trial_id``,
    ``knee`` and ``best`` must be given.
    """
    if sum((trial_id is not None, bool(knee), best is not None)) != 1:
        raise ValueError("choose exactly one of trial, knee and best")
    trials = experiment.trials
    ids = trials["trial_id"].astype(str).tolist() if len(trials) else []
    if trial_id is not None:
        if str(trial_id) not in ids:
            shown = ", ".join(ids[:10]) + (", ..." if len(ids) > 10 else "")
            raise ValueError(f"no trial {trial_id!r} in {experiment.path}; trials: {shown or 'none'}")
        return str(trial_id)
    available = numeric_columns(trials) if len(trials) else []
    chosen = parse_objectives(best if best is not None else (objectives or experiment.objectives), available)
    if best is not None and len(chosen) != 1:
        raise ValueError(f"best takes one objective, got {best!r}")
    result = analyze_trials(trials, chosen, max_epochs=experiment.max_epochs, all_fidelities=all_fidelities)
    if best is not None:
        found = result.summary["best"][chosen[0].name]
        if found is None:
            raise ValueError(f"no trial of {experiment.path} is eligible for the front; name one with --trial")
        return found["trial_id"]
    if result.summary["knee"] is None:
        raise ValueError(f"no trial of {experiment.path} is eligible for the front; name one with --trial")
    return result.summary["knee"]["trial_id"]


def _plain(value: Any) -> Any:
    """``value`` as a str, int, float, list or dict (None for anything else)."""
    value = value.item() if hasattr(value, "item") and not isinstance(value, torch.Tensor) else value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (str, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        return [v for v in map(_plain, value) if v is not None]
    if isinstance(value, dict):
        return {str(k): v for k, v in ((k, _plain(v)) for k, v in value.items()) if v is not None}
    return None


def _input_shape(config, in_channels: int) -> list[int]:
    from robnas.trainables._data import load_dataset

    name = config.training.dataset
    try:
        return list(load_dataset(name, config.training.data_dir).input_shape)
    except (ValueError, OSError):
        return list(_INPUT_SHAPES.get(name, []))


def export_model(
    path: str | os.PathLike,
    out: str | os.PathLike,
    *,
    trial_id: str | None = None,
    knee: bool = False,
    best: str | None = None,
    objectives: str | None = None,
    all_fidelities: bool = False,
) -> tuple[Path, dict[str, Any]]:
    """Write one trial of the search in ``path`` (its last checkpoint) to ``out``.

    ``out`` may be an existing directory: the file is then ``out/trial_<id>.pt``. Returns the
    file written and its content without the tensors.
    """
    from robnas import __version__
    from robnas.spaces._compose import decode
    from robnas.trainables._pruning import MaskSet, measured_sparsity
    from robnas.trainables._tune import RUNTIME_KEYS

    experiment = load_experiment(path)
    chosen = select_trial(experiment, trial_id=trial_id, knee=knee, best=best,
                          objectives=objectives, all_fidelities=all_fidelities)
    row = experiment.trials[experiment.trials["trial_id"].astype(str) == chosen].iloc[0]
    if not row["checkpoint"]:
        raise ValueError(f"trial {chosen} of {experiment.path} has no checkpoint")
    file = experiment.path / row["trial_dir"] / row["checkpoint"] / CHECKPOINT_FILE
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
        weights, epoch = state["model"], int(state["epoch"])
    except (OSError, RuntimeError, pickle.UnpicklingError, KeyError, TypeError, ValueError) as error:
        message = " ".join(str(error).split())[:200]
        raise ValueError(f"cannot read the checkpoint {file}: {message}") from None
    config = _read_params(experiment, row)
    trial_config = decode(config, ignore=RUNTIME_KEYS)
    num_classes, in_channels = int(weights["classifier.weight"].shape[0]), int(weights["stem.0.weight"].shape[1])
    model = _build(trial_config, in_channels, num_classes)
    model.load_state_dict(weights)
    masks = state.get("masks") or {}
    history = experiment.results[experiment.results["trial_id"].astype(str) == chosen]
    reported = history[history["epoch"] == epoch]
    data = {
        "format": EXPORT_FORMAT,
        "trial_id": chosen,
        "epoch": epoch,
        "arch": trial_config.genotype.to_str(),
        "config": _plain(config),
        "state_dict": weights,
        "masks": dict(masks),
        "masks_sparsity": float(MaskSet(masks).sparsity) if masks else 0.0,
        "weight_sparsity": float(measured_sparsity(model)),
        "num_classes": num_classes,
        "in_channels": in_channels,
        "input_shape": _input_shape(trial_config, in_channels),
        "reported": _plain(reported.iloc[-1].to_dict()) if len(reported) else {},
        "versions": {"robnas": __version__, "torch": str(torch.__version__)},
    }
    out = Path(out).expanduser()
    if out.is_dir():
        out = out / f"trial_{chosen}.pt"
    buffer = io.BytesIO()
    torch.save(data, buffer)
    atomic_write_bytes(out, buffer.getvalue())
    return out, {k: v for k, v in data.items() if k not in ("state_dict", "masks")}


def _read_params(experiment: Experiment, row) -> dict[str, Any]:
    """The trial's flat config, as Tune wrote it to ``params.json``."""
    file = experiment.path / row["trial_dir"] / "params.json"
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = None
    if not isinstance(config, dict):
        raise ValueError(f"trial {row['trial_id']} of {experiment.path} has no readable params.json")
    return config


def _build(trial_config, in_channels: int, num_classes: int):
    from robnas.trainables._network import build_network

    return build_network(trial_config.genotype, width=trial_config.macro.width,
                         cells_per_stage=trial_config.macro.cells_per_stage,
                         in_channels=in_channels, num_classes=num_classes)


def load_model(path: str | os.PathLike, *, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild an exported network: ``(model in eval mode, info)``.

    ``info`` is the export's content without ``state_dict`` plus ``trial_config``, the decoded
    ``TrialConfig`` (its ``evaluation`` is the attack the trial was evaluated with). The file is
    read with ``weights_only=True``: loading runs no code from it.
    """
    from robnas.spaces._compose import decode
    from robnas.trainables._tune import RUNTIME_KEYS

    try:
        data = torch.load(Path(path), map_location=device, weights_only=True)
    except (OSError, RuntimeError, pickle.UnpicklingError) as error:
        raise ValueError(f"cannot read {path}: {' '.join(str(error).split())[:200]}") from None
    if not isinstance(data, dict) or data.get("format") != EXPORT_FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"{path} is not a robnas model export (format {found!r}, expected {EXPORT_FORMAT!r})")
    trial_config = decode(data["config"], ignore=RUNTIME_KEYS)
    model = _build(trial_config, int(data["in_channels"]), int(data["num_classes"])).to(device)
    model.load_state_dict(data["state_dict"])
    model.eval()
    info = {k: v for k, v in data.items() if k != "state_dict"}
    info["trial_config"] = trial_config
    return model, info
