"""Carrying out routing decisions: a data command, CLUSTER, split and gathered commands, SCAN.

Theory of operation. `cluster.routing.route` decides what one command on one connection
becomes (docs/cluster.md, Routing); this module does it, on the event loop thread:

- `Local`, `Forward`, `NoLeader`: the dispatcher runs the command at its shard's leader (here,
  forwarded, or once an election ends); for a shard this node does not host it forwards to the
  leader an earlier answer named, else the shard's preferred leader, and follows the leader
  hint of a RETRY answer.
- `Local` with `stale_read` (a READONLY client's read on a follower, as Redis Cluster's
  replica reads): answered at once from this replica's applied state, without asking the
  leader; it may miss the latest writes. While a Ready cycle runs on the worker thread (it may
  be writing the store) the read goes the linearizable way instead.
- `Moved`, `CrossSlot`, `Answer`: their reply at once.
- `SplitAcrossShards`: every part is submitted to its shard at once; the replies are gathered
  (`fan_out.gather`) when the last one arrives. The parts are independent commands: not
  atomic across shards.
- `ScanStep`: SCAN on one shard, its reply turned into the cluster cursor (`finish_scan`).
- CLUSTER: `cluster_command` answers from the view, or names a `SlotRead` to run on a shard.

Before the node knows the cluster metadata every data command and CLUSTER topology command is
answered `-CLUSTERDOWN The cluster is down` (the node is starting; clients retry).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from quorumkv.cluster.fan_out import gather
from quorumkv.cluster.redis_cluster import SlotRead, cluster_command, cluster_info
from quorumkv.cluster.routing import (
    CLUSTER_DOWN,
    Answer,
    ClientRouting,
    ConnectionMode,
    CrossSlot,
    Forward,
    Local,
    Moved,
    NoLeader,
    SplitAcrossShards,
    route,
)
from quorumkv.cluster.scan_cursor import ScanStep, finish_scan
from quorumkv.cluster.state_machines import DATA
from quorumkv.host.shard_view import ReadView
from quorumkv.kv.reply import Reply
from quorumkv.server import unsafe_testing

if TYPE_CHECKING:
    from quorumkv.server.resp_server import ClientConnection, ReplySlot
    from quorumkv.storage.protocols import NodeStore

_choices = random.Random()


def run_data_command(connection: ClientConnection, mode: ConnectionMode, name: bytes,
                     args: tuple[bytes, ...], slot: ReplySlot) -> None:
    """Route a command of kv's table (`name` upper case) and answer it into `slot`."""
    node = connection.server.node
    view = node.cluster.view
    if view is None:
        connection.fill(slot, CLUSTER_DOWN)
        return
    routing = ClientRouting(node.config.client_routing)
    decision = route(view, mode, routing, name, args, choice=_choices.randrange(1 << 30))
    order = connection.order
    if (isinstance(decision, Local) and decision.stale_read and not node.gate.busy
            and not order.unfinished()):  # else it would overtake earlier commands
        connection.fill(slot, _stale_read(node.host.store, decision.shard_id, name, args))
    elif isinstance(decision, (Local, Forward, NoLeader)):
        if unsafe_testing.intercept(connection, decision.shard_id, name, args, slot):
            return  # a deliberately broken behaviour for the verify harness (never production)
        node.dispatcher.submit(decision.shard_id, name, args,
                               lambda reply: connection.fill(slot, reply),
                               order, order.new_command())
    elif isinstance(decision, (Moved, CrossSlot, Answer)):
        connection.fill(slot, decision.reply)
    elif isinstance(decision, SplitAcrossShards):
        _split(connection, decision, slot)
    else:
        _scan(connection, decision, slot)


def _stale_read(store: NodeStore, shard_id: int, name: bytes, args: tuple[bytes, ...]) -> Reply:
    """A read from this replica's applied state (READONLY clients; possibly stale)."""
    invalid = DATA.validate(name, args)
    if invalid is not None:
        return invalid
    return DATA.read(ReadView(store.shard(shard_id)), name, args, int(time.time() * 1000))


def _split(connection: ClientConnection, decision: SplitAcrossShards, slot: ReplySlot) -> None:
    parts = decision.parts
    if not parts:
        connection.fill(slot, gather(decision.gather, (), ()))
        return
    replies: list[Reply] = [None] * len(parts)
    waiting = [len(parts)]
    dispatcher = connection.server.node.dispatcher
    order = connection.order
    command = order.new_command()

    def answered(index: int) -> Callable[[Reply], None]:
        def done(reply: Reply) -> None:
            replies[index] = reply
            waiting[0] -= 1
            if waiting[0] == 0:
                connection.fill(slot, gather(decision.gather, parts, replies))
        return done

    for index, part in enumerate(parts):
        dispatcher.submit(part.shard_id, part.name, part.args, answered(index), order, command,
                          split=True)


def _scan(connection: ClientConnection, step: ScanStep, slot: ReplySlot) -> None:
    order = connection.order
    connection.server.node.dispatcher.submit(
        step.shard_id, b"SCAN", step.args,
        lambda reply: connection.fill(slot, finish_scan(step, reply)), order,
        order.new_command())


def run_cluster_command(connection: ClientConnection, args: tuple[bytes, ...],
                        slot: ReplySlot) -> None:
    """CLUSTER <subcommand>: from the view, or a slot read at the slot's shard."""
    node = connection.server.node
    view = node.cluster.view
    if view is None:
        asks_info = len(args) == 1 and args[0].upper() == b"INFO"  # Redis always answers it
        connection.fill(slot, cluster_info(None) if asks_info else CLUSTER_DOWN)
        return
    answer = cluster_command(view, args, int(time.time() * 1000))
    if isinstance(answer, SlotRead):
        order = connection.order
        node.dispatcher.submit(answer.shard_id, answer.name, answer.args,
                               lambda reply: connection.fill(slot, reply), order,
                               order.new_command())
    else:
        connection.fill(slot, answer)
