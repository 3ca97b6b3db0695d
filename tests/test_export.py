"""``robnas export`` / ``load_model``: an exported network is the trained one, bit for bit.

The fast tests train one short trial with ``TrialRunner`` and lay it out as Tune does; the slow
ones run a real tiny digits search on Ray and analyse and export it end to end.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from robnas.analysis._export import EXPORT_FORMAT, export_model, load_model, select_trial
from robnas.analysis._load import load_experiment
from robnas.search.cli import main
from robnas.spaces import decode
from robnas.trainables import TrialRunner, evaluate_robustness, load_dataset

ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|"
CHEAP = {"width": 4, "cells_per_stage": 1, "attack": "fgsm_rs", "eval_steps": 2, "eval_images": 120,
         "max_epochs": 1, "sparsity": 0.5, "sparsity_schedule": "oneshot", "seed": 3}


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny networks train fastest on one thread, and the machine is shared; restored after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _fake_search(path: Path, configs: dict[str, dict]) -> Path:
    """Train each config for one epoch and write the search as Tune and robnas would."""
    path.mkdir()
    settings = {"max_epochs": 1, "objectives": ["clean_acc", "robust_acc"]}
    (path / "robnas.json").write_text(json.dumps({"settings": settings, "versions": {}}))
    for i, (trial_id, config) in enumerate(configs.items()):
        directory = path / f"trial_{trial_id}"
        (directory / "checkpoint_000000").mkdir(parents=True)
        (directory / "params.json").write_text(json.dumps(config))
        runner = TrialRunner(decode(config, ignore=("score_weights",)))
        metrics = runner.run_epoch()
        runner.save(directory / "checkpoint_000000" / "trial.pt")
        row = {**metrics, "diverged": False, "trial_id": trial_id, "training_iteration": 1, "done": True,
               "timestamp": 1_700_000_000 + i, "time_this_iter_s": 1.0,
               "checkpoint_dir_name": "checkpoint_000000"}
        (directory / "result.json").write_text(json.dumps(row) + "\n")
    return path


@pytest.fixture(scope="module")
def fake_search(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("export")
    return _fake_search(root / "s", {
        "aaaa": {"arch": ARCH, **CHEAP, "score_weights": {"robust_acc": 1.0}},
        "bbbb": {"arch": ARCH, **CHEAP, "sparsity": 0.0, "seed": 4},
    })


def _check_reloaded(path: Path, reported: dict) -> dict:
    model, info = load_model(path)
    data = load_dataset("digits")
    clean, robust = evaluate_robustness(model, data.x_val, data.y_val, info["trial_config"].evaluation)
    assert clean == pytest.approx(reported["clean_acc"], abs=1e-6)
    assert robust == pytest.approx(reported["robust_acc"], abs=1e-6)
    assert info["reported"]["clean_acc"] == reported["clean_acc"]
    return info


def test_export_and_reload_give_the_reported_accuracy(fake_search, tmp_path):
    out, info = export_model(fake_search, tmp_path / "model.pt", trial_id="aaaa")
    raw = torch.load(out, weights_only=True)  # plain tensors and values only
    assert raw["format"] == EXPORT_FORMAT and raw["arch"] == ARCH and raw["trial_id"] == "aaaa"
    assert raw["config"]["score_weights"] == {"robust_acc": 1.0} and raw["config"]["width"] == 4
    assert raw["num_classes"] == 10 and raw["in_channels"] == 1 and raw["input_shape"] == [1, 8, 8]
    assert raw["masks_sparsity"] == pytest.approx(0.5, abs=0.01)
    assert raw["weight_sparsity"] >= raw["masks_sparsity"] - 1e-9
    assert set(raw["masks"]) and all(m.dtype == torch.bool for m in raw["masks"].values())
    reported = json.loads((fake_search / "trial_aaaa" / "result.json").read_text().splitlines()[-1])
    info = _check_reloaded(out, reported)
    assert info["reported"]["sparsity"] == reported["sparsity"] and info["epoch"] == 1


def test_export_selects_knee_and_best(fake_search, tmp_path):
    experiment = load_experiment(fake_search)
    trials = experiment.trials.set_index("trial_id")
    best = trials["robust_acc"].astype(float).idxmax()
    assert select_trial(experiment, best="robust_acc") == best
    assert select_trial(experiment, best="clean_acc:min") == trials["clean_acc"].astype(float).idxmin()
    assert select_trial(experiment, knee=True) in {"aaaa", "bbbb"}
    path, info = export_model(fake_search, tmp_path, best="robust_acc")
    assert path == tmp_path / f"trial_{best}.pt" and info["trial_id"] == best


@pytest.mark.parametrize("options, message", [
    ({"trial_id": "zzzz"}, "no trial 'zzzz'"),
    ({}, "exactly one"),
    ({"knee": True, "best": "clean_acc"}, "exactly one"),
    ({"best": "nope"}, "unknown objective"),
    ({"best": "clean_acc,robust_acc"}, "one objective"),
])
def test_export_rejects_bad_choices(fake_search, tmp_path, options, message):
    with pytest.raises(ValueError, match=message):
        export_model(fake_search, tmp_path / "x.pt", **options)
    assert not (tmp_path / "x.pt").exists()


def test_export_without_checkpoint_and_bad_files(fake_search, tmp_path):
    copy = tmp_path / "s"
    copy.mkdir()
    (copy / "robnas.json").write_text((fake_search / "robnas.json").read_text())
    (copy / "trial_cccc").mkdir()
    (copy / "trial_cccc" / "params.json").write_text(json.dumps({"arch": ARCH}))
    with pytest.raises(ValueError, match="trial cccc .* has no checkpoint"):
        export_model(copy, tmp_path / "x.pt", trial_id="cccc")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="cannot read"):
        load_model(tmp_path / "junk.pt")
    torch.save({"format": "something/else"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a robnas model export"):
        load_model(tmp_path / "other.pt")


def test_a_corrupt_last_checkpoint_falls_back_to_the_newest_good_one(fake_search, tmp_path):
    copy = tmp_path / "s"
    shutil.copytree(fake_search, copy, ignore=shutil.ignore_patterns("trial_bbbb", "analysis"))
    good = copy / "trial_aaaa" / "checkpoint_000000" / "trial.pt"
    assert good.with_name("trial.pt.sha256").is_file()  # TrialRunner.save records the digest
    newer = copy / "trial_aaaa" / "checkpoint_000001"
    newer.mkdir()
    (newer / "trial.pt").write_bytes(good.read_bytes()[:-10])  # truncated by a crash
    (newer / "trial.pt.sha256").write_text(good.with_name("trial.pt.sha256").read_text())
    out, info = export_model(copy, tmp_path / "a.pt", trial_id="aaaa")
    assert info["checkpoint"] == "checkpoint_000000" and info["epoch"] == 1
    assert info["notes"] == ["skipped checkpoint_000001: it does not match trial.pt.sha256"]
    good.write_bytes(b"garbage")
    good.with_name("trial.pt.sha256").unlink()
    with pytest.raises(ValueError, match="no readable checkpoint of trial aaaa"):
        export_model(copy, tmp_path / "b.pt", trial_id="aaaa")


def test_export_command(fake_search, tmp_path, capsys):
    assert main(["export", str(fake_search), "--trial", "bbbb", "--out", str(tmp_path / "b.pt")]) == 0
    assert "exported trial bbbb" in capsys.readouterr().out
    assert load_model(tmp_path / "b.pt")[1]["trial_id"] == "bbbb"
    assert main(["export", str(fake_search), "--out", str(tmp_path / "c.pt")]) == 2
    assert "one of the arguments --trial --knee --best is required" in capsys.readouterr().err


def test_export_warns_of_damaged_rows_and_chooses_among_the_rest(fake_search, tmp_path, capsys):
    copy = tmp_path / "s"
    shutil.copytree(fake_search, copy, ignore=shutil.ignore_patterns("analysis"))
    result = copy / "trial_bbbb" / "result.json"
    row = json.loads(result.read_text())
    result.write_text(json.dumps(row | {"robust_acc": "n/a"}) + "\n[1, 2]\n")
    assert main(["export", str(copy), "--knee", "--out", str(tmp_path / "k.pt")]) == 0
    out, err = capsys.readouterr()
    assert err.splitlines() == [
        f"robnas: warning: {result} line 1: robust_acc \"n/a\" is not a number; row skipped",
        f"robnas: warning: {result} line 2: JSON array, not an object; row skipped",
    ]
    assert "exported trial aaaa" in out  # bbbb reported nothing usable: aaaa is the front


def test_export_never_replaces_what_it_was_not_asked_to(fake_search, tmp_path, capsys):
    earlier = tmp_path / "earlier.pt"
    earlier.write_bytes(b"an earlier export")
    settings = fake_search / "robnas.json"
    before = settings.read_bytes()
    refused = {
        str(earlier): "exists; use --force",
        str(settings): "inside the search directory",
        str(fake_search / "model.pt"): "inside the search directory",
        "/dev/null": "not a regular file",
    }
    for out, message in refused.items():
        assert main(["export", str(fake_search), "--trial", "bbbb", "--out", out]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, out
    assert earlier.read_bytes() == b"an earlier export" and settings.read_bytes() == before
    assert not (fake_search / "model.pt").exists()
    assert main(["export", str(fake_search), "--trial", "bbbb", "--out", str(earlier), "--force"]) == 0
    assert load_model(earlier)[1]["trial_id"] == "bbbb"
    assert main(["export", str(fake_search), "--trial", "bbbb", "--out", "/dev/null", "--force"]) == 2


# ---------------------------------------------------------------- a real search on Ray


@pytest.fixture(scope="module")
def digits_search(ray_session, tmp_path_factory) -> Path:
    from robnas.search import run

    storage = tmp_path_factory.mktemp("runs")
    cheap = {"width": 4, "cells_per_stage": 1, "attack": "fgsm_rs", "eval_images": 200}
    run(storage_path=str(storage), name="digits", num_samples=3, max_epochs=2, scheduler="fifo",
        searcher="random", objectives=("clean_acc", "robust_acc", "sparsity"), max_concurrent=2, seed=1,
        space=("cell", "sparsity"), trial=cheap)
    return storage / "digits"


@pytest.mark.slow
def test_exported_trials_of_a_real_search_give_the_reported_accuracy(digits_search, tmp_path):
    experiment = load_experiment(digits_search)
    assert len(experiment.trials) == 3
    for trial_id in experiment.trials["trial_id"]:
        out, info = export_model(digits_search, tmp_path, trial_id=trial_id)
        last = experiment.results[experiment.results["trial_id"] == trial_id].iloc[-1]
        assert info["epoch"] == last["epoch"] == 2
        _check_reloaded(out, last)


@pytest.mark.slow
def test_analyze_a_real_search_end_to_end(digits_search, capsys):
    assert main(["analyze", str(digits_search), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    out = digits_search / "analysis"
    for name in ("trials.csv", "pareto.csv", "hypervolume.csv", "summary.json", "scatter_matrix.png",
                 "hypervolume.png", "learning_curves.png", "report.html"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert summary["n_trials"] == summary["n_complete"] == 3 and summary["failed"] == []
    assert summary["objectives"] == ["clean_acc", "robust_acc", "sparsity"]
    trials = pd.read_csv(out / "trials.csv")
    values = trials[["clean_acc", "robust_acc", "sparsity"]].to_numpy(float)
    dominated = [any(np.all(values[j] >= values[i]) and np.any(values[j] > values[i]) for j in range(3))
                 for i in range(3)]
    assert trials["pareto"].tolist() == [not d for d in dominated]
    assert summary["n_pareto"] == len(pd.read_csv(out / "pareto.csv")) == 3 - sum(dominated)
    assert summary["knee"]["trial_id"] in set(trials.loc[trials["pareto"], "trial_id"])
    assert math.isfinite(summary["hypervolume"]) and summary["hypervolume"] >= 0.0
    curve = pd.read_csv(out / "hypervolume.csv")
    assert curve["hypervolume"].iloc[-1] == pytest.approx(summary["hypervolume"])
    assert (curve["wall_time_s"].diff().dropna() >= 0).all()
