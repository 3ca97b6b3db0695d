"""The NAS-Bench-201 cell genotype: six op names on the edges of a 4-node DAG."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robnas.spaces._isomorphism import (
    EDGES,
    NUM_NODES,
    OPS,
    canonical_ops,
    class_members,
    is_connected,
    isomorphism_key,
)

#: Flat config keys of the six edges, in ``EDGES`` order (``edge_<to>_<from>``).
EDGE_KEYS: tuple[str, ...] = tuple(f"edge_{to_node}_{from_node}" for to_node, from_node in EDGES)

__all__ = ["EDGES", "EDGE_KEYS", "OPS", "Genotype"]


def _malformed(text: str, reason: str) -> ValueError:
    return ValueError(f"malformed NB201 cell string {text!r}: {reason}")


@dataclass(frozen=True)
class Genotype:
    """An NB201 cell: ``ops[k]`` is the operation on edge ``EDGES[k]`` (to_node, from_node).

    The string form is ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``: one ``|``-group per node
    1..3, listing the op from each earlier node.
    """

    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        ops = self.ops
        if isinstance(ops, (str, bytes)) or not hasattr(ops, "__iter__"):
            raise ValueError(
                f"Genotype.ops must be a sequence of {len(EDGES)} op names, got {ops!r} "
                "(parse NB201 strings with Genotype.from_str)"
            )
        ops = tuple(ops)
        if len(ops) != len(EDGES):
            raise ValueError(
                f"Genotype.ops must have {len(EDGES)} ops (one per edge), got {len(ops)}: {ops!r}"
            )
        for key, op in zip(EDGE_KEYS, ops):
            if not isinstance(op, str) or op not in OPS:
                raise ValueError(f"unknown op {op!r} on {key}; known ops: {', '.join(OPS)}")
        object.__setattr__(self, "ops", tuple(str(op) for op in ops))

    @classmethod
    def from_str(cls, text: str) -> Genotype:
        """Parse an NB201 string such as ``|nor_conv_3x3~0|+|none~0|skip_connect~1|+|...|``."""
        if not isinstance(text, str):
            raise ValueError(f"an NB201 cell string must be a str, got {text!r} ({type(text).__name__})")
        text = text.strip()
        groups = text.split("+")
        if len(groups) != NUM_NODES - 1:
            raise _malformed(text, f"expected {NUM_NODES - 1} nodes separated by '+', got {len(groups)}")
        ops: list[str] = []
        for node, group in enumerate(groups, start=1):
            if len(group) < 2 or not (group.startswith("|") and group.endswith("|")):
                raise _malformed(text, f"node {node} must be written as |op~0|...|, got {group!r}")
            tokens = group[1:-1].split("|")
            if len(tokens) != node:
                raise _malformed(
                    text, f"node {node} must have {node} input(s), got {len(tokens)} in {group!r}"
                )
            for source, token in enumerate(tokens):
                op, sep, index = token.partition("~")
                if not sep or index != str(source):
                    raise _malformed(text, f"node {node} input {source} must be 'op~{source}', got {token!r}")
                if op not in OPS:
                    raise _malformed(text, f"unknown op {op!r}; known ops: {', '.join(OPS)}")
                ops.append(op)
        return cls(tuple(ops))

    def to_str(self) -> str:
        """The NB201 string of this cell (inverse of :meth:`from_str`)."""
        groups = []
        for node in range(1, NUM_NODES):
            tokens = [f"{op}~{src}" for (dst, src), op in zip(EDGES, self.ops) if dst == node]
            groups.append("|" + "|".join(tokens) + "|")
        return "+".join(groups)

    def __str__(self) -> str:
        return self.to_str()

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Genotype:
        """Read the six ``EDGE_KEYS`` of a flat config (other keys are ignored)."""
        missing = [key for key in EDGE_KEYS if key not in config]
        if missing:
            raise ValueError(
                f"config lacks edge key(s) {', '.join(missing)}; "
                f"a cell needs all of {', '.join(EDGE_KEYS)}"
            )
        return cls(tuple(config[key] for key in EDGE_KEYS))

    def to_config(self) -> dict[str, str]:
        """The six ``EDGE_KEYS`` -> op name."""
        return dict(zip(EDGE_KEYS, self.ops))

    def is_connected(self) -> bool:
        """Whether a path of non-``none`` edges leads from the input node 0 to the output node 3."""
        return is_connected(self.ops)

    def isomorphism_key(self) -> str:
        """The NAS-Bench-201 isomorphism string; equal keys mean isomorphic cells."""
        return isomorphism_key(self.ops)

    def canonical(self) -> Genotype:
        """The representative of this cell's isomorphism class (the same for isomorphic cells).

        Classes are those of NAS-Bench-201 (6,466 among 15,625 cells); the representative is the
        member with the smallest tuple of op indices in ``OPS``.
        """
        return Genotype(canonical_ops(self.ops))

    def isomorphic_cells(self) -> tuple[Genotype, ...]:
        """Every cell of this cell's isomorphism class, the representative first (see
        ``robnas.spaces._isomorphism.class_members``)."""
        return tuple(Genotype(ops) for ops in class_members(self.ops))



def read_archs(path: str | os.PathLike, *, distinct: bool = False, what: str = "archs file") -> tuple[str, ...]:
    """The NB201 cells listed in a text file, one string a line (blank lines and ``#``
    comments skipped), in file order; ``distinct``: one per isomorphism class, the first
    listed member kept. ValueError naming the file (``what``, and the line) for anything else."""
    archs = read_listed(path, lambda text: Genotype.from_str(text).to_str(), what=what)
    if not archs:
        raise ValueError(f"{what} {path} lists no NB201 cell")
    return distinct_archs(archs) if distinct else tuple(archs)


def read_listed(path: str | os.PathLike, parse: Callable[[str], str], *, what: str) -> list[str]:
    """``parse`` of every line of a text file (blank lines and ``#`` comments skipped), in file
    order; ValueError naming the file (``what``), and the line when ``parse`` raises one."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{what} {path} does not exist or is not a file")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read {what} {path}: {error}") from None
    parsed = []
    for number, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip()
        if text:
            try:
                parsed.append(parse(text))
            except ValueError as error:
                raise ValueError(f"{what} {path}, line {number}: {error}") from None
    return parsed


def distinct_archs(archs) -> tuple[str, ...]:
    """One NB201 string per isomorphism class of ``archs``, the first member kept, in order."""
    kept: dict[str, str] = {}
    for text in archs:
        genotype = Genotype.from_str(text)
        kept.setdefault(genotype.canonical().to_str(), genotype.to_str())
    return tuple(kept.values())
