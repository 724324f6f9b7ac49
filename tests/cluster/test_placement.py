"""Bootstrap placement: slots covered once, replicas and leaders spread evenly, deterministic."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quorumkv.cluster.metadata import ClusterMetadata, Member, Shard, make_member, problems
from quorumkv.cluster.placement import leader_transfers, place_shards
from quorumkv.cluster.slots import SLOT_COUNT
from quorumkv.cluster.view import ClusterView
from quorumkv.errors import InvalidPlacement


@st.composite
def placements(draw: st.DrawFn) -> tuple[list[Member], int, int]:
    node_ids = draw(st.lists(st.integers(1, 1000), min_size=1, max_size=12, unique=True))
    zones = draw(st.integers(0, 4))
    members = [make_member(n, f"h:{n}", f"h:{n + 1}", {"zone": f"z{n % zones}"} if zones else {})
               for n in node_ids]
    shards = draw(st.integers(1, 120))
    factor = draw(st.integers(1, min(5, len(node_ids))))
    return members, shards, factor


def spread(counts: Counter[int], nodes: list[int]) -> int:
    values = [counts.get(node, 0) for node in nodes]
    return max(values) - min(values)


@given(placements())
@settings(max_examples=300, deadline=None)
def test_placement_properties(case: tuple[list[Member], int, int]) -> None:
    """Slots are covered exactly once by contiguous ranges; no node twice in a shard; each
    node hosts and leads as many shards as any other, give or take one."""
    members, count, factor = case
    shards = place_shards(members, count, factor)
    data = shards[1:]
    assert [s.shard_id for s in shards] == list(range(count + 1))
    assert shards[0].slot_ranges == ()
    covered = [slot for s in data for start, end in s.slot_ranges for slot in range(start, end + 1)]
    assert covered == list(range(SLOT_COUNT))
    assert all(len(s.slot_ranges) == 1 for s in data)
    nodes = [m.node_id for m in members]
    for shard in shards:
        assert len(shard.replicas) == factor
        assert len(set(shard.node_ids())) == factor
        assert shard.preferred_leader in shard.node_ids()
    assert spread(Counter(n for s in data for n in s.node_ids()), nodes) <= 1
    assert spread(Counter(s.preferred_leader for s in data), nodes) <= 1
    assert spread(Counter(n for s in shards for n in s.node_ids()), nodes) <= 1
    metadata = ClusterMetadata("c", 1, {m.node_id: m for m in members},
                               {s.shard_id: s for s in shards})
    assert problems(metadata) == []


@given(placements())
@settings(max_examples=50, deadline=None)
def test_placement_is_deterministic(case: tuple[list[Member], int, int]) -> None:
    """The same members in any order give the same plan."""
    members, count, factor = case
    assert place_shards(members, count, factor) == place_shards(members[::-1], count, factor)


def test_defaults_are_four_shards_per_node_and_three_replicas() -> None:
    """With no sizes given: 4 data shards per node, replication factor min(3, nodes)."""
    members = [make_member(n, "h:1", "h:2") for n in (1, 2, 3, 4, 5)]
    shards = place_shards(members)
    assert len(shards) == 1 + 20
    assert {len(s.replicas) for s in shards} == {3}
    single = place_shards(members[:1])
    assert len(single) == 1 + 4 and {len(s.replicas) for s in single} == {1}
    assert {len(s.replicas) for s in place_shards(members[:2])} == {2}


def test_three_nodes_twelve_shards_is_perfectly_even() -> None:
    """3 nodes, 12 shards, factor 3: every node hosts all 12 and leads exactly 4."""
    members = [make_member(n, "h:1", "h:2") for n in (1, 2, 3)]
    data = place_shards(members, 12, 3)[1:]
    assert Counter(s.preferred_leader for s in data) == {1: 4, 2: 4, 3: 4}


def test_replicas_prefer_distinct_zones() -> None:
    """With as many zones as replicas and nodes spread evenly over them, every shard has one
    replica per zone."""
    members = [make_member(n, "h:1", "h:2", {"zone": f"z{n % 3}"}) for n in range(1, 10)]
    zone = {m.node_id: m.label("zone") for m in members}
    shards: list[Shard] = place_shards(members, 36, 3)[1:]
    assert all(len({zone[n] for n in s.node_ids()}) == 3 for s in shards)


@pytest.mark.parametrize(("nodes", "count", "factor", "text"), [
    (0, 4, 1, "no members"), (3, 0, 1, "0 shards"), (3, 16385, 1, "16385 shards"),
    (3, 4, 4, "replication factor 4 with 3 nodes"), (3, 4, 0, "replication factor 0"),
])
def test_impossible_placements_are_refused(nodes: int, count: int, factor: int,
                                           text: str) -> None:
    """Requests placement cannot satisfy raise InvalidPlacement saying why."""
    members = [make_member(n, "h:1", "h:2") for n in range(1, nodes + 1)]
    with pytest.raises(InvalidPlacement, match=text):
        place_shards(members, count, factor)
    with pytest.raises(InvalidPlacement, match="repeat"):
        place_shards([make_member(1, "h:1", "h:2")] * 2)


def test_leaders_move_to_their_preferred_nodes() -> None:
    """A node leading shards preferred elsewhere hands them over, unless the preferred node is
    down; it keeps the ones it is preferred for."""
    members = [make_member(n, "h:1", "h:2") for n in (1, 2, 3)]
    shards = {s.shard_id: s for s in place_shards(members, 6, 3)}
    metadata = ClusterMetadata("c", 1, {m.node_id: m for m in members}, shards)
    view = ClusterView(metadata, 1, {shard_id: 1 for shard_id in shards})
    expected = [(s, shards[s].preferred_leader) for s in range(1, 7)
                if shards[s].preferred_leader != 1]
    assert leader_transfers(view) == expected
    down = view.observe(down_nodes=frozenset({2}))
    assert leader_transfers(down) == [(s, n) for s, n in expected if n != 2]
    assert leader_transfers(ClusterView(metadata, 2, {s: 1 for s in shards})) == []
