"""``robnas arch`` and ``robnas trial``: one network, or one trial, without Ray."""

from __future__ import annotations

import argparse
import json
from typing import Any

from robnas.search._config_file import read_yaml_mapping


def run_arch(args: argparse.Namespace) -> int:
    from robnas.trainables._counting import count_macs, count_parameters

    if (args.arch is None) == (args.config is None):
        raise ValueError("arch: give an NB201 string or --config FILE, not both or neither")
    for flag in ("input_size", "in_channels", "num_classes"):
        if getattr(args, flag) < 1:
            raise ValueError(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")
    describe = _describe_cell if args.arch is not None else _describe_config
    row, model = describe(args)
    row["params"] = count_parameters(model)
    row["macs"] = count_macs(model, (args.in_channels, args.input_size, args.input_size))
    if args.json:
        print(json.dumps(row))
    else:
        for key, value in row.items():
            print(f"{key:<10} {value}")
    return 0


def _describe_cell(args: argparse.Namespace) -> tuple[dict[str, Any], Any]:
    """The row and network of an NB201 string with ``--width`` and ``--cells``."""
    from robnas.spaces._genotype import Genotype
    from robnas.trainables._network import build_network

    genotype = Genotype.from_str(args.arch)
    model = build_network(genotype, width=args.width, cells_per_stage=args.cells,
                          in_channels=args.in_channels, num_classes=args.num_classes)
    row = {"arch": genotype.to_str(), "canonical": genotype.canonical().to_str(), "valid": genotype.is_connected()}
    return row, model


def _describe_config(args: argparse.Namespace) -> tuple[dict[str, Any], Any]:
    """The row (family, arch, canonical) and network of a YAML file of trial keys."""
    from robnas.spaces._compose import decode
    from robnas.spaces._family import family_of
    from robnas.trainables._families import build_model

    network = decode({"dataset": "cifar10", **read_yaml_mapping(args.config)}).network
    family = family_of(network)
    row = {"family": family.name, "arch": family.describe(network),
           "canonical": family.describe(family.canonical(network))}
    return row, build_model(network, in_channels=args.in_channels, num_classes=args.num_classes)


_TRIAL_COLUMNS = ("epoch", "clean_acc", "robust_acc", "sparsity", "params", "macs", "train_loss", "epoch_time_s")


def run_trial(args: argparse.Namespace) -> int:
    from robnas.spaces._compose import decode
    from robnas.spaces._family import family_of
    from robnas.trainables._trial import TrialRunner

    config: dict[str, Any] = read_yaml_mapping(args.config) if args.config else {}
    overrides = {
        "arch": args.arch,
        "max_epochs": args.epochs,
        "dataset": args.dataset,
        "data_dir": args.data_dir,
        "seed": args.seed,
    }
    config.update({key: value for key, value in overrides.items() if value is not None})
    if "arch" in config:
        for key in [k for k in config if k.startswith("edge_")]:
            del config[key]
    trial_config = decode(config)
    runner = TrialRunner(trial_config)
    if not args.json:
        network = trial_config.network
        print(f"arch {family_of(network).describe(network)}  dataset {trial_config.training.dataset}")
        print("  ".join(f"{name:>12}" for name in _TRIAL_COLUMNS))
    while not runner.done:
        metrics = runner.run_epoch()
        if args.json:
            print(json.dumps(metrics), flush=True)
        else:
            print("  ".join(_format(metrics[name]) for name in _TRIAL_COLUMNS), flush=True)
    return 0


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:>12.4f}"
    return f"{value:>12}"
