"""A writer to be killed: `python -m quorumkv.storage.crash_child PATH`.

tests/storage/test_crash.py starts it, lets it acknowledge a few batches and SIGKILLs it at an
arbitrary moment, reopens the database and checks that every acknowledged batch is there,
intact, then starts it again. It writes what the host writes: each batch appends entry i to
the logs of two shards (group commit), sets their hard states (commit i) and applied points,
puts one key per shard and deletes an old one, and every COMPACT_EVERY entries compacts the
logs. Only after `write(sync=True)` returns does it print `i` on stdout: that line is the
acknowledgement. It continues from whatever the database holds, so kill cycles chain.

Everything it writes is a pure function of the index (`expected_*`), so the parent can check
contents without a record of what was written.
"""

from __future__ import annotations

import sys
import zlib

from quorumkv.raft.types import ConfState, Entry, HardState, SnapshotMeta
from quorumkv.storage.rocksdb import RocksDBStore

SHARDS = (1, 2)
CONF = ConfState(voters=(1, 2, 3))
COMPACT_EVERY = 64
KEEP_ENTRIES = 32
DELETE_LAG = 100


def expected_term(index: int) -> int:
    return 1 + index // 300


def expected_entry(shard_id: int, index: int) -> Entry:
    return Entry(expected_term(index), index, data=b"%d:%d:" % (shard_id, index) * 4)


def expected_key(index: int) -> bytes:
    return b"key-%08d" % index


def expected_value(shard_id: int, index: int) -> bytes:
    return b"%08x" % zlib.crc32(b"%d/%d" % (shard_id, index)) * 8


def expected_applied(index: int) -> SnapshotMeta:
    return SnapshotMeta(index, expected_term(index), CONF)


def write_index(store: RocksDBStore, index: int) -> None:
    batch = store.batch()
    for shard_id in SHARDS:
        if index == 1:
            batch.compact_log(shard_id, SnapshotMeta(0, 0, CONF))
        batch.append_entries(shard_id, [expected_entry(shard_id, index)])
        batch.set_hard_state(shard_id, HardState(expected_term(index), 1, index))
        batch.put(shard_id, expected_key(index), expected_value(shard_id, index))
        if index > DELETE_LAG:
            batch.delete(shard_id, expected_key(index - DELETE_LAG))
        batch.set_applied(shard_id, expected_applied(index))
        if index % COMPACT_EVERY == 0:
            base = index - KEEP_ENTRIES
            batch.compact_log(shard_id, SnapshotMeta(base, expected_term(base), CONF))
    store.write(batch, sync=True)


def main(path: str) -> None:
    store = RocksDBStore(path)
    index = store.log(SHARDS[0]).last_index()
    out = sys.stdout
    while True:
        index += 1
        write_index(store, index)
        out.write(f"{index}\n")
        out.flush()


if __name__ == "__main__":
    main(sys.argv[1])
