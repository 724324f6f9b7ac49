"""The log an operator follows, on real processes: a killed leader shows up in the survivors'
logs as the peer unreachable, an election won and a leader change (node, shard, term), and
its restart as the peer reachable again."""

from __future__ import annotations

import re
from pathlib import Path

from quorumkv.server.local_cluster import wait_until

from .conftest import start_cluster


def terms(log: str, pattern: str) -> list[int]:
    """The terms of the log lines matching `pattern` (a regex with one `(\\d+)` group)."""
    return [int(match) for match in re.findall(pattern, log)]


def test_a_killed_leader_and_its_return_are_in_the_survivors_logs(tmp_path: Path) -> None:
    """Kill shard 1's leader: the new leader logs `elected leader` and the other survivor
    `leader is node N`, both in the same term, later than the old leader's; both log the
    old leader unreachable; after its restart, both log it reachable again."""
    local = start_cluster(tmp_path / "cluster", nodes=3, shards=1)
    try:
        old = local.wait_for_leader(1)
        old_terms = terms(local.log(old), rf"node {old}: shard 1 term (\d+): elected leader")
        assert old_terms, "the first leader logged its election"
        local.kill(old)
        new = wait_until(lambda: (leader := local.leader(1)) != old and leader, 30,
                         "the survivors to agree on a new leader")
        other = next(n for n in local.node_ids if n not in (old, new))

        def logged() -> bool:
            won = terms(local.log(new), rf"node {new}: shard 1 term (\d+): elected leader")
            seen = terms(local.log(other),
                         rf"node {other}: shard 1 term (\d+): leader is node {new} ")
            gone = all(f"node {s}: node {old} unreachable: " in local.log(s)
                       for s in (new, other))
            return bool(won and seen and gone) and won[-1] == seen[-1] > old_terms[-1]

        wait_until(logged, 30, "the survivors to log the election, the new leader and the "
                               "lost peer")
        local.start_node(old, wait=True, bootstrap_flags=False)
        wait_until(lambda: all(f"node {s}: node {old} reachable again after " in local.log(s)
                               for s in (new, other)),
                   30, "the survivors to log the restarted node reachable again")
    finally:
        local.close()
