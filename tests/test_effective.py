"""One network, one key: configurations that train the same network are deduplicated."""

from __future__ import annotations

import pytest

from robnas.search import SearchSettings
from robnas.search._simulate import simulate
from robnas.spaces._effective import effective_key
from robnas.spaces._keys import config_key

CELL = "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"
# Node 1 feeds nothing (edges 2<-1 and 3<-1 are none): its own edge changes nothing.
ISOMORPH = "|avg_pool_3x3~0|+|skip_connect~0|none~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"


@pytest.mark.parametrize(("a", "b"), [
    ({"sparsity": 0.0, "sparsity_schedule": "oneshot"}, {"sparsity": 0.0, "sparsity_schedule": "gradual"}),
    ({"sparsity": 0.0, "sparsity_granularity": "channel"}, {}),  # a missing key counts as its default
    ({"sparsity": 0.5, "sparsity_schedule": "none"}, {"sparsity": 0.0}),  # schedule none: dense
    ({"sparsity": 0.0, "sparsity_schedule": "rigl", "sup_tickets": True}, {}),  # target 0: dense
    ({"sparsity": 0.5, "sparsity_schedule": "oneshot", "sparsity_update_every": 7, "sparsity_drop_fraction": 0.1},
     {"sparsity": 0.5, "sparsity_schedule": "oneshot"}),  # no mask updates to tune
    ({"sparsity": 0.5, "sparsity_schedule": "gradual", "sup_tickets": True},
     {"sparsity": 0.5, "sparsity_schedule": "gradual"}),  # Sup-tickets needs a dynamic schedule
    ({"attack": "fgsm_rs", "attack_steps": 1}, {"attack": "fgsm_rs", "attack_steps": 10}),
    ({"attack": "pgd", "trades_beta": 1.0}, {"attack": "pgd", "trades_beta": 6.0}),
    ({"attack": "none", "eps": 8.0, "step_size": 2.0}, {"attack": "none", "eps": 2.0}),
    ({"arch": CELL}, {"arch": ISOMORPH}),
])
def test_configurations_that_train_the_same_network_share_a_key(a, b):
    assert effective_key(a) == effective_key(b)


@pytest.mark.parametrize(("a", "b"), [
    ({"sparsity": 0.5, "sparsity_schedule": "oneshot"}, {"sparsity": 0.5, "sparsity_schedule": "gradual"}),
    ({"sparsity": 0.5, "sparsity_schedule": "oneshot"}, {"sparsity": 0.8, "sparsity_schedule": "oneshot"}),
    ({"sparsity": 0.5, "sparsity_schedule": "set"}, {"sparsity": 0.5, "sparsity_schedule": "rigl"}),
    ({"sparsity": 0.5, "sparsity_schedule": "rigl"}, {"sparsity": 0.5, "sparsity_schedule": "rigl", "sup_tickets": True}),
    ({"sparsity": 0.5, "sparsity_schedule": "rigl"}, {"sparsity": 0.5, "sparsity_schedule": "rigl", "sparsity_update_every": 7}),
    ({"attack": "trades", "trades_beta": 1.0}, {"attack": "trades", "trades_beta": 6.0}),
    ({"attack": "pgd", "attack_steps": 3}, {"attack": "pgd", "attack_steps": 7}),
    ({"attack": "fgsm_rs", "eps": 4.0}, {"attack": "fgsm_rs", "eps": 8.0}),
    ({"attack": "pgd", "eps": 0.0}, {"attack": "none"}),  # PGD at eps 0 still draws its random start
    ({"seed": 1}, {"seed": 2}),
])
def test_configurations_that_train_other_networks_have_other_keys(a, b):
    assert effective_key(a) != effective_key(b)


def test_the_fixed_keys_of_a_search_decide_what_a_searched_key_changes():
    gradual, oneshot = {"sparsity_schedule": "gradual"}, {"sparsity_schedule": "oneshot"}
    assert effective_key(gradual, {"sparsity": 0.8}) != effective_key(oneshot, {"sparsity": 0.8})
    assert effective_key(gradual, {"sparsity": 0.0}) == effective_key(oneshot, {"sparsity": 0.0})


def test_a_row_that_is_not_a_trial_config_falls_back_to_the_plain_key():
    row = {"arch": CELL, "pgd_eps8_acc": 40.0}
    assert effective_key(row) == config_key(row)


def test_a_search_over_cell_sparsity_and_attack_never_trains_one_network_twice():
    settings = SearchSettings(space=("cell", "sparsity", "attack"), num_samples=16, screen=0, searcher="random",
                              objectives=("clean_acc", "robust_acc"), seed=0)

    def reports(config):  # any values: what is launched does not depend on them with random search
        return [{"epoch": 1, "clean_acc": 0.5, "robust_acc": 0.25}]

    launched = [config for config, _ in simulate(settings, reports)]
    assert len(launched) == 16
    assert len({effective_key(c) for c in launched}) == 16


@pytest.mark.slow
def test_a_space_with_fewer_networks_than_asked_ends_when_exhausted_and_says_so(ray_session, tmp_path, capsys):
    from robnas.search.cli import main

    # --space attack: pgd, fgsm_rs and trades on the default cell: three networks.
    argv = ["search", "--space", "attack", "--num-samples", "5", "--max-epochs", "1", "--screen", "0",
            "--scheduler", "fifo", "--storage-path", str(tmp_path), "--name", "small",
            "--config", str(_write(tmp_path / "t.yaml", "trial: {eval_images: 16}\n"))]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "the space holds no other network: 3 distinct networks trained of the 5 asked for" in out
    assert "3 trials, 0 failed" in out


def _write(path, text):
    path.write_text(text)
    return path
