"""``robnas proxies``: one cell as JSON, a file of cells as JSON lines, bad input exit 2."""

from __future__ import annotations

import json
import math

import pytest

from robnas.search.cli import main
from robnas.spaces._genotype import Genotype
from robnas.trainables._network import nb201_param_count

C = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
D = "|nor_conv_1x1~0|+|skip_connect~0|nor_conv_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
SMALL = ["--width", "4", "--cells", "1", "--input-size", "8", "--batch-size", "8"]


def run(capsys, *argv):
    code = main(["proxies", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_one_cell_as_json(capsys):
    code, out, err = run(capsys, C, *SMALL, "--json")
    assert code == 0 and err == ""
    scores = json.loads(out)
    assert list(scores) == ["params", "macs", "synflow", "snip", "grasp", "fisher", "grad_norm",
                            "jacob_cov", "nwot", "meco", "ntk_cond", "ntk_min_eig"]
    # NB201's 3-channel network whatever the batch's data set; the count is NB201's closed form.
    assert scores["params"] == nb201_param_count(Genotype.from_str(C), width=4, cells_per_stage=1,
                                                 in_channels=3, num_classes=10)
    assert all(v is None or math.isfinite(v) for v in scores.values())


def test_proxies_and_arch_describe_the_same_default_network(capsys):
    """One default per fact: with no flags both commands build NAS-Bench-201's CIFAR-10
    network (3 channels, 32 x 32, 10 classes, C=16, N=5)."""
    assert main(["arch", C, "--json"]) == 0
    described = json.loads(capsys.readouterr().out)
    code, out, _ = run(capsys, C, "--names", "params,macs", "--batch-size", "2", "--json")
    scored = json.loads(out)
    assert code == 0 and scored["params"] == described["params"] and scored["macs"] == described["macs"]
    assert described["params"] == nb201_param_count(Genotype.from_str(C), width=16, cells_per_stage=5,
                                                    in_channels=3, num_classes=10)


def test_names_eps_and_channels(capsys):
    code, out, _ = run(capsys, C, *SMALL, "--names", "params,synflow,nwot_adv", "--eps", "8",
                       "--in-channels", "3", "--num-classes", "5", "--json")
    assert code == 0
    scores = json.loads(out)
    assert list(scores) == ["params", "synflow", "nwot_adv"]
    assert scores["params"] == nb201_param_count(Genotype.from_str(C), width=4, cells_per_stage=1,
                                                 in_channels=3, num_classes=5)
    # synflow is reported in NASLib's log form: a few tens, not ~1e10.
    assert 0 < scores["synflow"] < 100


def test_same_seed_same_scores_and_text_output(capsys):
    first = json.loads(run(capsys, C, *SMALL, "--names", "snip,jacob_cov", "--json")[1])
    second = json.loads(run(capsys, C, *SMALL, "--names", "snip,jacob_cov", "--json")[1])
    assert first == second
    code, out, _ = run(capsys, C, *SMALL, "--names", "params")
    assert code == 0 and out.split()[0] == "params" and float(out.split()[1]) > 0


def test_archs_file_scores_every_line(capsys, tmp_path):
    path = tmp_path / "cells.txt"
    path.write_text(f"# two cells\n{C}\n\n{D}\n")
    code, out, err = run(capsys, "--archs", str(path), *SMALL, "--names", "params,nwot")
    assert code == 0 and err == ""
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["arch"] for r in rows] == [C, D]
    assert all(set(r) == {"arch", "params", "nwot"} for r in rows)
    assert rows[0]["params"] != rows[1]["params"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["|bogus~0|"], "malformed NB201"),
        ([], "either one ARCH or --archs"),
        ([C, "--archs", "x.txt"], "either one ARCH or --archs"),
        (["--archs", "/nonexistent/cells.txt"], "does not exist"),
        ([C, "--names", "params,bogus"], "unknown proxies"),
        ([C, "--width", "0"], "--width must be >= 1"),
        ([C, "--eps", "0"], "--eps must be in"),
        ([C, "--dataset", "imagenet"], "unknown dataset"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err


def test_empty_file_and_bad_line_name_the_file(capsys, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n# nothing\n")
    code, _, err = run(capsys, "--archs", str(empty))
    assert code == 2 and "lists no NB201 cell" in err
    bad = tmp_path / "bad.txt"
    bad.write_text(f"{C}\n|nor_conv_3x3~0|+|none~0|\n")
    code, out, err = run(capsys, "--archs", str(bad))
    assert code == 2 and out == "" and f"{bad}, line 2:" in err and err.count("\n") == 1
