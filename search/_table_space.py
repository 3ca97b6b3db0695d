"""The search space of a replayed search: a family that cannot be listed draws only the table's rows.

An NB201 space draws from every cell, and a complete table (all 6,466 classes) answers each
draw. A family without a finite list of networks (``ArchFamily.enumerable`` False, e.g.
``resnet``) has no complete table, so its network keys are replaced by one domain, ``arch``,
over the table's descriptions of that family: every candidate is a network the table holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from robnas.spaces._family import DEFAULT_FAMILY, family_named, parse_description

__all__ = ["table_space"]


def table_space(space: Mapping[str, Any], table) -> dict[str, Any]:
    """``space`` (Tune domains) for a search replaying ``table`` (a ``ResultTable``).

    Raises:
        ValueError: the space draws networks of a family the table holds none of (e.g. the
            default NB201 space on a table of ``resnet`` networks).
    """
    from ray import tune

    family = family_named(_family_name(space.get("family", DEFAULT_FAMILY)))
    rows = table.descriptions(family.name)
    if not rows:
        present = sorted({parse_description(text).family for text in table.descriptions()})
        raise ValueError(f"table {table.path} holds no {family.name} networks, only {', '.join(present)} "
                         f"ones; search their space (--space) or tabulate {family.name} networks")
    if family.enumerable:
        return dict(space)
    drawn: dict[str, Any] = {}
    for key, domain in space.items():
        if key not in family.keys:
            drawn[key] = domain
        if key == "family":
            drawn["arch"] = tune.choice(rows)
    return drawn


def _family_name(domain: Any) -> Any:
    """The family a space's ``family`` entry names: a constant, or a one-choice domain."""
    categories = getattr(domain, "categories", None)
    if categories is None:
        return domain
    if len(categories) != 1:
        raise ValueError(f"a replayed search draws one architecture family, got {list(categories)}")
    return categories[0]
