"""End-to-end on digits: a search whose dimensions are the sparse-training and robust-training
methods runs, and every trial records each method key."""

from __future__ import annotations

import json

import pytest

from robnas.search._progress import set_verbosity
from robnas.search._study_state import saved_state
from robnas.search.cli import main

pytestmark = pytest.mark.slow

#: The method keys the ``sparsity`` and ``training`` parts search.
METHOD_KEYS = ("sparsity_schedule", "sparsity_granularity", "sup_tickets",
               "awp_gamma", "weight_averaging", "part", "stop_on_overfit")


def test_a_search_over_the_method_parts_records_every_method_key(ray_session, tmp_path):
    config = tmp_path / "small.yaml"
    config.write_text("trial: {eval_steps: 2, eval_images: 100, attack_steps: 2}\n")
    try:
        code = main(["search", "--config", str(config), "--storage-path", str(tmp_path), "--quiet",
                     "--name", "methods", "--space", "cell,sparsity,attack,training", "--num-samples", "3",
                     "--max-epochs", "1", "--scheduler", "fifo", "--searcher", "random", "--screen", "0",
                     "--seed", "3"])
    finally:
        set_verbosity("normal")
    assert code == 0
    experiment = tmp_path / "methods"
    launched = saved_state(experiment)[1]["launched"]
    assert len(launched) == 3
    for trial_id in launched:
        trial = experiment / f"trial_{trial_id}"
        params = json.loads((trial / "params.json").read_text())
        assert set(METHOD_KEYS) <= set(params), sorted(set(METHOD_KEYS) - set(params))
        rows = (trial / "result.json").read_text().splitlines()
        assert json.loads(rows[-1])["epoch"] == 1
