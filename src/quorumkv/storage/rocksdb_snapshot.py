"""Receiving a snapshot into RocksDB: verified chunks become SST files in a staging directory.

`RocksDBSnapshotWriter` feeds each chunk through the stream verifier (snapshot_stream.py) and
writes the verified pairs, under the shard's prefix and a FRESH data generation that no record
points to, with rocksdict's SstFileWriter into `<db>/quorumkv-staging/`, starting a new file
every `limits.snapshot_sst_file_bytes_max`. `finish()` closes the last file once the END chunk
has checked the count and the overall checksum, and returns a `RocksDBStagedSnapshot`: the
files, the generation and the meta. Installing it (RocksDBStore.write) ingests the files and
then switches the shard to the new generation in one WriteBatch.

A failed or aborted transfer leaves nothing: `abort()` deletes the staged files, and opening
the store empties the staging directory (a crash mid-transfer leaves files nobody will use).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field

import rocksdict

from quorumkv import limits
from quorumkv.invariant import invariant
from quorumkv.raft.types import SnapshotMeta
from quorumkv.storage import key_layout, rocksdb_errors
from quorumkv.storage.rocksdb_options import sst_writer_options
from quorumkv.storage.snapshot_stream import SnapshotStreamVerifier

STAGING_DIRECTORY = "quorumkv-staging"


@dataclass(slots=True)
class RocksDBStagedSnapshot:
    """A verified image staged as SST files (implements protocols.StagedSnapshot)."""

    shard_id: int
    meta: SnapshotMeta
    generation: int
    paths: list[str]
    pair_count: int
    installed: bool = field(default=False)

    def discard(self) -> None:
        """Delete the staged files of an image that will not be installed."""
        remove_files(self.paths)
        self.paths = []


class RocksDBSnapshotWriter:
    """Stages one incoming image (implements protocols.SnapshotWriter)."""

    def __init__(self, staging: str, shard_id: int, meta: SnapshotMeta, generation: int) -> None:
        self._staging = staging
        self._verifier = SnapshotStreamVerifier(shard_id, meta)
        self._generation = generation
        self._prefix = key_layout.data_prefix(shard_id, generation)
        self._paths: list[str] = []
        self._file: rocksdict.SstFileWriter | None = None
        self._file_bytes = 0
        self._open = True

    def write_chunk(self, data: bytes) -> None:
        """Verify one chunk and stage its pairs; raises errors.SnapshotCorrupt, or
        errors.DiskFull when the staging files do not fit."""
        invariant(self._open, "a snapshot writer was used after finish or abort")
        pairs = self._verifier.feed(data)
        if not pairs:
            return
        prefix = self._prefix
        try:
            put = self._file_with_room().__setitem__  # files roll between chunks only
            for key, value in pairs:
                put(prefix + key, value)
            self._file_bytes += len(data) + len(pairs) * key_layout.DATA_PREFIX_BYTES
        except Exception as error:
            raise rocksdb_errors.translate(error, self._staging, "staging a snapshot") from error

    def finish(self) -> RocksDBStagedSnapshot:
        """Verify the whole image and close its files; raises errors.SnapshotCorrupt."""
        invariant(self._open, "a snapshot writer was finished after finish or abort")
        count = self._verifier.finish()
        try:
            self._close_file()
        except Exception as error:
            raise rocksdb_errors.translate(error, self._staging, "staging a snapshot") from error
        self._open = False
        return RocksDBStagedSnapshot(self._verifier.shard_id, self._verifier.meta,
                                     self._generation, list(self._paths), count)

    def abort(self) -> None:
        """Discard everything staged so far."""
        self._open = False
        self._file = None  # dropped unfinished; its file is removed below
        remove_files(self._paths)
        self._paths = []

    def _file_with_room(self) -> rocksdict.SstFileWriter:
        if self._file is None or self._file_bytes >= limits.snapshot_sst_file_bytes_max:
            self._close_file()
            name = (f"{self._verifier.shard_id:010d}-{self._generation:010d}-"
                    f"{len(self._paths):04d}.sst")
            path = os.path.join(self._staging, name)
            writer = rocksdict.SstFileWriter(options=sst_writer_options())
            writer.open(path)
            self._paths.append(path)
            self._file, self._file_bytes = writer, 0
        return self._file

    def _close_file(self) -> None:
        if self._file is not None:
            self._file.finish()
            self._file = None


def remove_files(paths: list[str]) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def clear_staging(staging: str) -> None:
    """Remove whatever an earlier process left staged (a transfer cut short by a crash)."""
    os.makedirs(staging, exist_ok=True)
    remove_files([os.path.join(staging, name) for name in os.listdir(staging)])
