"""Points to evaluate first: reading and checking them, and the searcher launching them first."""

from __future__ import annotations

import pytest
from ray import tune
from ray.tune.search import Searcher

from robnas.search._points import check_points, load_points
from robnas.search._study import StudySearcher
from robnas.spaces import OPS, Genotype
from robnas.spaces._compose import build_space

A = "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"
B = "|nor_conv_1x1~0|+|avg_pool_3x3~0|none~1|+|skip_connect~0|none~1|none~2|"  # isomorphic to A
C = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def cell(arch, **rest):
    return {**Genotype.from_str(arch).to_config(), **rest}


def space():
    return {**{key: tune.choice(OPS) for key in cell(C)}, "width": tune.choice([8, 16]),
            "sparsity": tune.choice([0.0, 0.5])}


def searcher(points, **options):
    s = StudySearcher("tpe", points_to_evaluate=points, seed=1, **options)
    s.set_search_properties(None, None, space())
    return s


def test_files_of_mappings_and_of_nb201_strings(tmp_path):
    (tmp_path / "p.yaml").write_text(f"- {{arch: '{A}', width: 8}}\n- {{width: 16}}\n")
    (tmp_path / "p.json").write_text(f'[{{"arch": "{A}", "width": 8}}, {{"width": 16}}]')
    (tmp_path / "p.txt").write_text(f"# cells\n{A}\n\n{C}  # the default's neighbour\n")
    expected = (cell(A, width=8), {"width": 16})
    assert load_points(str(tmp_path / "p.yaml")) == load_points(tmp_path / "p.json") == expected
    assert load_points(str(tmp_path / "p.txt")) == (cell(A), cell(C))
    assert load_points(list(expected)) == expected  # as recorded in robnas.json


@pytest.mark.parametrize(("name", "content", "message"), [
    ("bad.txt", f"{A}\n|bad~0|\n", "points file {file}, line 2: malformed NB201"),
    ("empty.txt", "# nothing\n", "lists no NB201 cell"),
    ("map.yaml", "width: 8\n", "must hold a list of mappings"),
    ("syntax.yaml", "- {width: 8\n", "YAML syntax error at line"),
    ("syntax.json", "[{\"width\": 8,}]", "JSON syntax error at line 1"),
    ("scalar.yaml", "- 8\n", "point 1 is not a mapping"),
    ("both.yaml", f"- {{arch: '{A}', edge_1_0: none}}\n", "point 1 gives the cell both as arch and as edge keys"),
    ("arch.yaml", "- {width: 8}\n- {arch: nope}\n", "point 2: malformed NB201"),
])
def test_bad_files_name_the_point_or_line(tmp_path, name, content, message):
    file = tmp_path / name
    file.write_text(content)
    with pytest.raises(ValueError) as error:
        load_points(str(file))
    assert message.format(file=file) in str(error.value)


@pytest.mark.parametrize(("points", "message"), [
    ([{"width": 8}, {"widht": 16}], "point 2: 'widht' is not searched by the space (did you mean width?)"),
    ([{"width": 32}], "point 1: width 32 is not one of 8, 16"),
    ([{"width": True}], "point 1: width True is not one of 8, 16"),
    ([{"edge_1_0": "max_pool_3x3"}], "point 1: edge_1_0 'max_pool_3x3' is not one of"),
    ([{"eps": 8}], "point 1: 'eps' is not searched"),
])
def test_points_outside_the_space_are_refused(points, message):
    with pytest.raises(ValueError) as error:
        check_points(points, build_space(("cell", "macro")))
    assert message in str(error.value)


def test_numeric_domains_check_their_bounds():
    numeric = {"sparsity": tune.uniform(0.0, 0.9), "width": tune.randint(8, 17)}
    check_points([{"sparsity": 0.5, "width": 16}], numeric)
    for point, message in (({"sparsity": 0.95}, "not in [0.0, 0.9]"), ({"width": 17}, "an integer in [8, 16]"),
                           ({"width": 8.5}, "an integer"), ({"sparsity": "x"}, "must be a number")):
        with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
            check_points([point], numeric)


def test_points_are_launched_first_unscreened_and_completed_by_the_sampler():
    s = searcher([cell(A, width=8, sparsity=0.5), {"width": 16}], budget=4)
    assert s.suggest("t1") == cell(A, width=8, sparsity=0.5)
    second = s.suggest("t2")
    assert second["width"] == 16 and set(second) == set(space())  # the rest proposed
    trials = s.study.trials
    assert [t.user_attrs["origin"] for t in trials] == ["point", "point"]
    assert trials[1].system_attrs["fixed_params"] == {"width": 16}  # through Optuna's enqueue_trial
    assert s.suggest("t3") is not None and s.study.trials[2].user_attrs["origin"] != "point"


def test_a_point_of_a_network_already_launched_is_skipped():
    s = searcher([cell(A, width=8, sparsity=0.0), cell(B, width=8, sparsity=0.0), cell(C, width=8, sparsity=0.0)])
    s.suggest("t1")
    s.on_trial_complete("t1", {"score": 0.5})
    assert s.suggest("t2") == cell(C, width=8, sparsity=0.0)  # B trains A's network
    assert s.num_duplicates == 1
    assert [t.user_attrs.get("duplicate_of") for t in s.study.trials] == [None, "t1", None]


def test_points_count_in_the_budget():
    s = searcher([cell(A, width=8), cell(C, width=8), cell(C, width=16)], budget=2)
    assert [s.suggest("t1")["edge_2_0"], s.suggest("t2")["edge_2_0"]] == ["none", "nor_conv_3x3"]
    assert s.suggest("t3") == Searcher.FINISHED


def test_a_restored_search_does_not_launch_a_point_twice(tmp_path):
    points = [cell(A, width=8, sparsity=0.0), cell(C, width=16, sparsity=0.5)]
    one = searcher(points, budget=3)
    assert one.suggest("t1") == points[0]
    one.save(str(tmp_path / "state.json"))
    two = searcher(points, budget=3)
    two.restore(str(tmp_path / "state.json"))
    assert two.suggest("t2") == points[1] == one.suggest("t2")
    assert two.suggest("t3") == one.suggest("t3")
    assert two.suggest("t4") == Searcher.FINISHED
