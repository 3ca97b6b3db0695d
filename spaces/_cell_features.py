"""An NB201 cell as numbers for the surrogate ranker: one-hot ops, op counts, path statistics.

* ``op[e]=o``: one-hot of op ``o`` on edge ``e`` (6 edges x 5 ops);
* ``count[o]``: edges carrying ``o``;
* ``paths``, ``max_convs``, ``max_conv3x3``, ``sum_convs``, ``max_depth``, ``conv_free_paths``:
  over the input -> output paths of non-``none`` edges, their number, the most convolutions
  (and 3x3 convolutions) on one path, the convolutions summed over paths, the longest path
  in edges, and the paths without a convolution;
* ``path[op>...]``: the path encoding (``robnas.spaces._path_encoding``), paths per op sequence.
"""

from __future__ import annotations

from robnas.spaces._genotype import EDGE_KEYS
from robnas.spaces._isomorphism import EDGES, NUM_NODES, OPS
from robnas.spaces._path_encoding import PATH_FEATURES, path_encoding

__all__ = ["CELL_FEATURES", "cell_features"]

_PATH_FEATURES = ("paths", "max_convs", "max_conv3x3", "sum_convs", "max_depth", "conv_free_paths")

CELL_FEATURES: tuple[str, ...] = (
    *(f"op[{key}]={op}" for key in EDGE_KEYS for op in OPS),
    *(f"count[{op}]" for op in OPS),
    *_PATH_FEATURES,
    *PATH_FEATURES,
)


def _paths(ops: tuple[str, ...]) -> list[list[str]]:
    """Op lists of every path from node 0 to the output node along non-``none`` edges."""
    found: list[list[str]] = []

    def walk(node: int, ops_so_far: list[str]) -> None:
        if node == NUM_NODES - 1:
            found.append(ops_so_far)
            return
        for (to_node, from_node), op in zip(EDGES, ops):
            if from_node == node and op != "none":
                walk(to_node, [*ops_so_far, op])

    walk(0, [])
    return found


def cell_features(ops: tuple[str, ...]) -> list[float]:
    """The ``CELL_FEATURES`` of a cell given by its six ops (use the canonical form)."""
    one_hot = [float(op == name) for op in ops for name in OPS]
    counts = [float(ops.count(name)) for name in OPS]
    paths = _paths(ops)
    convs = [sum(op.startswith("nor_conv") for op in p) for p in paths]
    conv3 = [sum(op == "nor_conv_3x3" for op in p) for p in paths]
    path_features = [
        len(paths),
        max(convs, default=0),
        max(conv3, default=0),
        sum(convs),
        max((len(p) for p in paths), default=0),
        sum(c == 0 for c in convs),
    ]
    return one_hot + counts + [float(v) for v in path_features] + path_encoding(ops)
