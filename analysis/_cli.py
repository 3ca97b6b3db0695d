"""``robnas analyze``, ``robnas evaluate`` and ``robnas export``: argparse parsers and handlers.

Each prints every damaged result row it leaves out (and every doubt AutoAttack raises about its
own result) as one ``robnas: warning:`` line on stderr, and turns an operating-system error (a
file it cannot read or write) into one error line.
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
failed, diverged and NaN trials never enter it. --out PATH writes those files to PATH instead
of DIR/analysis (robnas evaluate's final.csv is still read from DIR/analysis). With several
DIRs, every search uses the same objectives and reference point, each still gets its own
DIR/analysis/, and the overlays of their fronts and hypervolume curves go to --out PATH, which
is then required. PATH is never inside a search directory (other than DIR/analysis itself).
--optuna-storage URL also writes the finished trials of one DIR to an Optuna study (default
name: the search's name; objectives and directions as analysed): one Optuna trial per trial,
params = its searched config, values = its objectives at its last epoch, intermediate values =
the first objective per epoch, user attributes trial_id, arch and epochs (every objective per
epoch); COMPLETE (max_epochs epochs), PRUNED (stopped early by a scheduler) or FAIL (failed or
diverged). Running it again adds only the trials not in the study yet (by trial_id). Times (hypervolume.png, search_time_s) are search time: seconds since
the search's first start less every stretch of more than 60 s in which no trial trained an epoch,
started or finished (the pause before a resume or an extension); wall_time_s keeps the pause. A damaged row of a trial's result.json (not a JSON
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
    analyze.add_argument("--out", metavar="PATH",
                         help="directory for the files: with one DIR instead of DIR/analysis (the default); "
                              "with several DIRs the comparison (required), outside every search")
    analyze.add_argument("--compare-dir", dest="out", metavar="PATH", action=_DeprecatedAlias,
                         help="deprecated name of --out")
    analyze.add_argument("--optuna-storage", metavar="URL",
                         help="also write the search's finished trials to an Optuna study in this RDB storage "
                              "(e.g. sqlite:///runs.db); again later, only the trials not in it yet")
    analyze.add_argument("--study-name", metavar="NAME",
                         help="name of that study (default: the search's name)")
    analyze.add_argument("--json", action="store_true",
                         help="print summary.json (a JSON list of them for several DIRs)")
    analyze.set_defaults(handler=_reporting(run_analyze))

    _add_evaluate_parser(commands)

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


_EVALUATE_HELP = """\
Measure the trials of the finished search in DIR once on the TEST split (the search selected on
per-epoch numbers; the test split is touched only here): clean accuracy and robust accuracy at
each trial's evaluation eps, from each trial's last good checkpoint. An image is robust only if
it is classified correctly clean and after every attack. --attack apgd (default): APGD-CE then
APGD-T (AutoAttack's standard settings: 100 iterations, 9 target classes); autoattack: the full
standard AutoAttack (APGD-CE, APGD-T, FAB-T, Square); pgd: each trial's own per-epoch PGD. The
results go to DIR/analysis/final.csv, rewritten after each trial; a trial already there with
the same attack, eps, number of images and checkpoint is not measured again."""


def _add_evaluate_parser(commands: argparse._SubParsersAction) -> None:
    from robnas.analysis._final import ATTACKS

    evaluate = commands.add_parser(
        "evaluate", help="final clean and robust accuracy of found networks on the test split",
        description=_EVALUATE_HELP,
    )
    evaluate.add_argument("directory", metavar="DIR", help="experiment directory STORAGE/NAME")
    evaluate.add_argument("--trials", default="front", metavar="front|all|ID,ID,...",
                          help="the Pareto front (default), every trial that finished without failing, "
                               "or the trials named")
    evaluate.add_argument("--attack", default="apgd", choices=sorted(ATTACKS),
                          help="apgd (default), autoattack or pgd")
    evaluate.add_argument("--max-images", type=_positive_int, metavar="N",
                          help="evaluate the first N test images (default: all)")
    evaluate.add_argument("--threads", type=_positive_int, default=1, metavar="N",
                          help="torch CPU threads (default 1, as each search trial: the numbers do not "
                               "depend on how many cores the machine has)")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object per trial")
    evaluate.set_defaults(handler=_reporting(run_evaluate))


class _DeprecatedAlias(argparse.Action):
    """Store the value as its new option does, and note the old name (warned after the run)."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        namespace.deprecated = [*getattr(namespace, "deprecated", []), option_string]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


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
    """Show every ``SkippedRowWarning`` and ``AttackWarning`` as ``robnas: warning: MESSAGE``;
    others as usual."""
    from robnas.analysis._autoattack import AttackWarning
    from robnas.analysis._load import SkippedRowWarning

    one_line = (SkippedRowWarning, AttackWarning)

    with warnings.catch_warnings():
        for category in one_line:
            warnings.simplefilter("always", category)
        show = warnings.showwarning

        def show_one_line(message, category, filename, lineno, file=None, line=None):
            if not issubclass(category, one_line):
                return show(message, category, filename, lineno, file, line)
            print(f"robnas: warning: {' '.join(str(message).split())}", file=sys.stderr)

        warnings.showwarning = show_one_line
        yield


def run_analyze(args: argparse.Namespace) -> int:
    from robnas.analysis._analyze import analyze

    analyses = analyze(
        args.directories,
        objectives=args.objectives,
        reference_point=args.reference_point,
        all_fidelities=args.all_fidelities,
        out=args.out,
        optuna_storage=args.optuna_storage,
        study_name=args.study_name,
    )
    for option in getattr(args, "deprecated", []):
        print(f"robnas: warning: {option} is deprecated; use --out", file=sys.stderr)
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
              f"knee {knee} (selection numbers){_table_line(s.get('table_front'))}{_final_line(s.get('final'))}; "
              f"wrote {a.out_dir}")
    if len(analyses) > 1:
        print(f"comparison: {args.out}")
    study = analyses[0].study
    if study is not None:
        print(f"Optuna study {study.name!r} in {study.storage}: {_count(len(study.added), 'trial')} added, "
              f"{len(study.already)} already there, {len(study.unfinished)} not finished (not written)")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from robnas.analysis._evaluate import RESULT_KEYS, evaluate
    from robnas.analysis._final import final_path

    measured = kept = 0
    rows = evaluate(args.directory, trials=args.trials, attack=args.attack, max_images=args.max_images,
                    threads=args.threads)
    for row in rows:
        measured, kept = measured + row["measured"], kept + (not row["measured"])
        for note in row["notes"]:
            print(f"robnas: warning: trial {row['trial_id']}: {note}", file=sys.stderr)
        if args.json:
            print(json.dumps({k: row[k] for k in RESULT_KEYS}), flush=True)
            continue
        if measured + kept == 1:
            print(f"{'trial':<12} {'epoch':>5} {'clean':>7} {'robust':>7}  {'attack':<10} {'eps':>7} {'images':>6}")
        note = "" if row["measured"] else "  (from final.csv)"
        print(f"{row['trial_id']:<12} {row['epoch']:>5} {row['clean_acc']:>7.4f} {row['robust_acc']:>7.4f}  "
              f"{row['attack']:<10} {row['eps']:>7.4g} {row['images']:>6}{note}", flush=True)
    if not args.json:
        print(f"{measured} trial{'' if measured == 1 else 's'} measured, {kept} already in "
              f"{final_path(args.directory)}")
    return 0


def _table_line(quality: dict | None) -> str:
    """``, X of the table's true front, regret ...`` for a search on a table of results."""
    if not quality:
        return ""
    fraction = quality["hypervolume_fraction"]
    share = "n/a" if fraction is None else f"{fraction:.3f}"
    regret = ", ".join(f"{name} {value:.3g}" for name, value in quality["regret"].items() if value is not None)
    return f", hypervolume fraction of the table's true front {share}, regret {regret or 'n/a'}"


def _count(n: int, noun: str) -> str:
    """``"1 trial"``, ``"3 trials"``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _final_line(final: dict | None) -> str:
    """``; final (test, ATTACK, N trials): front K, knee ID``, or nothing before ``evaluate``."""
    if not final:
        return ""
    knee = final["knee"]["trial_id"] if final["knee"] else "none"
    gaps = ", ".join(f"{m} gap {v:+.3f}" for m, v in final["mean_gap"].items() if v is not None)
    return (f"; final ({final['split']}, {final['attack']}, {_count(final['n_evaluated'], 'trial')}): front "
            f"{final['n_pareto']}, knee {knee}{', mean ' + gaps if gaps else ''}")


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
    final = "".join(f"; final ({row['split']}, {row['attack']}) clean_acc {row['clean_acc']:.4f}, "
                    f"robust_acc {row['robust_acc']:.4f}" for row in info["final"])
    print(f"exported trial {info['trial_id']} (epoch {info['epoch']}{metrics}{final}) {info['arch']} to {path}")
    return 0
