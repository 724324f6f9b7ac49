"""The state machine registry: shard 0 applies metadata commands, data shards kv's."""

from __future__ import annotations

from quorumkv.cluster import metadata_commands as mc
from quorumkv.cluster import metadata_state_machine as msm
from quorumkv.cluster.redis_cluster import COUNT_KEYS_IN_SLOT, GET_KEYS_IN_SLOT
from quorumkv.cluster.slots import key_slot
from quorumkv.cluster.state_machines import DATA, METADATA, state_machine_for
from quorumkv.kv.command import Command
from quorumkv.kv.reply import OK, ErrorReply
from quorumkv.kv.store import MemoryKeyValueStore

from .cluster_harness import metadata_for

NOW_MS = 1_700_000_000_000


def test_shard_zero_is_the_metadata_state_machine() -> None:
    """state_machine_for(0) applies metadata commands; any other shard applies kv mc."""
    assert state_machine_for(0) is METADATA
    assert state_machine_for(1) is DATA and state_machine_for(77) is DATA
    placed = metadata_for(3, 3)
    bootstrap = mc.metadata_command(mc.BootstrapCluster(
        "c", tuple(placed.members.values()), tuple(placed.shards.values())), NOW_MS)
    store = MemoryKeyValueStore()
    assert METADATA.validate(bootstrap.name, bootstrap.args) is None
    assert METADATA.is_write(bootstrap.name)
    assert METADATA.apply(store, bootstrap) == OK
    encoded = METADATA.read(store, msm.METADATA_READ, (), NOW_MS)
    assert isinstance(encoded, bytes)
    assert METADATA.validate(b"SET", (b"k", b"v")) is not None


def test_data_shards_answer_kv_and_slot_reads() -> None:
    """A data shard runs kv commands and the internal slot reads; clients' checks apply."""
    store = MemoryKeyValueStore()
    assert DATA.validate(b"SET", (b"k", b"v")) is None and DATA.is_write(b"SET")
    assert DATA.apply(store, Command(b"SET", (b"{s}k", b"v"), NOW_MS)) == OK
    assert DATA.read(store, b"GET", (b"{s}k",), NOW_MS) == b"v"
    slot = b"%d" % key_slot(b"s")
    assert DATA.validate(COUNT_KEYS_IN_SLOT, (slot,)) is None
    assert not DATA.is_write(COUNT_KEYS_IN_SLOT)
    assert DATA.read(store, COUNT_KEYS_IN_SLOT, (slot,), NOW_MS) == 1
    assert DATA.read(store, GET_KEYS_IN_SLOT, (slot, b"5"), NOW_MS) == [b"{s}k"]
    assert DATA.read(store, COUNT_KEYS_IN_SLOT, (b"0",), NOW_MS) == 0
    for bad in ((), (b"x",), (b"16384",)):
        assert isinstance(DATA.validate(COUNT_KEYS_IN_SLOT, bad), ErrorReply)
        assert isinstance(DATA.read(store, COUNT_KEYS_IN_SLOT, bad, NOW_MS), ErrorReply)
    assert isinstance(DATA.validate(GET_KEYS_IN_SLOT, (slot, b"-1")), ErrorReply)
    assert isinstance(DATA.validate(b"NOSUCH", ()), ErrorReply)
