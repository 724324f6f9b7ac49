"""Opening a node's durable store: the one entry point the server uses.

The data directory holds one RocksDB database (docs/storage.md). Opening creates it when the
directory is new, and otherwise refuses to serve a database whose checks fail: the errors
raised (errors.CorruptStorage naming the file, errors.FormatVersionMismatch, errors.DiskFull,
errors.StorageUnavailable) carry the message an operator needs, and the server reports them and
exits rather than restarting in a loop.
"""

from __future__ import annotations

from quorumkv.storage.rocksdb import RocksDBStore


def open_node_store(path: str, verify_data: bool = False) -> RocksDBStore:
    """The node's store at `path`, created if the directory is new or empty.

    `verify_data` also reads every data block at open (RocksDB otherwise checks a block's
    checksum when it is first read); the Raft log is always verified at open.
    """
    return RocksDBStore(path, verify_data=verify_data)
