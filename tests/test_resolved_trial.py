"""The resolved trial configuration: recorded in robnas.json, filled into every trial's config."""

from __future__ import annotations

import json

import numpy as np
import pytest

from robnas.search._run import _param_space, _write_settings, read_trial_record
from robnas.search._settings import SearchSettings
from robnas.search._trainables import with_trial_defaults
from robnas.spaces import DEFAULT_ARCH, EDGE_KEYS, decode, encode, fill_defaults, resolve_fixed
from robnas.spaces._compose import CONFIG_FIELDS
from robnas.spaces._resolve import KEYS_ADDED

CELL = "|nor_conv_1x1~0|+|skip_connect~0|nor_conv_3x3~1|+|none~0|avg_pool_3x3~1|nor_conv_3x3~2|"


def test_every_shared_key_is_resolved_for_the_dataset():
    resolved = resolve_fixed({"dataset": "cifar10", "data_dir": "/d", "max_epochs": 3, "eval_images": 8},
                             searched=[*EDGE_KEYS, "attack"])
    expected = [key for key in ("width", "cells_per_stage", *CONFIG_FIELDS) if key != "attack"]
    assert list(resolved) == expected  # no arch: the cell is searched
    assert resolved["eval_images"] == 8 and resolved["max_epochs"] == 3 and resolved["data_dir"] == "/d"
    assert (resolved["eval_steps"], resolved["eval_step_size"], resolved["augment"]) == (20, 1.0, True)
    assert (resolved["width"], resolved["cells_per_stage"], resolved["batch_size"]) == (16, 5, 256)
    assert json.loads(json.dumps(resolved)) == resolved
    fixed_cell = resolve_fixed({"dataset": "digits"}, searched=["sparsity"])
    assert fixed_cell["arch"] == DEFAULT_ARCH and "sparsity" not in fixed_cell
    assert resolve_fixed({"attack": "fgsm_rs"}, searched=[])["step_size"] is None
    with pytest.raises(ValueError, match="'augment'"):
        resolve_fixed({"dataset": "mnist", "augment": True}, searched=[])


@pytest.mark.parametrize(
    "sampled",
    [{"attack": "fgsm_rs"}, {"attack": "pgd"}, {"attack": "trades", "width": 8},
     {"arch": CELL}, dict(zip(EDGE_KEYS, ["none"] * 3 + ["nor_conv_3x3"] * 3))],
)
def test_filled_configs_decode_as_the_sampled_ones(sampled):
    searched = ["attack", "width", *EDGE_KEYS]
    fixed = {"dataset": "svhn", "max_epochs": 2}
    defaults = resolve_fixed(fixed, searched=searched)
    config = {**fixed, **sampled}
    filled = fill_defaults(config, defaults)
    assert decode(filled) == decode(config)
    assert set(filled) >= set(config) and all(filled[k] == v for k, v in config.items())


def test_recorded_values_win_over_changed_defaults():
    defaults = resolve_fixed({"dataset": "digits"}, searched=[*EDGE_KEYS])
    changed = {**defaults, "eval_steps": 3, "width": 4}
    trial = decode(fill_defaults({"edge_1_0": "none", **dict.fromkeys(EDGE_KEYS[1:], "skip_connect")}, changed))
    assert (trial.evaluation.steps, trial.macro.width) == (3, 4)
    assert decode(fill_defaults({"attack": "fgsm_rs"}, changed)).attack.step_size is None
    assert decode(fill_defaults({"attack": "fgsm_rs", "step_size": 4}, changed)).attack.step_size == 4.0


def test_a_trial_of_a_search_recorded_before_eval_loss_is_read_with_cross_entropy(tmp_path):
    """``robnas evaluate --attack pgd`` repeats the attack a trial ran, not today's default."""
    from robnas.analysis._trial_model import trial_config_of
    from robnas.spaces._resolve import complete_record

    settings = SearchSettings(name="x", storage_path=str(tmp_path))
    resolved = resolve_fixed({"dataset": "digits", "max_epochs": 2}, searched=[*EDGE_KEYS])
    trial_dir = tmp_path / "trial_a"
    trial_dir.mkdir()
    (trial_dir / "params.json").write_text(json.dumps({"dataset": "digits", "max_epochs": 2, "edge_1_0": "none",
                                                       **dict.fromkeys(EDGE_KEYS[1:], "skip_connect")}))
    assert decode({}).evaluation.loss == "ce+margin"
    for recorded, expected in (({**resolved, "eval_loss": "margin"}, "margin"),
                               ({k: v for k, v in resolved.items() if k != "eval_loss"}, "ce")):
        _write_settings(tmp_path, settings, {"resolved_trial": recorded, "searched_keys": sorted(EDGE_KEYS)})
        assert trial_config_of(trial_dir)[1].evaluation.loss == expected
        assert read_trial_record(tmp_path)["resolved_trial"]["eval_loss"] == expected
    old = {k: v for k, v in resolved.items() if k not in ("sparsity_drop_fraction", "sparsity_update_every", "sup_tickets")}
    _write_settings(tmp_path, settings, {"resolved_trial": old, "searched_keys": sorted(EDGE_KEYS)})
    completed = read_trial_record(tmp_path)["resolved_trial"]
    assert completed["sup_tickets"] is False and completed["sparsity_schedule"] == "none"
    sparsity = trial_config_of(trial_dir)[1].sparsity
    assert not sparsity.active and not sparsity.sup_tickets  # dense, as it trained
    (tmp_path / "robnas.json").unlink()  # a trial outside a search: today's defaults
    assert trial_config_of(trial_dir)[1].evaluation.loss == "ce+margin"
    table_record = {"width": 16, "table": "t.csv"}  # a table search's record is left as it is
    assert complete_record(table_record) == table_record


def test_a_trial_of_a_search_recorded_before_eval_schedule_is_read_with_its_constant_step(tmp_path):
    """Its ``eval_step_size`` was recorded; only the schedule is filled in, with the old one."""
    from robnas.analysis._trial_model import trial_config_of

    settings = SearchSettings(name="x", storage_path=str(tmp_path))
    resolved = resolve_fixed({"dataset": "digits", "max_epochs": 2}, searched=[*EDGE_KEYS])
    assert (resolved["eval_schedule"], resolved["eval_step_size"]) == ("cosine", 51.0)  # today's digits default
    trial_dir = tmp_path / "trial_a"
    trial_dir.mkdir()
    (trial_dir / "params.json").write_text(json.dumps({"dataset": "digits", "max_epochs": 2, "edge_1_0": "none",
                                                       **dict.fromkeys(EDGE_KEYS[1:], "skip_connect")}))
    old = {**{k: v for k, v in resolved.items() if k != "eval_schedule"}, "eval_step_size": 6.375}
    _write_settings(tmp_path, settings, {"resolved_trial": old, "searched_keys": sorted(EDGE_KEYS)})
    evaluation = trial_config_of(trial_dir)[1].evaluation
    assert (evaluation.schedule, evaluation.step_size, evaluation.loss) == ("constant", 6.375, "ce+margin")


def test_param_space_records_the_resolved_trial_keys(tmp_path):
    path = tmp_path / "images.npz"
    rng = np.random.default_rng(0)
    np.savez(path, x_train=rng.integers(0, 256, (20, 3, 8, 8), dtype=np.uint8), y_train=rng.integers(0, 3, 20),
             x_test=rng.integers(0, 256, (4, 3, 8, 8), dtype=np.uint8), y_test=rng.integers(0, 3, 4))
    settings = SearchSettings(dataset="npz", data_dir=str(path), space="cell,macro", max_epochs=2,
                              trial={"eval_images": 8, "augment": True})
    space, record = _param_space(settings)
    resolved = record["resolved_trial"]
    assert record["searched_keys"] == sorted([*EDGE_KEYS, "width", "cells_per_stage"])
    assert not set(resolved) & set(record["searched_keys"]) and "arch" not in resolved
    assert resolved["dataset"] == "npz" and resolved["data_dir"] == str(path) and resolved["max_epochs"] == 2
    assert resolved["augment"] is True and resolved["eval_steps"] == 20 and resolved["eval_step_size"] == 1.0
    assert {k: v for k, v in encode(decode({**space_sample(space), **resolved})).items() if k in resolved} == resolved
    assert space["eval_images"] == 8 and "eval_steps" not in space  # Tune's space keeps what was given


def space_sample(space):
    return {key: domain.sample() for key, domain in space.items() if hasattr(domain, "sample")}


def test_table_backend_records_the_macro_its_replay_uses(shared_data):
    table = shared_data / "nasrobbench201_cifar10.csv"
    settings = SearchSettings(backend="table", table=str(table), objectives="clean_acc,params", max_epochs=1)
    _, record = _param_space(settings)
    assert record["resolved_trial"]["width"] == 16 and record["resolved_trial"]["cells_per_stage"] == 5
    assert record["resolved_trial"]["table"] and "arch" not in record["resolved_trial"]


def test_robnas_json_round_trip_and_old_files(tmp_path):
    settings = SearchSettings(name="x", storage_path=str(tmp_path))
    record = {"resolved_trial": {"width": 8, "eval_steps": 10, "eval_loss": "margin", "eval_schedule": "apgd"},
              "searched_keys": ["edge_1_0"],
              "score_scales": {"params": [10.0, 20.0]}}
    _write_settings(tmp_path, settings, record)
    saved = json.loads((tmp_path / "robnas.json").read_text())
    assert set(saved) == {"settings", "resolved_trial", "searched_keys", "score_scales", "versions"}
    # Recorded before the robust-training and dynamic sparsity keys existed: its trials trained
    # without those methods, and no trial had a dynamic schedule or tickets.
    added = {"awp_gamma": 0.0, "weight_averaging": "none", "ema_decay": 0.999, "wot_segments": 4, "part": False,
             "part_eps_low": 0.875, "stop_on_overfit": False,
             "sparsity_drop_fraction": 0.3, "sparsity_update_every": 100, "sup_tickets": False}
    assert read_trial_record(tmp_path) == {**record, "resolved_trial": {**record["resolved_trial"], **added}}
    # Recorded before eval_loss existed: its trials ascended cross-entropy, whatever today's default.
    before_loss = {**record, "resolved_trial": {"width": 8, "eval_steps": 10}}
    _write_settings(tmp_path, settings, before_loss)
    assert read_trial_record(tmp_path)["resolved_trial"] == {"width": 8, "eval_steps": 10, **KEYS_ADDED}
    assert KEYS_ADDED["eval_loss"] == "ce" and KEYS_ADDED["eval_schedule"] == "constant"
    # Recorded after eval_loss, before eval_schedule: its trials' PGD took a constant step.
    before_schedule = {**record, "resolved_trial": {"width": 8, "eval_steps": 10, "eval_loss": "margin"}}
    _write_settings(tmp_path, settings, before_schedule)
    assert read_trial_record(tmp_path)["resolved_trial"] == {**KEYS_ADDED, "width": 8, "eval_steps": 10,
                                                             "eval_loss": "margin"}
    older = {"resolved_trial": {"width": 8}, "searched_keys": []}  # before score_scales: none
    _write_settings(tmp_path, settings, older)
    assert read_trial_record(tmp_path) == {**older, "score_scales": {}}
    _write_settings(tmp_path, settings, None)  # a search started before the record existed
    assert read_trial_record(tmp_path) is None
    (tmp_path / "robnas.json").write_text(json.dumps({"settings": {}, "resolved_trial": [1]}))
    with pytest.raises(ValueError, match="resolved_trial must be a mapping"):
        read_trial_record(tmp_path)


def test_trainable_with_defaults_keeps_its_name_for_tune():
    seen = []

    def robust_trainable(config):
        seen.append(config)

    wrapped = with_trial_defaults(robust_trainable, {"width": 4, "step_size": 2.0})
    assert wrapped.__name__ == "robust_trainable"
    wrapped({"width": 8, "attack": "fgsm_rs"})
    wrapped({"attack": "pgd"})
    assert seen == [{"width": 8, "attack": "fgsm_rs"}, {"attack": "pgd", "width": 4, "step_size": 2.0}]


# --------------------------------------------------------------------------- through Ray Tune


def _search(tmp_path, name, **options):
    from robnas.search import run

    run(storage_path=str(tmp_path), name=name, num_samples=1, max_epochs=1, scheduler="fifo",
        searcher="random", space="sparsity", screen=0, trial={"eval_steps": 2, "eval_images": 30}, **options)
    return tmp_path / name


def _last_rows(experiment):
    rows = []
    for trial in sorted(experiment.glob("trial_*")):
        lines = (trial / "result.json").read_text().splitlines()
        rows.append(json.loads(lines[-1]))
    return rows


@pytest.mark.slow
def test_resume_trains_with_the_recorded_values_after_a_default_changed(ray_session, tmp_path, monkeypatch):
    from types import MappingProxyType

    from robnas.search import resume
    from robnas.spaces import _compose
    from robnas.trainables import build_network, count_macs

    digits = MappingProxyType({**_compose.DATASET_DEFAULTS["digits"], "width": 4})
    monkeypatch.setattr(_compose, "DATASET_DEFAULTS", {**_compose.DATASET_DEFAULTS, "digits": digits})
    experiment = _search(tmp_path, "changed")
    assert read_trial_record(experiment)["resolved_trial"]["width"] == 4
    monkeypatch.undo()  # the default changes (back to 8) between the search and its resume
    assert decode({}).macro.width == 8
    grid = resume(experiment, num_samples=2)
    assert len(grid) == 2 and all(result.error is None for result in grid)
    from robnas.spaces import Genotype

    width4 = count_macs(build_network(Genotype.from_str(DEFAULT_ARCH), width=4, cells_per_stage=1,
                                      in_channels=1, num_classes=10), (1, 8, 8))
    for row in _last_rows(experiment):
        config = row["config"]
        channels_moved = (config["sparsity_schedule"] in ("set", "rigl") and config["sparsity"] > 0
                          and config["sparsity_granularity"] == "channel")
        # Dynamic channel sparsity reports the MACs of the channels kept.
        assert row["macs"] < width4 if channels_moved else row["macs"] == width4
    assert read_trial_record(experiment)["resolved_trial"]["width"] == 4  # kept when resume rewrites it


@pytest.mark.slow
def test_a_search_recorded_without_resolved_values_still_resumes(ray_session, tmp_path):
    from robnas.search import resume

    experiment = _search(tmp_path, "old")
    file = experiment / "robnas.json"
    data = json.loads(file.read_text())
    del data["resolved_trial"], data["searched_keys"]
    file.write_text(json.dumps(data))
    grid = resume(experiment, num_samples=2)
    assert len(grid) == 2 and all(result.error is None for result in grid)
    assert "resolved_trial" not in json.loads(file.read_text())
