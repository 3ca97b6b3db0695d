"""``robnas analyze DIR --optuna-storage URL``: a search's trials as an Optuna study."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, distribution_to_json
from optuna.study import StudyDirection
from optuna.trial import TrialState

from robnas.search.cli import main
from tests.test_analysis import standard_trials, trial, write_search

TWO = ["--objectives", "clean_acc,robust_acc"]


def searched(path: Path, space: dict | None = None) -> Path:
    """Record ``width`` and ``sparsity`` as searched, and (optionally) a searcher's saved space."""
    record = json.loads((path / "robnas.json").read_text())
    (path / "robnas.json").write_text(json.dumps({**record, "searched_keys": ["sparsity", "width"]}))
    if space is not None:
        state = {"kind": "searcher", "version": 1, "space": {k: distribution_to_json(d) for k, d in space.items()}}
        (path / "robnas-searcher-state-2026-01-01_00-00-00.json").write_text(json.dumps(state))
    return path


def search_with_configs(path: Path) -> Path:
    trials = standard_trials()
    for k, t in enumerate(trials):
        t["config"] = {"width": 8 * (1 + k % 2), "sparsity": [0.0, 0.5, 0.8][k % 3]}
    return write_search(path, trials)


def by_id(study) -> dict[str, optuna.trial.FrozenTrial]:
    return {t.user_attrs["trial_id"]: t for t in study.trials}


def test_finished_trials_become_an_optuna_study(tmp_path, capsys):
    path = searched(search_with_configs(tmp_path / "s"), {"width": CategoricalDistribution([8, 16])})
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    assert main(["analyze", str(path), *TWO, "--optuna-storage", url, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    study = optuna.load_study(study_name="s", storage=url)
    assert study.directions == [StudyDirection.MAXIMIZE, StudyDirection.MAXIMIZE]
    assert study.metric_names == ["clean_acc", "robust_acc"]
    trials = by_id(study)
    assert sorted(trials) == list("abcdefg")  # h is still running
    assert {k: t.state for k, t in trials.items()} == {
        **{k: TrialState.COMPLETE for k in "abcd"}, "e": TrialState.PRUNED,
        "f": TrialState.FAIL, "g": TrialState.FAIL}
    a = trials["a"]
    assert a.values == [0.9, 0.3] and a.intermediate_values == {1: 0.5, 2: 0.8, 3: 0.9}
    assert a.user_attrs["epochs"][0] == {"epoch": 1, "clean_acc": 0.5, "robust_acc": 0.1}
    assert a.user_attrs["arch"] and a.params == {"width": 8, "sparsity": 0.0}
    assert a.distributions["width"] == CategoricalDistribution([8, 16])  # the searcher's own
    assert a.distributions["sparsity"] == FloatDistribution(0.0, 0.8)  # inferred: no saved space
    assert trials["e"].values is None and trials["e"].intermediate_values == {1: 1.0}
    assert trials["f"].values is None and "nan" in trials["f"].user_attrs["error"]
    assert a.datetime_complete > a.datetime_start
    assert {t.user_attrs["trial_id"] for t in study.best_trials} == set(summary["pareto"]) == {"a", "b", "d"}


def test_writing_again_adds_only_new_trials(tmp_path, capsys):
    path = searched(search_with_configs(tmp_path / "s"))
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    argv = ["analyze", str(path), *TWO, "--optuna-storage", url, "--study-name", "mine"]
    assert main(argv) == 0
    assert "Optuna study 'mine' in sqlite:///" in capsys.readouterr().out
    assert main(argv) == 0
    assert "0 trials added, 7 already there, 1 not finished" in capsys.readouterr().out
    # h finishes: only it is added.
    lines = (path / "trial_h" / "result.json").read_text().splitlines()
    rows = [json.loads(lines[0]) | {"epoch": e, "training_iteration": e, "done": e == 3} for e in (1, 2, 3)]
    (path / "trial_h" / "result.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(argv) == 0
    assert "1 trial added, 7 already there, 0 not finished" in capsys.readouterr().out
    study = optuna.load_study(study_name="mine", storage=url)
    assert len(study.trials) == 8 and by_id(study)["h"].state == TrialState.COMPLETE
    assert {t.user_attrs["trial_id"] for t in study.best_trials} == {"a", "d", "h"}  # h (0.7, 0.7) beats b


def test_one_objective_and_values_inferred_without_a_record(tmp_path):
    trials = [trial("p", [(0.5, 0.4, 0.0)] * 2, config={"width": 8, "attack": "pgd"}),
              trial("q", [(0.6, 0.5, 0.0)], done=True, config={"width": 16, "attack": "trades"})]
    path = write_search(tmp_path / "s", trials, max_epochs=2)
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    assert main(["analyze", str(path), "--objectives", "robust_acc", "--optuna-storage", url]) == 0
    study = optuna.load_study(study_name="s", storage=url)
    p, q = by_id(study)["p"], by_id(study)["q"]
    assert study.direction == StudyDirection.MAXIMIZE and study.best_trial.user_attrs["trial_id"] == "p"
    assert q.state == TrialState.PRUNED and q.value == 0.5  # one objective: as Optuna's own pruned trials
    # No searched_keys recorded: the keys whose values differ (the seed is one, as written here).
    assert set(p.params) == {"attack", "seed", "width"}
    assert p.distributions["attack"] == CategoricalDistribution(["pgd", "trades"])


def test_a_clashing_study_or_a_bad_url_is_one_line_and_writes_nothing(tmp_path, capsys):
    path = searched(search_with_configs(tmp_path / "s"))
    other = searched(search_with_configs(tmp_path / "elsewhere" / "s"))
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    assert main(["analyze", str(path), *TWO, "--optuna-storage", url]) == 0
    capsys.readouterr()
    cases = {
        "other objectives": ([str(path), "--objectives", "clean_acc,params", "--optuna-storage", url],
                             "has the objectives clean_acc (maximize), robust_acc (maximize), not"),
        "another search of the same name": ([str(other), *TWO, "--optuna-storage", url],
                                            f"holds the search {path.resolve()}; choose another --study-name"),
        "not a URL": ([str(other), "--optuna-storage", "runs.db"], "cannot use the Optuna storage runs.db"),
        "no such directory": ([str(other), "--optuna-storage", f"sqlite:///{tmp_path}/nope/x.db"],
                              "unable to open database file"),
        "unknown dialect": ([str(other), "--optuna-storage", "foo://x"], "cannot use the Optuna storage foo://x"),
        "password hidden": ([str(other), "--optuna-storage", "foo://me:secret@host/db"], "foo://me:***@host/db"),
        "study name without storage": ([str(other), "--study-name", "x"], "--study-name needs --optuna-storage"),
        "several searches": ([str(path), str(other), "--out", str(tmp_path / "c"), "--optuna-storage", url],
                             "give one DIR"),
    }
    for name, (argv, expected) in cases.items():
        assert main(["analyze", *argv]) == 2, name
        err = capsys.readouterr().err
        assert err.startswith("robnas: error: ") and err.count("\n") == 1 and expected in err, (name, err)
        assert "secret" not in err
    assert not (other / "analysis").exists() and not (tmp_path / "c").exists()
    assert len(optuna.load_study(study_name="s", storage=url).trials) == 7
