"""The partition shapes: who hears whom under each grudge the partition nemesis builds."""

from __future__ import annotations

import random

import pytest

from quorumkv.verify.nemesis import (
    complete_grudge,
    isolated,
    majorities_ring,
    one_way,
    random_halves,
)

NODES = [1, 2, 3, 4, 5]


def visible(grudge: dict[int, set[int]], node: int, nodes: list[int]) -> set[int]:
    return set(nodes) - grudge.get(node, set())


def test_complete_grudge_cuts_every_link_between_components() -> None:
    """Nodes hear exactly the members of their own component, in both directions."""
    grudge = complete_grudge([[1, 2], [3, 4, 5]])
    assert grudge == {1: {3, 4, 5}, 2: {3, 4, 5}, 3: {1, 2}, 4: {1, 2}, 5: {1, 2}}


@pytest.mark.parametrize("seed", range(20))
def test_random_halves_leave_one_majority(seed: int) -> None:
    """Random halves: a minority and a majority, each cut off from the other both ways."""
    grudge = random_halves(NODES, random.Random(seed))
    sides = {frozenset(visible(grudge, node, NODES)) for node in NODES}
    assert sorted(len(side) for side in sides) == [2, 3]
    for node, enemies in grudge.items():
        assert all(node in grudge[enemy] for enemy in enemies)


def test_isolated_node_hears_nobody_and_nobody_hears_it() -> None:
    """The isolated node and the rest lose each other both ways; the rest stay connected."""
    grudge = isolated(3, NODES)
    assert grudge[3] == {1, 2, 4, 5}
    assert all(grudge[node] == {3} for node in (1, 2, 4, 5))


@pytest.mark.parametrize("nodes", [[1, 2, 3], [1, 2, 3, 4, 5], list(range(1, 8)), list(range(1, 10))])
@pytest.mark.parametrize("seed", range(5))
def test_majorities_ring_gives_every_node_its_own_majority(nodes: list[int], seed: int) -> None:
    """In a majorities ring every node hears a majority (itself included), and for five nodes
    or more no two nodes hear the same majority."""
    grudge = majorities_ring(nodes, random.Random(seed))
    views = [frozenset(visible(grudge, node, nodes)) for node in nodes]
    assert all(len(view) == len(nodes) // 2 + 1 for view in views)
    assert all(node in view for node, view in zip(nodes, views, strict=True))
    if len(nodes) >= 5:
        assert len(set(views)) == len(nodes)


def test_one_way_blocks_only_what_the_target_receives() -> None:
    """A one-way partition: the target hears nothing, the others still hear the target."""
    assert one_way(2, NODES) == {2: {1, 3, 4, 5}}
