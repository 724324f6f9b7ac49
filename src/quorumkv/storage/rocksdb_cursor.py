"""Cursors: RocksDB iterators that the store can take back.

In rocksdict, every iterator (like every column family object) holds a reference to the
database, which really closes, releasing its LOCK file, only when the last reference is gone.
An iterator left alive somewhere (in a snapshot reader nobody finished, or in the frame of an
exception someone kept) would make a later open of the same directory in this process fail
with "lock hold by current process", and so would prevent the store from reopening itself after
a full disk. So the store never hands out a raw iterator: it wraps each in a `Cursor`, keeps the
live ones in a weak set, and releases them all when it closes. A cursor is released on leaving
its `with` block as well, so a failed read leaves nothing behind in its traceback; reading from
a released cursor raises errors.StorageUnavailable (the store was closed or reopened: read
again).

Cursors do not use rocksdict's iterate_upper_bound: the bound's buffer is not kept alive with
the iterator, and we saw the bound ignored. `pairs` compares keys with the limit itself.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import Any

import rocksdict

from quorumkv.errors import StorageUnavailable

PAIRS_PER_READ = 1024
"""Pairs `Cursor.pairs` reads from the iterator in one go (bounds a paused read's buffer)."""


class Cursor:
    """One RocksDB iterator over one column family; it reads the state of when it was made."""

    def __init__(self, family: Any, path: str, registry: weakref.WeakSet[Cursor]) -> None:
        self._iterator: Any = family.iter(rocksdict.ReadOptions())
        self._path = path
        registry.add(self)

    def __enter__(self) -> Cursor:
        return self

    def __exit__(self, *_: object) -> None:
        self.release()

    def release(self) -> None:
        """Drop the iterator (and with it this cursor's hold on the database)."""
        self._iterator = None

    def seek(self, key: bytes) -> None:
        self._live().seek(key)

    def seek_to_first(self) -> None:
        self._live().seek_to_first()

    def valid(self) -> bool:
        return bool(self._live().valid())

    def key(self) -> bytes:
        return bytes(self._live().key())

    def value(self) -> bytes:
        return bytes(self._live().value())

    def next(self) -> None:
        self._live().next()

    def check(self) -> None:
        """Raise RocksDB's error if the iteration stopped on one (a failed block checksum)
        rather than at the end: an invalid iterator alone does not say which."""
        self._live().status()

    def blocks(self, start: bytes, limit: bytes | None, strip: int = 0,
               block_pairs: int = PAIRS_PER_READ) -> Iterator[list[tuple[bytes, bytes]]]:
        """(key[strip:], value) for start <= key < limit (None: to the end), in lists of up
        to `block_pairs`; RocksDB's status is checked at the end of the range."""
        self.seek(start)
        while True:
            rows, finished = self.read_rows(limit, strip, block_pairs)
            if rows:
                yield rows
            if finished:
                return

    def read_rows(self, limit: bytes | None, strip: int,
                   block_pairs: int) -> tuple[list[tuple[bytes, bytes]], bool]:
        """Up to `block_pairs` rows from the current position, and whether the range is
        exhausted. The raw iterator is a local of this call only, so a paused `pairs` holds no
        reference of its own."""
        iterator = self._live()
        valid, key_of, value_of, advance = (iterator.valid, iterator.key, iterator.value,
                                            iterator.next)
        rows: list[tuple[bytes, bytes]] = []
        append = rows.append
        for _ in range(block_pairs):
            if not valid():
                iterator.status()
                return rows, True
            key = key_of()
            if limit is not None and key >= limit:
                return rows, True
            append((key[strip:], value_of()))
            advance()
        return rows, False

    def _live(self) -> Any:
        if self._iterator is None:
            raise StorageUnavailable(self._path, "a read was cut short because the store was "
                                     "closed or reopened meanwhile; read again")
        return self._iterator
