"""A writer to be killed: `python -m quorumkv.storage.crash_child PATH [--installs]`.

tests/storage/test_crash.py starts it, lets it acknowledge a few batches and SIGKILLs it at an
arbitrary moment, reopens the database and checks that every acknowledged batch is there,
intact, then starts it again. It writes what the host writes: each batch appends entry i to
the logs of two shards (group commit), sets their hard states (commit i) and applied points,
puts one key per shard and deletes an old one, and every COMPACT_EVERY entries compacts the
logs. Only after `write(sync=True)` returns does it print `i` on stdout: that line is the
acknowledgement. It continues from whatever the database holds, so kill cycles chain.

Everything it writes is a pure function of the index (`expected_*`), so the parent can check
contents without a record of what was written.

With `--installs` it instead installs snapshot images of shard INSTALL_SHARD in a loop,
alternating two versions (`image_pairs`, `image_meta`), and prints a progress line after each
chunk staged (`c`), after `finish` (`f`) and after the install batch is written (`v0`/`v1`), so
the parent's kill lands anywhere: staging, ingestion, the switch, or between installs.
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


INSTALL_SHARD = 3
INSTALL_CHUNK_BYTES = 16 * 1024


def image_pairs(version: int) -> list[tuple[bytes, bytes]]:
    """Version 0 has 3,000 keys, version 1 has 2,000 others and shared ones changed."""
    numbers = range(3000) if version == 0 else range(1000, 3000)
    return [(b"image-%05d" % number, b"v%d-%d|" % (version, number) * 6) for number in numbers]


def image_meta(version: int) -> SnapshotMeta:
    return SnapshotMeta(100 * (version + 1), version + 2, CONF)


def install_loop(path: str) -> None:
    from quorumkv.storage.memory import MemoryStore

    sources = []
    for version in (0, 1):
        source = MemoryStore()
        batch = source.batch()
        for key, value in image_pairs(version):
            batch.put(INSTALL_SHARD, key, value)
        batch.set_applied(INSTALL_SHARD, image_meta(version))
        source.write(batch, sync=True)
        sources.append(source)
    store = RocksDBStore(path)
    version = 1 if store.shard(INSTALL_SHARD).applied() == image_meta(0) else 0
    while True:
        reader = sources[version].open_snapshot(INSTALL_SHARD)
        writer = store.snapshot_writer(INSTALL_SHARD, reader.meta)
        while chunk := reader.read_chunk(INSTALL_CHUNK_BYTES):
            writer.write_chunk(chunk)
            progress("c")
        image = writer.finish()
        progress("f")
        batch = store.batch()
        batch.install_snapshot(INSTALL_SHARD, image)
        store.write(batch, sync=True)
        progress(f"v{version}")
        version = 1 - version


def progress(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


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
    if sys.argv[2:] == ["--installs"]:
        install_loop(sys.argv[1])
    else:
        main(sys.argv[1])
