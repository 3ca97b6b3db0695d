"""Search settings, objectives, CLI errors: fast, no Ray started."""

from __future__ import annotations

import subprocess
import sys

import pytest

from robnas.spaces._objectives import Objective, default_score_weights, parse_objectives, parse_score_weights
from robnas.search._settings import SearchSettings
from robnas.search.cli import main


def test_defaults_are_a_small_multi_objective_digits_search():
    settings = SearchSettings()
    assert settings.dataset == "digits"
    assert settings.objective_names == ("clean_acc", "robust_acc", "sparsity")
    assert settings.directions == ("max", "max", "max")
    assert settings.scheduler == "moasha"


def test_round_trip_through_dict():
    settings = SearchSettings(name="x", space="cell,macro", objectives="robust_acc,params", searcher="nsga2")
    assert SearchSettings.from_mapping(settings.to_dict()) == settings
    assert settings.space == ("cell", "macro")
    assert settings.directions == ("max", "min")
    assert settings.to_dict()["objectives"] == ["robust_acc:max", "params:min"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"colour": "red"}, "unknown key 'colour'"),
        ({"num_samples": 0}, "num_samples must be an integer >= 1"),
        ({"num_samples": "4"}, "num_samples must be an integer"),
        ({"max_epochs": -1}, "max_epochs must be an integer >= 1"),
        ({"scheduler": "pbt"}, "unknown scheduler 'pbt'"),
        ({"searcher": "bohb"}, "unknown searcher 'bohb'"),
        ({"objectives": "clean_acc,accuracy"}, "unknown objective 'accuracy'"),
        ({"objectives": "robust_acc", "searcher": "nsga2"}, "needs at least two objectives"),
        ({"grace_period": 5, "max_epochs": 2}, "grace_period (5) must not exceed"),
        ({"name": "../x"}, "plain directory name"),
        ({"score_weights": "robust_acc"}, "must look like name=weight"),
        ({"cpus_per_trial": 0}, "cpus_per_trial > 0"),
    ],
)
def test_bad_settings_name_the_problem(options, message):
    with pytest.raises(ValueError, match=None) as error:
        SearchSettings.from_mapping(options)
    assert message in str(error.value)


def test_score_weights():
    assert parse_score_weights("robust_acc=0.7, clean_acc=0.3") == {"robust_acc": 0.7, "clean_acc": 0.3}
    two = parse_objectives("robust_acc, params")
    assert two == (Objective("robust_acc", "max"), Objective("params", "min"))
    assert default_score_weights(two) == {"robust_acc": 0.5, "params": -0.5}
    assert parse_objectives("clean_acc:min, cost_s", None) == (Objective("clean_acc", "min"), Objective("cost_s", "min"))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["search", "--scheduler", "nope"], "unknown scheduler 'nope'"),
        (["search", "--num-samples", "x"], "invalid int value"),
        (["search", "--objectives", "foo"], "unknown objective 'foo'"),
        (["resume", "/nonexistent/run"], "does not exist"),
        (["arch", "|bad~0|+|"], "bad"),
        (["trial", "--epochs", "0"], "max_epochs"),
        (["nonsense"], "invalid choice"),
    ],
)
def test_cli_errors_are_one_line_with_exit_code_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("robnas: error:")
    assert message in err


def test_yaml_errors(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("num_samples: [1,\n")
    assert main(["search", "--config", str(bad)]) == 2
    assert "YAML syntax error" in capsys.readouterr().err
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("num_sample: 3\n")
    assert main(["search", "--config", str(unknown)]) == 2
    assert "unknown key 'num_sample'" in capsys.readouterr().err


def test_python_dash_m_robnas_matches_console_script():
    out = subprocess.run([sys.executable, "-m", "robnas", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("robnas ")


def test_random_search_is_plain_random_unless_screening_is_asked_for():
    from robnas.search import SearchSettings

    assert SearchSettings(searcher="random").screen == 0
    assert SearchSettings(searcher="random", screen=16).screen == 16
    assert SearchSettings(searcher="tpe").screen == SearchSettings().screen == 32
    assert SearchSettings(searcher="tpe").replace(searcher="random").screen == 0


def test_yaml_takes_the_flags_names(tmp_path, capsys):
    import argparse

    from robnas.search._cli_search import add_search_parser, settings_from_args

    parser = argparse.ArgumentParser()
    add_search_parser(parser.add_subparsers())
    config = tmp_path / "s.yaml"
    config.write_text("objectives: [robust_acc, params]\nscore: robust_acc=1,params=-0.5\n")
    settings = settings_from_args(parser.parse_args(["search", "--config", str(config)]))
    assert dict(settings.score_weights) == {"robust_acc": 1.0, "params": -0.5}
    config.write_text("score: robust_acc=1\nscore_weights: {robust_acc: 1}\n")
    with pytest.raises(ValueError, match="give score or score_weights, not both"):
        settings_from_args(parser.parse_args(["search", "--config", str(config)]))


@pytest.mark.parametrize(("text", "count"), [
    (1500000, 1500000), (1.5e6, 1500000), ("1.5e6", 1500000), ("200k", 200000), ("3M", 3000000), ("1_000", 1000),
    ("0.5", 0.5),  # a results table's params column may count in millions
])
def test_size_limits_take_plain_and_suffixed_counts(text, count):
    settings = SearchSettings(max_params=text, max_macs=text)
    assert settings.max_params == settings.max_macs == count
    assert isinstance(settings.max_params, int) == (count == int(count))


@pytest.mark.parametrize(("text", "seconds"), [(90, 90.0), ("90", 90.0), ("90s", 90.0), ("30m", 1800.0),
                                               ("2h", 7200.0), ("1h30m", 5400.0), ("1m30s", 90.0)])
def test_time_budget_takes_durations(text, seconds):
    from robnas.search._units import format_duration, parse_duration

    assert SearchSettings(time_budget_s=text).time_budget_s == seconds
    assert parse_duration("t", format_duration(seconds)) == seconds


@pytest.mark.parametrize(("options", "message"), [
    ({"max_params": "lots"}, "max_params must be a number > 0"),
    ({"max_macs": 0}, "max_macs must be a number > 0"),
    ({"max_params": True}, "max_params must be a number > 0"),
    ({"max_params": "1e400"}, "max_params must be a number > 0"),
    ({"time_budget_s": "5x"}, "time_budget must be a duration"),
    ({"time_budget_s": 0}, "time_budget must be a duration"),
    ({"time_budget_s": "m30"}, "time_budget must be a duration"),
    ({"points": {"width": 8}}, "points must be a points file or a list"),
    ({"points": []}, "lists no point"),
    ({"points": [{"width": [8]}]}, "point 1: width must be a name or a finite number"),
    ({"points": [{"arch": "|bad~0|"}]}, "point 1: malformed NB201 cell string"),
])
def test_bad_limits_budgets_and_points_name_the_problem(options, message):
    with pytest.raises(ValueError) as error:
        SearchSettings.from_mapping(options)
    assert message in str(error.value)


def test_new_options_round_trip_and_take_their_flag_names_in_yaml(tmp_path):
    import argparse

    from robnas.search._cli_search import add_search_parser, settings_from_args

    points = tmp_path / "points.yaml"
    points.write_text("- {arch: '|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|', width: 8}\n"
                      "- {width: 16}\n")
    config = tmp_path / "s.yaml"
    config.write_text(f"max_params: 200k\nmax_macs: 1.5e6\ntime_budget: 1h30m\npoints: {points}\n")
    parser = argparse.ArgumentParser()
    add_search_parser(parser.add_subparsers())
    settings = settings_from_args(parser.parse_args(["search", "--config", str(config), "--max-macs", "3M"]))
    assert (settings.max_params, settings.max_macs, settings.time_budget_s) == (200_000, 3_000_000, 5400.0)
    assert settings.points[0]["edge_1_0"] == "nor_conv_3x3" and settings.points[0]["width"] == 8
    assert settings.points[1] == {"width": 16}
    assert SearchSettings.from_mapping(settings.to_dict()) == settings


def test_help_shows_every_new_flag_with_its_default(capsys):
    with pytest.raises(SystemExit):
        main(["search", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag in ("--max-params N", "--max-macs N", "--time-budget DURATION", "--points FILE"):
        start = text.index(flag, text.index("options:"))
        assert "(default: " in text[start:text.index(" --", start + len(flag))], flag


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["serch"], "argument COMMAND: invalid choice: 'serch'"),
        (["search", "--nm-samples", "3"], "search: unrecognized arguments: --nm-samples 3 (did you mean --num-samples?)"),
        (["search", "--seed", "x"], "search: argument --seed: invalid int value: 'x'"),
        (["search", "--scheduler", "ash"], "unknown scheduler 'ash' (did you mean asha?)"),
        (["search", "--objectives", "clean_acc,robst_acc"], "unknown objective 'robst_acc' (did you mean robust_acc?)"),
        (["search", "--space", "cel"], "unknown space part(s) 'cel' (did you mean cell?)"),
    ],
)
def test_errors_say_robnas_error_once_and_name_the_nearest_known_word(capsys, argv, expected):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("robnas: error: ") and err.count("robnas") == 1, err
    assert expected in err
    if argv == ["serch"]:
        assert err.rstrip().endswith("(did you mean search?)")


def test_help_shows_every_option_default_of_every_command(capsys):
    """Options with a value show their default; flags (store_true) and required ones do not."""
    for command in ("search", "proxies", "evaluate", "tabulate", "arch"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "(default: " in text or "(default " in text, command
    with pytest.raises(SystemExit):
        main(["search", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag, default in (("--num-samples NUM_SAMPLES", "12"), ("--scheduler SCHEDULER", "moasha"),
                          ("--storage-path STORAGE_PATH", "robnas_results"), ("--min-free-mb MIN_FREE_MB", "64.0")):
        start = text.index(flag, text.index("options:"))
        assert f"(default: {default})" in text[start:text.index(" --", start + len(flag))], flag
    assert "--quiet print nothing while the search runs, only its outcome --verbose" in text
