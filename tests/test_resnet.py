"""The resnet family: published parameter counts, closed-form counts against the built module,
decoding of both stage forms, bad configs, and the space part."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from robnas.spaces import ResNetArch, build_space, decode, encode
from robnas.spaces._effective import effective_key
from robnas.trainables._counting import count_macs, count_parameters
from robnas.trainables._families import build_model, network_sizes
from robnas.trainables._resnet_count import resnet_sizes

WRN = {"stem_width": 16, "block": "preact", "stage_widths": (160, 320, 640)}

#: (network, published parameters on 3x32x32 images with 10 classes)
PUBLISHED = [
    (ResNetArch(), 11_173_962),  # ResNet-18 (He et al.'s CIFAR variant)
    (ResNetArch(stage_depths=(4, 4, 4), **WRN), 36_479_194),  # WRN-28-10
    (ResNetArch(stage_depths=(5, 5, 5), **WRN), 46_160_474),  # WRN-34-10
]


@pytest.mark.parametrize(("arch", "params"), PUBLISHED)
def test_standard_networks_have_their_published_parameter_counts(arch, params):
    assert resnet_sizes(arch)["params"] == params
    assert count_parameters(build_model(arch, in_channels=3, num_classes=10)) == params


def random_arch(rng: random.Random) -> ResNetArch:
    block = rng.choice(["basic", "preact", "bottleneck"])
    stages = rng.randint(1, 4)
    return ResNetArch(
        stem=rng.choice(["conv", "patchify"]), stem_width=rng.randint(1, 12), stem_kernel=rng.choice([1, 3]),
        block=block, stage_depths=tuple(rng.randint(1, 2) for _ in range(stages)),
        stage_widths=tuple(4 * rng.randint(1, 4) for _ in range(stages)),
        kernel_size=rng.choice([3, 5]), activation=rng.choice(["relu", "silu", "gelu"]),
        se_ratio=rng.choice([0.0, 0.1, 0.25, 0.5]),
    )


def test_closed_form_counts_match_the_built_network_on_random_configs():
    rng = random.Random(0)
    for _ in range(25):
        arch = random_arch(rng)
        shape = (rng.choice([1, 3]), rng.choice([7, 8, 11]), rng.choice([8, 9]))
        classes = rng.randint(2, 12)
        model = build_model(arch, in_channels=shape[0], num_classes=classes)
        expected = {"params": count_parameters(model), "macs": count_macs(model, shape)}
        assert network_sizes(arch, input_shape=shape, num_classes=classes) == expected, arch
        assert model(torch.zeros(2, *shape)).shape == (2, classes)


def test_every_stage_after_the_first_halves_the_resolution():
    arch = ResNetArch(stem="patchify", stem_width=8, stem_kernel=2, stage_depths=(1, 1, 1), stage_widths=(8, 8, 8))
    model = build_model(arch, in_channels=3, num_classes=10)
    sizes = []
    model.blocks.register_forward_hook(lambda module, inputs, output: sizes.append(output.shape[-2:]))
    model(torch.zeros(1, 3, 32, 32))
    assert tuple(sizes[0]) == (4, 4)  # 32 / 2 (patches) / 2 / 2


def test_both_stage_forms_decode_to_the_same_network_and_encode_as_lists():
    lists = decode({"family": "resnet", "stage_depths": [1, 2], "stage_widths": [8, 16]})
    per_stage = decode({"family": "resnet", "stages": 2, "depth_1": 1, "width_1": 8, "depth_2": 2, "width_2": 16,
                        "depth_3": 2, "width_3": 64})
    assert lists == per_stage and lists.family == "resnet"
    flat = encode(lists)
    assert flat["family"] == "resnet" and flat["stage_depths"] == [1, 2] and "arch" not in flat
    assert decode(flat) == lists
    assert effective_key({"family": "resnet", "stage_depths": [1, 2], "stage_widths": [8, 16]}) == effective_key(
        {"family": "resnet", "stages": 2, "depth_1": 1, "width_1": 8, "depth_2": 2, "width_2": 16, "depth_3": 1})
    assert decode({"family": "resnet", "dataset": "cifar10"}).network == ResNetArch()
    assert "family" not in encode(decode({}))  # NB201 configs keep their keys


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"stage_depths": [1, 2], "stage_widths": [8]}, "'stage_widths'.*one width per stage"),
        ({"stage_depths": [1, 0], "stage_widths": [8, 8]}, "'stage_depths'.*>= 1"),
        ({"stage_depths": [], "stage_widths": []}, "'stage_depths'.*1 to 4 stages"),
        ({"stage_depths": [1] * 5, "stage_widths": [8] * 5}, "1 to 4 stages"),
        ({"block": "bottleneck", "stage_depths": [1], "stage_widths": [10]}, "divisible by 4"),
        ({"se_ratio": 1.0}, "'se_ratio'.*\\[0, 1\\)"),
        ({"se_ratio": -0.1}, "'se_ratio'"),
        ({"kernel_size": 4}, "'kernel_size'"),
        ({"stem_kernel": 2}, "conv stem must be odd"),
        ({"activation": "tanh"}, "'activation'"),
        ({"width": 16}, "'width' belongs to the nb201 family"),
        ({"stage_depths": [1], "stage_widths": [8], "stages": 1}, "either as stage_depths"),
        ({"depth_1": 1}, "need 'stages'"),
        ({"stages": 2, "depth_1": 1, "width_1": 8}, "depth_2, width_2"),
    ],
)
def test_bad_resnet_configs_name_the_key(config, message):
    with pytest.raises(ValueError, match=message):
        decode({"family": "resnet", **config})


def test_unknown_family_and_nb201_keys_in_a_resnet_config_are_rejected():
    with pytest.raises(ValueError, match="unknown architecture family 'resnett' \\(did you mean resnet"):
        decode({"family": "resnett"})
    with pytest.raises(ValueError, match="'stem' belongs to the resnet family.*'nb201'"):
        decode({"stem": "conv"})


def test_the_space_part_draws_valid_networks_within_its_ranges():
    space = build_space("resnet", dataset="digits")
    assert space["family"].categories == ["resnet"]
    for seed in range(40):
        rng = np.random.default_rng(seed)
        sample = {key: domain.sample(random_state=rng) if hasattr(domain, "sample") else domain
                  for key, domain in space.items()}
        arch = decode(sample).network
        assert 1 <= len(arch.stage_depths) <= 3 and set(arch.stage_depths) <= {1, 2}
        assert set(arch.stage_widths) <= {8, 16, 32, 64}


def test_arch_command_counts_a_network_of_either_family_from_a_yaml_file(tmp_path, capsys):
    import json

    from robnas.search.cli import main

    wrn = tmp_path / "wrn.yaml"
    wrn.write_text("family: resnet\nstem_width: 16\nblock: preact\nstage_depths: [4, 4, 4]\n"
                   "stage_widths: [160, 320, 640]\n")
    assert main(["arch", "--config", str(wrn), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert (row["family"], row["params"]) == ("resnet", 36_479_194)
    assert row["macs"] == network_sizes(decode({"family": "resnet", "stem_width": 16, "block": "preact",
                                                "stage_depths": [4, 4, 4], "stage_widths": [160, 320, 640]}).network,
                                        input_shape=(3, 32, 32), num_classes=10)["macs"]
    small = tmp_path / "small.yaml"
    small.write_text("family: resnet\nstage_depths: [1]\nstage_widths: [8]\nstem_width: 4\n")
    assert main(["arch", "--config", str(small), "--in-channels", "1", "--input-size", "8", "--num-classes", "3",
                 "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    arch = ResNetArch(stem_width=4, stage_depths=(1,), stage_widths=(8,))
    assert row["params"] == network_sizes(arch, input_shape=(1, 8, 8), num_classes=3)["params"]
    nb201 = tmp_path / "nb201.yaml"
    nb201.write_text("width: 16\ncells_per_stage: 5\n")
    assert main(["arch", "--config", str(nb201), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["family"] == "nb201"
