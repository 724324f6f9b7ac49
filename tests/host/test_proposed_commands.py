"""A leader applies the commands it proposed as it proposed them, without decoding them again."""

from __future__ import annotations

import pytest

from quorumkv.host import replica as replica_module
from quorumkv.host.replica import Replica
from quorumkv.kv.command import Command, decode_command, encode_command
from quorumkv.kv.reply import SimpleString
from quorumkv.raft.types import Entry

from .cluster import Cluster
from .test_host import elect, stored_value


def test_only_followers_decode_a_command_the_leader_proposed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A SET through the leader is decoded from its entry by the two followers only, and every
    replica holds the same value."""
    decoded: list[bytes] = []

    def counting(data: bytes) -> Command:
        decoded.append(data)
        return decode_command(data)

    monkeypatch.setattr(replica_module, "decode_command", counting)
    cluster = Cluster(3)
    leader = elect(cluster)
    assert cluster.call(leader, b"SET", b"k", b"v1") == SimpleString(b"OK")
    target = cluster.hosts[leader].replica(1).applied.index
    cluster.run_until(lambda: all(h.replica(1).applied.index == target
                                  for h in cluster.hosts.values()))
    assert len(decoded) == 2
    for node_id in cluster.hosts:
        assert stored_value(cluster, node_id, b"k") == b"v1"
    assert not cluster.hosts[leader].replica(1).proposed_commands


def test_a_proposal_replaced_by_another_term_is_decoded_from_the_entry() -> None:
    """At an index where another leader's entry replaced ours (another term), apply uses the
    committed entry, not what this node proposed."""
    ours = Command(b"SET", (b"k", b"ours"), 1)
    theirs = Command(b"SET", (b"k", b"theirs"), 2)
    entry = Entry(term=3, index=7, data=encode_command(theirs))
    assert Replica._command_of(entry, (2, ours)) == theirs
    assert Replica._command_of(entry, (3, theirs)) is theirs
    assert Replica._command_of(entry, None) == theirs
