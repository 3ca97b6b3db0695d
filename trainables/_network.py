"""The NAS-Bench-201 macro network built from a cell genotype.

Layout (NB201 ``TinyNetwork``): stem (3x3 conv, BN) -> N cells of width C -> ResNet
reduction block -> N cells of width 2C -> reduction block -> N cells of width 4C -> BN, ReLU
-> global average pool -> linear classifier. Each cell has four nodes; node ``j`` is the sum
of ``op_{j,i}(node_i)`` over ``i < j`` and node 3 is the cell's output.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

import torch
from torch import nn

from robnas.spaces._genotype import EDGE_KEYS
from robnas.spaces._isomorphism import EDGES, NUM_NODES, OPS
from robnas.trainables._ops import OP_MODULES, ReLUConvBN

__all__ = [
    "NB201Cell",
    "NB201Network",
    "ResNetBasicBlock",
    "build_network",
    "nb201_mac_count",
    "nb201_param_count",
]



_EDGE_KEYS = dict(zip(EDGES, EDGE_KEYS))


def _edge_key(to_node: int, from_node: int) -> str:
    """Module key of an edge: its flat config key, ``edge_<to>_<from>``."""
    return _EDGE_KEYS[(to_node, from_node)]


def _cell_ops(genotype: object) -> tuple[str, ...]:
    """The six op names of ``genotype`` (an object with ``.ops`` or a sequence of names)."""
    ops = getattr(genotype, "ops", genotype)
    if isinstance(ops, str) or not isinstance(ops, Sequence):
        raise ValueError(
            f"genotype must have an .ops attribute or be a sequence of {len(EDGES)} op names, "
            f"got {genotype!r} (parse NB201 strings with Genotype.from_str)"
        )
    ops = tuple(ops)
    if len(ops) != len(EDGES):
        raise ValueError(
            f"genotype must have {len(EDGES)} ops (one per edge), got {len(ops)}: {ops!r}"
        )
    for op in ops:
        if op not in OPS:
            raise ValueError(f"unknown operation {op!r}; allowed: {', '.join(OPS)}")
    return ops


def _positive_int(name: str, value: object) -> int:
    try:
        as_int = operator.index(value)
    except TypeError:
        as_int = None
    if as_int is None or isinstance(value, bool) or as_int < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return as_int


class NB201Cell(nn.Module):
    """One NB201 cell on ``C`` channels: ``(N, C, H, W) -> (N, C, H, W)``.

    ``none`` edges have no module and are never computed. Nodes that cannot reach the output
    are not computed either, so their parameters get no gradient (``grad`` stays ``None``).
    A node whose inputs are all ``none`` is zeros.
    """

    def __init__(self, ops: Sequence[str], C: int) -> None:
        super().__init__()
        self.ops = _cell_ops(ops)
        self.C = C
        self.edges = nn.ModuleDict()
        for (to_node, from_node), op in zip(EDGES, self.ops):
            if op != "none":
                self.edges[_edge_key(to_node, from_node)] = OP_MODULES[op](C, C, 1)
        # Nodes that reach the output: node 3, and any node with a real edge into a live node.
        live = {NUM_NODES - 1}
        real = [edge for edge, op in zip(EDGES, self.ops) if op != "none"]
        for to_node, from_node in sorted(real, reverse=True):
            if to_node in live:
                live.add(from_node)
        # _plan[j - 1]: None (node j unused) or the (edge key, input node) pairs summed into node j.
        self._plan: list[tuple[tuple[str, int], ...] | None] = []
        for j in range(1, NUM_NODES):
            terms = tuple(
                (_edge_key(t, f), f) for t, f in EDGES if t == j and _edge_key(t, f) in self.edges
            )
            self._plan.append(terms if j in live else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes: list[torch.Tensor | None] = [x]
        edges = self.edges
        for terms in self._plan:
            if terms is None:
                nodes.append(None)
            elif not terms:
                nodes.append(torch.zeros_like(x))
            else:
                key, src = terms[0]
                out = edges[key](nodes[src])
                for key, src in terms[1:]:
                    out = out + edges[key](nodes[src])
                nodes.append(out)
        return nodes[-1]

    def extra_repr(self) -> str:
        return f"C={self.C}, ops={self.ops}"


class ResNetBasicBlock(nn.Module):
    """Reduction block ``(N, C_in, H, W) -> (N, C_out, ceil(H/2), ceil(W/2))``.

    Two ReLUConvBN 3x3 (the first with stride 2) plus a shortcut of 2x2 average pooling and a
    bias-free 1x1 convolution. The pooling uses ceil mode so that odd sizes work; for even
    sizes it is NB201's pooling.
    """

    def __init__(self, C_in: int, C_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(C_in, C_out, 3, stride=2, padding=1)
        self.conv_b = ReLUConvBN(C_out, C_out, 3, stride=1, padding=1)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0, ceil_mode=True),
            nn.Conv2d(C_in, C_out, kernel_size=1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class NB201Network(nn.Module):
    """NB201 macro network: ``(N, in_channels, H, W)`` images -> ``(N, num_classes)`` logits."""

    def __init__(
        self,
        ops: Sequence[str],
        *,
        width: int,
        cells_per_stage: int,
        in_channels: int,
        num_classes: int,
    ) -> None:
        super().__init__()
        self.ops = _cell_ops(ops)
        self.width = width
        self.cells_per_stage = cells_per_stage
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(width),
        )
        layers: list[nn.Module] = []
        channels = width
        for stage in range(3):
            if stage > 0:
                layers.append(ResNetBasicBlock(channels, 2 * channels))
                channels *= 2
            layers.extend(NB201Cell(self.ops, channels) for _ in range(cells_per_stage))
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.lastact(self.cells(self.stem(x)))
        return self.classifier(torch.flatten(self.global_pooling(out), 1))


def build_network(
    genotype: object,
    *,
    width: int = 16,
    cells_per_stage: int = 5,
    in_channels: int = 3,
    num_classes: int = 10,
) -> NB201Network:
    """Build the NB201 network for ``genotype`` (``.ops`` or a sequence of 6 op names).

    Weights use PyTorch's default initialisation from the global torch RNG; seed it (e.g.
    inside ``torch.random.fork_rng``) for reproducible weights.

    Raises:
        ValueError: on a malformed genotype or a non-positive integer option.
    """
    return NB201Network(
        _cell_ops(genotype),
        width=_positive_int("width", width),
        cells_per_stage=_positive_int("cells_per_stage", cells_per_stage),
        in_channels=_positive_int("in_channels", in_channels),
        num_classes=_positive_int("num_classes", num_classes),
    )


def nb201_param_count(
    genotype: object,
    *,
    width: int = 16,
    cells_per_stage: int = 5,
    in_channels: int = 3,
    num_classes: int = 10,
) -> int:
    """Closed-form parameter count of ``build_network(genotype, ...)`` (incl. BN affine, bias)."""
    ops = _cell_ops(genotype)
    C = _positive_int("width", width)
    N = _positive_int("cells_per_stage", cells_per_stage)
    c_in = _positive_int("in_channels", in_channels)
    k = _positive_int("num_classes", num_classes)

    def conv_bn(c_from: int, c_to: int, kernel: int) -> int:
        return c_from * c_to * kernel * kernel + 2 * c_to

    def cell(c: int) -> int:
        per_op = {"nor_conv_3x3": conv_bn(c, c, 3), "nor_conv_1x1": conv_bn(c, c, 1)}
        return sum(per_op.get(op, 0) for op in ops)

    def reduction(c: int) -> int:
        return conv_bn(c, 2 * c, 3) + conv_bn(2 * c, 2 * c, 3) + c * 2 * c

    stem = conv_bn(c_in, C, 3)
    cells = N * (cell(C) + cell(2 * C) + cell(4 * C))
    head = 2 * 4 * C + 4 * C * k + k
    return stem + cells + reduction(C) + reduction(2 * C) + head


def nb201_mac_count(
    genotype: object,
    *,
    width: int = 16,
    cells_per_stage: int = 5,
    in_channels: int = 3,
    input_size: tuple[int, int] = (32, 32),
    num_classes: int = 10,
) -> int:
    """Closed-form ``count_macs(build_network(genotype, ...), (in_channels, *input_size))``:
    convolutions and the classifier only, and only the edges that reach the cell's output."""
    ops = _cell_ops(genotype)
    C = _positive_int("width", width)
    N = _positive_int("cells_per_stage", cells_per_stage)
    c_in = _positive_int("in_channels", in_channels)
    k = _positive_int("num_classes", num_classes)
    height, width_px = (_positive_int("input_size", side) for side in input_size)
    live = {NUM_NODES - 1}
    for (to_node, from_node), op in sorted(zip(EDGES, ops), reverse=True):
        if op != "none" and to_node in live:
            live.add(from_node)
    kernels = {"nor_conv_3x3": 9, "nor_conv_1x1": 1}
    per_cell = sum(kernels.get(op, 0) for (to_node, _), op in zip(EDGES, ops) if to_node in live)

    positions = [height * width_px]
    for _ in range(2):  # stride-2 reductions (ceil mode): ceil(H / 2) x ceil(W / 2)
        height, width_px = -(-height // 2), -(-width_px // 2)
        positions.append(height * width_px)
    macs = positions[0] * C * c_in * 9  # stem
    for stage, p in enumerate(positions):
        c = C * 2**stage
        macs += N * p * c * c * per_cell
        if stage > 0:  # the reduction block into this stage, from c / 2 channels
            macs += p * (c * (c // 2) * 9 + c * c * 9 + c * (c // 2))
    return macs + 4 * C * k
