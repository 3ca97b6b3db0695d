"""NB201 network: structure, exact NAS-Bench-201 parameter counts, MAC and non-zero counting."""

from __future__ import annotations

import types
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from robnas.trainables._counting import count_macs, count_parameters
from robnas.trainables._network import EDGES, build_network, nb201_param_count
from robnas.trainables._ops import OP_MODULES

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
ZC_CSV = DATA / "naslib_zc_nb201_cifar10.csv"

ALL_CONV3 = ("nor_conv_3x3",) * 6
ALL_NONE = ("none",) * 6
ALL_SKIP = ("skip_connect",) * 6
MIXED = ("nor_conv_3x3", "avg_pool_3x3", "skip_connect", "nor_conv_1x1", "none", "nor_conv_3x3")


def parse_arch(text: str) -> tuple[str, ...]:
    """Six op names of an NB201 string (Genotype.from_str when available)."""
    try:
        from robnas.spaces._genotype import Genotype
    except ImportError:
        nodes = text.strip("|").split("|+|")
        return tuple(tok.split("~")[0] for node in nodes for tok in node.split("|"))
    return Genotype.from_str(text).ops


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small convolutions run fastest, and most predictably on a shared machine, on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def zc_table():
    if not ZC_CSV.exists():
        pytest.skip(f"reference data not found at {ZC_CSV}")
    import pandas as pd

    table = pd.read_csv(ZC_CSV, dtype={"params": str, "flops": str})
    table["ops"] = [parse_arch(a) for a in table["arch"]]
    return table


def sample_rows(table, n: int):
    """Deterministic sample: smallest and largest networks plus evenly spaced rows."""
    params = table["params"].astype(float)
    picks = {int(params.idxmin()), int(params.idxmax())}
    step = len(table) / (n - len(picks))
    picks.update(int(k * step) for k in range(n - len(picks)))
    return table.loc[sorted(picks)]


def seeded_network(ops, seed: int = 0, **kwargs) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_network(ops, **kwargs)


# ---------------------------------------------------------------- parameter counts


def test_closed_form_param_count_matches_nasbench201_for_all_cells(zc_table):
    assert len(zc_table) == 9445
    ours = [f"{nb201_param_count(ops) / 1e6:.6f}" for ops in zc_table["ops"]]
    rows = zip(zc_table["arch"], ours, zc_table["params"])
    mismatches = [(a, o, p) for a, o, p in rows if o != p]
    assert mismatches == []


def test_module_param_count_matches_nasbench201_and_closed_form_on_sample(zc_table):
    rows = sample_rows(zc_table, 200)
    assert len(rows) == 200
    for ops, params in zip(rows["ops"], rows["params"]):
        model = build_network(ops)
        count = count_parameters(model)
        assert count == sum(p.numel() for _, p in model.named_parameters())
        assert count == nb201_param_count(ops)
        assert f"{count / 1e6:.6f}" == params


def test_param_counts_of_extreme_cells():
    # stem 464 + reductions 14,464 + 57,600 + last BN 128 + classifier 650 = 73,306
    assert count_parameters(build_network(ALL_NONE)) == 73_306
    assert count_parameters(build_network(ALL_SKIP)) == 73_306
    assert count_parameters(build_network(ALL_CONV3)) == 1_531_546
    for ops, kwargs in [(MIXED, {}), (MIXED, dict(width=8, cells_per_stage=1, in_channels=1)),
                        (ALL_CONV3, dict(width=4, cells_per_stage=2, num_classes=3))]:
        assert count_parameters(build_network(ops, **kwargs)) == nb201_param_count(ops, **kwargs)


def test_macs_relate_exactly_to_naslib_flops_column(zc_table):
    # NASLib's `flops` = dense conv/linear MACs + 0.160832 M (macro skeleton) + 3 per output
    # element of each cell conv (ReLU + affine BN) + 9 per output element of each 3x3 pool.
    # Per op over the 15 cells of a C=16 network: conv 0.43008 M, pool 1.29024 M.
    rows = sample_rows(zc_table, 24)
    for ops, flops in zip(rows["ops"], rows["flops"]):
        macs = count_macs(build_network(ops), (3, 32, 32))
        n_conv = sum(op.startswith("nor_conv") for op in ops)
        n_pool = ops.count("avg_pool_3x3")
        predicted = macs / 1e6 + 0.160832 + 0.43008 * n_conv + 1.29024 * n_pool
        assert predicted == pytest.approx(float(flops), abs=1e-4)


# ---------------------------------------------------------------- structure and forward


def test_registry_matches_contract_and_shapes():
    assert tuple(OP_MODULES) == ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
    x = torch.rand(2, 4, 7, 7)
    for name, make in OP_MODULES.items():
        op = make(4, 4, 1)
        assert op(x).shape == (2, 4, 7, 7), name
        n_params = sum(p.numel() for p in op.parameters())
        expected = {"nor_conv_1x1": 16 + 8, "nor_conv_3x3": 144 + 8}.get(name, 0)
        assert n_params == expected, name
        assert make(4, 8, 2)(x).shape == (2, 8, 4, 4), name
    assert OP_MODULES["none"](4, 4, 1)(x).abs().sum() == 0


def test_edges_agree_with_genotype_module():
    assert EDGES == ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
    try:
        from robnas.spaces._genotype import EDGES as genotype_edges
    except ImportError:
        pytest.skip("robnas.spaces._genotype not available")
    assert tuple(genotype_edges) == EDGES


@pytest.mark.parametrize(
    "kwargs, shape",
    [
        (dict(width=8, cells_per_stage=1, in_channels=1), (5, 1, 8, 8)),
        ({}, (2, 3, 32, 32)),
        (dict(width=4, cells_per_stage=1, in_channels=1), (2, 1, 9, 9)),  # odd sizes too
    ],
)
def test_output_shape(kwargs, shape):
    model = seeded_network(MIXED, **kwargs)
    assert model(torch.rand(shape)).shape == (shape[0], 10)


def test_accepts_genotype_objects_and_sequences():
    text = "|nor_conv_3x3~0|+|avg_pool_3x3~0|skip_connect~1|+|nor_conv_1x1~0|none~1|nor_conv_3x3~2|"
    ops = parse_arch(text)
    assert ops == MIXED
    from_list = seeded_network(list(ops), width=4, cells_per_stage=1)
    from_obj = seeded_network(types.SimpleNamespace(ops=ops), width=4, cells_per_stage=1)
    try:
        from robnas.spaces._genotype import Genotype
    except ImportError:
        genotype = types.SimpleNamespace(ops=ops)
    else:
        genotype = Genotype.from_str(text)
    from_genotype = seeded_network(genotype, width=4, cells_per_stage=1)
    x = torch.rand(3, 3, 8, 8)
    from_list.eval(), from_obj.eval(), from_genotype.eval()
    assert torch.equal(from_list(x), from_obj(x))
    assert torch.equal(from_list(x), from_genotype(x))


def test_all_none_cell_gives_constant_logits():
    model = seeded_network(ALL_NONE, width=8, cells_per_stage=2, in_channels=1)
    x = torch.rand(4, 1, 8, 8)
    y = torch.rand(4, 1, 8, 8) * 5
    for mode in (model.train, model.eval):
        mode()
        out = model(torch.cat([x, y]))
        assert torch.allclose(out, out[:1].expand_as(out))


def _reference_forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """NB201 InferCell semantics: every edge computed, ``none`` as an explicit zero tensor."""
    out = model.stem(x)
    for block in model.cells:
        if not hasattr(block, "edges"):
            out = block(out)
            continue
        nodes = [out]
        for j in range(1, 4):
            terms = []
            for (to_node, from_node), op in zip(EDGES, block.ops):
                if to_node == j:
                    key = f"edge_{to_node}_{from_node}"
                    module = block.edges[key] if op != "none" else OP_MODULES["none"](block.C, block.C, 1)
                    terms.append(module(nodes[from_node]))
            nodes.append(sum(terms))
        out = nodes[-1]
    return model.classifier(torch.flatten(model.global_pooling(model.lastact(out)), 1))


@pytest.mark.parametrize(
    "ops",
    [
        MIXED,
        ALL_CONV3,
        # node 1 and node 2 only through none: node 3 sums ops on zero tensors
        ("none", "none", "nor_conv_1x1", "skip_connect", "nor_conv_3x3", "avg_pool_3x3"),
        # node 1 unused (its only out-edges are none): skipped, output unchanged
        ("nor_conv_3x3", "nor_conv_1x1", "none", "skip_connect", "none", "nor_conv_3x3"),
    ],
)
def test_forward_equals_reference_semantics(ops):
    model = seeded_network(ops, width=4, cells_per_stage=2, in_channels=1)
    with torch.no_grad():  # non-trivial BN statistics
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.bias.uniform_(-0.5, 0.5)
    model.eval()
    x = torch.rand(3, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(model(x), _reference_forward(model, x), atol=1e-6)


def test_gradient_reaches_every_parameter():
    model = seeded_network(MIXED, width=4, cells_per_stage=2, in_channels=1)
    x = torch.rand(8, 1, 8, 8, requires_grad=True)
    nn.functional.cross_entropy(model(x), torch.arange(8) % 10).backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name
    assert x.grad.abs().sum() > 0


def test_unused_node_parameters_get_no_gradient():
    ops = ("nor_conv_3x3", "nor_conv_1x1", "none", "skip_connect", "none", "nor_conv_3x3")
    model = seeded_network(ops, width=4, cells_per_stage=1, in_channels=1)
    model(torch.rand(4, 1, 8, 8)).sum().backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None]
    assert dead and all(".edges.edge_1_0." in n for n in dead)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(genotype=MIXED[:5]), "6 ops"),
        (dict(genotype=("conv_5x5",) + MIXED[1:]), "conv_5x5"),
        (dict(genotype="|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|"), "from_str"),
        (dict(genotype=42), "42"),
        (dict(genotype=MIXED, width=0), "width"),
        (dict(genotype=MIXED, width=2.5), "width"),
        (dict(genotype=MIXED, cells_per_stage=-1), "cells_per_stage"),
        (dict(genotype=MIXED, in_channels=True), "in_channels"),
        (dict(genotype=MIXED, num_classes=0), "num_classes"),
    ],
)
def test_invalid_arguments_raise_value_error(kwargs, match):
    genotype = kwargs.pop("genotype")
    with pytest.raises(ValueError, match=match):
        build_network(genotype, **kwargs)
    with pytest.raises(ValueError, match=match):
        nb201_param_count(genotype, **kwargs)


# ---------------------------------------------------------------- MACs and non-zero counts


def tiny_macs(C: int, extra_per_cell: int) -> int:
    """Hand count for width C, N=1, 1x8x8 input, 10 classes (stage sizes 8x8, 4x4, 2x2)."""
    stem = 8 * 8 * C * 1 * 9
    red1 = 4 * 4 * (2 * C * C * 9 + 2 * C * 2 * C * 9 + 2 * C * C)
    red2 = 2 * 2 * (4 * C * 2 * C * 9 + 4 * C * 4 * C * 9 + 4 * C * 2 * C)
    return stem + red1 + red2 + 4 * C * 10 + extra_per_cell


def test_macs_hand_computed_for_tiny_networks():
    kwargs = dict(width=4, cells_per_stage=1, in_channels=1)
    # C=4: stem 2,304; reductions 14,336 each; classifier 160.
    assert tiny_macs(4, 0) == 31_136
    assert count_macs(build_network(ALL_SKIP, **kwargs), (1, 8, 8)) == 31_136
    assert count_macs(build_network(ALL_NONE, **kwargs), (1, 8, 8)) == 31_136
    # One 3x3 conv and one 1x1 conv edge per cell: (9 + 1) * C_s^2 * H_s * W_s per stage s.
    ops = ("nor_conv_3x3", "skip_connect", "avg_pool_3x3", "none", "nor_conv_1x1", "skip_connect")
    per_cells = sum(10 * c * c * hw for c, hw in [(4, 64), (8, 16), (16, 4)])
    assert count_macs(build_network(ops, **kwargs), (1, 8, 8)) == tiny_macs(4, per_cells)


def test_count_macs_restores_modes_and_leaves_no_hooks():
    model = build_network(MIXED, width=4, cells_per_stage=1, in_channels=1)
    model.train()
    model.cells[0].eval()
    before = [m.training for m in model.modules()]
    bn = model.stem[1]
    stats = bn.running_mean.clone()
    count_macs(model, (1, 8, 8))
    assert [m.training for m in model.modules()] == before
    assert torch.equal(bn.running_mean, stats)
    assert all(not m._forward_hooks for m in model.modules())


def test_count_macs_rejects_bad_shapes():
    model = build_network(MIXED, width=4, cells_per_stage=1, in_channels=1)
    for shape in [(), (1, 0, 8), (1, 8.0, 8), "abc"]:
        with pytest.raises(ValueError, match="input_shape"):
            count_macs(model, shape)


def test_nonzero_counts_after_zeroing_weights():
    kwargs = dict(width=4, cells_per_stage=1, in_channels=1)
    model = seeded_network(ALL_SKIP, **kwargs)
    total = count_parameters(model)
    bn_biases = sum(m.bias.numel() for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    # BN biases start at exactly zero, everything else is non-zero.
    assert count_parameters(model, nonzero=True) == total - bn_biases
    dense = count_macs(model, (1, 8, 8))
    assert count_macs(model, (1, 8, 8), nonzero=True) == dense
    with torch.no_grad():
        model.stem[0].weight.zero_()  # 36 weights, 2,304 MACs
        model.classifier.weight[:, :8].zero_()  # 80 of 160 weights, 80 MACs
    assert count_parameters(model, nonzero=True) == total - bn_biases - 36 - 80
    assert count_parameters(model) == total
    assert count_macs(model, (1, 8, 8)) == dense
    assert count_macs(model, (1, 8, 8), nonzero=True) == dense - 2304 - 80


def test_nonzero_counts_see_torch_prune_masks():
    model = seeded_network(ALL_SKIP, width=4, cells_per_stage=1, in_channels=1)
    total = count_parameters(model)
    nonzero = count_parameters(model, nonzero=True)
    dense = count_macs(model, (1, 8, 8))
    prune.l1_unstructured(model.classifier, "weight", amount=40)
    assert count_parameters(model) == total
    assert count_parameters(model, nonzero=True) == nonzero - 40
    assert count_macs(model, (1, 8, 8), nonzero=True) == dense - 40
