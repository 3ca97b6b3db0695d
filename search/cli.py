"""The ``robnas`` command line: a thin layer over the Python API.

Every command turns bad input into one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from robnas.search._storage import StorageError

EXIT_USAGE = 2


class UsageError(ValueError):
    """Bad input from the command line or a config file; printed as one line."""


class _OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _add_arch_parser(commands: argparse._SubParsersAction) -> None:
    from robnas.search._cli_trial import run_arch

    parser = commands.add_parser("arch", help="describe an NB201 cell: canonical form, params, MACs")
    parser.add_argument("arch", help="NB201 string, e.g. '|nor_conv_3x3~0|+|...|'")
    _add_network_options(parser)
    parser.add_argument("--in-channels", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run_arch)


def _add_network_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--width", type=int, default=16, help="channels C of the first stage")
    parser.add_argument("--cells", type=int, default=5, help="cells per stage N")
    parser.add_argument("--input-size", type=int, default=32, help="image height = width, pixels")
    parser.add_argument("--num-classes", type=int, default=10)


def _add_trial_parser(commands: argparse._SubParsersAction) -> None:
    from robnas.search._cli_trial import run_trial

    parser = commands.add_parser(
        "trial", help="adversarially train one configuration in this process (no Ray)"
    )
    parser.add_argument("--config", help="YAML file of trial keys (arch, width, eps, ...)")
    parser.add_argument("--arch", help="NB201 string (overrides the config file)")
    parser.add_argument("--epochs", type=int, help="epochs to train (max_epochs)")
    parser.add_argument("--dataset", help="digits (embedded), cifar10, cifar100, svhn, mnist, ...")
    parser.add_argument("--data-dir", help="local directory (or .npz file) holding the data set")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--json", action="store_true", help="one JSON object per epoch")
    parser.set_defaults(handler=run_trial)


def _add_search_parsers(commands: argparse._SubParsersAction) -> None:
    from robnas.search._cli_search import add_search_parser

    add_search_parser(commands)


def _add_tabulate_parser(commands: argparse._SubParsersAction) -> None:
    from robnas.search._cli_tabulate import add_tabulate_parser

    add_tabulate_parser(commands)


def _add_analysis_parsers(commands: argparse._SubParsersAction) -> None:
    from robnas.analysis._cli import add_parsers

    add_parsers(commands)


def _add_proxies_parser(commands: argparse._SubParsersAction) -> None:
    from robnas.search._cli_proxies import add_proxies_parser

    add_proxies_parser(commands)


#: Each entry adds sub-commands; later modules register theirs here.
COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_search_parsers,
    _add_arch_parser,
    _add_trial_parser,
    _add_tabulate_parser,
    _add_analysis_parsers,
    _add_proxies_parser,
]


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="robnas",
        description="Robust neural architecture search on Ray Tune.",
    )
    from robnas import __version__

    parser.add_argument("--version", action="version", version=f"robnas {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_OneLineParser)
    commands.required = True
    for add in COMMANDS:
        add(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``robnas`` command; returns the process exit code."""
    try:
        args = build_parser().parse_args(argv)
        return int(args.handler(args) or 0)
    except (UsageError, ValueError, FileNotFoundError, NotADirectoryError, StorageError) as error:
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"robnas: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("robnas: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
