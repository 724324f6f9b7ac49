"""The durable store: one RocksDB database per node (rocksdict), column families raft/data/meta.

Layout: key_layout.py. Options and why: rocksdb_options.py. Everything: docs/storage.md.

Writes. `write(batch, sync)` translates the batch's operations, in order, into ONE rocksdict
WriteBatch across column families and writes it with WriteOptions.sync = `sync`: the group
commit of the host (new entries and hard states of many shards, applied effects and applied
points) costs one WAL append and, when synced, one fdatasync. Translating needs the shape of
each shard's log (an append deletes the stored entries past its new end; a compaction deletes a
range): the store keeps, per shard, a `_ShardCache` (LogTerms, hard state, applied point, data
generation), loaded at open, and the translation works on copies that replace the originals
only once RocksDB accepted the batch. A failed write (errors.DiskFull) changes nothing.

Reads. Terms, bounds, hard states and applied points come from the cache (the log itself is
read, and every record checksum-verified, once at open). The last entries appended since open
are served from memory (log_tail.py: a bounded tail per shard, changed only once a batch is
written, like the caches); other entries and data are read from RocksDB; an entry's checksum
is verified on every read, data blocks by RocksDB's block checksums. A
failed check raises errors.CorruptStorage naming the database and the shard/index or file.

Snapshots. `open_snapshot` creates a RocksDB iterator over the shard's data at once: an
iterator reads an implicit snapshot taken when it is created (RocksDB's documented behaviour;
rocksdict's own Snapshot object does not pass its snapshot to iterators, so we rely on the
iterator's), and the applied point is read from the cache at the same instant, with no write
in between (the store is used by one thread). Installing: rocksdb_snapshot.py and
docs/storage.md, "Installing a snapshot", for the crash-safety argument.

A full disk: the write raises errors.DiskFull and RocksDB refuses further writes (it keeps a
background error); reads go on. The next write checks free space and, once there is room for
the WAL replay, reopens the database and proceeds, so the process never has to restart.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import weakref
from collections.abc import Iterator
from typing import Any

import rocksdict

from quorumkv.errors import CorruptStorage, DiskFull, FormatVersionMismatch, StorageError
from quorumkv.invariant import InvariantViolation, invariant
from quorumkv.raft.types import ConfState, Entry, HardState, SnapshotMeta
from quorumkv.storage import batch as ops
from quorumkv.storage import encoding, key_layout, rocksdb_errors, rocksdb_options
from quorumkv.storage.batch import OperationBatch
from quorumkv.storage.log_tail import LogTail
from quorumkv.storage.log_terms import LogTerms
from quorumkv.storage.protocols import WriteBatch
from quorumkv.storage.rocksdb_cursor import PAIRS_PER_READ, Cursor
from quorumkv.storage.rocksdb_snapshot import (
    STAGING_DIRECTORY,
    RocksDBSnapshotWriter,
    RocksDBStagedSnapshot,
    clear_staging,
    remove_files,
)
from quorumkv.storage.snapshot_stream import ChunkedSnapshotReader

EMPTY_APPLIED = SnapshotMeta(0, 0, ConfState())
CREATING_SUFFIX = ".creating"
INGEST_LINK_SUFFIX = ".ingest"


class _ShardCache:
    """What the store keeps in memory for one shard (all of it also stored in `raft`)."""

    __slots__ = ("applied", "generation", "hard_state", "terms")

    def __init__(self, shard_id: int) -> None:
        self.terms = LogTerms(shard_id)
        self.hard_state = HardState()
        self.applied = EMPTY_APPLIED
        self.generation = 0

    def copy(self) -> _ShardCache:
        other = _ShardCache(self.terms.shard_id)
        other.terms = self.terms.copy()
        other.hard_state, other.applied = self.hard_state, self.applied
        other.generation = self.generation
        return other


# ---- read views ---------------------------------------------------------------------------


class RocksDBLog:
    """A live view of one shard's log (implements protocols.LogStore)."""

    def __init__(self, store: RocksDBStore, shard_id: int) -> None:
        self._store = store
        self._shard_id = shard_id

    def initial_state(self) -> tuple[HardState, ConfState]:
        cache = self._store.cache(self._shard_id)
        return cache.hard_state, cache.applied.conf_state

    def hard_state(self) -> HardState:
        return self._store.cache(self._shard_id).hard_state

    def first_index(self) -> int:
        return self._store.cache(self._shard_id).terms.first_index()

    def last_index(self) -> int:
        return self._store.cache(self._shard_id).terms.last_index

    def term(self, index: int) -> int:
        return self._store.cache(self._shard_id).terms.term(index)

    def entries(self, low: int, high: int, bytes_max: int) -> list[Entry]:
        self._store.cache(self._shard_id).terms.check_range(low, high)
        if low == high:
            return []
        cached = self._store.tail(self._shard_id).entries(low, high, bytes_max)
        if cached is not None:
            return cached
        return self._store.read_entries(self._shard_id, low, high, bytes_max)

    def snapshot_meta(self) -> SnapshotMeta:
        return self._store.cache(self._shard_id).applied


class RocksDBShardState:
    """A live view of one shard's applied data (implements protocols.ShardState)."""

    def __init__(self, store: RocksDBStore, shard_id: int) -> None:
        self._store = store
        self._shard_id = shard_id

    def get(self, key: bytes) -> bytes | None:
        return self._store.read_value(self._shard_id, key)

    def scan(self, start: bytes, end: bytes | None, limit: int) -> list[tuple[bytes, bytes]]:
        return self._store.read_range(self._shard_id, start, end, limit)

    def applied(self) -> SnapshotMeta:
        return self._store.cache(self._shard_id).applied


# ---- writing ------------------------------------------------------------------------------


class _WritePlan:
    """One batch translated into a rocksdict WriteBatch, with the caches it will leave."""

    def __init__(self, store: RocksDBStore) -> None:
        self.store = store
        self.batch = rocksdict.WriteBatch(raw_mode=True)
        self.caches: dict[int, _ShardCache] = {}
        self.alive: dict[int, bool] = {}
        self.images: list[RocksDBStagedSnapshot] = []
        self.tail_changes: list[tuple[int, str, Any]] = []  # (shard, change, argument), in order
        self.raft = store.handle("raft")
        self.data = store.handle("data")
        self.meta = store.handle("meta")

    def cache(self, shard_id: int) -> _ShardCache:
        self.alive[shard_id] = True
        cache = self.caches.get(shard_id)
        if cache is None:
            cache = self.caches[shard_id] = self.store.cache(shard_id).copy()
        return cache

    def add(self, operation: ops.Operation) -> None:
        _TRANSLATIONS[type(operation)](self, operation)

    def _put(self, operation: ops.Put) -> None:
        shard_id = operation.shard_id
        cache = self.caches.get(shard_id) or self.cache(shard_id)
        self.alive[shard_id] = True
        self.batch.put(key_layout.data_key(shard_id, cache.generation, operation.key),
                       operation.value, self.data)

    def _delete(self, operation: ops.Delete) -> None:
        generation = self.cache(operation.shard_id).generation
        self.batch.delete(key_layout.data_key(operation.shard_id, generation, operation.key),
                          self.data)

    def _set_hard_state(self, operation: ops.SetHardState) -> None:
        self.cache(operation.shard_id).hard_state = operation.hard_state
        self._put_record(key_layout.KIND_HARD_STATE, operation.shard_id,
                         encoding.encode_hard_state(operation.hard_state))

    def _set_applied(self, operation: ops.SetApplied) -> None:
        self.cache(operation.shard_id).applied = operation.meta
        self._put_record(key_layout.KIND_APPLIED, operation.shard_id,
                         encoding.encode_meta(operation.meta))

    def _put_meta(self, operation: ops.PutMeta) -> None:
        self.batch.put(key_layout.node_meta_key(operation.name), encoding.pack(operation.value),
                       self.meta)

    def _put_record(self, kind: bytes, shard_id: int, record: bytes) -> None:
        self.batch.put(key_layout.shard_record_key(kind, shard_id), record, self.raft)

    def _append(self, operation: ops.AppendEntries) -> None:
        shard_id, entries = operation.shard_id, operation.entries
        terms = self.cache(shard_id).terms
        kept = [entry for entry in entries if entry.index > terms.base_index]
        if not kept:
            return  # at or below the compaction point: committed, hence already identical
        previous_last = terms.append(kept[0].index, [entry.term for entry in kept])
        for entry in kept:
            self.batch.put(key_layout.entry_key(shard_id, entry.index),
                           encoding.encode_entry(entry), self.raft)
        self.tail_changes.append((shard_id, "append", kept))
        if previous_last > terms.last_index:
            self.batch.delete_range(key_layout.entry_key(shard_id, terms.last_index + 1),
                                    key_layout.entry_key(shard_id, previous_last + 1), self.raft)

    def _compact(self, operation: ops.CompactLog) -> None:
        shard_id, meta = operation.shard_id, operation.meta
        terms = self.cache(shard_id).terms
        base, last = terms.base_index, terms.last_index
        if meta.index < base:
            return
        terms.compact(meta.index, meta.term)
        self.tail_changes.append((shard_id, "compact", meta.index))
        if min(meta.index, last) > base:
            self.batch.delete_range(key_layout.entry_key(shard_id, base + 1),
                                    key_layout.entry_key(shard_id, min(meta.index, last) + 1),
                                    self.raft)
        self._put_record(key_layout.KIND_BASE, shard_id, encoding.encode_meta(meta))

    def _install(self, operation: ops.InstallSnapshot) -> None:
        shard_id, staged = operation.shard_id, operation.image
        if not isinstance(staged, RocksDBStagedSnapshot):
            raise InvariantViolation(f"shard {shard_id}: a {type(staged).__name__} cannot be "
                                     "installed into RocksDB (stage it with snapshot_writer)")
        invariant(not staged.installed, f"shard {shard_id}: a staged image installed twice")
        cache = self.cache(shard_id)
        old = cache.generation
        self.batch.delete_range(key_layout.data_prefix(shard_id, old),
                                key_layout.data_prefix(shard_id, old + 1), self.data)
        self.batch.delete_range(key_layout.entry_key(shard_id, 0),
                                key_layout.entries_end_key(shard_id), self.raft)
        cache.generation = staged.generation
        cache.terms.reset(staged.meta.index, staged.meta.term)
        self.tail_changes.append((shard_id, "clear", None))
        cache.applied = staged.meta
        self._put_record(key_layout.KIND_GENERATION, shard_id, encoding.pack(staged.generation))
        self._put_record(key_layout.KIND_BASE, shard_id, encoding.encode_meta(staged.meta))
        self._put_record(key_layout.KIND_APPLIED, shard_id, encoding.encode_meta(staged.meta))
        self.images.append(staged)

    def _drop(self, operation: ops.DropShard) -> None:
        shard_id = operation.shard_id
        self.batch.delete_range(key_layout.shard_data_start(shard_id),
                                key_layout.shard_data_end(shard_id), self.data)
        self.batch.delete_range(key_layout.entry_key(shard_id, 0),
                                key_layout.entries_end_key(shard_id), self.raft)
        for kind in key_layout.RAFT_KINDS:
            if kind != key_layout.KIND_ENTRY:
                self.batch.delete(key_layout.shard_record_key(kind, shard_id), self.raft)
        self.caches[shard_id] = _ShardCache(shard_id)
        self.alive[shard_id] = False
        self.tail_changes.append((shard_id, "clear", None))

    def release(self) -> None:
        """Drop the column family handles: they hold the database open (rocksdb_cursor.py)."""
        self.raft = self.data = self.meta = None

    def commit(self) -> None:
        """The batch is written: its caches become the store's."""
        for shard_id, cache in self.caches.items():
            self.store.replace_cache(shard_id, cache if self.alive[shard_id] else None)
        for shard_id, change, argument in self.tail_changes:
            self.store.change_tail(shard_id, change, argument)
        for image in self.images:
            image.installed = True
            image.discard()


_TRANSLATIONS: dict[type, Any] = {
    ops.AppendEntries: _WritePlan._append,
    ops.SetHardState: _WritePlan._set_hard_state,
    ops.CompactLog: _WritePlan._compact,
    ops.Put: _WritePlan._put,
    ops.Delete: _WritePlan._delete,
    ops.SetApplied: _WritePlan._set_applied,
    ops.InstallSnapshot: _WritePlan._install,
    ops.DropShard: _WritePlan._drop,
    ops.PutMeta: _WritePlan._put_meta,
}
"""How each operation is translated (a table: the hot path avoids a chain of matches)."""


# ---- the store ----------------------------------------------------------------------------


class RocksDBStore:
    """All durable state of one node in one RocksDB database (implements protocols.NodeStore).

    Not thread-safe: one task owns it (ARCHITECTURE.md, "A thin asyncio shell").
    """

    def __init__(self, path: str, *, verify_data: bool = False) -> None:
        """Open (or create) the database at `path`.

        Raises errors.CorruptStorage (naming the file) when a check fails,
        errors.FormatVersionMismatch for a database of another layout version, errors.DiskFull
        when there is no room to replay the WAL, errors.StorageUnavailable otherwise.
        `verify_data` also reads every data block once (RocksDB checks data blocks only when
        they are read).
        """
        self.path = os.path.abspath(path)
        self._staging = os.path.join(self.path, STAGING_DIRECTORY)
        self._db: Any = None
        self._handles: dict[str, Any] = {}
        self._families: dict[str, Any] = {}
        self._caches: dict[int, _ShardCache] = {}
        self._tails: dict[int, LogTail] = {}
        self._generations_allocated: dict[int, int] = {}
        self._disk_full = False
        self._cursors: weakref.WeakSet[Cursor] = weakref.WeakSet()
        self._open(read_only=False)
        if verify_data:
            try:
                self.verify()
            except BaseException:
                self._close_quietly()  # refused: do not hold the database open
                raise

    # ---- opening ---------------------------------------------------------------------------

    def _open(self, read_only: bool) -> None:
        if not self._database_exists():
            self._create()
        cache = rocksdb_options.new_cache()
        access = rocksdict.AccessType.read_only() if read_only else rocksdict.AccessType.read_write()
        try:
            self._db = rocksdict.Rdict(
                self.path, options=rocksdb_options.database_options(False, cache),
                column_families=rocksdb_options.all_column_families(cache), access_type=access)
            self._families = {name: self._db.get_column_family(name)
                              for name in rocksdb_options.COLUMN_FAMILIES}
            self._handles = {name: self._db.get_column_family_handle(name)
                             for name in rocksdb_options.COLUMN_FAMILIES}
            self._check_format_version()
            self._caches = self._load_raft_records()
            self._tails = {}
            orphans = self._find_data_generations()
        except Exception as error:
            self._close_quietly()
            raise _as_storage_error(error, self.path, "opening the database") from error
        if not read_only:
            self._collect_orphans(orphans)
            clear_staging(self._staging)

    def _database_exists(self) -> bool:
        """True if `path` holds a database. A directory with files but no CURRENT is a
        database that lost its CURRENT file, not a place to create a new one."""
        if not os.path.isdir(self.path):
            return False
        names = [name for name in os.listdir(self.path) if name != STAGING_DIRECTORY]
        if names and "CURRENT" not in names:
            raise CorruptStorage(os.path.join(self.path, "CURRENT"), "the database directory "
                                 f"has files ({', '.join(sorted(names)[:5])}...) but no CURRENT "
                                 "file naming the live MANIFEST")
        return bool(names)

    def _create(self) -> None:
        """Create the database beside `path` and rename it into place once it carries its
        format version, so a database without one is never a half-created one."""
        creating = self.path + CREATING_SUFFIX
        shutil.rmtree(creating, ignore_errors=True)
        cache = rocksdb_options.new_cache()
        try:
            db = rocksdict.Rdict(creating, options=rocksdb_options.database_options(True, cache),
                                 column_families=rocksdb_options.all_column_families(cache))
            batch = rocksdict.WriteBatch(raw_mode=True)
            batch.put(key_layout.FORMAT_VERSION_KEY, encoding.pack([key_layout.FORMAT_VERSION]),
                      db.get_column_family_handle("meta"))
            db.write(batch, rocksdb_options.write_options(sync=True))
            db.close()
        except Exception as error:
            raise _as_storage_error(error, creating, "creating the database") from error
        if os.path.isdir(self.path):
            shutil.rmtree(self.path)  # holds nothing but perhaps a staging directory (checked)
        os.rename(creating, self.path)
        _sync_directory(os.path.dirname(self.path))

    def _check_format_version(self) -> None:
        record = self._families["meta"].get(key_layout.FORMAT_VERSION_KEY)
        if record is None:
            raise CorruptStorage(self.path, "the database has no format version record (its "
                                 "MANIFEST or WAL lost data)")
        try:
            (version,) = encoding.unpack(record)
        except (encoding.RecordCorrupt, TypeError, ValueError) as error:
            raise CorruptStorage(self.path, f"unreadable format version record: {error}") from error
        if version != key_layout.FORMAT_VERSION:
            raise FormatVersionMismatch(self.path, version, key_layout.FORMAT_VERSION)

    def _load_raft_records(self) -> dict[int, _ShardCache]:
        """Read and verify every record of `raft`: the caches of every shard."""
        loader = _RaftLoader(self.path)
        with self._cursor("raft") as cursor:
            cursor.seek_to_first()
            while cursor.valid():
                loader.add(cursor.key(), cursor.value())
                cursor.next()
            cursor.check()
        return loader.finish()

    def _find_data_generations(self) -> list[tuple[int, int]]:
        """Register shards holding data; the (shard, generation) pairs no record points to."""
        orphans = []
        with self._cursor("data") as cursor:
            cursor.seek_to_first()
            while cursor.valid():
                shard_id, generation = key_layout.parse_data_prefix(cursor.key())
                cache = self._caches.get(shard_id)
                if generation == (cache.generation if cache is not None else 0):
                    self._caches.setdefault(shard_id, _ShardCache(shard_id))
                else:
                    orphans.append((shard_id, generation))
                self._generations_allocated[shard_id] = max(
                    generation, self._generations_allocated.get(shard_id, 0))
                cursor.seek(key_layout.data_prefix(shard_id, generation + 1))
            cursor.check()
        return orphans

    def _collect_orphans(self, orphans: list[tuple[int, int]]) -> None:
        """Delete data ingested for an install that a crash cut short (never pointed to)."""
        if not orphans:
            return
        batch = rocksdict.WriteBatch(raw_mode=True)
        for shard_id, generation in orphans:
            batch.delete_range(key_layout.data_prefix(shard_id, generation),
                               key_layout.data_prefix(shard_id, generation + 1),
                               self._handles["data"])
        self._write_raw(batch, sync=True, doing="removing data of an unfinished install")

    # ---- writing ---------------------------------------------------------------------------

    def batch(self) -> OperationBatch:
        return OperationBatch()

    def write(self, batch: WriteBatch, sync: bool) -> None:
        """Apply the batch atomically, synced if `sync`.

        Raises errors.DiskFull (nothing applied) when the disk is full; later writes succeed
        again once space returns.
        """
        self._check_open()
        if self._disk_full:
            self._resume_after_disk_full()
        plan = _WritePlan(self)
        try:
            for operation in ops.operations_of(batch):
                plan.add(operation)
            for image in plan.images:
                invariant(all(os.path.exists(path) for path in image.paths),
                          f"shard {image.shard_id}: staged files of the image are missing")
            self._ingest(plan.images)
            self._write_raw(plan.batch, sync, "writing a batch")
        finally:
            plan.release()
        plan.commit()

    def put_meta(self, name: str, value: bytes) -> None:
        """Write node metadata, synced."""
        batch = self.batch()
        batch.put_meta(name, value)
        self.write(batch, sync=True)

    def _ingest(self, images: list[RocksDBStagedSnapshot]) -> None:
        """Ingest staged images under their fresh generations: invisible until the batch that
        points the shard at that generation is written.

        RocksDB moves the files it ingests; it is handed hard links, so the staged files stay
        until the batch is written and a batch retried after errors.DiskFull ingests again
        (the same pairs under the same generation: harmless if the first ingestion stuck).
        """
        options = rocksdict.IngestExternalFileOptions()
        options.set_move_files(True)
        for image in images:
            if not image.paths:
                continue
            links = [path + INGEST_LINK_SUFFIX for path in image.paths]
            try:
                for path, link in zip(image.paths, links, strict=True):
                    os.link(path, link)
                self._families["data"].ingest_external_file(links, options)
            except Exception as error:
                raise self._failure(error, "ingesting a snapshot") from error
            finally:
                remove_files(links)

    def _write_raw(self, batch: Any, sync: bool, doing: str) -> None:
        try:
            self._db.write(batch, rocksdb_options.write_options(sync))
        except Exception as error:
            raise self._failure(error, doing) from error

    def _failure(self, error: Exception, doing: str) -> StorageError:
        failure = rocksdb_errors.translate(error, self.path, doing)
        if isinstance(failure, DiskFull):
            self._disk_full = True
        return failure

    def _resume_after_disk_full(self) -> None:
        """Reopen the database (clearing RocksDB's background error) once there is room to
        replay the WAL into a table file; until then raise errors.DiskFull at once."""
        free = shutil.disk_usage(self.path).free
        if free < self._wal_bytes() + rocksdb_options.RESUME_FREE_BYTES_MARGIN:
            raise DiskFull(self.path)
        self._close_quietly()
        try:
            self._open(read_only=False)
        except DiskFull:
            self._open(read_only=True)  # keep serving reads meanwhile
            raise
        self._disk_full = False

    def _wal_bytes(self) -> int:
        return sum(entry.stat().st_size for entry in os.scandir(self.path)
                   if entry.name.endswith(".log"))

    # ---- reading ---------------------------------------------------------------------------

    def log(self, shard_id: int) -> RocksDBLog:
        return RocksDBLog(self, shard_id)

    def shard(self, shard_id: int) -> RocksDBShardState:
        return RocksDBShardState(self, shard_id)

    def shard_ids(self) -> list[int]:
        return sorted(self._caches)

    def get_meta(self, name: str) -> bytes | None:
        self._check_open()
        record = self._read(lambda: self._families["meta"].get(key_layout.node_meta_key(name)),
                            f"reading node metadata {name!r}")
        if record is None:
            return None
        try:
            value = encoding.unpack(record)
        except encoding.RecordCorrupt as error:
            raise CorruptStorage(self.path, f"node metadata {name!r}: {error.detail}") from error
        invariant(isinstance(value, bytes), f"node metadata {name!r} is not bytes")
        return bytes(value)

    def cache(self, shard_id: int) -> _ShardCache:
        """The shard's cached state, or an empty one (not stored) if it has none."""
        cache = self._caches.get(shard_id)
        return cache if cache is not None else _ShardCache(shard_id)

    def replace_cache(self, shard_id: int, cache: _ShardCache | None) -> None:
        if cache is None:
            self._caches.pop(shard_id, None)
        else:
            self._caches[shard_id] = cache

    def tail(self, shard_id: int) -> LogTail:
        """The in-memory tail of the shard's log (empty for a shard never appended to)."""
        tail = self._tails.get(shard_id)
        if tail is None:
            tail = self._tails[shard_id] = LogTail()
        return tail

    def change_tail(self, shard_id: int, change: str, argument: Any) -> None:
        """Replay one change of a written batch on the shard's tail (_WritePlan.commit)."""
        tail = self.tail(shard_id)
        if change == "append":
            tail.append(argument)
        elif change == "compact":
            tail.compact(argument)
        else:
            tail.clear()

    def handle(self, family: str) -> Any:
        return self._handles[family]

    def read_entries(self, shard_id: int, low: int, high: int, bytes_max: int) -> list[Entry]:
        """Entries [low, high) of a shard (bounds already checked), verified, bytes-bounded."""
        self._check_open()
        start, end = key_layout.entry_key(shard_id, low), key_layout.entry_key(shard_id, high)
        found: list[Entry] = []
        size = 0
        try:
            with self._cursor("raft") as cursor:
                cursor.seek(start)
                finished = False
                while not finished:
                    # Read ahead as many records as were read so far (at least 4): entries
                    # past the byte bound are never read much beyond what was kept.
                    records, finished = cursor.read_rows(end, 0, max(4, len(found)))
                    for _, record in records:
                        entry = self._decode_entry(shard_id, low + len(found), record)
                        size += entry.size_bytes()
                        if found and size > bytes_max:
                            return found
                        found.append(entry)
        except StorageError:
            raise
        except Exception as error:
            raise self._failure(error, f"reading the log of shard {shard_id}") from error
        if low + len(found) != high:
            raise CorruptStorage(self.path, f"shard {shard_id}: log entry {low + len(found)} "
                                 f"is missing (the log should run to {high - 1})")
        return found

    def _decode_entry(self, shard_id: int, index: int, record: bytes) -> Entry:
        try:
            entry = encoding.decode_entry(record)
        except encoding.RecordCorrupt as error:
            raise CorruptStorage(self.path, f"shard {shard_id} log entry {index}: "
                                 f"{error.detail}") from error
        if entry.index != index:
            raise CorruptStorage(self.path, f"shard {shard_id}: the record stored for log "
                                 f"entry {index} holds entry {entry.index}")
        return entry

    def read_value(self, shard_id: int, key: bytes) -> bytes | None:
        self._check_open()
        stored = key_layout.data_key(shard_id, self.cache(shard_id).generation, key)
        try:  # inline, not through _read: this is every apply's and every GET's read
            value = self._families["data"].get(stored)
        except Exception as error:
            raise self._failure(error, f"reading a key of shard {shard_id}") from error
        return None if value is None else bytes(value)

    def read_range(self, shard_id: int, start: bytes, end: bytes | None,
                   limit: int) -> list[tuple[bytes, bytes]]:
        invariant(limit >= 0, f"scan limit {limit} is negative")
        self._check_open()
        rows: list[tuple[bytes, bytes]] = []
        if limit == 0:
            return rows
        cursor = self._cursor("data")
        try:
            for block in self._data_blocks(cursor, shard_id, start, end, "scanning",
                                           min(limit, PAIRS_PER_READ)):
                rows.extend(block[:limit - len(rows)])
                if len(rows) == limit:
                    break
        finally:
            cursor.release()
        return rows

    def _data_blocks(self, cursor: Cursor, shard_id: int, start: bytes, end: bytes | None,
                     doing: str, block_pairs: int = PAIRS_PER_READ,
                     ) -> Iterator[list[tuple[bytes, bytes]]]:
        """The shard's live (key, value) pairs in [start, end), in blocks, as of the cursor's
        making; RocksDB failures become typed errors."""
        generation = self.cache(shard_id).generation
        prefix = key_layout.data_prefix(shard_id, generation)
        limit = prefix + end if end is not None else key_layout.data_prefix(shard_id,
                                                                            generation + 1)
        try:
            yield from cursor.blocks(prefix + start, limit, len(prefix), block_pairs)
        except StorageError:
            raise
        except Exception as error:
            raise self._failure(error, f"{doing} shard {shard_id}") from error

    def _cursor(self, family: str) -> Cursor:
        self._check_open()
        return Cursor(self._families[family], self.path, self._cursors)

    def _read(self, read: Any, doing: str) -> Any:
        try:
            return read()
        except Exception as error:
            raise self._failure(error, doing) from error

    # ---- snapshots -------------------------------------------------------------------------

    def open_snapshot(self, shard_id: int) -> ChunkedSnapshotReader:
        """A consistent image of the shard's data and applied point, as of now: the cursor
        (a RocksDB iterator) is made here, and reads this instant's state to the end."""
        self._check_open()
        meta = self.cache(shard_id).applied
        cursor = self._cursor("data")
        blocks = self._data_blocks(cursor, shard_id, b"", None, "reading a snapshot of")
        return ChunkedSnapshotReader(shard_id, meta, blocks, on_close=cursor.release)

    def snapshot_writer(self, shard_id: int, meta: SnapshotMeta) -> RocksDBSnapshotWriter:
        """A writer staging an image of the shard under a fresh data generation."""
        self._check_open()
        generation = max(self._generations_allocated.get(shard_id, 0),
                         self.cache(shard_id).generation) + 1
        invariant(generation <= key_layout.GENERATION_MAX,
                  f"shard {shard_id}: data generations exhausted")
        self._generations_allocated[shard_id] = generation
        return RocksDBSnapshotWriter(self._staging, shard_id, meta, generation)

    def staged_files(self) -> list[str]:
        """Files in the staging directory (tests check that aborted transfers leave none)."""
        return sorted(os.listdir(self._staging)) if os.path.isdir(self._staging) else []

    # ---- maintenance -----------------------------------------------------------------------

    def flush(self, families: tuple[str, ...] = rocksdb_options.COLUMN_FAMILIES) -> None:
        """Flush the memtables of `families` into table files (tests force data into SSTs)."""
        self._check_open()
        for name in families:
            family = self._families[name]
            self._read(lambda family=family: family.flush(True), f"flushing {name}")

    def table_files(self) -> list[str]:
        """Paths of the live table (SST) files."""
        self._check_open()
        return sorted(os.path.join(self.path, os.path.basename(file["name"]))
                      for file in self._db.live_files())

    def verify(self) -> None:
        """Read every record of every column family; raises errors.CorruptStorage."""
        self._check_open()
        for name in rocksdb_options.COLUMN_FAMILIES:
            try:
                with self._cursor(name) as cursor:
                    for _ in cursor.blocks(b"", None):
                        pass
            except StorageError:
                raise
            except Exception as error:
                raise self._failure(error, f"verifying column family {name}") from error
        self._load_raft_records()

    def close(self) -> None:
        self._close_quietly()

    def _close_quietly(self) -> None:
        """Close the database; a close failing on an earlier write error is not news."""
        if self._db is not None:
            for cursor in list(self._cursors):
                cursor.release()
            self._families, self._handles = {}, {}
            with contextlib.suppress(Exception):
                self._db.close()
            self._db = None

    def _check_open(self) -> None:
        invariant(self._db is not None, f"{self.path}: the store is closed")


class _RaftLoader:
    """Rebuilds the shard caches from the records of `raft`, checking each one."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.caches: dict[int, _ShardCache] = {}
        self.terms: dict[int, list[int]] = {}
        self.first: dict[int, int] = {}

    def add(self, key: bytes, record: bytes) -> None:
        try:
            kind, shard_id, index = key_layout.parse_raft_key(key)
        except ValueError as error:
            raise CorruptStorage(self.path, str(error)) from error
        cache = self.caches.setdefault(shard_id, _ShardCache(shard_id))
        try:
            self._add(kind, shard_id, index, record, cache)
        except encoding.RecordCorrupt as error:
            where = f"log entry {index}" if index >= 0 else f"record {kind.decode()}"
            raise CorruptStorage(self.path, f"shard {shard_id} {where}: {error.detail}") from error

    def _add(self, kind: bytes, shard_id: int, index: int, record: bytes,
             cache: _ShardCache) -> None:
        if kind == key_layout.KIND_ENTRY:
            self._add_entry(shard_id, index, record, cache)
        elif kind == key_layout.KIND_BASE:
            meta = encoding.decode_meta(record)
            cache.terms = LogTerms(shard_id, meta.index, meta.term)
        elif kind == key_layout.KIND_APPLIED:
            cache.applied = encoding.decode_meta(record)
        elif kind == key_layout.KIND_HARD_STATE:
            cache.hard_state = encoding.decode_hard_state(record)
        else:
            generation = encoding.unpack(record)
            if not isinstance(generation, int) or not 0 <= generation <= key_layout.GENERATION_MAX:
                raise encoding.RecordCorrupt(f"data generation {generation!r} is not valid")
            cache.generation = generation

    def _add_entry(self, shard_id: int, index: int, record: bytes, cache: _ShardCache) -> None:
        term, stored_index = encoding.entry_term(record)
        terms = self.terms.setdefault(shard_id, [])
        first = self.first.setdefault(shard_id, index)
        expected = cache.terms.base_index + 1 + len(terms)
        previous_term = terms[-1] if terms else cache.terms.base_term
        problem = None
        if stored_index != index:
            problem = f"the record stored for log entry {index} holds entry {stored_index}"
        elif index != expected:
            problem = (f"log entry {expected} is missing (next stored is {index}, "
                       f"log starts at {first})")
        elif term < previous_term:
            problem = f"log entry {index} has term {term}, below its predecessor's {previous_term}"
        if problem is not None:
            raise CorruptStorage(self.path, f"shard {shard_id}: {problem}")
        terms.append(term)

    def finish(self) -> dict[int, _ShardCache]:
        for shard_id, terms in self.terms.items():
            cache = self.caches[shard_id]
            cache.terms.append(cache.terms.base_index + 1, terms)
        return self.caches


def _as_storage_error(error: Exception, path: str, doing: str) -> Exception:
    """`error` itself if it is already typed (or a bug), else its translation."""
    if isinstance(error, StorageError | InvariantViolation):
        return error
    return rocksdb_errors.translate(error, path, doing)


def _sync_directory(path: str) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
