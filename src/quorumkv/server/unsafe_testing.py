"""Deliberately broken behaviours, for proving that `quorumkv verify` catches real bugs.

NEVER FOR PRODUCTION. Each setting named `unsafe_testing_*` breaks a guarantee of
docs/server.md on purpose, so that the verify harness's tests can run a cluster with a known
bug and expect its checkers to say "invalid". They are off by default, hidden from `--help`,
and logged as a warning when a node starts with one on.

- `unsafe_testing_stale_follower_reads`: a node that does not lead the shard answers reads from
  its own applied state, without asking the leader (no ReadIndex): a partitioned or lagging
  follower serves stale values, which breaks linearizability.
- `unsafe_testing_ack_on_receipt`: a node answers `+OK` to a SET as soon as it receives it, then
  runs it as usual but throws its real outcome away: a SET lost to a partition, a killed node
  or a lost election was still acknowledged, which loses acknowledged writes.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from quorumkv.host.shard_view import ReadView
from quorumkv.kv import commands as kv_commands
from quorumkv.kv import state_machine
from quorumkv.kv.reply import OK

if TYPE_CHECKING:
    from quorumkv.server.resp_server import ClientConnection, ReplySlot


def intercept(connection: ClientConnection, shard_id: int, name: bytes,
              args: tuple[bytes, ...], slot: ReplySlot) -> bool:
    """Answer the command the broken way if a setting says so; False to go on as usual."""
    node = connection.server.node
    config = node.config
    if not (config.unsafe_testing_stale_follower_reads or config.unsafe_testing_ack_on_receipt):
        return False
    if config.unsafe_testing_stale_follower_reads and not kv_commands.is_write(name) \
            and not node.host.is_leader(shard_id):
        view = ReadView(node.host.store.shard(shard_id))
        connection.fill(slot, state_machine.read(view, name, args, int(time.time() * 1000)))
        return True
    if config.unsafe_testing_ack_on_receipt and name == b"SET":
        node.dispatcher.submit(shard_id, name, args, lambda reply: None)
        connection.fill(slot, OK)
        return True
    return False
