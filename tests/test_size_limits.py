"""Size limits: closed-form sizes of a config, the cheapest network of a space, screening pools."""

from __future__ import annotations

import pandas as pd
import pytest
from ray.tune.search import Searcher

from robnas.search._screening import Screen
from robnas.search._size_limits import SizeLimits
from robnas.search._study import StudySearcher
from robnas.spaces import Genotype
from robnas.spaces._compose import build_space
from robnas.trainables._cost_range import size_ranges
from robnas.trainables._network import nb201_mac_count, nb201_param_count

DIGITS = {"input_shape": (1, 8, 8), "num_classes": 10}
FIXED = {"width": 8, "cells_per_stage": 1}
A = "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"
C = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def cell(arch, **rest):
    return {**Genotype.from_str(arch).to_config(), **rest}


def test_sizes_are_the_closed_form_counts_of_the_config_with_the_fixed_keys():
    limits = SizeLimits({"params": 10**9, "macs": 10**9}, FIXED, **DIGITS)
    shape = {"cells_per_stage": 2, "in_channels": 1, "num_classes": 10}
    assert limits.sizes(cell(C, width=16, cells_per_stage=2)) == {
        "params": nb201_param_count(Genotype.from_str(C), width=16, **shape),
        "macs": nb201_mac_count(Genotype.from_str(C), width=16, input_size=(8, 8), **shape),
    }
    fixed_cell = SizeLimits({"params": 10**9}, {**FIXED, "arch": A}, **DIGITS)
    assert fixed_cell.sizes({}) == {"params": nb201_param_count(Genotype.from_str(A), **FIXED, in_channels=1)}


def test_excess_names_the_limit():
    params = nb201_param_count(Genotype.from_str(C), **FIXED, in_channels=1)
    limits = SizeLimits({"params": params - 1}, FIXED, **DIGITS)
    assert limits.excess(cell(A)) is None and limits.fits(cell(A))
    assert limits.excess(cell(C)) == f"params {params:,} > max_params {params - 1:,}"


def test_a_limit_below_the_cheapest_network_of_the_space_or_of_a_point_is_refused():
    space = build_space(("cell", "macro"))
    edges = [list(space[key].categories) for key in Genotype.from_str(A).to_config()]
    smallest = size_ranges(edges, [8, 16], [1, 2], **DIGITS)["params"][0]
    SizeLimits({"params": smallest}, {}, **DIGITS).check_reachable(space)
    with pytest.raises(ValueError, match=f"no network of the space fits --max-params {smallest - 1:,.0f}: "
                                         f"the smallest has {smallest:,.0f} parameters"):
        SizeLimits({"params": smallest - 1}, {}, **DIGITS).check_reachable(space)
    with pytest.raises(ValueError, match="point 2 is too large for --max-macs"):
        macs = size_ranges(edges, [8], [1], **DIGITS)["macs"][0]
        SizeLimits({"macs": macs}, {}, **DIGITS).check_reachable(space, [{"width": 8}, {"width": 16}])


def test_a_table_with_a_params_column_gives_the_parameters(tmp_path):
    table = tmp_path / "t.csv"
    pd.DataFrame({"arch": [A, C], "acc": [0.5, 0.7], "params": [0.2, 0.9]}).to_csv(table, index=False)
    limits = SizeLimits({"params": 0.5}, {"width": 16, "cells_per_stage": 5}, table=str(table))
    assert limits.sizes({"arch": C}) == {"params": 0.9} and limits.excess({"arch": C}) == "params 0.9 > max_params 0.5"
    space = build_space(("cell",))
    with pytest.raises(ValueError, match="the smallest has 0.2 parameters"):
        SizeLimits({"params": 0.1}, {"width": 16, "cells_per_stage": 5}, table=str(table)).check_reachable(space)


def test_screening_pools_and_neighbours_drop_candidates_above_the_limit():
    limit = nb201_param_count(Genotype.from_str(C), **FIXED, in_channels=1)
    limits = SizeLimits({"params": limit}, FIXED, **DIGITS)
    scorer = lambda config: {"params": float(Genotype.from_config(config).ops.count("nor_conv_3x3"))}  # noqa: E731
    screen = Screen(("score",), size=8, proxy_names=("params",), vote=("params",), scorer=scorer, n_estimators=5)
    s = StudySearcher("random", seed=2, budget=12, screen=screen, limits=limits)
    s.set_search_properties(None, None, build_space(("cell",)))
    seen = []
    original = screen.choose

    def choose(pool, *args, **kwargs):
        index = original(pool, *args, **kwargs)
        seen.extend(candidate.config for candidate in pool)  # neighbours included
        return index

    screen.choose = choose
    for i in range(13):
        config = s.suggest(f"t{i}")
        if config is Searcher.FINISHED:
            break
        s.on_trial_complete(f"t{i}", {"score": scorer(config)["params"]})
    assert i == 12 and len(seen) > 12 * 8 and s.num_infeasible > 0  # the sampler did propose larger ones
    assert all(limits.fits(config) for config in seen)
