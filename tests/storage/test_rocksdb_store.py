"""RocksDB-specific behaviours beyond the conformance suite: handles, locks, the layout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from quorumkv.errors import StorageUnavailable
from quorumkv.raft.types import ConfState, SnapshotMeta
from quorumkv.storage import key_layout
from quorumkv.storage.open import open_node_store
from quorumkv.storage.rocksdb import RocksDBStore
from quorumkv.storage.rocksdb_cursor import PAIRS_PER_READ


def filled(path: Path, keys: int = 50) -> RocksDBStore:
    store = open_node_store(str(path))
    batch = store.batch()
    for number in range(keys):
        batch.put(1, b"k%05d" % number, b"v")
    batch.set_applied(1, SnapshotMeta(3, 1, ConfState(voters=(1,))))
    store.write(batch, sync=True)
    return store


def test_a_reader_left_open_does_not_block_reopening(tmp_path: Path) -> None:
    """Closing takes back every cursor: the directory reopens at once, and the abandoned
    reader fails loudly instead of ending its image early."""
    store = filled(tmp_path / "node", keys=3 * PAIRS_PER_READ)
    reader = store.open_snapshot(1)
    reader.read_chunk(64)
    reader.read_chunk(64)
    store.close()
    reopened = RocksDBStore(store.path)
    with pytest.raises(StorageUnavailable, match="read again"):
        while reader.read_chunk(64):
            pass
    assert len(reopened.shard(1).scan(b"", None, 10_000)) == 3 * PAIRS_PER_READ
    reopened.close()


def test_a_second_store_on_the_same_directory_is_refused(tmp_path: Path) -> None:
    """RocksDB's LOCK keeps a second opener out, with a message saying so."""
    store = filled(tmp_path / "node")
    with pytest.raises(StorageUnavailable, match="no other quorumkv process"):
        RocksDBStore(store.path)
    store.close()


def test_a_new_directory_is_created_with_its_format_version(tmp_path: Path) -> None:
    """Opening a missing or empty directory creates the database, stamped, and nothing else."""
    for path in (tmp_path / "missing" / "node", tmp_path / "empty"):
        if path.name == "empty":
            path.mkdir()
        store = RocksDBStore(str(path))
        assert store.shard_ids() == []
        store.close()
        assert "CURRENT" in os.listdir(path)
        assert not os.path.exists(str(path) + ".creating")
        RocksDBStore(str(path)).close()


def test_shard_data_lives_under_its_fixed_width_prefix(tmp_path: Path) -> None:
    """Keys are stored as shard u32 + generation u32 + user key (docs/storage.md)."""
    store = filled(tmp_path / "node", keys=1)
    store.close()
    import rocksdict

    from quorumkv.storage import rocksdb_options

    cache = rocksdb_options.new_cache()
    raw = rocksdict.Rdict(store.path, options=rocksdb_options.database_options(False, cache),
                          column_families=rocksdb_options.all_column_families(cache))
    assert list(raw.get_column_family("data").keys()) == [key_layout.data_key(1, 0, b"k00000")]
    assert key_layout.data_key(1, 0, b"k00000") == b"\x00\x00\x00\x01\x00\x00\x00\x00k00000"
    raw.close()
