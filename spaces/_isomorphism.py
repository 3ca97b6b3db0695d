"""Isomorphism classes and connectivity of NAS-Bench-201 cells.

A cell is given as its six op names in ``EDGES`` order. ``isomorphism_key`` reproduces the rule
NAS-Bench-201 used to decide which of its 15,625 cells to train (6,466 classes; the ``uid`` of
NAS-RobBench-201 is the same partition):

* node 0 is the symbol ``0``; node ``j`` is the sorted ``+``-sum of one term per incoming edge;
* a ``none`` edge, or an edge leaving a node whose expression is exactly the zero term, is ``#``;
* ``skip_connect`` passes its source's expression through unchanged;
* any other op ``f`` wraps it: ``(expr)@f``;
* the key of the cell is the expression of node 3.

The rule is syntactic: zero terms are kept in the sums (``#+#`` is not ``#``), so a cell and the
same cell with an extra dead branch can fall into different classes, exactly as in the benchmark.
"""

from __future__ import annotations

import functools
import itertools

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: Edges as (to_node, from_node), in the order of the NB201 string.
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
NUM_NODES = 4

_ZERO = "#"

__all__ = [
    "EDGES",
    "NUM_NODES",
    "OPS",
    "canonical_ops",
    "class_members",
    "is_connected",
    "isomorphism_key",
    "num_isomorphism_classes",
]


@functools.lru_cache(maxsize=None)
def isomorphism_key(ops: tuple[str, ...]) -> str:
    """The NAS-Bench-201 isomorphism string of a cell (``ops`` in ``EDGES`` order)."""
    exprs = ["0"]
    for node in range(1, NUM_NODES):
        terms = []
        for (to_node, from_node), op in zip(EDGES, ops):
            if to_node != node:
                continue
            source = exprs[from_node]
            if op == "none" or source == _ZERO:
                terms.append(_ZERO)
            elif op == "skip_connect":
                terms.append(source)
            else:
                terms.append(f"({source})@{op}")
        exprs.append("+".join(sorted(terms)))
    return exprs[-1]


@functools.lru_cache(maxsize=1)
def _representatives() -> dict[str, tuple[str, ...]]:
    """Isomorphism key -> smallest member of its class (lexicographic in ``OPS`` index order)."""
    table: dict[str, tuple[str, ...]] = {}
    for ops in itertools.product(OPS, repeat=len(EDGES)):
        table.setdefault(isomorphism_key(ops), ops)
    return table


def canonical_ops(ops: tuple[str, ...]) -> tuple[str, ...]:
    """The representative of the isomorphism class of ``ops``.

    The representative is the member whose op indices (positions in ``OPS``) form the smallest
    tuple; the first call enumerates the 15,625 cells once (about 0.1 s).
    """
    return _representatives()[isomorphism_key(ops)]


@functools.lru_cache(maxsize=1)
def _members() -> dict[str, tuple[tuple[str, ...], ...]]:
    """Isomorphism key -> every member of its class, in enumeration order."""
    classes: dict[str, list[tuple[str, ...]]] = {}
    for ops in itertools.product(OPS, repeat=len(EDGES)):
        classes.setdefault(isomorphism_key(ops), []).append(ops)
    return {key: tuple(members) for key, members in classes.items()}


def class_members(ops: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    """Every cell of the isomorphism class of ``ops`` (``ops`` among them), representative first.

    Members share a benchmark's results (it trained one of them) but not always their size: the
    rule is syntactic, so one ``nor_conv_3x3`` of node 0 reached by two paths and two such convs
    on parallel edges fall in one class (7 members, 316,346 and 559,386 parameters at C=16,
    N=5)."""
    return _members()[isomorphism_key(ops)]


def num_isomorphism_classes() -> int:
    """Number of distinct cells under ``isomorphism_key`` (6,466)."""
    return len(_representatives())


def is_connected(ops: tuple[str, ...]) -> bool:
    """Whether a path of non-``none`` edges leads from the input (node 0) to the output (node 3)."""
    reached = {0}
    for (to_node, from_node), op in zip(EDGES, ops):  # EDGES is in topological order
        if op != "none" and from_node in reached:
            reached.add(to_node)
    return NUM_NODES - 1 in reached
