"""Damaged database files: each gives the documented behaviour (docs/storage.md, "Opening").

Either the open is refused with errors.CorruptStorage naming the file, or (a torn WAL tail,
left by a crash in the middle of a write that was never acknowledged) the database opens
without that last write and with everything before it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import msgpack
import pytest
import rocksdict

from quorumkv.errors import CorruptStorage, FormatVersionMismatch
from quorumkv.raft.types import ConfState, Entry, HardState, SnapshotMeta
from quorumkv.storage import encoding, key_layout, rocksdb_options
from quorumkv.storage.open import open_node_store
from quorumkv.storage.rocksdb import RocksDBStore

BATCHES = 40


def fill(store: RocksDBStore, first: int = 0, count: int = BATCHES) -> None:
    """Synced batches like the host's: an entry, the hard state, applied point and data."""
    for number in range(first, first + count):
        batch = store.batch()
        if number == 0:
            batch.compact_log(1, SnapshotMeta(0, 0, ConfState(voters=(1,))))
        batch.append_entries(1, [Entry(1, number + 1, data=b"e" * 50)])
        batch.set_hard_state(1, HardState(1, 1, number + 1))
        batch.put(1, b"key-%04d" % number, b"value" * 20)
        batch.set_applied(1, SnapshotMeta(number + 1, 1, ConfState(voters=(1,))))
        store.write(batch, sync=True)


def new_tables(store: RocksDBStore, family: str) -> list[str]:
    """Flush one column family; the table files that flush created."""
    before = set(store.table_files())
    store.flush((family,))
    created = sorted(set(store.table_files()) - before)
    assert created, f"flushing {family} created no table file"
    return created


def flip_byte(path: str, offset: int) -> None:
    with open(path, "r+b") as file:
        file.seek(offset)
        byte = file.read(1)
        file.seek(offset)
        file.write(bytes([byte[0] ^ 0x55]))


def crash_image(store: RocksDBStore, destination: Path) -> str:
    """A copy of the live database directory, as a crash would leave it (nothing flushed)."""
    shutil.copytree(store.path, destination)
    return str(destination)


def refused(path: str, naming: str) -> CorruptStorage:
    with pytest.raises(CorruptStorage) as caught:
        open_node_store(path)
    assert naming in str(caught.value), f"{caught.value} does not name {naming}"
    # It says the data is not served and recommends no procedure that does not work (wiping the
    # directory and restarting under the same node id is refused by the peers).
    assert "will not serve this data" in str(caught.value)
    assert "remove this replica" not in str(caught.value) and "does not work" in str(caught.value)
    return caught.value


@pytest.fixture
def store(tmp_path: Path) -> RocksDBStore:
    opened = open_node_store(str(tmp_path / "node"))
    fill(opened)
    return opened


# ---- table files --------------------------------------------------------------------------


def test_flipped_byte_in_a_raft_table_refuses_the_open(store: RocksDBStore) -> None:
    """A corrupt block of the Raft log's table file is found at open, naming the file."""
    (table,) = new_tables(store, "raft")
    store.close()
    flip_byte(table, 100)
    refused(store.path, os.path.basename(table))


def test_flipped_byte_in_a_data_table_is_never_served(store: RocksDBStore) -> None:
    """A corrupt data block fails every read of it (naming the file) and a verifying open;
    intact blocks of the same file are still served."""
    batch = store.batch()
    for number in range(2000):
        batch.put(1, b"more-%05d" % number, b"%d" % number * 30)
    store.write(batch, sync=True)
    (table,) = new_tables(store, "data")
    store.close()
    flip_byte(table, os.path.getsize(table) // 3)  # a block in the middle of the file
    reopened = open_node_store(store.path)  # data blocks are checked when read
    assert reopened.shard(1).get(b"key-0000") == b"value" * 20
    with pytest.raises(CorruptStorage, match=os.path.basename(table)):
        reopened.shard(1).scan(b"", None, 10_000)
    reopened.close()
    with pytest.raises(CorruptStorage, match=os.path.basename(table)):
        open_node_store(store.path, verify_data=True)


def test_flipped_byte_in_a_table_footer_refuses_the_open(store: RocksDBStore) -> None:
    """A table whose footer fails its checksum is refused at open, naming the file."""
    (table,) = new_tables(store, "data")
    store.close()
    flip_byte(table, os.path.getsize(table) - 20)
    refused(store.path, os.path.basename(table))


def test_truncated_table_refuses_the_open(store: RocksDBStore) -> None:
    """A table shorter than the MANIFEST says is refused at open, naming the file."""
    (table,) = new_tables(store, "data")
    store.close()
    with open(table, "r+b") as file:
        file.truncate(os.path.getsize(table) // 2)
    refused(store.path, os.path.basename(table))


def test_missing_table_refuses_the_open(store: RocksDBStore) -> None:
    """A table the MANIFEST lists but the directory lacks is refused, naming the file."""
    (table,) = new_tables(store, "raft")
    store.close()
    os.remove(table)
    refused(store.path, os.path.basename(table))


# ---- MANIFEST and CURRENT -----------------------------------------------------------------


def manifest(path: str) -> str:
    (name,) = [name for name in os.listdir(path) if name.startswith("MANIFEST-")]
    return os.path.join(path, name)


def test_missing_manifest_refuses_the_open(store: RocksDBStore) -> None:
    """Without the MANIFEST named by CURRENT the open is refused, naming it."""
    store.close()
    path = manifest(store.path)
    os.remove(path)
    refused(store.path, os.path.basename(path))


def test_missing_current_refuses_the_open_and_creates_nothing(store: RocksDBStore) -> None:
    """A database directory without CURRENT is refused, never taken for a new database."""
    store.close()
    os.remove(os.path.join(store.path, "CURRENT"))
    refused(store.path, "CURRENT")
    assert not os.path.exists(os.path.join(store.path, "CURRENT"))


def test_flipped_byte_in_the_manifest_refuses_the_open(store: RocksDBStore) -> None:
    """A MANIFEST record failing its checksum is refused, naming the MANIFEST."""
    store.close()
    path = manifest(store.path)
    flip_byte(path, os.path.getsize(path) // 2)
    refused(store.path, os.path.basename(path))


def test_truncated_manifest_refuses_the_open(store: RocksDBStore) -> None:
    """A MANIFEST cut in half loses the column families: the open is refused."""
    store.close()
    path = manifest(store.path)
    with open(path, "r+b") as file:
        file.truncate(os.path.getsize(path) // 2)
    with pytest.raises(CorruptStorage):
        open_node_store(store.path)


# ---- write-ahead log ----------------------------------------------------------------------


def wal(path: str) -> str:
    logs = sorted(name for name in os.listdir(path) if name.endswith(".log"))
    sized = [name for name in logs if os.path.getsize(os.path.join(path, name)) > 0]
    return os.path.join(path, sized[-1])


def test_flipped_byte_inside_the_wal_refuses_the_open(store: RocksDBStore, tmp_path: Path) -> None:
    """A complete WAL record failing its checksum refuses the open, naming the WAL file:
    replaying past it would forget synced (acknowledged) batches."""
    image = crash_image(store, tmp_path / "image")
    log = wal(image)
    flip_byte(log, os.path.getsize(log) // 2)
    refused(image, os.path.basename(log))


def test_torn_wal_tail_loses_only_the_unfinished_last_batch(store: RocksDBStore,
                                                           tmp_path: Path) -> None:
    """A WAL whose last record was cut short (a crash mid-write) opens with every batch but
    that one: it never completed, so it was never acknowledged."""
    image = crash_image(store, tmp_path / "image")
    log = wal(image)
    with open(log, "r+b") as file:
        file.truncate(os.path.getsize(log) - 30)
    reopened = open_node_store(image)
    assert reopened.log(1).last_index() == BATCHES - 1
    assert reopened.shard(1).applied().index == BATCHES - 1
    assert reopened.log(1).hard_state().commit == BATCHES - 1
    assert reopened.shard(1).get(b"key-%04d" % (BATCHES - 2)) is not None
    assert reopened.shard(1).get(b"key-%04d" % (BATCHES - 1)) is None
    fill(reopened, BATCHES - 1, 1)  # and the node goes on from there
    assert reopened.log(1).last_index() == BATCHES


def test_crash_image_without_damage_keeps_every_synced_batch(store: RocksDBStore,
                                                             tmp_path: Path) -> None:
    """The undamaged crash image (unflushed WAL only) replays every synced batch."""
    reopened = open_node_store(crash_image(store, tmp_path / "image"))
    assert reopened.log(1).last_index() == BATCHES
    assert len(reopened.shard(1).scan(b"", None, 1000)) == BATCHES


# ---- records and versions -----------------------------------------------------------------


def raw_database(path: str) -> rocksdict.Rdict:
    cache = rocksdb_options.new_cache()
    return rocksdict.Rdict(path, options=rocksdb_options.database_options(False, cache),
                           column_families=rocksdb_options.all_column_families(cache))


def rewrite(path: str, family: str, key: bytes, change: Callable[[bytes], bytes | None]) -> None:
    database = raw_database(path)
    column = database.get_column_family(family)
    value = change(column.get(key))
    if value is None:
        column.delete(key)
    else:
        column.put(key, value)
    database.close()


def test_unknown_format_version_is_refused(store: RocksDBStore) -> None:
    """A database stamped with another layout version raises FormatVersionMismatch."""
    store.close()
    rewrite(store.path, "meta", key_layout.FORMAT_VERSION_KEY, lambda _: encoding.pack([99]))
    with pytest.raises(FormatVersionMismatch, match="format version 99"):
        open_node_store(store.path)


def test_missing_format_version_is_refused(store: RocksDBStore) -> None:
    """A database without its format version record is corrupt, never re-stamped."""
    store.close()
    rewrite(store.path, "meta", key_layout.FORMAT_VERSION_KEY, lambda _: None)
    with pytest.raises(CorruptStorage, match="no format version"):
        open_node_store(store.path)


def test_corrupt_log_entry_names_shard_and_index(store: RocksDBStore) -> None:
    """A log entry whose checksum fails refuses the open, naming the shard and index."""
    store.close()
    key = key_layout.entry_key(1, 7)

    def damage(record: bytes) -> bytes:
        return record[:-1] + bytes([record[-1] ^ 1])

    rewrite(store.path, "raft", key, damage)
    with pytest.raises(CorruptStorage, match="shard 1 log entry 7: checksum mismatch") as caught:
        open_node_store(store.path)
    assert store.path in str(caught.value)


def test_gap_in_the_log_is_refused(store: RocksDBStore) -> None:
    """A log missing an entry in its middle refuses the open, naming the missing index."""
    store.close()
    rewrite(store.path, "raft", key_layout.entry_key(1, 12), lambda _: None)
    with pytest.raises(CorruptStorage, match="log entry 12 is missing"):
        open_node_store(store.path)


def test_hard_state_record_is_checksummed(store: RocksDBStore) -> None:
    """A damaged hard state record refuses the open."""
    store.close()
    key = key_layout.shard_record_key(key_layout.KIND_HARD_STATE, 1)
    rewrite(store.path, "raft", key, lambda record: record[:5] + msgpack.packb([9, 9, 9]))
    with pytest.raises(CorruptStorage, match="shard 1 record H: checksum mismatch"):
        open_node_store(store.path)
