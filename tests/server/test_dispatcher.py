"""The dispatcher's failure semantics: definite errors only when nothing happened, else UNKNOWN."""

from __future__ import annotations

from collections.abc import Callable

from quorumkv import errors
from quorumkv.cluster.pipeline_order import PipelineOrder
from quorumkv.codec.peer import ForwardOutcome, ForwardRequest, ForwardResponse, PeerRecord
from quorumkv.kv.reply import OK, ErrorReply, Reply, reply_to_wire
from quorumkv.server.dispatcher import Dispatcher

WRITES = {b"SET", b"DEL"}


class FakeHost:
    def __init__(self, leader: int = 0, me: int = 1) -> None:
        self.leader = leader
        self.me = me
        self.submitted: list[tuple[bytes, tuple[bytes, ...], Callable[[object], None]]] = []

    def is_leader(self, shard_id: int) -> bool:
        return self.leader == self.me

    def leader_of(self, shard_id: int) -> int:
        return self.leader

    def hosts(self, shard_id: int) -> bool:
        return True

    def submit(self, shard_id: int, name: bytes, args: tuple[bytes, ...],
               done: Callable[[object], None]) -> None:
        self.submitted.append((name, args, done))


class FakeSender:
    def __init__(self, connected: bool = True) -> None:
        self.connected = connected
        self.sent: list[tuple[int, PeerRecord]] = []

    def send_record(self, target_node: int, record: PeerRecord) -> bool:
        if self.connected:
            self.sent.append((target_node, record))
        return self.connected

    def is_connected(self, node_id: int) -> bool:
        return self.connected


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make(leader: int, connected: bool = True) -> tuple[Dispatcher, FakeHost, FakeSender, Clock]:
    host, sender, clock = FakeHost(leader), FakeSender(connected), Clock()
    dispatcher = Dispatcher(1, host, sender, clock, lambda name: name in WRITES,
                            election_timeout_ms=500, request_timeout_ms=5000)
    return dispatcher, host, sender, clock


def collect() -> tuple[list[Reply], Callable[[Reply], None]]:
    replies: list[Reply] = []
    return replies, replies.append


def test_a_leader_runs_commands_itself_and_relays_the_result() -> None:
    """On the leader a command goes to the local host; its result is the reply."""
    dispatcher, host, _, _ = make(leader=1)
    replies, reply_to = collect()
    dispatcher.submit(1, b"SET", (b"k", b"v"), reply_to)
    host.submitted[0][2](OK)
    assert replies == [OK]
    assert dispatcher.in_flight() == 0


def test_a_write_timing_out_after_proposal_is_unknown_never_ok_or_definite() -> None:
    """A proposed write with no answer by the deadline gets -UNKNOWN; a late result is dropped."""
    dispatcher, host, _, clock = make(leader=1)
    replies, reply_to = collect()
    dispatcher.submit(1, b"SET", (b"k", b"v"), reply_to)
    clock.now = 5001
    dispatcher.tick()
    assert len(replies) == 1 and isinstance(replies[0], ErrorReply)
    assert replies[0].message.startswith(b"UNKNOWN ")
    assert b"outcome unknown" in replies[0].message
    host.submitted[0][2](OK)  # the late completion must not produce a second reply
    assert len(replies) == 1


def test_a_read_timing_out_is_a_definite_tryagain() -> None:
    """Reads change nothing, so a read in doubt is answered -TRYAGAIN."""
    dispatcher, _, _, clock = make(leader=1)
    replies, reply_to = collect()
    dispatcher.submit(1, b"GET", (b"k",), reply_to)
    clock.now = 5001
    dispatcher.tick()
    assert isinstance(replies[0], ErrorReply) and replies[0].code == b"TRYAGAIN"


def test_not_leader_before_proposing_is_retried_not_reported() -> None:
    """A NotLeader from the host parks the command; it is forwarded once a leader is known."""
    dispatcher, host, sender, _ = make(leader=1)
    replies, reply_to = collect()
    dispatcher.submit(1, b"SET", (b"k", b"v"), reply_to)
    host.leader = 2
    host.submitted[0][2](errors.NotLeader(1, 2))
    assert replies == []
    dispatcher.retry_parked()
    assert sender.sent and isinstance(sender.sent[0][1], ForwardRequest)
    assert sender.sent[0][0] == 2


def test_no_leader_waits_then_answers_tryagain() -> None:
    """With no leader known the command waits (bounded) and is then refused definitely."""
    dispatcher, _, _, clock = make(leader=0)
    replies, reply_to = collect()
    dispatcher.submit(1, b"SET", (b"k", b"v"), reply_to)
    clock.now = 1000
    dispatcher.tick()
    assert replies == []
    clock.now = 1501
    dispatcher.tick()
    assert isinstance(replies[0], ErrorReply) and replies[0].code == b"TRYAGAIN"


def test_forwarded_command_relays_the_leaders_reply() -> None:
    """A follower forwards to the leader and relays exactly what the leader answered."""
    dispatcher, _, sender, _ = make(leader=2)
    replies, reply_to = collect()
    dispatcher.submit(1, b"GET", (b"k",), reply_to)
    target, request = sender.sent[0]
    assert target == 2 and isinstance(request, ForwardRequest)
    dispatcher.on_forward_response(ForwardResponse(request.request_id, ForwardOutcome.ANSWERED,
                                                   reply_to_wire(b"value"), 2))
    assert replies == [b"value"]


def test_losing_the_leader_connection_makes_forwarded_writes_unknown() -> None:
    """A write forwarded over a connection that then breaks may have happened: -UNKNOWN."""
    dispatcher, _, _, _ = make(leader=2)
    replies, reply_to = collect()
    dispatcher.submit(1, b"SET", (b"k", b"v"), reply_to)
    dispatcher.on_peer_down(2)
    assert isinstance(replies[0], ErrorReply) and replies[0].code == b"UNKNOWN"


def test_a_forward_that_could_not_be_sent_is_not_unknown() -> None:
    """If the forward never left (no connection), the write is definitely not applied."""
    dispatcher, _, _, clock = make(leader=2, connected=False)
    replies, reply_to = collect()
    dispatcher.submit(1, b"SET", (b"k", b"v"), reply_to)
    clock.now = 5001
    dispatcher.tick()
    assert isinstance(replies[0], ErrorReply) and replies[0].code == b"TRYAGAIN"


def test_the_leader_serves_forwards_and_refuses_when_not_leader() -> None:
    """A forwarded command runs on the leader's host; a non-leader answers RETRY with a hint."""
    dispatcher, host, sender, _ = make(leader=1)
    dispatcher.serve_forward(ForwardRequest(3, 9, 1, b"SET", (b"k", b"v")))
    host.submitted[0][2](OK)
    answer = sender.sent[-1][1]
    assert isinstance(answer, ForwardResponse) and answer.outcome is ForwardOutcome.ANSWERED
    assert sender.sent[-1][0] == 3 and answer.request_id == 9
    host.leader = 2
    dispatcher.serve_forward(ForwardRequest(3, 10, 1, b"SET", (b"k", b"v")))
    answer = sender.sent[-1][1]
    assert isinstance(answer, ForwardResponse) and answer.outcome is ForwardOutcome.RETRY
    assert answer.leader_id == 2


def test_outcome_unknown_from_the_host_is_relayed_as_unknown() -> None:
    """errors.OutcomeUnknown maps to an -UNKNOWN reply, also across a forward."""
    dispatcher, host, sender, _ = make(leader=1)
    dispatcher.serve_forward(ForwardRequest(3, 9, 1, b"SET", (b"k", b"v")))
    host.submitted[0][2](errors.OutcomeUnknown(1, "leadership lost"))
    answer = sender.sent[-1][1]
    assert isinstance(answer, ForwardResponse)
    assert answer.reply[1].startswith(b"UNKNOWN ")


def test_a_write_over_the_log_entry_limit_is_refused_definitely() -> None:
    """A write larger than proposal_bytes_max gets -ERR at once, never a retry hint."""
    from quorumkv import limits

    dispatcher, host, _, _ = make(leader=1)
    replies, reply_to = collect()
    dispatcher.submit(1, b"SET", (b"k", b"x" * limits.proposal_bytes_max), reply_to)
    assert isinstance(replies[0], ErrorReply) and replies[0].code == b"ERR"
    assert b"proposal_bytes_max" in replies[0].message
    assert not host.submitted


# ---- per-connection order (cluster.pipeline_order) and leaders that went away ----------------

def submit_ordered(dispatcher: Dispatcher, order: PipelineOrder, name: bytes,
                   *args: bytes) -> list[Reply]:
    replies, reply_to = collect()
    dispatcher.submit(1, name, args, reply_to, order, order.new_command())
    return replies


def test_a_write_is_not_submitted_before_an_earlier_read_of_its_connection_is_done() -> None:
    """GET then SET on one connection: the SET reaches the host only once the GET answered
    (else the GET could see it); a GET after a SET goes at once (the host's read floor)."""
    dispatcher, host, _, _ = make(leader=1)
    order = PipelineOrder()
    get_reply = submit_ordered(dispatcher, order, b"GET", b"k")
    set_reply = submit_ordered(dispatcher, order, b"SET", b"k", b"v")
    submit_ordered(dispatcher, order, b"GET", b"k")
    assert [name for name, _, _ in host.submitted] == [b"GET"]
    host.submitted[0][2](None)
    assert get_reply == [None]
    assert [name for name, _, _ in host.submitted] == [b"GET", b"SET", b"GET"]
    host.submitted[1][2](OK)
    assert set_reply == [OK]


def test_writes_of_one_connection_to_one_leader_are_pipelined() -> None:
    """Writes to the same shard on the same route are all sent at once (the log orders them)."""
    dispatcher, _, sender, _ = make(leader=2)
    order = PipelineOrder()
    for value in (b"1", b"2", b"3"):
        submit_ordered(dispatcher, order, b"SET", b"k", value)
    assert [record.args[1] for _, record in sender.sent] == [b"1", b"2", b"3"]


def test_the_request_timeout_counts_from_sending_not_from_queueing() -> None:
    """A command waiting behind earlier ones of its connection is not timed out meanwhile."""
    dispatcher, host, _, clock = make(leader=1)
    order = PipelineOrder()
    submit_ordered(dispatcher, order, b"GET", b"k")
    get_reply = submit_ordered(dispatcher, order, b"SET", b"k", b"v")
    clock.now = 4000
    host.submitted[0][2](None)  # the SET is sent now
    clock.now = 6000
    dispatcher.tick()
    assert get_reply == []
    host.submitted[1][2](OK)
    assert get_reply == [OK]


def test_a_refused_write_with_a_later_write_applied_gets_a_definite_tryagain() -> None:
    """Sending a refused write again after a later one applied would reorder them: -TRYAGAIN."""
    dispatcher, _, sender, _ = make(leader=2)
    order = PipelineOrder()
    first = submit_ordered(dispatcher, order, b"SET", b"k", b"1")
    second = submit_ordered(dispatcher, order, b"SET", b"k", b"2")
    ids = [record.request_id for _, record in sender.sent]
    dispatcher.on_forward_response(ForwardResponse(ids[0], ForwardOutcome.RETRY, None, 3))
    assert first == []  # held while the later write is in flight
    dispatcher.on_forward_response(ForwardResponse(ids[1], ForwardOutcome.ANSWERED,
                                                   reply_to_wire(OK), 2))
    assert second == [OK]
    assert isinstance(first[0], ErrorReply) and first[0].code == b"TRYAGAIN"


def test_refused_commands_are_sent_again_in_order() -> None:
    """When every in-flight command of a connection was refused, all go again, in order."""
    dispatcher, host, sender, _ = make(leader=2)
    order = PipelineOrder()
    submit_ordered(dispatcher, order, b"SET", b"k", b"1")
    submit_ordered(dispatcher, order, b"SET", b"k", b"2")
    ids = [record.request_id for _, record in sender.sent]
    for request_id in ids:
        dispatcher.on_forward_response(ForwardResponse(request_id, ForwardOutcome.RETRY,
                                                       None, 3))
    host.leader = 3
    dispatcher.retry_parked()
    assert [(target, record.args[1]) for target, record in sender.sent[2:]] == [
        (3, b"1"), (3, b"2")]


def test_a_new_leader_settles_forwards_to_the_old_one_at_once() -> None:
    """Once the replica here sees another leader, forwards to the old one are settled now:
    writes -UNKNOWN (they may have been applied), reads sent to the new leader."""
    dispatcher, host, sender, _ = make(leader=2)
    write_reply, write_to = collect()
    dispatcher.submit(1, b"SET", (b"k", b"v"), write_to)
    read_reply, read_to = collect()
    dispatcher.submit(2, b"GET", (b"k",), read_to)
    host.leader = 3
    dispatcher.retry_parked()
    assert isinstance(write_reply[0], ErrorReply) and write_reply[0].code == b"UNKNOWN"
    assert b"no longer the leader" in write_reply[0].message
    assert read_reply == []
    dispatcher.tick()
    assert sender.sent[-1][0] == 3 and sender.sent[-1][1].name == b"GET"


def test_forwards_wait_out_an_election_that_the_old_leader_wins_again() -> None:
    """During an election forwards wait; if their leader wins again, it answers them."""
    dispatcher, host, sender, _ = make(leader=2)
    write_reply, write_to = collect()
    dispatcher.submit(1, b"SET", (b"k", b"v"), write_to)
    host.leader = 0
    dispatcher.retry_parked()
    assert write_reply == []
    host.leader = 2
    dispatcher.retry_parked()
    request_id = sender.sent[0][1].request_id
    dispatcher.on_forward_response(ForwardResponse(request_id, ForwardOutcome.ANSWERED,
                                                   reply_to_wire(OK), 2))
    assert write_reply == [OK]
