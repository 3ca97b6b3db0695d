"""The path encoding of an NB201 cell: how often each op sequence runs from input to output.

An NB201 cell has four input -> output routes (0->3, 0->1->3, 0->2->3, 0->1->2->3). A route
whose edges all carry an op other than ``none`` is a path; its op sequence is one of the
4 + 16 + 64 = 84 sequences of length 1 to 3 over the four live ops. ``path_encoding``
counts the paths of each sequence (0, 1 or 2: the two routes of length 2 can share one).
The counts depend only on which sequences connect input to output, not on how the
intermediate nodes are numbered, so cells that compute alike get close or equal vectors.
"""

from __future__ import annotations

from itertools import product

from robnas.spaces._isomorphism import EDGES, NUM_NODES, OPS

__all__ = ["PATH_FEATURES", "path_encoding"]

_LIVE_OPS = tuple(op for op in OPS if op != "none")
_SEQUENCES = tuple(seq for length in range(1, NUM_NODES) for seq in product(_LIVE_OPS, repeat=length))

#: ``path[op>op>...]``: paths carrying that op sequence, shortest sequences first.
PATH_FEATURES: tuple[str, ...] = tuple(f"path[{'>'.join(seq)}]" for seq in _SEQUENCES)


def _routes() -> list[list[int]]:
    """Edge indices (into ``EDGES``) of every input -> output route, in node order."""
    found: list[list[int]] = []

    def walk(node: int, edges: list[int]) -> None:
        if node == NUM_NODES - 1:
            found.append(edges)
            return
        for index, (to_node, from_node) in enumerate(EDGES):
            if from_node == node:
                walk(to_node, [*edges, index])

    walk(0, [])
    return found


_ROUTES = _routes()
_INDEX = {seq: i for i, seq in enumerate(_SEQUENCES)}


def path_encoding(ops: tuple[str, ...]) -> list[float]:
    """Counts ``(len(PATH_FEATURES),)`` of each op sequence among the cell's paths (six ops)."""
    counts = [0.0] * len(_SEQUENCES)
    for route in _ROUTES:
        sequence = tuple(ops[i] for i in route)
        if "none" not in sequence:
            counts[_INDEX[sequence]] += 1.0
    return counts
