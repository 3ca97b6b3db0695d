from __future__ import annotations

import csv
import itertools
from collections import defaultdict
from pathlib import Path

import pytest

from robnas.spaces._genotype import EDGE_KEYS, EDGES, OPS, Genotype
from robnas.spaces._isomorphism import num_isomorphism_classes

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nasrobbench201_cifar10.csv"
ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


@pytest.fixture(scope="module")
def rows() -> list[tuple[int, int, str]]:
    """(nb201_index, uid, arch) of the 15,625 NAS-RobBench-201 cells."""
    if not DATA.exists():
        pytest.skip(f"reference data not found at {DATA}")
    with DATA.open(newline="") as handle:
        return [(int(r["nb201_index"]), int(r["uid"]), r["arch"]) for r in csv.DictReader(handle)]


def cell(**edges: str) -> Genotype:
    """A cell with the given ``edge_<to>_<from>`` ops and ``none`` elsewhere."""
    return Genotype(tuple(edges.get(key, "none") for key in EDGE_KEYS))


def test_constants():
    assert OPS == ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
    assert EDGES == ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
    assert EDGE_KEYS == ("edge_1_0", "edge_2_0", "edge_2_1", "edge_3_0", "edge_3_1", "edge_3_2")


def test_from_str_reads_edges_in_order():
    genotype = Genotype.from_str(ARCH)
    assert genotype.ops == (
        "nor_conv_3x3", "nor_conv_3x3", "avg_pool_3x3", "skip_connect", "nor_conv_3x3", "skip_connect"
    )
    assert genotype.to_str() == ARCH
    assert str(genotype) == ARCH
    assert genotype.to_config()["edge_2_1"] == "avg_pool_3x3"
    assert Genotype.from_config({**genotype.to_config(), "width": 8}) == genotype


def test_string_round_trip_on_every_benchmark_cell(rows):
    assert len(rows) == 15_625
    for _, _, arch in rows:
        assert Genotype.from_str(arch).to_str() == arch
    assert len({Genotype.from_str(arch) for _, _, arch in rows}) == 15_625


def test_isomorphism_classes_match_benchmark_uid(rows):
    by_key: dict[Genotype, set[int]] = defaultdict(set)
    by_uid: dict[int, set[Genotype]] = defaultdict(set)
    for _, uid, arch in rows:
        canonical = Genotype.from_str(arch).canonical()
        by_key[canonical].add(uid)
        by_uid[uid].add(canonical)
    assert len(by_key) == len(by_uid) == 6_466 == num_isomorphism_classes()
    assert all(len(uids) == 1 for uids in by_key.values())
    assert all(len(keys) == 1 for keys in by_uid.values())


def test_canonical_is_a_member_of_its_class_and_idempotent(rows):
    arch_of = {index: arch for index, _, arch in rows}
    for index, uid, arch in rows[:2000]:
        canonical = Genotype.from_str(arch).canonical()
        trained = Genotype.from_str(arch_of[uid])
        assert canonical == trained.canonical()
        assert canonical.canonical() == canonical
        assert canonical.isomorphism_key() == Genotype.from_str(arch).isomorphism_key()


def test_canonical_merges_known_isomorphic_cells():
    # Parallel branches commute.
    x = cell(edge_1_0="nor_conv_3x3", edge_3_1="skip_connect", edge_3_0="avg_pool_3x3")
    y = cell(edge_1_0="avg_pool_3x3", edge_3_1="skip_connect", edge_3_0="nor_conv_3x3")
    assert x != y and x.canonical() == y.canonical()
    # The op into node 1 is irrelevant when node 1 feeds nothing.
    a = cell(edge_2_0="nor_conv_3x3", edge_3_2="skip_connect", edge_3_0="avg_pool_3x3", edge_1_0="nor_conv_1x1")
    b = cell(edge_2_0="nor_conv_3x3", edge_3_2="skip_connect", edge_3_0="avg_pool_3x3", edge_1_0="avg_pool_3x3")
    assert a != b and a.canonical() == b.canonical()
    # A convolution is not a pooling.
    c = cell(edge_3_0="nor_conv_3x3")
    d = cell(edge_3_0="avg_pool_3x3")
    assert c.canonical() != d.canonical()


def test_zero_terms_are_kept_as_in_the_benchmark(rows):
    # Node 2 sums skip(input) and a none edge: NAS-Bench-201 keeps the zero term, so moving an
    # op across the skip changes the class although the networks compute the same function.
    x = cell(edge_2_0="skip_connect", edge_3_0="nor_conv_3x3", edge_3_2="avg_pool_3x3")
    y = cell(edge_2_0="skip_connect", edge_3_0="avg_pool_3x3", edge_3_2="nor_conv_3x3")
    assert x.canonical() != y.canonical()
    uid_of = {arch: uid for _, uid, arch in rows}
    assert uid_of[x.to_str()] != uid_of[y.to_str()]


def test_is_connected_on_hand_made_cells():
    assert not cell().is_connected()
    assert cell(edge_3_0="skip_connect").is_connected()
    assert cell(edge_1_0="nor_conv_3x3", edge_3_1="avg_pool_3x3").is_connected()
    assert cell(edge_1_0="nor_conv_1x1", edge_2_1="skip_connect", edge_3_2="nor_conv_3x3").is_connected()
    # Node 1 is fed but leads nowhere; node 2 leads to the output but is never fed.
    assert not cell(edge_1_0="nor_conv_3x3", edge_3_2="nor_conv_3x3").is_connected()
    assert not cell(edge_2_1="nor_conv_3x3", edge_3_1="skip_connect", edge_3_2="skip_connect").is_connected()
    assert Genotype.from_str(ARCH).is_connected()


def test_disconnected_cells_form_their_own_benchmark_classes(rows):
    disconnected = [uid for _, uid, arch in rows if not Genotype.from_str(arch).is_connected()]
    connected = {uid for _, uid, arch in rows if Genotype.from_str(arch).is_connected()}
    # 341 of the 5**6 cells have no input-output path (checked by reachability matrices).
    assert len(disconnected) == 341
    assert len(set(disconnected)) == 5
    assert not connected & set(disconnected)


def test_all_cells_enumerate_to_the_benchmark_class_count():
    keys = {Genotype(ops).isomorphism_key() for ops in itertools.product(OPS, repeat=6)}
    assert len(keys) == 6_466


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("|nor_conv_3x3~0|+|none~0|none~1|", "expected 3 nodes"),
        ("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|+|none~0|", "expected 3 nodes"),
        ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2 must have 2 input(s)"),
        ("|none~0|+|none~0|none~2|+|none~0|none~1|none~2|", "node 2 input 1 must be 'op~1'"),
        ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "node 1 input 0"),
        ("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown op 'conv'"),
        ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "must be written as |op~0|"),
        ("|none0|+|none~0|none~1|+|none~0|none~1|none~2|", "must be 'op~0'"),
        ("", "expected 3 nodes"),
    ],
)
def test_malformed_strings_are_rejected_with_the_string_quoted(text, message):
    with pytest.raises(ValueError) as info:
        Genotype.from_str(text)
    assert message in str(info.value)
    assert repr(text) in str(info.value)


def test_invalid_ops_are_rejected():
    with pytest.raises(ValueError, match="unknown op 'conv' on edge_2_1"):
        Genotype(("none", "none", "conv", "none", "none", "none"))
    with pytest.raises(ValueError, match="must have 6 ops"):
        Genotype(("none",) * 5)
    with pytest.raises(ValueError, match="Genotype.from_str"):
        Genotype(ARCH)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must be a str"):
        Genotype.from_str(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="edge_3_2"):
        Genotype.from_config({key: "none" for key in EDGE_KEYS[:5]})


def test_genotype_is_frozen_and_hashable():
    genotype = Genotype(list(Genotype.from_str(ARCH).ops))  # a list is stored as a tuple
    assert genotype == Genotype.from_str(ARCH)
    assert hash(genotype) == hash(Genotype.from_str(ARCH))
    with pytest.raises(AttributeError):
        genotype.ops = ("none",) * 6  # type: ignore[misc]
