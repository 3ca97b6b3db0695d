"""The smallest and largest size of the networks a space can build, in parameters and MACs.

An NB201 cell's edges all map C channels to C channels, and a cheaper op on one edge never
makes the network dearer (an edge left without work can only cut a path), so the cheapest
network takes every edge's cheapest op with the fewest channels and cells, the dearest every
edge's dearest op with the most.
"""

from __future__ import annotations

from collections.abc import Sequence

from robnas.trainables._network import nb201_mac_count, nb201_param_count

__all__ = ["OPS_BY_COST", "size_ranges"]

#: NB201 ops from cheapest to dearest in parameters and in MACs.
OPS_BY_COST: tuple[str, ...] = ("none", "skip_connect", "avg_pool_3x3", "nor_conv_1x1", "nor_conv_3x3")


def size_ranges(
    edge_ops: Sequence[Sequence[str]],
    widths: Sequence[int],
    cells_per_stage: Sequence[int],
    *,
    input_shape: tuple[int, int, int],
    num_classes: int,
    max_sparsity: float = 0.0,
) -> dict[str, tuple[float, float]]:
    """``{"params", "macs", "sparse_macs"}`` -> ``(smallest, largest)`` over the networks with
    one op of ``edge_ops[i]`` on edge i (6 edges), a width in ``widths`` and a number of cells
    per stage in ``cells_per_stage``, for inputs of ``input_shape`` (C, H, W).

    ``sparse_macs`` reaches down to the smallest MACs times ``1 - max_sparsity`` (the largest
    fraction of pruned weights in the space).
    """
    rank = {op: position for position, op in enumerate(OPS_BY_COST)}
    cheapest = (
        [min(ops, key=rank.__getitem__) for ops in edge_ops], int(min(widths)), int(min(cells_per_stage))
    )
    dearest = (
        [max(ops, key=rank.__getitem__) for ops in edge_ops], int(max(widths)), int(max(cells_per_stage))
    )
    channels, height, width = input_shape
    params, macs = [], []
    for ops, C, N in (cheapest, dearest):
        shape = {"width": C, "cells_per_stage": N, "in_channels": channels, "num_classes": num_classes}
        params.append(float(nb201_param_count(ops, **shape)))
        macs.append(float(nb201_mac_count(ops, input_size=(height, width), **shape)))
    return {
        "params": (params[0], params[1]),
        "macs": (macs[0], macs[1]),
        "sparse_macs": (macs[0] * (1.0 - float(max_sparsity)), macs[1]),
    }
