"""The safety and liveness rules every simulated run must satisfy, as pure functions over records.

Each check takes what the simulator recorded (sim/records.py) and returns the violations found,
an empty list when the rule held. The rules, from the Raft paper (Figure 3):

- Election safety: at most one leader per term, per shard.
- Log matching: if two persisted logs hold an entry with the same index and term, the logs are
  identical up to and including it. Checked over every log image taken (at each crash after
  recovery, and at the end), pairwise through the (index, term) -> (digest, previous term) map:
  equal digests and equal previous terms at every shared (index, term) imply, by induction,
  identical prefixes.
- Leader completeness: an entry committed in term T is in the log of every leader of a term
  later than T, as that log stood when it became leader (or covered by its snapshot point).
  The commit term is not observed directly; it is bounded from above by the current term of any
  replica that applied the entry (a replica learns of a commit from a leader of its current term
  or earlier), so the check uses the smallest such term: sound, never a false alarm.
- State machine safety: every replica applies the same entry at a given index, and within one
  life of a replica applied indexes strictly increase (gaps are snapshot installs).
- Linearizability of the client history, per key, by quorumkv.history's register checker.
- Liveness: after healing, a leader and a committed client write within the limit.
- Replica convergence: replicas that applied up to the same index hold the same data.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from quorumkv.history.linearizability import check_register_history
from quorumkv.history.operation import History
from quorumkv.sim.records import AppliedRecord, LeaderRecord, LogImage, Violation


def check_election_safety(leaders: Iterable[LeaderRecord]) -> list[Violation]:
    """At most one leader per (shard, term) (Raft §5.2)."""
    seen: dict[tuple[int, int], LeaderRecord] = {}
    violations = []
    for record in leaders:
        key = (record.shard_id, record.term)
        first = seen.setdefault(key, record)
        if first.node_id != record.node_id:
            violations.append(Violation(
                "election-safety",
                f"shard {record.shard_id} term {record.term} has two leaders: node "
                f"{first.node_id} (at {first.time_us}us) and node {record.node_id} "
                f"(at {record.time_us}us)"))
    return violations


def check_log_matching(images: Iterable[LogImage]) -> list[Violation]:
    """Logs that share an entry (index, term) are identical up to it (Raft §5.3)."""
    known: dict[tuple[int, int, int], tuple[int, int | None, LogImage]] = {}
    violations: list[Violation] = []
    for image in images:
        violations.extend(_contiguity_violations(image))
        previous_term: int | None = image.base_term
        previous_index = image.base_index
        for index, term, digest in image.entries:
            prior = previous_term if index == previous_index + 1 else None
            key = (image.shard_id, index, term)
            if key not in known:
                known[key] = (digest, prior, image)
            else:
                violation = _log_mismatch(key, known[key], (digest, prior, image))
                if violation is not None:
                    violations.append(violation)
            previous_index, previous_term = index, term
    return violations


def _contiguity_violations(image: LogImage) -> list[Violation]:
    expected = image.base_index + 1
    for index, _term, _digest in image.entries:
        if index != expected:
            return [Violation(
                "log-matching",
                f"node {image.node_id} shard {image.shard_id} ({image.moment}): log has index "
                f"{index} where {expected} was expected (a gap or disorder in the log)")]
        expected += 1
    return []


def _log_mismatch(
    key: tuple[int, int, int],
    first: tuple[int, int | None, LogImage],
    second: tuple[int, int | None, LogImage],
) -> Violation | None:
    shard_id, index, term = key
    (digest_a, prior_a, image_a), (digest_b, prior_b, image_b) = first, second
    where = (f"node {image_a.node_id} ({image_a.moment}) and node {image_b.node_id} "
             f"({image_b.moment})")
    if digest_a != digest_b:
        return Violation(
            "log-matching",
            f"shard {shard_id}: entry at index {index} term {term} differs in content "
            f"between {where}")
    if prior_a is not None and prior_b is not None and prior_a != prior_b:
        return Violation(
            "log-matching",
            f"shard {shard_id}: both logs hold index {index} term {term} but index {index - 1} "
            f"has term {prior_a} in one and {prior_b} in the other ({where})")
    return None


def check_leader_completeness(
    leaders: Iterable[LeaderRecord], applied: Iterable[AppliedRecord]
) -> list[Violation]:
    """Every committed entry is in the log of every leader of a later term (Raft §5.4)."""
    committed = _committed_entries(applied)
    violations = []
    for leader in leaders:
        base_index = leader.log_terms[0][0] if leader.log_terms else 0
        log = dict(leader.log_terms[1:])
        for (shard_id, index), (term, commit_term_bound) in committed.items():
            if shard_id != leader.shard_id or leader.term <= commit_term_bound:
                continue
            if index <= base_index or log.get(index) == term:
                continue
            violations.append(Violation(
                "leader-completeness",
                f"shard {shard_id}: entry index {index} term {term} was committed by term "
                f"{commit_term_bound} at the latest, but node {leader.node_id} became leader "
                f"of term {leader.term} at {leader.time_us}us with "
                f"{'no entry' if index not in log else f'term {log[index]}'} at that index"))
    return violations


def _committed_entries(
    applied: Iterable[AppliedRecord],
) -> dict[tuple[int, int], tuple[int, int]]:
    """(shard, index) -> (entry term, smallest current term of a replica that applied it)."""
    committed: dict[tuple[int, int], tuple[int, int]] = {}
    for record in applied:
        key = (record.shard_id, record.index)
        if key in committed:
            term, bound = committed[key]
            committed[key] = (term, min(bound, record.node_term))
        else:
            committed[key] = (record.term, record.node_term)
    return committed


def check_state_machine_safety(applied: Sequence[AppliedRecord]) -> list[Violation]:
    """Every replica applies the same entry at each index, in increasing order (Raft §5.4.3)."""
    first_at: dict[tuple[int, int], AppliedRecord] = {}
    last_index: dict[tuple[int, int, int], int] = {}
    violations = []
    for record in applied:
        life = (record.node_id, record.incarnation, record.shard_id)
        previous = last_index.get(life)
        if previous is not None and record.index <= previous:
            violations.append(Violation(
                "state-machine-safety",
                f"node {record.node_id} shard {record.shard_id} applied index {record.index} "
                f"after index {previous} in the same life (must increase)"))
        last_index[life] = record.index
        first = first_at.setdefault((record.shard_id, record.index), record)
        if (first.term, first.digest) != (record.term, record.digest):
            violations.append(Violation(
                "state-machine-safety",
                f"shard {record.shard_id} index {record.index}: node {first.node_id} applied "
                f"term {first.term} digest {first.digest:016x} but node {record.node_id} "
                f"applied term {record.term} digest {record.digest:016x}"))
    return violations


def check_linearizability(history: History) -> tuple[list[Violation], bool]:
    """The client history is linearizable per key (register model): (violations, decided).

    `decided` is False when the checker hit its search bound and could not tell; that is not
    a violation, but the caller reports it."""
    verdict = check_register_history(history)
    if verdict.valid is False:
        window = "; ".join(str(operation) for operation in verdict.counterexample[:12])
        return [Violation(
            "linearizability",
            f"key {verdict.key}: {verdict.message}" + (f" [{window}]" if window else ""))], True
    return [], verdict.valid is True


def check_liveness(
    heal_time_us: int,
    deadline_us: int,
    leader_time_us: int | None,
    write_time_us: int | None,
) -> list[Violation]:
    """After healing at heal_time_us, a leader and a committed client write by deadline_us."""
    violations = []
    if leader_time_us is None or leader_time_us > deadline_us:
        violations.append(Violation(
            "liveness",
            f"no leader elected between healing at {heal_time_us}us and {deadline_us}us"))
    if write_time_us is None or write_time_us > deadline_us:
        violations.append(Violation(
            "liveness",
            f"no client write committed between healing at {heal_time_us}us and "
            f"{deadline_us}us"))
    return violations


def check_replica_convergence(states: Iterable[tuple[int, int, int, int]]) -> list[Violation]:
    """Replicas of a shard at the same applied index hold the same data.

    `states`: (node id, shard id, applied index, digest of the shard's data)."""
    first: dict[tuple[int, int], tuple[int, int]] = {}
    violations = []
    for node_id, shard_id, applied_index, digest in states:
        seen = first.setdefault((shard_id, applied_index), (node_id, digest))
        if seen[1] != digest:
            violations.append(Violation(
                "replica-convergence",
                f"shard {shard_id}: nodes {seen[0]} and {node_id} both applied up to index "
                f"{applied_index} but hold different data"))
    return violations
