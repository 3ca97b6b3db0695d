"""``robnas proxies``: zero-cost proxy scores of NB201 cells, without training.

The network is the NB201 macro network of ``NETWORK_FLAGS`` (NAS-Bench-201's CIFAR-10 network
by default, as ``robnas arch`` describes it), initialised with ``--seed``. The batch is
``--batch-size`` training images of ``--dataset`` drawn with ``--seed``; when ``--input-size``
differs from the data set's image size the images are resized to it (bilinear), when the
channels differ grey images are copied to every channel (colour images are averaged to grey),
and labels are taken modulo ``--num-classes``: a stand-in batch of the network's shape.
``synflow`` is reported as ``sign * ln|score|``, NASLib's published form; undefined scores are
``null`` in JSON.
"""

from __future__ import annotations

import argparse
import json
import math

#: The network of ``robnas arch`` and ``robnas proxies``: NAS-Bench-201's CIFAR-10 network
#: (3 x 32 x 32 inputs, 10 classes, C=16, N=5) unless these flags say otherwise.
NETWORK_FLAGS = (
    ("--width", 16, "channels C of the first stage"),
    ("--cells", 5, "cells per stage N"),
    ("--input-size", 32, "image height = width of the network's input, pixels"),
    ("--in-channels", 3, "channels of the network's input"),
    ("--num-classes", 10, "classes of the network's classifier"),
)


def add_network_options(parser: argparse.ArgumentParser) -> None:
    for flag, default, text in NETWORK_FLAGS:
        parser.add_argument(flag, type=int, default=default, help=text)


def add_proxies_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "proxies",
        help="zero-cost proxy scores of NB201 cells (no training)",
        description=(
            "Zero-cost proxies of NB201 cells on a freshly initialised network. The batch is "
            "--batch-size training images of --dataset, resized to --input-size and copied to "
            "--in-channels when they differ (a stand-in batch of the network's shape); synflow "
            "is reported as ln(score), NASLib's form."
        ),
    )
    parser.add_argument("arch", nargs="?", help="NB201 string, e.g. '|nor_conv_3x3~0|+|...|'")
    parser.add_argument("--archs", help="file of NB201 strings, one per line: one JSON object per line")
    add_network_options(parser)
    parser.add_argument("--dataset", default="digits", help="data set of the batch (default digits)")
    parser.add_argument("--data-dir", help="local directory (or .npz file) holding the data set")
    parser.add_argument("--batch-size", type=int, default=32, help="images in the batch (default 32)")
    parser.add_argument(
        "--names",
        help="comma-separated proxies, or 'all' for every one (default: all but the *_adv ones)",
    )
    parser.add_argument(
        "--eps", type=float, help="budget of the *_adv proxies, 1/255 units (default: the data set's)"
    )
    parser.add_argument("--seed", type=int, default=0, help="network init, batch draw, proxies")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run_proxies)


def _names(text: str | None) -> tuple[str, ...]:
    from robnas.search._candidate_proxies import check_proxy_names
    from robnas.search.proxies._registry import DATA_DEPENDENT, DATA_FREE, PROXIES

    if text is None:
        return DATA_FREE + DATA_DEPENDENT
    if text.strip() == "all":
        return tuple(PROXIES)
    return check_proxy_names(text)


def _check_args(args: argparse.Namespace) -> None:
    if (args.arch is None) == (args.archs is None):
        raise ValueError("give either one ARCH or --archs FILE")
    for flag in ("width", "cells", "input_size", "num_classes", "in_channels"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise ValueError(f"--{flag.replace('_', '-')} must be >= 1, got {value}")
    if args.batch_size < 2:
        raise ValueError(f"--batch-size must be >= 2, got {args.batch_size}")
    if args.eps is not None and not 0 < args.eps <= 255:
        raise ValueError(f"--eps must be in (0, 255] (units of 1/255), got {args.eps}")


def run_proxies(args: argparse.Namespace) -> int:
    from robnas.search._candidate_proxies import dataset_batch, score_cell, shaped_batch
    from robnas.spaces import budget_fraction
    from robnas.spaces._defaults import dataset_default
    from robnas.spaces._genotype import Genotype, read_archs

    _check_args(args)
    names = _names(args.names)
    archs = read_archs(args.archs) if args.archs else (Genotype.from_str(args.arch).to_str(),)
    eps = budget_fraction(args.eps if args.eps is not None else dataset_default(args.dataset, "eps"), name="eps")
    batch = dataset_batch(args.dataset, args.data_dir, size=args.batch_size, seed=args.seed)
    batch = shaped_batch(batch, input_size=args.input_size, channels=args.in_channels,
                         num_classes=args.num_classes)
    for arch in archs:
        scores = score_cell(Genotype.from_str(arch), batch, width=args.width, cells_per_stage=args.cells,
                            num_classes=args.num_classes, names=names, eps=eps, seed=args.seed)
        scores = {name: (value if math.isfinite(value) else None) for name, value in scores.items()}
        if args.archs:
            print(json.dumps({"arch": arch, **scores}), flush=True)
        elif args.json:
            print(json.dumps(scores))
        else:
            for name, value in scores.items():
                print(f"{name:<14} {'nan' if value is None else f'{value:.6g}'}")
    return 0
