"""``robnas analyze`` and ``robnas export``: argparse parsers and handlers.

Both print each damaged result row they leave out as one ``robnas: warning:`` line on stderr,
and turn an operating-system error (a file they cannot read or write) into one error line.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import sys
import warnings
from collections.abc import Callable, Iterator

_ANALYZE_HELP = """\
Read the search(es) in DIR (running, finished or resumed) and write DIR/analysis/: trials.csv,
pareto.csv, hypervolume.csv, summary.json, scatter_matrix.png, hypervolume.png,
learning_curves.png and report.html (self-contained; open it in a browser). The front is built
from the trials that trained for max_epochs (--all-fidelities: every trial's last result);
failed, diverged and NaN trials never enter it. With several DIRs, every search uses the same
objectives and reference point, and overlays of their fronts and hypervolume curves go to
FIRST_DIR/analysis/compare/ (or --compare-dir). Wall times count from the search's first start
(the pause of a resumed search included). A damaged row of a trial's result.json (not a JSON
object, no positive integer epoch, an objective that is not a number) is left out, as if never
reported, with one warning line on stderr."""


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """Add the ``analyze`` and ``export`` sub-commands."""
    analyze = commands.add_parser(
        "analyze", help="Pareto front, hypervolume, knee, plots and an HTML report of searches",
        description=_ANALYZE_HELP,
    )
    analyze.add_argument("directories", nargs="+", metavar="DIR", help="experiment directory STORAGE/NAME")
    _add_objectives(analyze)
    analyze.add_argument(
        "--reference-point", metavar="V,V,...",
        help="hypervolume reference point, one value per objective (default: 0 for maximised "
             "objectives, 1.01 x the largest value for minimised ones)",
    )
    analyze.add_argument("--compare-dir", metavar="PATH",
                         help="where the overlays of several DIRs go (default: FIRST_DIR/analysis/compare)")
    analyze.add_argument("--json", action="store_true",
                         help="print summary.json (a JSON list of them for several DIRs)")
    analyze.set_defaults(handler=_reporting(run_analyze))

    export = commands.add_parser(
        "export", help="write a found network (weights, config, genotype) to one file",
        description="Write a trial's last checkpoint as one file: genotype string, flat config, "
                    "state dict (torch.load(..., weights_only=True)), masks and their sparsity, and "
                    "the metrics it reported. Rebuild it with robnas.analysis.load_model(PATH).",
    )
    export.add_argument("directory", metavar="DIR", help="experiment directory STORAGE/NAME")
    which = export.add_mutually_exclusive_group(required=True)
    which.add_argument("--trial", metavar="ID", help="trial id (see DIR/analysis/trials.csv)")
    which.add_argument("--knee", action="store_true", help="the knee point of the Pareto front")
    which.add_argument("--best", metavar="OBJECTIVE", help="the best trial on OBJECTIVE (name or name:min)")
    export.add_argument("--out", required=True, metavar="PATH",
                        help="file to write (in an existing directory: PATH/trial_<id>.pt)")
    export.add_argument("--force", action="store_true", help="replace an existing file at --out")
    _add_objectives(export)
    export.set_defaults(handler=_reporting(run_export))


def _add_objectives(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--objectives", metavar="NAMES",
        help="comma-separated objectives (default: the search's); other reported metrics as "
             "name:max or name:min",
    )
    parser.add_argument("--all-fidelities", action="store_true",
                        help="build the front from every trial's last result, not only full-length trials")


def _reporting(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``handler`` printing skipped rows on stderr as they are found, OSError as ValueError."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        with _skipped_rows_to_stderr():
            try:
                return handler(args)
            except OSError as error:
                raise ValueError(str(error) or type(error).__name__) from None

    return run


@contextlib.contextmanager
def _skipped_rows_to_stderr() -> Iterator[None]:
    """Show every ``SkippedRowWarning`` as ``robnas: warning: MESSAGE``; others as usual."""
    from robnas.analysis._load import SkippedRowWarning

    with warnings.catch_warnings():
        warnings.simplefilter("always", SkippedRowWarning)
        show = warnings.showwarning

        def show_one_line(message, category, filename, lineno, file=None, line=None):
            if not issubclass(category, SkippedRowWarning):
                return show(message, category, filename, lineno, file, line)
            print(f"robnas: warning: {' '.join(str(message).split())}", file=sys.stderr)

        warnings.showwarning = show_one_line
        yield


def run_analyze(args: argparse.Namespace) -> int:
    from robnas.analysis._analyze import analyze, comparison_dir

    analyses = analyze(
        args.directories,
        objectives=args.objectives,
        reference_point=args.reference_point,
        all_fidelities=args.all_fidelities,
        compare_dir=args.compare_dir,
    )
    if args.json:
        summaries = [a.summary for a in analyses]
        data = summaries[0] if len(summaries) == 1 else summaries
        print(json.dumps(data, indent=2, sort_keys=True, default=str))
        return 0
    for a in analyses:
        s = a.summary
        knee = s["knee"]["trial_id"] if s["knee"] else "none"
        print(f"{a.experiment.path}: {s['n_trials']} trials ({s['n_complete']} complete, "
              f"{s['n_failed']} failed), front {s['n_pareto']}, hypervolume {s['hypervolume']:.4g}, "
              f"knee {knee}; wrote {a.out_dir}")
    if len(analyses) > 1:
        print(f"comparison: {comparison_dir(args.directories, args.compare_dir)}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from robnas.analysis._export import export_model

    path, info = export_model(
        args.directory,
        args.out,
        trial_id=args.trial,
        knee=args.knee,
        best=args.best,
        objectives=args.objectives,
        all_fidelities=args.all_fidelities,
        force=args.force,
    )
    reported = info["reported"]
    metrics = "".join(f", {k} {reported[k]:.4f}" for k in ("clean_acc", "robust_acc", "sparsity")
                      if isinstance(reported.get(k), float))
    for note in info["notes"]:
        print(f"robnas: warning: {note}", file=sys.stderr)
    print(f"exported trial {info['trial_id']} (epoch {info['epoch']}{metrics}) {info['arch']} to {path}")
    return 0
