"""The simulated network delivers, delays, loses, duplicates and partitions as configured."""

from __future__ import annotations

import random

from quorumkv.raft.types import Entry, Message, MessageType
from quorumkv.sim.event_queue import EventQueue
from quorumkv.sim.faults import choose_partition
from quorumkv.sim.network import Envelope, Network
from quorumkv.sim.trace import Trace


def make_network(**rates: object) -> tuple[Network, EventQueue]:
    queue = EventQueue()
    network = Network(random.Random(1), Trace(), lambda t, e: queue.push(t, "deliver", e),
                      delay_min_us=100, delay_max_us=5_000, **rates)  # type: ignore[arg-type]
    return network, queue


def append(index: int) -> Message:
    return Message(MessageType.APPEND, 0, source=1, target=2, term=1, index=index,
                   entries=[Entry(1, index + 1)])


def drain(network: Network, queue: EventQueue) -> list[Message]:
    delivered = []
    while (event := queue.pop()) is not None:
        message = network.arrive(event.time_us, event.payload)
        if message is not None:
            delivered.append(message)
    return delivered


def test_without_reorder_a_link_is_fifo() -> None:
    """Messages on one link arrive in the order sent when reordering is off."""
    network, queue = make_network()
    for index in range(50):
        network.send(0, 1, 2, append(index))
    assert [m.index for m in drain(network, queue)] == list(range(50))


def test_with_reorder_messages_can_overtake() -> None:
    """With reordering on, some message arrives before one sent earlier."""
    network, queue = make_network(reorder=True)
    for index in range(50):
        network.send(0, 1, 2, append(index))
    order = [m.index for m in drain(network, queue)]
    assert sorted(order) == list(range(50)) and order != list(range(50))


def test_loss_and_duplication_rates_apply() -> None:
    """A lossy, duplicating link loses some messages and delivers some twice."""
    network, queue = make_network(loss_rate=0.3, duplicate_rate=0.3)
    for index in range(200):
        network.send(0, 1, 2, append(index))
    delivered = [m.index for m in drain(network, queue)]
    assert network.counts["lost"] > 0 and network.counts["duplicated"] > 0
    assert len(set(delivered)) == 200 - network.counts["lost"]
    assert len(delivered) > len(set(delivered))


def test_partition_drops_at_send_and_in_flight() -> None:
    """A blocked link drops new messages and those already in flight; the other way is open."""
    network, queue = make_network()
    network.send(0, 1, 2, append(1))
    network.partition({(1, 2)})
    network.send(0, 1, 2, append(2))
    reply = Message(MessageType.APPEND_RESPONSE, 0, source=2, target=1, term=1)
    network.send(0, 2, 1, reply)
    delivered = drain(network, queue)
    assert [m.type for m in delivered] == [MessageType.APPEND_RESPONSE]
    assert network.counts["blocked"] == 2


def test_each_delivery_is_a_fresh_copy() -> None:
    """The receiver's copy does not share its entries list with the sender's message."""
    network, queue = make_network()
    message = append(1)
    network.send(0, 1, 2, message)
    event = queue.pop()
    assert event is not None and isinstance(event.payload, Envelope)
    delivered = network.arrive(event.time_us, event.payload)
    assert isinstance(delivered, Message)
    delivered.entries.clear()
    assert message.entries


def test_partition_shapes_block_what_they_say() -> None:
    """Every partition shape blocks some link and never a node from itself; one-way is one-way."""
    rng = random.Random(3)
    shapes = set()
    for _ in range(200):
        partition = choose_partition(rng, [1, 2, 3, 4, 5])
        shapes.add(partition.shape)
        assert partition.blocked and all(a != b for a, b in partition.blocked)
        symmetric = all((b, a) in partition.blocked for a, b in partition.blocked)
        assert symmetric == (partition.shape != "one-way")
    assert shapes == {"split", "isolate", "one-way", "bridge"}


def test_named_partitions_hold_together_and_heal_apart() -> None:
    """Links blocked under two names are the union; healing one name leaves the other's links
    blocked; heal() with no name heals everything."""
    network, _ = make_network()
    network.partition({(1, 2)})
    network.partition({(3, 1)}, "figure8")
    assert network.blocked_links == [(1, 2), (3, 1)]
    network.heal("partition")
    assert network.blocked_links == [(3, 1)] and network.is_partitioned("figure8")
    network.partition({(2, 3)}, "figure8")  # a name's new cut replaces its old one
    assert network.blocked_links == [(2, 3)]
    network.heal()
    assert network.blocked_links == [] and not network.is_partitioned("figure8")
