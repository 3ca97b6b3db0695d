"""The resnet family through the search and the analysis: encoding, size limits, resolved keys,
and a digits search over ``resnet,attack`` exported and loaded back."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from robnas.search._encoding import FEATURE_NAMES, encode_config
from robnas.search._score_scales import space_size_ranges
from robnas.search._size_limits import SizeLimits
from robnas.spaces import build_space, decode, fill_defaults, resolve_fixed
from robnas.trainables._families import network_sizes

DIGITS = {"input_shape": (1, 8, 8), "num_classes": 10}
R18 = {"family": "resnet", "stage_depths": [2, 2, 2, 2], "stage_widths": [64, 128, 256, 512]}


def draws(space, count, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        yield {key: domain.sample(random_state=rng) if hasattr(domain, "sample") else domain
               for key, domain in space.items()}


def test_the_encoding_fills_the_trials_family_and_leaves_the_other_at_zero():
    resnet = dict(zip(FEATURE_NAMES, encode_config({**R18, "se_ratio": 0.25, "activation": "silu"})))
    nb201 = dict(zip(FEATURE_NAMES, encode_config({})))
    assert resnet["family=resnet"] == 1 and resnet["family=nb201"] == 0
    assert resnet["depth_4"] == 2 and resnet["log2_width_4"] == 9 and resnet["se_ratio"] == 0.25
    assert resnet["activation=silu"] == 1 and resnet["blocks"] == 8
    assert resnet["log2_width"] == 0 and resnet["count[nor_conv_3x3]"] == 0
    assert nb201["family=nb201"] == 1 and nb201["stages"] == 0 and nb201["count[nor_conv_3x3]"] == 5


def test_size_limits_count_resnet_networks_and_bound_the_space():
    space = build_space("resnet", dataset="digits")
    low, high = space_size_ranges(space, {"dataset": "digits"}, **DIGITS)["params"]
    limits = SizeLimits({"params": 200_000}, {"dataset": "digits"}, input_shape=(1, 8, 8), num_classes=10)
    limits.check_reachable(space)
    seen = []
    for config in draws(space, 150):
        params = network_sizes(decode(config).network, **DIGITS)["params"]
        assert low <= params <= high
        assert limits.sizes(config)["params"] == params
        assert limits.fits(config) == (params <= 200_000)
        seen.append(params)
    assert min(seen) < 200_000 < max(seen)  # the limit trims the digits space, and leaves most of it
    with pytest.raises(ValueError, match="no network of the space fits --max-params 100"):
        SizeLimits({"params": 100}, {"dataset": "digits"}, input_shape=(1, 8, 8), num_classes=10).check_reachable(space)


def test_a_resnet_space_resolves_no_architecture_key_and_fills_none():
    space = build_space("resnet,attack", dataset="digits")
    resolved = resolve_fixed({"dataset": "digits", "max_epochs": 1}, searched=space)
    assert not {"arch", "width", "cells_per_stage", "family", "stage_depths"} & set(resolved)
    for config in draws(space, 10):
        assert decode(fill_defaults(config, resolved)) == decode({**config, "max_epochs": 1})
    fixed = resolve_fixed({"dataset": "digits", **R18}, searched=["attack"])
    assert fixed["family"] == "resnet" and fixed["stage_widths"] == [64, 128, 256, 512] and "arch" not in fixed
    per_stage = {"stages": 1, "depth_1": 1, "width_1": 8}
    assert decode(fill_defaults({**per_stage}, fixed)).network.stage_widths == (8,)


@pytest.mark.slow
def test_a_digits_search_over_the_resnet_family_exports_a_network_that_loads(ray_session, tmp_path):
    from robnas.analysis import export_model, load_experiment, load_model
    from robnas.search import run

    grid = run(storage_path=str(tmp_path), name="resnet", space="resnet,attack", num_samples=3, max_epochs=1,
               max_params=200_000, trial={"eval_steps": 3})
    assert len(grid) == 3 and all(r.error is None for r in grid)
    record = json.loads((tmp_path / "resnet" / "robnas.json").read_text())
    assert "family" in record["searched_keys"]
    for result in grid:
        arch = decode({k: v for k, v in result.config.items() if k in {*build_space("resnet"), "dataset"}}).network
        assert network_sizes(arch, **DIGITS)["params"] == result.metrics["params"] <= 200_000
    trials = load_experiment(tmp_path / "resnet").trials
    assert trials["arch"].str.contains("-d").all()  # the family's one-line description
    out = tmp_path / "net.pt"
    export_model(tmp_path / "resnet", out, knee=True)
    model, info = load_model(out)
    assert info["trial_config"].family == "resnet" and info["arch"] == info["trial_config"].network.to_str()
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)


def test_a_candidate_drawn_from_the_searched_domains_alone_encodes_and_builds():
    """A searcher's pool holds the searched keys only: they must name the family themselves."""
    from robnas.search._candidate_proxies import CandidateScorer
    from robnas.search._domains import draw, searched_domains

    domains = searched_domains(build_space("resnet,attack", dataset="digits"))
    rng = np.random.default_rng(0)
    scorer = CandidateScorer(names=("params", "synflow"))
    for _ in range(5):
        candidate = draw(domains, rng)
        assert np.isfinite(encode_config(candidate)).all()
        scores = scorer(candidate)
        assert scores["params"] == network_sizes(decode(candidate).network, **DIGITS)["params"]


def test_space_options_set_the_ranges_a_search_draws_from(tmp_path):
    from robnas.search._run import _param_space
    from robnas.search._settings import SearchSettings

    options = {"resnet": {"depths": [2, 3], "widths": [16, 32], "stages": [2], "blocks": ["preact"]}}
    settings = SearchSettings(storage_path=str(tmp_path), space="resnet,attack", space_options=options)
    assert SearchSettings.from_mapping(json.loads(json.dumps(settings.to_dict()))) == settings
    space, _ = _param_space(settings)
    for config in draws({k: v for k, v in space.items() if k in build_space("resnet")}, 20):
        arch = decode(config).network
        assert len(arch.stage_depths) == 2 and set(arch.stage_depths) <= {2, 3}
        assert set(arch.stage_widths) <= {16, 32} and arch.block == "preact"
    with pytest.raises(ValueError, match="space part 'resnet' has no option 'depth'"):
        build_space("resnet", options={"resnet": {"depth": [1, 2]}})
    with pytest.raises(ValueError, match="space_options for part.*cell not in the space"):
        SearchSettings(space="resnet", space_options={"cell": {}})
