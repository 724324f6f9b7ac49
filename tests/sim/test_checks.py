"""The simulator's checkers catch what they claim: known-bad records give violations, good ones none."""

from __future__ import annotations

from quorumkv.history.operation import Event, History, OpType
from quorumkv.sim import checks
from quorumkv.sim.records import AppliedRecord, LeaderRecord, LogImage


def leader(node: int, term: int, log: list[tuple[int, int]], shard: int = 0) -> LeaderRecord:
    return LeaderRecord(shard, term, node, term * 1000, tuple(log))


def applied(node: int, index: int, term: int, digest: int, node_term: int | None = None,
            life: int = 0, shard: int = 0) -> AppliedRecord:
    return AppliedRecord(node, life, shard, index, term, digest,
                         term if node_term is None else node_term, index)


def image(node: int, entries: list[tuple[int, int, int]], base: tuple[int, int] = (0, 0),
          shard: int = 0) -> LogImage:
    return LogImage(node, shard, "end", base[0], base[1], tuple(entries))


# ---- election safety ----------------------------------------------------------------------


def test_two_leaders_in_one_term_is_a_violation() -> None:
    """Two different nodes leading the same shard in the same term break election safety."""
    found = checks.check_election_safety([leader(1, 3, [(0, 0)]), leader(2, 3, [(0, 0)])])
    assert [v.check for v in found] == ["election-safety"]
    assert "term 3" in found[0].message


def test_leaders_of_different_terms_or_shards_are_fine() -> None:
    """One leader per (shard, term) passes, even when the same node leads twice."""
    records = [leader(1, 3, [(0, 0)]), leader(2, 4, [(0, 0)]), leader(2, 3, [(0, 0)], shard=1),
               leader(1, 3, [(0, 0)])]
    assert checks.check_election_safety(records) == []


# ---- log matching -------------------------------------------------------------------------


def test_same_index_and_term_with_different_content_is_a_violation() -> None:
    """Two logs holding (index 2, term 1) with different data break log matching."""
    found = checks.check_log_matching([image(1, [(1, 1, 10), (2, 1, 20)]),
                                       image(2, [(1, 1, 10), (2, 1, 99)])])
    assert [v.check for v in found] == ["log-matching"]


def test_shared_entry_with_different_predecessor_term_is_a_violation() -> None:
    """Logs sharing (index 3, term 2) but disagreeing on the term at index 2 break log matching."""
    found = checks.check_log_matching([image(1, [(1, 1, 10), (2, 1, 20), (3, 2, 30)]),
                                       image(2, [(1, 1, 10), (2, 2, 21), (3, 2, 30)])])
    assert found and found[0].check == "log-matching"
    assert "index 2" in found[0].message


def test_a_gap_in_a_log_is_a_violation() -> None:
    """A log image whose indexes skip one is reported."""
    found = checks.check_log_matching([image(1, [(1, 1, 10), (3, 1, 30)])])
    assert [v.check for v in found] == ["log-matching"]


def test_divergent_uncommitted_suffixes_are_fine() -> None:
    """Logs that agree on a prefix and differ after it (different terms) satisfy log matching."""
    found = checks.check_log_matching([
        image(1, [(1, 1, 10), (2, 1, 20), (3, 2, 30)]),
        image(2, [(1, 1, 10), (2, 1, 20), (3, 3, 31), (4, 3, 41)]),
        image(3, [(3, 2, 30)], base=(2, 1)),
    ])
    assert found == []


def test_snapshot_base_term_counts_as_the_predecessor() -> None:
    """A compacted log's base term is compared with the other log's entry before a shared one."""
    found = checks.check_log_matching([
        image(1, [(1, 1, 10), (2, 1, 20), (3, 2, 30)]),
        image(2, [(3, 2, 30)], base=(2, 2)),
    ])
    assert [v.check for v in found] == ["log-matching"]


# ---- leader completeness ------------------------------------------------------------------


def test_leader_missing_a_committed_entry_is_a_violation() -> None:
    """A leader of a later term whose log lacks an entry committed earlier breaks completeness."""
    committed = [applied(1, 1, 1, 10, node_term=1), applied(2, 1, 1, 10, node_term=2)]
    found = checks.check_leader_completeness([leader(3, 2, [(0, 0)])], committed)
    assert [v.check for v in found] == ["leader-completeness"]
    assert "index 1" in found[0].message


def test_leader_with_another_term_at_a_committed_index_is_a_violation() -> None:
    """A later leader holding a different term at a committed index breaks completeness."""
    found = checks.check_leader_completeness([leader(3, 3, [(0, 0), (1, 2)])],
                                             [applied(1, 1, 1, 10, node_term=1)])
    assert found and "term 2" in found[0].message


def test_leader_of_a_term_before_the_commit_is_not_judged() -> None:
    """A stale leader (term not after the commit term bound) may lack the entry (Figure 8)."""
    found = checks.check_leader_completeness([leader(3, 2, [(0, 0)])],
                                             [applied(1, 1, 1, 10, node_term=2)])
    assert found == []


def test_entries_covered_by_the_leader_snapshot_pass() -> None:
    """A committed entry at or below the leader's snapshot point counts as present."""
    found = checks.check_leader_completeness([leader(3, 5, [(4, 3), (5, 4)])],
                                             [applied(1, 2, 1, 10, node_term=1)])
    assert found == []


# ---- state machine safety -----------------------------------------------------------------


def test_different_entries_applied_at_one_index_is_a_violation() -> None:
    """Two nodes applying different entries at the same index break state machine safety."""
    found = checks.check_state_machine_safety([applied(1, 1, 1, 10), applied(2, 1, 1, 11)])
    assert [v.check for v in found] == ["state-machine-safety"]


def test_applying_backwards_within_one_life_is_a_violation() -> None:
    """A node applying index 2 after index 3 in the same life is reported."""
    found = checks.check_state_machine_safety([applied(1, 3, 1, 30), applied(1, 2, 1, 20)])
    assert [v.check for v in found] == ["state-machine-safety"]


def test_reapplying_after_a_restart_and_snapshot_gaps_are_fine() -> None:
    """A restarted node re-applies the same entries; gaps (snapshots) are allowed."""
    records = [applied(1, 1, 1, 10), applied(1, 2, 1, 20), applied(1, 1, 1, 10, life=1),
               applied(2, 2, 1, 20), applied(2, 5, 2, 50)]
    assert checks.check_state_machine_safety(records) == []


# ---- linearizability ----------------------------------------------------------------------


def test_stale_read_is_a_linearizability_violation() -> None:
    """A read that misses a write completed before it began is reported with its key."""
    history = History([
        Event(OpType.INVOKE, 1, "write", "k", "a", 1), Event(OpType.OK, 1, "write", "k", "a", 2),
        Event(OpType.INVOKE, 1, "write", "k", "b", 3), Event(OpType.OK, 1, "write", "k", "b", 4),
        Event(OpType.INVOKE, 2, "read", "k", None, 5), Event(OpType.OK, 2, "read", "k", "a", 6),
    ])
    found, decided = checks.check_linearizability(history)
    assert decided
    assert [v.check for v in found] == ["linearizability"]
    assert "key k" in found[0].message


def test_linearizable_history_with_info_passes() -> None:
    """An info write that may have happened explains a later read: no violation."""
    history = History([
        Event(OpType.INVOKE, 1, "write", "k", "a", 1), Event(OpType.INFO, 1, "write", "k", None, 2),
        Event(OpType.INVOKE, 2, "read", "k", None, 5), Event(OpType.OK, 2, "read", "k", "a", 6),
        Event(OpType.INVOKE, 2, "cas", "k", ["a", "b"], 7), Event(OpType.OK, 2, "cas", "k", True, 8),
    ])
    assert checks.check_linearizability(history) == ([], True)


# ---- liveness and convergence -------------------------------------------------------------


def test_no_leader_or_write_after_healing_is_a_liveness_violation() -> None:
    """Missing leader or write, or one that came after the deadline, is reported."""
    assert len(checks.check_liveness(100, 200, None, None)) == 2
    assert [v.message.startswith("no client write") for v in
            checks.check_liveness(100, 200, 150, 250)] == [True]
    assert checks.check_liveness(100, 200, 150, 190) == []


def test_replicas_at_one_index_with_different_data_are_a_violation() -> None:
    """Two replicas that applied up to the same index must hold the same data."""
    found = checks.check_replica_convergence([(1, 0, 9, 111), (2, 0, 9, 222), (3, 0, 8, 333)])
    assert [v.check for v in found] == ["replica-convergence"]
    assert checks.check_replica_convergence([(1, 0, 9, 111), (2, 0, 9, 111)]) == []
