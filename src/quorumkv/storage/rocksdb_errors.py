"""Turning RocksDB failures into the typed errors of errors.py, naming the file at fault.

rocksdict raises a bare `Exception` carrying RocksDB's status text. We classify it by that text:

- "No space left on device"                      -> errors.DiskFull
- corruption, a checksum or size mismatch, a file the MANIFEST lists but the directory lacks,
  a column family the MANIFEST lost             -> errors.CorruptStorage
- anything else (EIO, the LOCK held by another process) -> errors.StorageUnavailable

RocksDB's text often names the file ("... in db/000009.sst offset 0 size 418"); when it does
not (a WAL checksum mismatch says only "Corruption: checksum mismatch"), RocksDB's own info
log (`LOG` in the database directory) does, on the warning line it wrote just before failing
("db/000004.log: dropping 18151 bytes; Corruption: checksum mismatch"). We quote that line.
"""

from __future__ import annotations

import os
import re

from quorumkv.errors import CorruptStorage, DiskFull, StorageError, StorageUnavailable

_FILE_NAME = re.compile(r"(?:[\w./-]*/)?(?:\d{6,}\.(?:sst|log|blob)|MANIFEST-\d+|CURRENT|OPTIONS-\d+)")
_CORRUPTION_MARKERS = ("Corruption", "checksum", "mismatch", "No such file or directory",
                       "Column family not found", "column families not opened",
                       "does not exist", "truncated")
_LOG_TAIL_BYTES = 64 * 1024


def translate(error: Exception, path: str, doing: str) -> StorageError:
    """The typed error for a RocksDB failure while `doing` something with the database at
    `path`."""
    message = str(error)
    if "No space left on device" in message:
        return DiskFull(path)
    if any(marker in message for marker in _CORRUPTION_MARKERS):
        return corrupt(path, f"{doing} failed: {message.strip()}")
    return StorageUnavailable(path, f"{doing} failed: {message.strip()}")


def corrupt(path: str, detail: str) -> CorruptStorage:
    """CorruptStorage naming the file at fault: from `detail`, else from RocksDB's LOG."""
    named = _FILE_NAME.search(detail)
    if named is not None:
        return CorruptStorage(_in_directory(path, named.group(0)), detail)
    logged = last_logged_complaint(path)
    if logged is not None:
        named = _FILE_NAME.search(logged)
        if named is not None:
            return CorruptStorage(_in_directory(path, named.group(0)), f"{detail} (RocksDB's "
                                  f"log says: {logged})")
    return CorruptStorage(path, detail)


def last_logged_complaint(path: str) -> str | None:
    """The last warning or error line of RocksDB's info log that names a file, if any."""
    try:
        with open(os.path.join(path, "LOG"), "rb") as log:
            log.seek(max(0, os.fstat(log.fileno()).st_size - _LOG_TAIL_BYTES))
            lines = log.read().decode(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        complaint = line.split("] ", 2)[-1].strip()
        if (("[WARN]" in line or "[ERROR]" in line) and "DB::Open() failed" not in line
                and _FILE_NAME.search(complaint)):
            return complaint
    return None


def _in_directory(path: str, name: str) -> str:
    return os.path.join(path, os.path.basename(name))
