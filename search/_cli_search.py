"""``robnas search`` and ``robnas resume``."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any

from robnas.search._config_file import read_yaml_mapping

# flag -> (SearchSettings field, type, help)
_FLAGS: dict[str, tuple[str, Any, str]] = {
    "--name": ("name", str, "experiment name (default: search-DATE-TIME)"),
    "--storage-path": ("storage_path", str, "directory (or pyarrow URI) holding experiments"),
    "--dataset": ("dataset", str, "digits (embedded), cifar10, cifar100, svhn, mnist, fashion_mnist, npz"),
    "--data-dir": ("data_dir", str, "local directory (or .npz file) holding the data set"),
    "--space": ("space", str, "comma-separated parts of cell,macro,sparsity,attack,resnet,training (default: the first four; cell with --backend table)"),
    "--scheduler": ("scheduler", str, "moasha | asha | hyperband | fifo"),
    "--searcher": ("searcher", str, "random | tpe | nsga2 | motpe (default: tpe for one objective, motpe for several)"),
    "--objectives": ("objectives", str, "comma-separated, name or name:max / name:min (default: clean_acc,robust_acc,sparsity)"),
    "--score": ("score_weights", str, "scalarised score for asha/hyperband/tpe, e.g. robust_acc=0.7,params=-0.3, over objectives scaled to [0, 1] (default: +1/k for each of k maximised objectives, -1/k for minimised)"),
    "--num-samples": ("num_samples", int, "number of trials"),
    "--max-epochs": ("max_epochs", int, "epochs of a fully trained trial, the maximum fidelity (default: the data set's, 4 for digits, 50 for CIFAR, SVHN, MNIST; a table's epochs)"),
    "--grace-period": ("grace_period", int, "epochs before the first early stop"),
    "--reduction-factor": ("reduction_factor", int, "successive-halving reduction factor"),
    "--max-concurrent": ("max_concurrent", int, "trials running at once"),
    "--cpus-per-trial": ("cpus_per_trial", float, "CPUs reserved per trial"),
    "--gpus-per-trial": ("gpus_per_trial", float, "GPUs reserved per trial (the trial uses CUDA)"),
    "--max-failures": ("max_failures", int, "retries of a failed trial from its last checkpoint"),
    "--min-free-mb": ("min_free_mb", float, "free space (MiB) kept on the storage: start with twice this, stop (resumable) below it"),
    "--address": ("address", str, "Ray cluster address: auto or HOST:PORT (default: start Ray here)"),
    "--seed": ("seed", int, "seed of the searcher (reproducible sequence of configurations)"),
    "--screen": ("screen", int, "candidates scored with zero-cost proxies and a surrogate per launched trial, plus the best trial's one-change neighbours (default 32, and 0 = off with --searcher random)"),
    "--max-params": ("max_params", str, "largest network a trial may train, in dense parameters as robnas arch counts them (1.5e6, 200k, 3M); larger candidates are never launched (default: no limit)"),
    "--max-macs": ("max_macs", str, "largest network a trial may train, in MACs per image (1.5e6, 200k, 3M); larger candidates are never launched (default: no limit)"),
    "--time-budget": ("time_budget_s", str, "wall time the search may run, summed over its start and resumes (90s, 30m, 2h, 1h30m or seconds); it then stops, resumable (default: no limit)"),
    "--points": ("points", str, "YAML or JSON list of mappings of searched keys (partial ones completed by the searcher), or a file of NB201 cells one a line: launched first (default: none)"),
    "--backend": ("backend", str, "train (default) or table: replay a results table instead of training"),
    "--table": ("table", str, "results table (CSV or Parquet) replayed by --backend table"),
}

#: Placeholders in ``--help`` for flags whose value is not what their name says.
_METAVARS = {"--max-params": "N", "--max-macs": "N", "--time-budget": "DURATION", "--points": "FILE"}


def add_search_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("search", help="launch a robust NAS search on Ray Tune")
    parser.add_argument("--config", help="YAML file of search options; flags override it")
    for flag, (field, kind, text) in _FLAGS.items():
        parser.add_argument(flag, type=kind, metavar=_METAVARS.get(flag), help=_with_default(field, text))
    parser.add_argument("--dashboard", action="store_true", default=None, help="start the Ray dashboard")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--resume", action="store_true", help="continue the experiment if it exists")
    group.add_argument("--overwrite", action="store_true", help="replace an existing experiment")
    _add_verbosity(parser)
    parser.set_defaults(handler=run_search)

    resume = commands.add_parser("resume", help="continue an interrupted search")
    resume.add_argument("directory", help="experiment directory STORAGE/NAME")
    resume.add_argument("--num-samples", type=int, help="extend the search to this many trials")
    resume.add_argument("--time-budget", metavar="DURATION", help="the search's new total time budget, e.g. 2h (default: as started)")
    _add_verbosity(resume)
    resume.set_defaults(handler=run_resume)


def _with_default(field: str, text: str) -> str:
    """``text`` ending with the default of settings field ``field``, unless it states one. The
    flags themselves default to None, so that a YAML file's value is kept when a flag is left out."""
    from robnas.search._settings import SearchSettings

    default = SearchSettings.__dataclass_fields__[field].default
    if "default" in text or default is None or default is dataclasses.MISSING:
        return text
    return f"{text} (default: {default})"


def _add_verbosity(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quiet", action="store_const", const="quiet", dest="verbosity",
                       help="print nothing while the search runs, only its outcome")
    group.add_argument("--verbose", action="store_const", const="verbose", dest="verbosity",
                       help="also print Ray Tune's own progress table (new searches)")
    parser.set_defaults(verbosity="normal")


def settings_from_args(args: argparse.Namespace):
    return _settings_and_options(args)[0]


def _settings_and_options(args: argparse.Namespace):
    """The settings of ``robnas search`` and the options given explicitly (YAML and flags)."""
    from robnas.search._settings import SearchSettings

    options: dict[str, Any] = read_yaml_mapping(args.config) if args.config else {}
    source = args.config or "options"
    options = _flag_named_keys(options, source)
    unknown = sorted(set(options) - set(SearchSettings.__dataclass_fields__))
    if unknown:
        SearchSettings.from_mapping(options, source=source)  # raises, naming the keys
    for flag, (field, _, _) in _FLAGS.items():
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is not None:
            options[field] = value
    if args.dashboard:
        options["dashboard"] = True
    try:
        return SearchSettings.from_mapping(options, source=source), options
    except TypeError as error:  # e.g. a YAML list where a mapping belongs
        raise ValueError(f"{source}: {error}") from None


#: YAML key spelled as its flag (``score`` for ``--score``) -> the settings field it sets.
_FLAG_KEYS = {flag[2:].replace("-", "_"): field for flag, (field, _, _) in _FLAGS.items() if flag[2:].replace("-", "_") != field}


def _flag_named_keys(options: dict[str, Any], source: str) -> dict[str, Any]:
    """``options`` with keys named as flags (``score``) renamed to their fields (``score_weights``):
    a YAML file takes the flags' names, and the fields' names too."""
    renamed = dict(options)
    for key, field in _FLAG_KEYS.items():
        if key in renamed:
            if field in renamed:
                raise ValueError(f"{source}: give {key} or {field}, not both")
            renamed[field] = renamed.pop(key)
    return renamed


#: Options ``robnas search --resume`` may give for an existing experiment: where it is, and a
#: new trial or time budget (as ``robnas resume --num-samples / --time-budget``).
_RESUMABLE = ("name", "storage_path", "num_samples", "time_budget_s")


def run_search(args: argparse.Namespace) -> int:
    from robnas.search._progress import set_verbosity
    from robnas.search._run import read_settings, resume, run

    set_verbosity(args.verbosity)
    settings, options = _settings_and_options(args)
    path = settings.experiment_path
    if args.resume and path.is_dir() and any(path.iterdir()):
        saved = read_settings(path)
        changed = [key for key in options if key not in _RESUMABLE and getattr(settings, key) != getattr(saved, key)]
        if changed:
            raise ValueError(
                f"--resume continues {path} as it was started; {', '.join(sorted(changed))} differ from its "
                "robnas.json (leave them out, or use --overwrite to start again)"
            )
        time_budget = settings.time_budget_s if "time_budget_s" in options else None
        return _summarise(resume(path, num_samples=options.get("num_samples"), time_budget_s=time_budget))
    return _summarise(run(settings, resume_existing=args.resume, overwrite=args.overwrite))


def run_resume(args: argparse.Namespace) -> int:
    from robnas.search._progress import set_verbosity
    from robnas.search._run import resume

    set_verbosity(args.verbosity)
    return _summarise(resume(args.directory, num_samples=args.num_samples, time_budget_s=args.time_budget))


def _summarise(grid) -> int:
    """Print the outcome of a search; exit code 130 (as for Ctrl-C) if it stopped unfinished,
    0 if it stopped because its time budget was spent (the end it was given)."""
    from robnas.search._elapsed import budget_spent
    from robnas.search._study_state import progress
    from robnas.search._units import format_duration

    done, budget, complete = progress(grid.experiment_path)
    total = budget if budget is not None else "?"
    spent = None if complete else budget_spent(grid.experiment_path)
    if spent is not None:
        longer = format_duration(2 * spent[0])
        print(f"time budget {format_duration(spent[0])} spent: {done} of {total} trials done; "
              f"robnas resume {grid.experiment_path} --time-budget {longer} to continue")
        return 0
    if not complete:
        print(f"interrupted: {done} of {total} trials done; robnas resume {grid.experiment_path}", file=sys.stderr)
        return 130
    errors = sum(result.error is not None for result in grid)
    if budget is not None and done < budget:
        print(f"the space holds no other network: {done} distinct networks trained of the {budget} asked for")
    print(f"{len(grid)} trials, {errors} failed; experiment: {grid.experiment_path}")
    return 0
