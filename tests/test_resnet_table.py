"""Results tables of ``resnet`` networks: descriptions that parse back, ``robnas tabulate
--space resnet``, and a table-backend search that draws only the table's networks."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from robnas.search._tabulate import TabulateSettings
from robnas.search._tabulate_archs import read_archs, sample_archs
from robnas.search.cli import main
from robnas.spaces._family import FAMILIES, parse_description
from robnas.spaces._genotype import EDGE_KEYS, OPS, Genotype
from robnas.spaces._nb201 import NB201Arch
from robnas.spaces._resnet import ACTIVATIONS, BLOCKS, KERNEL_SIZES, STEMS, ResNetArch
from robnas.trainables._resnet_count import resnet_sizes
from robnas.trainables._table import ResultTable, replay

RESNET = FAMILIES["resnet"]
# Three small digits networks: about a second an epoch each on one core.
NETWORKS = ("conv8k3-basic-d1-w8-k3-relu-se0", "conv8k3-preact-d1.1-w8.16-k3-gelu-se0.25",
            "conv8k3-bottleneck-d1-w16-k5-silu-se0")
# Small, fast trials on digits: FGSM-RS training, PGD-2 evaluation on 120 images.
FAST = ["--trial", "attack=fgsm_rs", "--trial", "eval_steps=2", "--trial", "eval_images=120"]


def _random_resnet(rng: np.random.Generator) -> ResNetArch:
    stages = int(rng.integers(1, 5))
    block = str(rng.choice(BLOCKS))
    stem = str(rng.choice(STEMS))
    return ResNetArch(
        stem=stem, stem_width=int(rng.integers(1, 200)),
        stem_kernel=int(rng.choice([1, 3, 5, 7])) if stem == "conv" else int(rng.integers(1, 9)),
        block=block, stage_depths=tuple(int(d) for d in rng.integers(1, 9, stages)),
        stage_widths=tuple(4 * int(w) for w in rng.integers(1, 130, stages)),
        kernel_size=int(rng.choice(KERNEL_SIZES)), activation=str(rng.choice(ACTIVATIONS)),
        se_ratio=float(rng.choice([0.0, 0.25, 0.5, rng.uniform(0, 1)])),
    )


def test_resnet_descriptions_parse_back_into_the_network():
    rng = np.random.default_rng(0)
    for _ in range(500):
        network = _random_resnet(rng)
        text = RESNET.describe(network)
        assert RESNET.parse(text) == network == parse_description(text)
        assert RESNET.decode({"arch": text}, dataset="digits") == network
    assert RESNET.describe(RESNET.parse(NETWORKS[1])) == NETWORKS[1]


def test_nb201_descriptions_parse_back_into_the_cell():
    rng = np.random.default_rng(1)
    for _ in range(200):
        network = NB201Arch(Genotype(tuple(str(op) for op in rng.choice(OPS, len(EDGE_KEYS)))))
        assert parse_description(FAMILIES["nb201"].describe(network)) == network


@pytest.mark.parametrize(("text", "message"), [
    ("", "not a resnet description: ''"),
    ("conv8k3-basic-d1-w8-k3-relu", "not a resnet description"),
    ("conv8k3-basic-d1-w8-k3-relu-se0 trailing", "not a resnet description"),
    ("conv8k3-basic-d1.1-w8-k3-relu-se0", "one width per stage"),
    ("conv8k4-basic-d1-w8-k3-relu-se0", "conv stem must be odd"),
    ("conv8k3-wide-d1-w8-k3-relu-se0", "block must be one of"),
    ("conv8k3-basic-d1-w8-k7-relu-se0", "kernel_size must be one of"),
    ("conv8k3-bottleneck-d1-w10-k3-relu-se0", "divisible by 4"),
    ("conv8k3-basic-d1.1.1.1.1-w8.8.8.8.8-k3-relu-se0", "1 to 4 stages"),
    ("conv8k3-basic-d1-w8-k3-relu-se1", "se_ratio"),
])
def test_a_malformed_resnet_description_is_refused_on_one_line(text, message):
    with pytest.raises(ValueError, match=message) as caught:
        RESNET.parse(text)
    assert "\n" not in str(caught.value)
    with pytest.raises(ValueError, match="is not a network description"):
        parse_description(text)


def test_a_table_keys_resnet_rows_by_description_beside_nb201_rows(tmp_path):
    cell = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
    frame = pd.DataFrame({"arch": [NETWORKS[0], NETWORKS[1], cell], "acc": [0.1, 0.2, 0.3]})
    table = ResultTable(frame)
    assert table.descriptions("resnet") == list(NETWORKS[:2]) and table.descriptions("nb201") == [cell]
    assert table.lookup(NETWORKS[1]) == {"acc": 0.2} == table.lookup(ResNetArch.from_str(NETWORKS[1]))
    assert NETWORKS[2] not in table
    with pytest.raises(ValueError, match="is not in table"):
        table.lookup(NETWORKS[2])
    network = ResNetArch.from_str(NETWORKS[1])
    [report] = replay(network, table)  # no params column: the closed-form count, 3 channels, 10 classes
    assert report["params"] == resnet_sizes(network, in_channels=3, input_size=(32, 32), num_classes=10)["params"]


def test_resnet_tabulation_lists_or_draws_its_networks(tmp_path):
    out = str(tmp_path / "r.csv")
    listed = tmp_path / "archs.txt"
    listed.write_text(f"# two networks, one listed twice\n{NETWORKS[0]}\n{NETWORKS[1]}  # SE\n{NETWORKS[0]}\n")
    archs = read_archs(listed, RESNET)
    assert archs == NETWORKS[:2]
    settings = TabulateSettings(out=out, space="resnet", archs=archs)
    assert settings.fixed_keys()["family"] == "resnet"
    drawn = TabulateSettings(out=out, space="resnet", num_samples=4, seed=3).archs
    assert len(set(drawn)) == 4 and drawn == sample_archs("resnet", 4, seed=3)
    assert all(RESNET.describe(RESNET.parse(text)) == text for text in drawn)
    with pytest.raises(ValueError, match="has no finite list of networks"):
        TabulateSettings(out=out, space="resnet")
    with pytest.raises(ValueError, match="have their own options"):
        TabulateSettings(out=out, space="resnet", archs=archs, trial={"stem_width": 8})


def test_a_tabulated_resnet_table_is_replayed_by_a_table_search(ray_session, tmp_path, capsys):
    out = tmp_path / "resnets.csv"
    listed = tmp_path / "archs.txt"
    listed.write_text("\n".join(NETWORKS) + "\n")
    argv = ["tabulate", "--space", "resnet", "--archs", str(listed), "--epochs", "1", "--out", str(out),
            "--max-concurrent", "1", "--quiet", *FAST]
    assert main(argv) == 0, capsys.readouterr().err
    frame = pd.read_csv(out)
    assert list(frame.arch) == list(NETWORKS) and list(frame.epoch) == [1, 1, 1]
    trained = frame.set_index("arch")

    argv = ["search", "--backend", "table", "--table", str(out), "--space", "resnet",
            "--objectives", "robust_acc,params", "--num-samples", "4", "--searcher", "random",
            "--scheduler", "fifo", "--storage-path", str(tmp_path / "runs"), "--name", "replay", "--seed", "1"]
    assert main(argv) == 0, capsys.readouterr().err
    trials = sorted((tmp_path / "runs" / "replay").glob("*/result.json"))
    assert trials
    for path in trials:
        config = json.loads((path.parent / "params.json").read_text())
        [report] = [json.loads(line) for line in path.read_text().splitlines() if line]
        assert config["family"] == "resnet" and config["arch"] in NETWORKS  # only the table's networks
        for name in ("robust_acc", "clean_acc", "params"):
            assert report[name] == trained.loc[config["arch"], name]
    assert main(["analyze", str(tmp_path / "runs" / "replay")]) == 0, capsys.readouterr().err
    front = pd.read_csv(tmp_path / "runs" / "replay" / "analysis" / "pareto.csv")
    assert set(front.arch) <= set(NETWORKS) and len(front) >= 1  # the front names networks by description
    summary = json.loads((tmp_path / "runs" / "replay" / "analysis" / "summary.json").read_text())
    quality = summary["table_front"]  # compared with the true front of the table's networks
    assert quality["table"] == str(out) and set(quality["regret"]) == {"robust_acc", "params"}
