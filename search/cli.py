"""The ``robnas`` command line: a thin layer over the Python API.

Every command turns bad input into one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence

from robnas.search._storage import StorageError
from robnas.spaces._suggest import did_you_mean

EXIT_USAGE = 2


class UsageError(ValueError):
    """Bad input from the command line or a config file; printed as one line."""


class _DefaultsHelpFormatter(argparse.HelpFormatter):
    """Help that ends each option with its default, unless the text already states one."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        shown = action.option_strings and action.nargs != 0 and action.default not in (None, argparse.SUPPRESS)
        if shown and "default" not in text:
            text += " (default: %(default)s)"
        return text


class _OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line and exit code 2, each naming the nearest
    known command or option when the given one is mistyped."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _DefaultsHelpFormatter)
        super().__init__(*args, **kwargs)
        self.commands: dict[str, argparse.ArgumentParser] = {}

    def error(self, message: str) -> None:  # type: ignore[override]
        choice = _INVALID_CHOICE.search(message)
        if choice:
            message += did_you_mean(choice["value"], re.findall(r"'([^']*)'", choice["choices"]))
        command = self.prog.removeprefix("robnas").strip()
        raise UsageError(f"{command}: {message}" if command else message)

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            parser = self.commands.get(getattr(parsed, "command", None), self)
            options = [option for option in parser._option_string_actions if option.startswith("--")]
            hint = did_you_mean(extras[0].partition("=")[0], options) if extras[0].startswith("-") else ""
            parser.error(f"unrecognized arguments: {' '.join(extras)}{hint}")
        return parsed


_INVALID_CHOICE = re.compile(r"invalid choice: '(?P<value>[^']*)' \(choose from (?P<choices>.*)\)")


def _add_arch_parser(commands: argparse._SubParsersAction) -> None:
    from robnas.search._cli_proxies import add_network_options
    from robnas.search._cli_trial import run_arch

    parser = commands.add_parser(
        "arch", help="describe a network: an NB201 cell (canonical form, params, MACs) or a --config of any family"
    )
    parser.add_argument("arch", nargs="?", help="NB201 string, e.g. '|nor_conv_3x3~0|+|...|'")
    parser.add_argument("--config", help="YAML file of trial keys naming a network of any family (family: resnet, "
                        "stage_depths, ...); keys not given take CIFAR-10's defaults unless it names a dataset")
    add_network_options(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run_arch)


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
    parser.commands = dict(commands.choices)
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
