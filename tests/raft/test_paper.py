"""One test per rule of the Raft paper (Ongaro & Ousterhout 2014) and of Ongaro's thesis.

Each docstring cites the section whose rule it checks. Most tests drive a single core with
hand-made messages; the rest use the harness cluster with controlled delivery.
"""

from __future__ import annotations

import random

import pytest

from quorumkv.errors import (
    ConfChangePending,
    InvalidConfChange,
    LeaderTransferInProgress,
    NotLeader,
    ProposalDropped,
    ReplicaStateLost,
)
from quorumkv.raft.bootstrap import BOOTSTRAP_INDEX
from quorumkv.raft.confchange import ConfChange
from quorumkv.raft.config import Config
from quorumkv.raft.memory_log import MemoryLog
from quorumkv.raft.node import TRANSFER_CONTEXT, Node
from quorumkv.raft.types import (
    ConfState,
    Entry,
    HardState,
    Message,
    MessageType,
    Ready,
    Role,
)

from .harness import Cluster

GROUP = 1


def make_node(
    replica: int = 1,
    voters: tuple[int, ...] = (1, 2, 3),
    terms: tuple[int, ...] = (),
    term: int = 1,
    learners: tuple[int, ...] = (),
    seed: int | None = None,
    **options: object,
) -> tuple[Node, MemoryLog]:
    """A core over a bootstrapped log followed by entries of the given terms (index 2, 3...)."""
    log = MemoryLog.bootstrap(GROUP, ConfState(voters=voters, learners=learners))
    log.append([Entry(t, BOOTSTRAP_INDEX + 1 + i) for i, t in enumerate(terms)])
    log.set_hard_state(HardState(term=max((term, *terms)), vote=0, commit=BOOTSTRAP_INDEX))
    config = Config(id=replica, group_id=GROUP, applied=BOOTSTRAP_INDEX, **options)  # type: ignore[arg-type]
    return Node(config, log, random.Random(replica if seed is None else seed)), log


def drain(node: Node, log: MemoryLog | None = None) -> Ready:
    """Take the node's Ready, persist it into `log` if given, and advance."""
    ready = node.ready()
    if log is not None:
        log.append(ready.entries)
        if ready.hard_state is not None:
            log.set_hard_state(ready.hard_state)
    node.advance(ready)
    return ready


def message(kind: MessageType, source: int, term: int, **fields: object) -> Message:
    return Message(kind, GROUP, source=source, target=1, term=term, **fields)  # type: ignore[arg-type]


def elect(node: Node, log: MemoryLog) -> None:
    """Make `node` (id 1 of voters 1, 2, 3) leader by granting it votes from 2 and 3."""
    node.campaign()
    for _ in range(2):
        ready = drain(node, log)
        requests = [m for m in ready.messages if m.type in (MessageType.VOTE, MessageType.PRE_VOTE)]
        for request in requests:
            response = (
                MessageType.VOTE_RESPONSE
                if request.type == MessageType.VOTE
                else MessageType.PRE_VOTE_RESPONSE
            )
            node.step(message(response, request.target, request.term))
        if node.role == Role.LEADER:
            break
    assert node.role == Role.LEADER
    drain(node, log)


def elected_cluster(count: int = 3, **options: object) -> Cluster:
    cluster = Cluster()
    cluster.add_nodes(count, voters=tuple(range(1, count + 1)), **options)
    cluster.node(1).campaign()
    cluster.stabilize()
    assert cluster.node(1).role == Role.LEADER
    return cluster


# ---- §5.1 terms -------------------------------------------------------------------------------


def test_higher_term_makes_any_role_follower() -> None:
    """§5.1: a server that sees a larger term updates its term and reverts to follower."""
    node, log = make_node()
    elect(node, log)
    node.step(message(MessageType.APPEND, 2, term=node.term + 3, index=0))
    assert node.role == Role.FOLLOWER
    assert node.term == 5
    assert node.leader_id == 2


def test_stale_term_message_is_rejected_with_current_term() -> None:
    """§5.1: a request with a stale term is rejected; the reply carries the current term so
    the stale sender steps down."""
    node, log = make_node(term=5)
    node.step(message(MessageType.APPEND, 2, term=3, index=1, log_term=1))
    replies = drain(node, log).messages
    assert [(m.type, m.term) for m in replies] == [(MessageType.APPEND_RESPONSE, 5)]
    assert log.last_index() == BOOTSTRAP_INDEX


def test_messages_of_another_group_are_ignored() -> None:
    """§5.1 (routing): a message for another group changes nothing, even with a higher term."""
    node, _ = make_node()
    foreign = Message(MessageType.APPEND, GROUP + 1, source=2, target=1, term=9)
    node.step(foreign)
    assert node.term == 1
    assert not node.has_ready() or not node.ready().messages


# ---- §5.2 elections -------------------------------------------------------------------------


def test_candidate_with_majority_becomes_leader_and_appends_noop() -> None:
    """§5.2 and §8: a candidate that receives votes from a majority becomes leader, and its
    first entry is a no-op of its term."""
    node, log = make_node(pre_vote=False)
    node.campaign()
    assert node.role == Role.CANDIDATE and node.term == 2 and node.vote == 1
    node.step(message(MessageType.VOTE_RESPONSE, 2, term=2))
    assert node.role == Role.LEADER
    entries = drain(node, log).entries
    assert [(e.term, e.data) for e in entries] == [(2, b"")]


def test_candidate_rejected_by_majority_steps_down() -> None:
    """§5.2: a candidate that cannot win (a majority rejected it) returns to follower."""
    node, _ = make_node(pre_vote=False)
    node.campaign()
    node.step(message(MessageType.VOTE_RESPONSE, 2, term=2, reject=True))
    node.step(message(MessageType.VOTE_RESPONSE, 3, term=2, reject=True))
    assert node.role == Role.FOLLOWER


def test_vote_granted_at_most_once_per_term() -> None:
    """§5.2: each server votes for at most one candidate in a given term (first come)."""
    node, log = make_node(term=1)
    node.step(message(MessageType.VOTE, 2, term=2, index=1, log_term=1))
    node.step(message(MessageType.VOTE, 3, term=2, index=1, log_term=1))
    replies = drain(node, log).messages
    assert [(m.target, m.reject) for m in replies] == [(2, False), (3, True)]
    assert log.hard_state().vote == 2


def test_candidate_steps_down_on_append_from_leader_of_same_term() -> None:
    """§5.2: a candidate receiving AppendEntries from a leader of its term recognises it."""
    node, _ = make_node(pre_vote=False)
    node.campaign()
    node.step(message(MessageType.APPEND, 2, term=2, index=1, log_term=1))
    assert node.role == Role.FOLLOWER and node.leader_id == 2


def test_randomized_election_timeout_drawn_in_range_on_every_reset() -> None:
    """§5.2: election timeouts are random in [et, 2*et), drawn anew each time."""
    drawn = []
    for seed in range(40):
        node, _ = make_node(replica=1, seed=seed)
        ticks = 0
        while node.role == Role.FOLLOWER:
            node.tick()
            ticks += 1
        drawn.append(ticks)
    assert min(drawn) >= 10 and max(drawn) < 20
    assert len(set(drawn)) > 3


def test_split_vote_leads_to_new_election() -> None:
    """§5.2: when no candidate wins, candidates time out and start a new election (term+1)."""
    node, _ = make_node(pre_vote=False)
    node.campaign()
    for _ in range(40):
        node.tick()
    assert node.role == Role.CANDIDATE and node.term >= 3


# ---- §5.3 log replication -------------------------------------------------------------------


def test_append_rejected_without_matching_previous_entry() -> None:
    """§5.3: a follower refuses entries unless its log holds the preceding (index, term)."""
    node, log = make_node(terms=(1,))
    node.step(
        message(MessageType.APPEND, 2, term=2, index=2, log_term=2, entries=[Entry(2, 3, data=b"x")])
    )
    (reply,) = drain(node, log).messages
    assert reply.reject and reply.index == 2
    assert log.last_index() == 2


def test_conflicting_entries_are_replaced() -> None:
    """§5.3: if an existing entry conflicts with a new one (same index, different term), the
    follower deletes it and all that follow, then appends the leader's entries."""
    node, log = make_node(terms=(1, 1, 1), term=1)
    node.step(
        message(
            MessageType.APPEND,
            2,
            term=2,
            index=2,
            log_term=1,
            entries=[Entry(2, 3, data=b"new")],
        )
    )
    drain(node, log)
    assert [(e.term, e.index) for e in log.entries(2, log.last_index() + 1, 1 << 30)] == [
        (1, 2),
        (2, 3),
    ]


def test_follower_commit_bounded_by_last_new_entry() -> None:
    """§5.3: a follower sets commitIndex = min(leaderCommit, index of last new entry)."""
    node, log = make_node()
    node.step(
        message(
            MessageType.APPEND,
            2,
            term=2,
            index=1,
            log_term=1,
            commit=10,
            entries=[Entry(2, 2, data=b"a")],
        )
    )
    assert node.commit_index == 2


def test_leader_retries_with_decreasing_next_index_until_logs_match() -> None:
    """§5.3: after a rejection the leader decrements nextIndex and retries; eventually the
    follower's log matches the leader's."""
    cluster = elected_cluster()
    cluster.partition((1, 2), (3,))
    for word in (b"a", b"b", b"c"):
        cluster.node(1).propose(word)
    cluster.stabilize()
    cluster.heal()
    cluster.tick(1, 1)
    cluster.stabilize()
    assert cluster.applied_data(3) == [b"a", b"b", b"c"]


def test_duplicate_append_is_idempotent() -> None:
    """§5.5: Raft RPCs are idempotent: a repeated AppendEntries changes nothing."""
    node, log = make_node()
    append = message(
        MessageType.APPEND, 2, term=2, index=1, log_term=1, entries=[Entry(2, 2, data=b"a")]
    )
    node.step(append)
    drain(node, log)
    node.step(append)
    drain(node, log)
    assert log.last_index() == 2


# ---- §5.4 safety ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("candidate_last_term", "candidate_last_index", "granted"),
    [(1, 3, False), (2, 2, False), (2, 3, True), (2, 4, True), (3, 1, True), (1, 9, False)],
)
def test_vote_denied_to_less_up_to_date_log(
    candidate_last_term: int, candidate_last_index: int, granted: bool
) -> None:
    """§5.4.1: a voter denies its vote if its own log is more up to date (later last term,
    or same last term and longer)."""
    node, log = make_node(terms=(2, 2), term=2)  # last entry: index 3, term 2
    node.step(
        message(
            MessageType.VOTE, 2, term=3, index=candidate_last_index, log_term=candidate_last_term
        )
    )
    (reply,) = drain(node, log).messages
    assert reply.reject is (not granted)


def test_leader_commits_previous_term_entry_only_with_current_term_entry() -> None:
    """§5.4.2 (figure 8): a leader does not commit an entry of an earlier term by counting
    replicas; it commits only entries of its own term, which commits earlier ones with it."""
    node, log = make_node(terms=(1,), term=1, pre_vote=False, append_entries_max=1)
    # Entry 2 (term 1) was never committed. Node 1 becomes leader in term 2: its no-op is 3.
    elect(node, log)
    # A follower acknowledges index 2 only: a majority (1 and 2) holds entry 2 of term 1.
    node.step(message(MessageType.APPEND_RESPONSE, 2, term=node.term, index=2))
    assert node.commit_index == BOOTSTRAP_INDEX
    # Acknowledging the no-op (term 2) commits both.
    node.step(message(MessageType.APPEND_RESPONSE, 2, term=node.term, index=3))
    assert node.commit_index == 3


def test_committed_entries_survive_leader_change() -> None:
    """§5.4.3 (leader completeness): entries committed under one leader are in the logs of
    every later leader and are applied everywhere in the same order."""
    cluster = elected_cluster()
    cluster.node(1).propose(b"kept")
    cluster.stabilize()
    cluster.node(1).transfer_leader(2)
    cluster.stabilize()
    assert cluster.node(2).role == Role.LEADER
    cluster.node(2).propose(b"after")
    cluster.stabilize()
    assert all(cluster.applied_data(r) == [b"kept", b"after"] for r in (1, 2, 3))


# ---- thesis §4 membership ---------------------------------------------------------------------


def test_learner_does_not_count_for_commitment() -> None:
    """Thesis §4.2.1: a learner (non-voting member) receives entries but does not count
    towards commitment."""
    node, log = make_node(voters=(1, 2, 3), learners=(4,), pre_vote=False)
    elect(node, log)
    committed = node.commit_index
    node.propose(b"x")
    drain(node, log)
    node.step(message(MessageType.APPEND_RESPONSE, 4, term=node.term, index=log.last_index()))
    assert node.commit_index == committed


def test_joint_configuration_needs_both_majorities() -> None:
    """Thesis §4.3: in a joint configuration, commitment needs a majority of the old AND of
    the new voters."""
    node, log = make_node(voters=(1, 2, 3), pre_vote=False)
    elect(node, log)
    node.apply_conf_change(ConfChange(ConfChange.add_voter(4).changes + ConfChange.add_voter(5).changes))
    assert node.conf_state.voters_outgoing == (1, 2, 3)
    node.propose(b"x")
    drain(node, log)
    last = log.last_index()
    # 4 and 5 give a new-half majority (1, 4, 5) but only 1 of (1 2 3): not committed.
    node.step(message(MessageType.APPEND_RESPONSE, 4, term=node.term, index=last))
    node.step(message(MessageType.APPEND_RESPONSE, 5, term=node.term, index=last))
    assert node.commit_index < last
    node.step(message(MessageType.APPEND_RESPONSE, 2, term=node.term, index=last))
    assert node.commit_index == last


def test_only_one_conf_change_pending() -> None:
    """Thesis §4.1: a leader does not start a membership change until the previous one is
    applied."""
    node, log = make_node(pre_vote=False)
    elect(node, log)
    # A new leader does not know whether its log holds an unapplied change until it applied
    # everything up to its election.
    node.step(message(MessageType.APPEND_RESPONSE, 2, term=node.term, index=log.last_index()))
    drain(node, log)
    node.propose_conf_change(ConfChange.add_learner(4))
    with pytest.raises(ConfChangePending):
        node.propose_conf_change(ConfChange.add_learner(5))


def test_invalid_conf_change_is_refused() -> None:
    """Thesis §4: a change that leaves no voter, or promotes a non-learner, is refused."""
    node, log = make_node(voters=(1,))
    node.campaign()
    drain(node, log)
    with pytest.raises(InvalidConfChange):
        node.propose_conf_change(ConfChange.remove(1))
    with pytest.raises(InvalidConfChange):
        node.propose_conf_change(ConfChange.promote_learner(2))


def test_removed_replica_cannot_disrupt_with_vote_requests() -> None:
    """Thesis §4.2.3: a server that heard from a leader within the minimum election timeout
    ignores RequestVote (removed servers cannot disrupt), except for a leader transfer."""
    node, log = make_node(term=2)
    node.step(message(MessageType.HEARTBEAT, 2, term=2))
    drain(node, log)
    node.step(message(MessageType.VOTE, 9, term=5, index=1, log_term=1))
    assert node.term == 2 and not drain(node, log).messages
    node.step(message(MessageType.VOTE, 3, term=5, index=1, log_term=1, context=TRANSFER_CONTEXT))
    assert node.term == 5 and node.vote == 3


# ---- thesis §3.10 leader transfer, §6.2 check-quorum, §9.6 pre-vote ---------------------------


def test_leader_transfer_sends_timeout_now_and_refuses_proposals() -> None:
    """Thesis §3.10: during a transfer the leader refuses proposals and sends TimeoutNow to a
    caught-up target, which campaigns at once."""
    cluster = elected_cluster()
    cluster.node(1).transfer_leader(3)
    with pytest.raises(LeaderTransferInProgress):
        cluster.node(1).propose(b"x")
    cluster.stabilize()
    assert cluster.node(3).role == Role.LEADER


def test_check_quorum_leader_steps_down_without_quorum() -> None:
    """Thesis §6.2: a leader steps down if an election timeout passes without hearing from
    a majority."""
    node, log = make_node(pre_vote=False)
    elect(node, log)
    for _ in range(2 * node.config.election_timeout_ticks):
        node.tick()
    assert node.role == Role.FOLLOWER


def test_pre_vote_does_not_raise_term() -> None:
    """Thesis §9.6: a pre-candidate asks for votes for term+1 without changing its term, so
    a partitioned server does not inflate terms."""
    node, _ = make_node(term=3)
    node.campaign()
    assert node.role == Role.PRE_CANDIDATE and node.term == 3
    node.step(message(MessageType.PRE_VOTE_RESPONSE, 2, term=4, reject=True))
    node.step(message(MessageType.PRE_VOTE_RESPONSE, 3, term=4, reject=True))
    assert node.term == 4 and node.role == Role.FOLLOWER  # only a rejection's term is adopted


# ---- §8 client interaction, thesis §6.4 reads -------------------------------------------------


def test_proposal_on_follower_raises_not_leader_with_hint() -> None:
    """§8: a follower redirects clients to the leader (NotLeader carries the leader hint)."""
    node, _ = make_node()
    node.step(message(MessageType.HEARTBEAT, 2, term=2))
    with pytest.raises(NotLeader) as raised:
        node.propose(b"x")
    assert raised.value.leader_id == 2


def test_read_index_waits_for_commit_in_current_term_then_heartbeat_quorum() -> None:
    """Thesis §6.4: a leader serves a read only after committing an entry of its term, and
    after a heartbeat round confirms it still leads; the answer is its commit index."""
    node, log = make_node(pre_vote=False)
    elect(node, log)
    node.read_index(b"r")
    assert not drain(node, log).read_states
    node.step(message(MessageType.APPEND_RESPONSE, 2, term=node.term, index=log.last_index()))
    ready = drain(node, log)
    heartbeats = [m for m in ready.messages if m.type == MessageType.HEARTBEAT]
    assert heartbeats and all(m.context == b"r" for m in heartbeats)
    node.step(message(MessageType.HEARTBEAT_RESPONSE, 3, term=node.term, context=b"r"))
    assert [(s.index, s.context) for s in drain(node, log).read_states] == [
        (node.commit_index, b"r")
    ]


def test_uncommitted_bytes_bound_drops_proposals() -> None:
    """Flow control: a leader refuses proposals beyond uncommitted_bytes_max."""
    node, log = make_node(pre_vote=False, uncommitted_bytes_max=10)
    elect(node, log)
    node.propose(b"x" * 8)
    with pytest.raises(ProposalDropped):
        node.propose(b"y" * 8)


# ---- restart --------------------------------------------------------------------------------


def test_restart_reemits_committed_entries_after_applied() -> None:
    """§5 (persistent state): a restarted replica recovers term, vote and log from storage and
    hands out again the committed entries after the host's applied index."""
    cluster = elected_cluster()
    for word in (b"a", b"b", b"c"):
        cluster.node(1).propose(word)
    cluster.stabilize()
    replica = cluster.replicas[2]
    term, vote = replica.node.term, replica.node.vote
    restarted = Node(
        Config(id=2, group_id=GROUP, applied=replica.node.applied_index - 2),
        replica.log,
        random.Random(7),
    )
    assert (restarted.term, restarted.vote) == (term, vote)
    assert restarted.role == Role.FOLLOWER
    again = [entry.data for entry in restarted.ready().committed_entries]
    assert again == [b"b", b"c"]


def test_candidate_removed_during_campaign_does_not_lead() -> None:
    """Thesis §4: a replica removed from the voters while campaigning (it applied the change
    as a candidate) stops campaigning: a non-voter must not become leader."""
    node, _ = make_node(pre_vote=False)
    node.campaign()
    assert node.role == Role.CANDIDATE
    node.apply_conf_change(ConfChange.remove(1))
    assert node.role == Role.FOLLOWER
    node.step(message(MessageType.VOTE_RESPONSE, 2, term=node.term))
    node.step(message(MessageType.VOTE_RESPONSE, 3, term=node.term))
    assert node.role == Role.FOLLOWER


@pytest.mark.parametrize("check_quorum", [True, False])
def test_leader_stickiness_applies_only_with_check_quorum(check_quorum: bool) -> None:
    """Thesis §4.2.3: a replica that heard from its leader within an election timeout ignores
    a higher-term vote request, but only when check-quorum is on. Without it a leader never
    steps down by itself, so it must yield to a higher term or the group can livelock (the
    simulator found one: seed 1445)."""
    cluster = Cluster()
    cluster.add_nodes(3, voters=(1, 2, 3), pre_vote=False, check_quorum=check_quorum)
    cluster.node(1).campaign()
    cluster.stabilize()
    leader = cluster.node(1)
    assert leader.role == Role.LEADER
    term = leader.term
    request = Message(MessageType.VOTE, GROUP, source=3, target=1, term=term + 5,
                      log_term=leader.raft_log.last_term(), index=leader.raft_log.last_index())
    leader.step(request)
    if check_quorum:
        assert leader.term == term and leader.role == Role.LEADER
    else:
        assert leader.term == term + 5 and leader.role == Role.FOLLOWER


def test_a_lease_outlived_by_missed_ticks_is_not_trusted() -> None:
    """Thesis §6.4.1: a lease holds for an election timeout (less drift) after the quorum
    contact that started it, in real time. Ticks the host missed while paused count: after
    them the leader no longer answers reads from its lease, yet no election fires at once."""
    cluster = Cluster()
    cluster.add_nodes(3, voters=(1, 2, 3), read_only="lease")
    for replica in (1, 2, 3):
        cluster.tick(replica, 10)  # lease mode: replicas refuse votes for a timeout at start
    cluster.node(1).campaign()
    cluster.stabilize()
    leader = cluster.node(1)
    leader.tick()
    cluster.stabilize()
    assert leader.status()["lease_valid"]
    leader.missed_ticks(leader.config.election_timeout_ticks)
    assert not leader.status()["lease_valid"]
    assert leader.role == Role.LEADER


def test_a_heartbeat_commit_past_the_log_is_lost_storage_not_a_bug() -> None:
    """A heartbeat's commit is an index this replica acknowledged (the leader sends
    min(match, commit), §5.3); a log ending before it lost acknowledged entries. The core
    refuses it with ReplicaStateLost naming shard, commit and last index, not an invariant
    crash, and its state is unchanged."""
    node, _ = make_node(replica=1, terms=(2,), term=2)  # log ends at BOOTSTRAP_INDEX + 1
    last = BOOTSTRAP_INDEX + 1
    with pytest.raises(ReplicaStateLost, match=f"up to 25, but its log ends at {last}"):
        node.step(message(MessageType.HEARTBEAT, 2, 2, commit=25))
    assert node.commit_index == BOOTSTRAP_INDEX
