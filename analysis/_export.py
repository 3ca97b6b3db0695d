"""Export a found network for use outside robnas, and rebuild it: ``load_model(path)``.

An export is one ``torch.save`` file of plain values and tensors, readable with
``torch.load(path, weights_only=True)``::

    {"format": "robnas-model/1", "trial_id": str, "epoch": int, "arch": the network's one-line
     description (an NB201 string; for resnet, ``ResNetArch.to_str``),
     "config": flat trial config (params.json), "state_dict": model weights,
     "masks": pruning keep-masks (bool tensors), "masks_sparsity": float, "weight_sparsity": float,
     "num_classes": int, "in_channels": int, "input_shape": [C, H, W] ([] if unknown),
     "input": what to feed the network (see robnas.trainables._inputs.input_spec): shape,
              channels, height, width, dtype, layout, range [0, 1], the loader's scaling
              (digits: divided by 16), normalization (none),
     "final": the trial's rows of final.csv for these weights (test split; [] if not evaluated),
     "checkpoint": directory name, "notes": [newer checkpoints skipped as unreadable],
     "reported": the result the trial reported for these weights, "versions": {...}}

The weights come from the trial's last checkpoint that reads, matches its SHA-256 and fits the
trial's network (``robnas.analysis._trial_model``), pruning masks applied.

torch is imported only when a model is exported or loaded.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robnas.analysis._final import read_final
from robnas.analysis._front import analyze_trials, numeric_columns, objectives_of
from robnas.analysis._load import SETTINGS_FILE, Experiment, load_experiment
from robnas.analysis._trial_model import apply_masks, build_model, load_trial_model
from robnas.spaces._family import family_of
from robnas.spaces._runtime import RUNTIME_KEYS
from robnas.trainables._inputs import input_spec
from robnas.trainables._layout import atomic_write_bytes, read_results

if TYPE_CHECKING:
    import torch

EXPORT_FORMAT = "robnas-model/1"
#: (C, H, W) of the data sets read from files, for exports made where the data are not at hand.
_INPUT_SHAPES = {"cifar10": [3, 32, 32], "cifar100": [3, 32, 32], "svhn": [3, 32, 32],
                 "mnist": [1, 28, 28], "fashion_mnist": [1, 28, 28]}
_LOAD_ERRORS = (OSError, RuntimeError, pickle.UnpicklingError, EOFError)


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

    Exactly one of ``trial_id``, ``knee`` and ``best`` (an objective, ``name`` or
    ``name:min``) must be given. The knee (of the front over ``objectives``, default: the
    search's) and the best trial are chosen among the trials eligible for the front.
    """
    if sum((trial_id is not None, bool(knee), best is not None)) != 1:
        raise ValueError("choose exactly one of trial, knee and best")
    ids = experiment.trials["trial_id"].astype(str).tolist()
    if trial_id is not None:
        if str(trial_id) not in ids:
            shown = ", ".join(ids[:10]) + (", ..." if len(ids) > 10 else "")
            raise ValueError(f"no trial {trial_id!r} in {experiment.path}; trials: {shown or 'none'}")
        return str(trial_id)
    spec = best if best is not None else (objectives or experiment.objectives)
    chosen = objectives_of(spec, numeric_columns(experiment.trials))
    if best is not None and len(chosen) != 1:
        raise ValueError(f"best takes one objective, got {best!r}")
    result = analyze_trials(experiment.trials, chosen, max_epochs=experiment.max_epochs,
                            all_fidelities=all_fidelities)
    found = result.summary["best"][chosen[0].name] if best is not None else result.summary["knee"]
    if found is None:
        raise ValueError(f"no trial of {experiment.path} is eligible for the front; name one with --trial")
    return found["trial_id"]


def export_model(
    path: str | os.PathLike,
    out: str | os.PathLike,
    *,
    trial_id: str | None = None,
    knee: bool = False,
    best: str | None = None,
    objectives: str | None = None,
    all_fidelities: bool = False,
    force: bool = False,
) -> tuple[Path, dict[str, Any]]:
    """Write a trial of the search in ``path`` (its last checkpoint) to ``out``.

    The trial is chosen by :func:`select_trial`. ``out`` may be an existing directory: the
    file is then ``out/trial_<id>.pt``. An existing file is replaced only with ``force``;
    anything but a regular file, or a path inside a search's directory, never. Returns the
    file written and its content without the tensors.
    """
    import torch

    from robnas import __version__
    from robnas.trainables._pruning import MaskSet, measured_sparsity

    experiment = load_experiment(path, objectives=best if best is not None else objectives)
    chosen = select_trial(experiment, trial_id=trial_id, knee=knee, best=best,
                          objectives=objectives, all_fidelities=all_fidelities)
    out = Path(out).expanduser()
    if out.is_dir():
        out = out / f"trial_{chosen}.pt"
    _check_out(out, force=force)
    row = experiment.trials.set_index(experiment.trials["trial_id"].astype(str)).loc[chosen]
    trial = load_trial_model(experiment.path / row["trial_dir"], chosen)
    model, trial_config, epoch, masks = trial.model, trial.trial_config, trial.epoch, trial.masks
    reported = [r for r in read_results(experiment.path / row["trial_dir"]) if r.get("epoch") == epoch]
    shape = _input_shape(trial_config)
    data = {
        "format": EXPORT_FORMAT,
        "trial_id": chosen,
        "epoch": epoch,
        "arch": family_of(trial_config.network).describe(trial_config.network),
        "config": _plain(trial.config),
        "state_dict": model.state_dict(),
        "masks": masks,
        "masks_sparsity": float(MaskSet(masks).sparsity) if masks else 0.0,
        "weight_sparsity": float(measured_sparsity(model)),
        "num_classes": trial.num_classes,
        "in_channels": trial.in_channels,
        "input_shape": shape,
        "input": input_spec(trial_config.training.dataset, shape),
        "final": _final_rows(experiment.path, chosen, trial.checkpoint),
        "checkpoint": trial.checkpoint,
        "notes": trial.notes,
        "reported": _plain({k: v for k, v in reported[-1].items() if k != "config"}) if reported else {},
        "versions": {"robnas": __version__, "torch": str(torch.__version__)},
    }
    buffer = io.BytesIO()
    torch.save(data, buffer)
    atomic_write_bytes(out, buffer.getvalue())
    return out, {k: v for k, v in data.items() if k not in ("state_dict", "masks")}


def _check_out(out: Path, *, force: bool) -> None:
    """Refuse to write ``out`` over anything but a regular file (and that only with ``force``),
    or inside a search's directory (one holding ``robnas.json``)."""
    try:
        resolved = out.resolve()
    except RuntimeError:  # Python < 3.13: a symlink loop (later versions resolve what they can)
        raise ValueError(f"refusing to write {out}: it is a symlink loop") from None
    for parent in resolved.parents:
        if (parent / SETTINGS_FILE).is_file():
            raise ValueError(f"refusing to write {out}: it is inside the search directory {parent}")
    if out.exists() or out.is_symlink():
        if not out.is_file() or out.is_symlink():
            raise ValueError(f"refusing to write {out}: it exists and is not a regular file")
        if not force:
            raise ValueError(f"{out} exists; use --force to replace it")


def load_model(path: str | os.PathLike, *, device: str = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild an exported network: ``(model in eval mode on device, info)``.

    ``info`` is the export's content without ``state_dict``, plus ``trial_config``: the decoded
    ``TrialConfig`` (its ``evaluation`` is the attack the trial was evaluated with). Among it:
    ``input`` (what to feed the network: shape, value range [0, 1], the loader's scaling) and
    ``final`` (its test-split numbers, [] if never evaluated); exports written before these
    existed get them filled in, ``final`` empty. The file is read with ``weights_only=True``:
    loading runs no code from it.
    """
    import torch

    from robnas.spaces._compose import decode

    try:
        data = torch.load(Path(path), map_location=device, weights_only=True)
    except _LOAD_ERRORS as error:
        raise ValueError(f"cannot read {path}: {_one_line(error)}") from None
    if not isinstance(data, dict) or data.get("format") != EXPORT_FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"{path} is not a robnas model export (format {found!r}, expected {EXPORT_FORMAT!r})")
    trial_config = decode(data["config"], ignore=RUNTIME_KEYS)
    model = build_model(trial_config, int(data["in_channels"]), int(data["num_classes"])).to(device)
    model.load_state_dict(data["state_dict"])
    apply_masks(model, data.get("masks") or {})
    model.eval()
    info = {k: v for k, v in data.items() if k != "state_dict"}
    info.setdefault("input", input_spec(trial_config.training.dataset, data.get("input_shape") or []))
    info.setdefault("final", [])
    info["trial_config"] = trial_config
    return model, info


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())[:200] or type(error).__name__


def _plain(value: Any) -> Any:
    """``value`` with numpy scalars as Python numbers and anything unusual as its string."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        value = value.item()
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)


def _input_shape(trial_config) -> list[int]:
    from robnas.trainables._data import load_dataset

    name = trial_config.training.dataset
    try:
        return list(load_dataset(name, trial_config.training.data_dir).input_shape)
    except (ValueError, OSError):
        return list(_INPUT_SHAPES.get(name, []))


def _final_rows(run: Path, trial_id: str, checkpoint: str) -> list[dict[str, Any]]:
    """The trial's rows of ``final.csv`` that measured ``checkpoint`` ([] if none, or no file)."""
    final = read_final(run)
    rows = final[(final["trial_id"] == trial_id) & (final["checkpoint"] == checkpoint)]
    return [_plain(row) for row in rows.drop(columns=["checkpoint"]).to_dict("records")]
