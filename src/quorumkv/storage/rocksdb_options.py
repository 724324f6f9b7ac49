"""RocksDB options of the node database: what is checked at open, and what bounds memory.

Safety (docs/storage.md, "Opening" explains each choice with the experiment behind it):

- `paranoid_checks`: refuse to open when a table file's size disagrees with the MANIFEST, a
  footer fails its checksum, a listed file is missing; switch to read-only on a failed write.
- WAL recovery mode `tolerate_corrupted_tail_records`: replay stops only at an INCOMPLETE
  trailing record (a write torn by a crash, never acknowledged, since acknowledging needs the
  synced write to return); a record that is complete but fails its checksum, anywhere, refuses
  the open. `point_in_time` would silently drop every synced batch after a flipped bit in the
  middle of a WAL (measured: half the data gone, open succeeds), which would let a replica
  forget votes and acknowledged entries; `absolute_consistency` also refuses the torn tail of an
  ordinary crash, so a node could not restart after kill -9.
- Column families are created only with the database, never on a later open: a MANIFEST that
  lost them must fail the open rather than come back empty.

Memory: one LRU block cache (`limits.rocksdb_block_cache_bytes`) holds data, index and filter
blocks of every column family (`cache_index_and_filter_blocks`, so table readers do not pin
them outside the cache); memtables are bounded per column family
(`limits.rocksdb_write_buffer_bytes`) and in total (`limits.rocksdb_write_buffers_total_bytes`).
Resident memory is therefore about cache + memtables + a small fixed overhead, whatever the
number of keys (bench/storage.py measures it).
"""

from __future__ import annotations

import rocksdict

from quorumkv import limits

COLUMN_FAMILIES = ("raft", "data", "meta")

BLOOM_BITS_PER_KEY = 10
"""Bloom filter bits per key of the data column family (point reads of missing keys)."""

BACKGROUND_JOBS = 2
"""Flush and compaction threads: the machines we target have few cores."""

RESUME_FREE_BYTES_MARGIN = 1024 * 1024
"""After a full disk, writes resume once the free bytes exceed the WAL's size (replaying it
writes a table file about as large) by this margin."""

BYTES_PER_SYNC = 1024 * 1024
"""Table and WAL files are synced incrementally every this many bytes, smoothing I/O."""


def database_options(create: bool, cache: rocksdict.Cache) -> rocksdict.Options:
    """Options of the database itself (and of the default column family, unused)."""
    options = column_family_options(cache, bloom=False)
    options.create_if_missing(create)
    options.create_missing_column_families(create)
    options.set_paranoid_checks(True)
    options.set_wal_recovery_mode(rocksdict.DBRecoveryMode.tolerate_corrupted_tail_records())
    options.set_db_write_buffer_size(limits.rocksdb_write_buffers_total_bytes)
    options.set_max_total_wal_size(limits.rocksdb_wal_total_bytes_max)
    options.set_max_background_jobs(BACKGROUND_JOBS)
    options.set_bytes_per_sync(BYTES_PER_SYNC)
    options.set_wal_bytes_per_sync(BYTES_PER_SYNC)
    options.set_keep_log_file_num(4)
    return options


def column_family_options(cache: rocksdict.Cache, bloom: bool) -> rocksdict.Options:
    options = rocksdict.Options(raw_mode=True)
    options.set_write_buffer_size(limits.rocksdb_write_buffer_bytes)
    options.set_max_write_buffer_number(2)
    options.set_level_compaction_dynamic_level_bytes(True)
    table = rocksdict.BlockBasedOptions()
    table.set_block_cache(cache)
    table.set_cache_index_and_filter_blocks(True)
    table.set_pin_l0_filter_and_index_blocks_in_cache(True)
    if bloom:
        table.set_bloom_filter(BLOOM_BITS_PER_KEY, False)
    options.set_block_based_table_factory(table)
    return options


def all_column_families(cache: rocksdict.Cache) -> dict[str, rocksdict.Options]:
    return {name: column_family_options(cache, bloom=name == "data") for name in COLUMN_FAMILIES}


def new_cache() -> rocksdict.Cache:
    return rocksdict.Cache(limits.rocksdb_block_cache_bytes)


def sst_writer_options() -> rocksdict.Options:
    """Options of the SST files a received snapshot is staged into (the data family's)."""
    return column_family_options(new_cache(), bloom=True)


def write_options(sync: bool) -> rocksdict.WriteOptions:
    options = rocksdict.WriteOptions()
    options.sync = sync
    return options
