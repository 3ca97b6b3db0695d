"""``robnas evaluate``: final numbers on the test split, AutoAttack's APGD, resume, analyze, export.

The run here is two digits trials trained for one epoch with ``TrialRunner`` and laid out as
Tune and robnas lay them out (no Ray), plus a dominated copy of one and a failed trial. APGD is
checked against a linear model whose L-inf distance to its decision boundary is known exactly.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from robnas.analysis._analyze import analyze
from robnas.analysis._autoattack import autoattack_correct
from robnas.analysis._evaluate import RESULT_KEYS, _test_split, choose_trials, evaluate, measure
from robnas.analysis._export import export_model, load_model
from robnas.analysis._final import COLUMNS, read_final
from robnas.analysis._front import analyze_trials, objectives_of
from robnas.analysis._load import load_experiment
from robnas.analysis._trial_model import load_trial_model
from robnas.search.cli import main
from robnas.spaces import decode
from robnas.trainables import TrialRunner, evaluate_robustness

ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|"
CHEAP = {"arch": ARCH, "width": 4, "cells_per_stage": 1, "attack": "fgsm_rs", "eval_steps": 2,
         "eval_images": 120, "max_epochs": 1, "sparsity": 0.5, "sparsity_schedule": "oneshot", "seed": 3}
IMAGES = 24  # test images per evaluation in the fast tests
EPS = 25.5 / 255  # digits' evaluation eps, as a fraction of 1


def _trial_dir(path: Path, trial_id: str, config: dict, rows: list[dict]) -> Path:
    directory = path / f"trial_{trial_id}"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "params.json").write_text(json.dumps(config))
    (directory / "result.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return directory


def _row(trial_id: str, metrics: dict, i: int) -> dict:
    return {**metrics, "diverged": False, "trial_id": trial_id, "training_iteration": 1, "done": True,
            "timestamp": 1_700_000_000 + i, "time_this_iter_s": 1.0, "checkpoint_dir_name": "checkpoint_000000"}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """aaaa, bbbb: trained one epoch; dddd: aaaa's network under another seed, reporting worse
    numbers (never on the front); eeee: failed before any checkpoint."""
    path = tmp_path_factory.mktemp("evaluate") / "s"
    path.mkdir()
    settings = {"max_epochs": 1, "objectives": ["clean_acc", "robust_acc"], "dataset": "digits",
                "data_dir": None, "backend": "train"}
    (path / "robnas.json").write_text(json.dumps({"settings": settings, "versions": {}}))
    for i, (trial_id, config) in enumerate({"aaaa": CHEAP, "bbbb": {**CHEAP, "sparsity": 0.0, "seed": 4}}.items()):
        runner = TrialRunner(decode(config))
        metrics = runner.run_epoch()
        directory = _trial_dir(path, trial_id, config, [_row(trial_id, metrics, i)])
        runner.save(directory / "checkpoint_000000" / "trial.pt")
    shutil.copytree(path / "trial_aaaa" / "checkpoint_000000", path / "trial_dddd" / "checkpoint_000000")
    worse = {"epoch": 1, "clean_acc": 0.01, "robust_acc": 0.0, "sparsity": 0.5}
    _trial_dir(path, "dddd", {**CHEAP, "seed": 5}, [_row("dddd", worse, 2)])  # not a duplicate of aaaa
    _trial_dir(path, "eeee", CHEAP, [])
    (path / "trial_eeee" / "error.txt").write_text("Failure # 1\nRuntimeError: boom\n")
    return path


@pytest.fixture
def copy(run, tmp_path) -> Path:
    """A fresh copy of the run, for a test that writes to it."""
    return Path(shutil.copytree(run, tmp_path / "s"))


@pytest.fixture(scope="module")
def front(run) -> list[str]:
    experiment = load_experiment(run)
    objectives = objectives_of(experiment.objectives, experiment.trials.columns)
    return analyze_trials(experiment.trials, objectives, max_epochs=1).summary["pareto"]


# ---------------------------------------------------------------- final.csv, --json, resume


def test_json_lines_and_final_csv(copy, front, capsys):
    assert main(["evaluate", str(copy), "--json", "--max-images", str(IMAGES)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["trial_id"] for line in lines] == front and set(front) <= {"aaaa", "bbbb"}
    final = pd.read_csv(copy / "analysis" / "final.csv", dtype={"trial_id": str})
    assert list(final.columns) == list(COLUMNS) and sorted(final["trial_id"]) == sorted(front)
    x, y = _test_split("digits", None)
    for line in lines:
        assert list(line) == list(RESULT_KEYS)
        assert line["split"] == "test" and line["attack"] == "apgd" and line["images"] == IMAGES
        assert line["eps"] == pytest.approx(EPS)
        assert 0.0 <= line["robust_acc"] <= line["clean_acc"] <= 1.0
        row = final.set_index("trial_id").loc[line["trial_id"]]
        assert row["clean_acc"] == line["clean_acc"] and row["robust_acc"] == line["robust_acc"]
        assert row["epoch"] == 1 and row["checkpoint"] == "checkpoint_000000" and row["split"] == "test"
        trial = load_trial_model(copy / f"trial_{line['trial_id']}", line["trial_id"])
        clean, _ = evaluate_robustness(trial.model, x[:IMAGES], y[:IMAGES], trial.trial_config.evaluation)
        assert line["clean_acc"] == clean


def test_table_output(copy, front, capsys):
    assert main(["evaluate", str(copy), "--trials", "aaaa", "--max-images", "8", "--attack", "pgd"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["trial", "epoch", "clean", "robust", "attack", "eps", "images"]
    assert out[1].split()[:2] == ["aaaa", "1"] and out[1].split()[4:] == ["pgd", "0.1", "8"]
    assert out[-1] == f"1 trial measured, 0 already in {copy / 'analysis' / 'final.csv'}"


def _counting_loads(calls: list[str]):
    def load(directory, trial_id):
        calls.append(trial_id)
        return load_trial_model(directory, trial_id)

    return load


def test_a_second_run_measures_nothing_and_changes_nothing(copy, front):
    first = list(evaluate(copy, max_images=IMAGES))
    file = copy / "analysis" / "final.csv"
    before, mtime = file.read_bytes(), file.stat().st_mtime_ns
    calls: list[str] = []
    again = list(evaluate(copy, max_images=IMAGES, load=_counting_loads(calls)))
    assert calls == [] and not any(r["measured"] for r in again)
    assert file.read_bytes() == before and file.stat().st_mtime_ns == mtime
    assert [{k: r[k] for k in RESULT_KEYS} for r in again] == [{k: r[k] for k in RESULT_KEYS} for r in first]
    # Other images or another attack are new measurements; a trial keeps one row per attack.
    list(evaluate(copy, max_images=IMAGES // 2, load=_counting_loads(calls), trials="aaaa"))
    list(evaluate(copy, max_images=IMAGES, load=_counting_loads(calls), trials="aaaa", attack="pgd"))
    assert calls == ["aaaa", "aaaa"]
    final = read_final(copy)
    expected = [(t, "apgd") for t in sorted({*front, "aaaa"})] + [("aaaa", "pgd")]
    assert sorted(zip(final["trial_id"], final["attack"])) == sorted(expected)
    assert final.set_index(["trial_id", "attack"]).loc[("aaaa", "apgd"), "images"] == IMAGES // 2


def test_an_interrupted_run_keeps_the_trials_it_finished(copy):
    results = evaluate(copy, trials="aaaa,bbbb", max_images=8)
    first = next(results)
    results.close()  # as a Ctrl-C between trials leaves it
    assert read_final(copy)["trial_id"].tolist() == [first["trial_id"]] == ["aaaa"]
    calls: list[str] = []
    rest = list(evaluate(copy, trials="aaaa,bbbb", max_images=8, load=_counting_loads(calls)))
    assert calls == ["bbbb"] and [r["measured"] for r in rest] == [False, True]
    assert rest[0]["robust_acc"] == first["robust_acc"]


def test_trial_selection(run, front):
    experiment = load_experiment(run)
    assert choose_trials(experiment, "front") == front and "dddd" not in front
    assert sorted(choose_trials(experiment, "all")) == ["aaaa", "bbbb", "dddd"]  # eeee failed
    assert choose_trials(experiment, "bbbb, aaaa,bbbb") == ["bbbb", "aaaa"]


def test_numbers_are_deterministic_and_leave_the_global_rng_alone(run, tmp_path):
    a, b = (Path(shutil.copytree(run, tmp_path / name)) for name in "ab")
    torch.manual_seed(123)
    state, threads = torch.random.get_rng_state(), torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        first = [{k: r[k] for k in RESULT_KEYS} for r in evaluate(a, trials="all", max_images=IMAGES)]
        assert torch.get_num_threads() == 2  # measured on one thread, then given back
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(torch.random.get_rng_state(), state)
    second = [{k: r[k] for k in RESULT_KEYS} for r in evaluate(b, trials="all", max_images=IMAGES)]
    assert first == second
    assert (a / "analysis" / "final.csv").read_bytes() == (b / "analysis" / "final.csv").read_bytes()


def test_pgd_is_the_per_epoch_attack_on_test_images(run):
    x, y = _test_split("digits", None)
    trial = load_trial_model(run / "trial_bbbb", "bbbb")
    evaluation = trial.trial_config.evaluation
    clean, robust = evaluate_robustness(trial.model, x[:IMAGES], y[:IMAGES], evaluation)
    row = measure(trial, x[:IMAGES], y[:IMAGES], attack="pgd")
    assert row["clean_acc"] == clean and row["robust_acc"] <= robust  # robust: also correct clean
    apgd = measure(trial, x[:IMAGES], y[:IMAGES], attack="apgd")
    assert apgd["clean_acc"] == clean and apgd["robust_acc"] <= apgd["clean_acc"]


def test_masks_are_applied(run):
    trial = load_trial_model(run / "trial_aaaa", "aaaa")
    assert trial.masks and any(not bool(m.all()) for m in trial.masks.values())
    for name, mask in trial.masks.items():
        assert not trial.model.get_parameter(name)[~mask].any()
    assert not trial.model.training


# ---------------------------------------------------------------- APGD against a known answer


class _FourWays(nn.Module):
    """Logits ``(d1, -d1, d2, -d2)`` of ``d = x - 0.5`` for inputs (N, 1, 1, 2): every pair of
    classes differs by a weight vector of L1 norm 2, so an image's L-inf distance to the
    decision boundary is (its logit - the runner-up's) / 2 (inside [0, 1], away from its edges)."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 4)
        with torch.no_grad():
            self.linear.weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]]))
            self.linear.bias.copy_(-self.linear.weight.sum(1) * 0.5)

    def forward(self, x):
        return self.linear(x.flatten(1))


def _known_case(eps: float, n: int = 400):
    """Images of ``_FourWays`` away from the edge of ``eps``, their labels (five wrong) and
    whether each is robust: correctly labelled and farther than ``eps`` from the boundary."""
    model = _FourWays()
    points = torch.rand(n, 2, generator=torch.Generator().manual_seed(0)) * 0.6 + 0.2  # [0.2, 0.8]^2
    x = points.view(-1, 1, 1, 2)
    with torch.no_grad():
        logits = model(x)
    top2 = logits.topk(2, dim=1).values
    distance = (top2[:, 0] - top2[:, 1]) / 2
    keep = (distance > 1.2 * eps) | (distance < 0.8 * eps)  # no image near the edge of the budget
    x, y, distance = x[keep], logits.argmax(1)[keep], distance[keep]
    y[:5] = (y[:5] + 1) % 4
    expected = distance > eps
    expected[:5] = False
    return model, x, y, expected


def test_apgd_breaks_exactly_the_images_closer_than_eps_to_the_boundary():
    model, x, y, expected = _known_case(0.05)
    assert 50 < int(expected.sum()) < len(x) - 50  # both kinds are there
    assert torch.equal(autoattack_correct(model, x, y, eps=0.05, attack="apgd", seed=0), expected)
    with torch.no_grad():
        correct = model(x).argmax(1) == y
    assert torch.equal(autoattack_correct(model, x, y, eps=0.0), correct)


def test_full_autoattack_finds_the_known_answer():
    model, x, y, expected = _known_case(0.05, n=120)
    assert torch.equal(autoattack_correct(model, x, y, eps=0.05, attack="autoattack", seed=0), expected)


def test_apgd_needs_four_classes():
    model = nn.Sequential(nn.Flatten(), nn.Linear(2, 3))
    with pytest.raises(ValueError, match="at least 4 classes"):
        autoattack_correct(model, torch.rand(4, 1, 1, 2), torch.zeros(4, dtype=torch.long), eps=0.1)


# ---------------------------------------------------------------- analyze and export


def test_analyze_puts_selection_and_final_numbers_side_by_side(copy, front, capsys):
    [before] = analyze([copy])
    assert before.summary["final"] is None and before.final is None
    list(evaluate(copy, trials="all", max_images=IMAGES))
    assert main(["analyze", str(copy)]) == 0
    out = capsys.readouterr().out
    assert "(selection numbers); final (test, apgd, 3 trials)" in out
    summary = json.loads((copy / "analysis" / "summary.json").read_text())
    final = summary["final"]
    assert final["attack"] == "apgd" and final["split"] == "test" and final["n_evaluated"] == 3
    assert final["images"] == [IMAGES] and final["eps"] == [pytest.approx(EPS)]
    table = pd.read_csv(copy / "analysis" / "final_vs_selection.csv", dtype={"trial_id": str}).set_index("trial_id")
    rows = read_final(copy).set_index("trial_id")
    for trial_id in ("aaaa", "bbbb", "dddd"):
        assert table.loc[trial_id, "final_robust_acc"] == rows.loc[trial_id, "robust_acc"]
        gap = table.loc[trial_id, "robust_acc"] - table.loc[trial_id, "final_robust_acc"]
        assert table.loc[trial_id, "robust_acc_gap"] == pytest.approx(gap)
    assert table.loc["dddd", "robust_acc"] == 0.0  # its reported (selection) number
    # dddd is aaaa's network: on final numbers it ties aaaa, and neither dominates the other.
    assert final["pareto"] == table.index[table["final_pareto"]].tolist()
    assert final["knee"]["trial_id"] in final["pareto"]
    page = (copy / "analysis" / "report.html").read_text()
    assert "Selection vs final numbers (test split, apgd)" in page and "final knee" in page


def test_export_says_what_to_feed_and_carries_the_final_numbers(copy, tmp_path, capsys):
    _, before = export_model(copy, tmp_path / "a.pt", trial_id="aaaa")
    assert before["final"] == []
    list(evaluate(copy, trials="aaaa", max_images=IMAGES))
    assert main(["export", str(copy), "--trial", "aaaa", "--out", str(tmp_path / "b.pt")]) == 0
    assert "final (test, apgd) clean_acc" in capsys.readouterr().out
    model, info = load_model(tmp_path / "b.pt")
    spec = info["input"]
    assert spec["shape"] == [1, 8, 8] and spec["channels"] == 1 and spec["height"] == spec["width"] == 8
    assert spec["range"] == [0.0, 1.0] and "divided by 16" in spec["scaling"]
    assert spec["normalization"].startswith("none")
    [row] = info["final"]
    assert row["attack"] == "apgd" and row["split"] == "test" and row["images"] == IMAGES
    assert row["robust_acc"] == read_final(copy).set_index("trial_id").loc["aaaa", "robust_acc"]
    x, y = _test_split("digits", None)
    with torch.no_grad():
        clean = (model(x[:IMAGES]).argmax(1) == y[:IMAGES]).float().mean().item()
    assert clean == pytest.approx(row["clean_acc"])


# ---------------------------------------------------------------- bad input


def _checksums(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_bad_input_is_one_line_exit_2_and_writes_nothing(copy, tmp_path, capsys):
    failed_only = tmp_path / "failed_only"
    failed_only.mkdir()
    shutil.copy(copy / "robnas.json", failed_only)
    shutil.copytree(copy / "trial_eeee", failed_only / "trial_eeee")
    table_run = tmp_path / "table_run"
    table_run.mkdir()
    settings = json.loads((copy / "robnas.json").read_text())
    settings["settings"]["backend"] = "table"
    (table_run / "robnas.json").write_text(json.dumps(settings))
    cases = {
        "unknown trial": (["evaluate", str(copy), "--trials", "aaaa,zzzz"], "no trial 'zzzz'"),
        "no trials named": (["evaluate", str(copy), "--trials", ","], "no trial"),
        "a failed trial": (["evaluate", str(copy), "--trials", "eeee"], "has no checkpoint"),
        "not a run": (["evaluate", str(tmp_path)], "not a robnas search"),
        "missing run": (["evaluate", str(tmp_path / "nope")], "does not exist"),
        "no finished trials": (["evaluate", str(failed_only)], "no finished trials"),
        "bad attack": (["evaluate", str(copy), "--attack", "fgsm"], "invalid choice: 'fgsm'"),
        "zero images": (["evaluate", str(copy), "--max-images", "0"], "--max-images"),
        "zero threads": (["evaluate", str(copy), "--threads", "0"], "--threads"),
        "a table search": (["evaluate", str(table_run)], "no networks to evaluate"),
    }
    (copy / "analysis").mkdir()
    before = _checksums(tmp_path)
    for name, (argv, expected) in cases.items():
        assert main(argv) == 2, name
        err = capsys.readouterr().err
        assert err.startswith("robnas: error: ") and err.count("\n") == 1 and expected in err, (name, err)
        assert _checksums(tmp_path) == before, name
    assert not (copy / "analysis" / "final.csv").exists()


def test_a_damaged_final_csv_is_named(copy, capsys):
    (copy / "analysis").mkdir()
    (copy / "analysis" / "final.csv").write_text("trial_id,clean_acc\naaaa,0.5\n")
    assert main(["evaluate", str(copy), "--trials", "aaaa"]) == 2
    assert "not a robnas final.csv" in capsys.readouterr().err


# ---------------------------------------------------------------- the full AutoAttack


@pytest.mark.slow
def test_full_autoattack_is_at_least_as_strong_as_apgd(copy):
    [apgd] = evaluate(copy, trials="bbbb", max_images=IMAGES)
    [full] = evaluate(copy, trials="bbbb", attack="autoattack", max_images=IMAGES)
    assert full["clean_acc"] == apgd["clean_acc"] and full["robust_acc"] <= apgd["robust_acc"]
    assert sorted(read_final(copy)["attack"]) == ["apgd", "autoattack"]
    assert np.isfinite(full["robust_acc"])


def test_a_corrupt_last_checkpoint_falls_back_and_says_so(copy, capsys):
    good = copy / "trial_bbbb" / "checkpoint_000000"
    newer = copy / "trial_bbbb" / "checkpoint_000001"
    shutil.copytree(good, newer)
    (newer / "trial.pt").write_bytes((good / "trial.pt").read_bytes()[:-10])  # cut by a crash
    assert main(["evaluate", str(copy), "--trials", "bbbb", "--max-images", "8", "--attack", "pgd"]) == 0
    out, err = capsys.readouterr()
    assert err == "robnas: warning: trial bbbb: skipped checkpoint_000001: it does not match trial.pt.sha256\n"
    assert read_final(copy).loc[0, "checkpoint"] == "checkpoint_000000"
