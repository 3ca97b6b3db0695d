"""Which networks a tabulation trains: every NB201 cell, a listed file, or a seeded draw.

A tabulated space names one architecture family (``cell``: ``nb201``; ``resnet``: ``resnet``).
Networks are given by their family's one-line description (``ArchFamily.describe``), kept one
per canonical form, in the order given.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable
from typing import Any

import numpy as np

from robnas.spaces._family import DEFAULT_FAMILY, ArchFamily, family_named
from robnas.spaces._genotype import EDGE_KEYS, OPS, Genotype, read_listed

__all__ = ["SPACES", "all_cells", "distinct_descriptions", "read_archs", "sample_archs", "space_family"]

#: Spaces a tabulation can draw from (parts of ``robnas.spaces.build_space``).
SPACES = ("cell", "resnet")
#: Draws per requested network before ``sample_archs`` gives up on finding new ones.
_DRAWS_PER_NETWORK = 100


def all_cells() -> tuple[str, ...]:
    """The canonical NB201 string of every isomorphism class, in order of first appearance
    when the six edges run over ``OPS`` (first edge slowest)."""
    cells = (Genotype(ops).canonical().to_str() for ops in itertools.product(OPS, repeat=len(EDGE_KEYS)))
    return tuple(dict.fromkeys(cells))


#: Space -> every canonical network of it, for the spaces whose family can be listed.
ENUMERATIONS = {"cell": all_cells}


def space_family(space: str, *, dataset: str = "digits") -> ArchFamily:
    """The architecture family whose networks ``space`` draws."""
    from robnas.spaces._compose import build_space

    domain = build_space([space], dataset=dataset).get("family", DEFAULT_FAMILY)
    categories = getattr(domain, "categories", [domain])
    return family_named(categories[0])


def distinct_descriptions(texts: Iterable[Any], family: ArchFamily) -> tuple[str, ...]:
    """One description of ``family`` per canonical network among ``texts``, the first kept,
    in order; ValueError naming a text that is not one of ``family``'s descriptions."""
    kept: dict[str, str] = {}
    for text in texts:
        network = family.parse(text)
        kept.setdefault(family.describe(family.canonical(network)), family.describe(network))
    return tuple(kept.values())


def read_archs(path: str | os.PathLike, family: ArchFamily | None = None) -> tuple[str, ...]:
    """The networks listed in a text file, one description a line (blank lines and ``#``
    comments skipped), one per canonical form; ValueError naming the file and line."""
    family = family or family_named(DEFAULT_FAMILY)
    texts = read_listed(path, lambda text: family.describe(family.parse(text)), what="archs file")
    if not texts:
        raise ValueError(f"archs file {path} lists no {family.name} network")
    return distinct_descriptions(texts, family)


def sample_archs(space: str, count: int, *, dataset: str = "digits", seed: int = 0) -> tuple[str, ...]:
    """``count`` distinct networks drawn from ``space``'s default domains for ``dataset``
    (seeded: the same ``seed`` draws the same networks); ValueError when the space holds fewer."""
    from robnas.spaces._compose import build_space, decode

    domains = build_space([space], dataset=dataset)
    family = space_family(space, dataset=dataset)
    rng = np.random.default_rng(seed)
    kept: dict[str, str] = {}
    for _ in range(count * _DRAWS_PER_NETWORK):
        if len(kept) == count:
            break
        config = {key: _draw(domain, rng) for key, domain in domains.items()}
        network = decode({**config, "dataset": dataset}).network
        kept.setdefault(family.describe(family.canonical(network)), family.describe(network))
    if len(kept) < count:
        raise ValueError(f"space {space!r} gave only {len(kept)} distinct networks in "
                         f"{count * _DRAWS_PER_NETWORK} draws; ask for fewer")
    return tuple(kept.values())


def _draw(domain: Any, rng: np.random.Generator) -> Any:
    """One value of a Tune domain (a constant is itself), as a plain Python value."""
    if not hasattr(domain, "sample"):
        return domain
    value = domain.sample(random_state=rng)
    return value.item() if isinstance(value, np.generic) else value
