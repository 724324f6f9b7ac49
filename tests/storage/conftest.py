"""Store factories for the conformance suite: every test runs against every implementation."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from quorumkv.storage.faulty_disk import FaultyDiskStore
from quorumkv.storage.memory import MemoryStore

KINDS = ["memory", "faulty_disk", "rocksdb"]


class StoreFactory:
    """Makes stores of one kind and reopens them as a fresh process would find them."""

    def __init__(self, kind: str, directory: Path) -> None:
        self.kind = kind
        self.directory = directory
        self.opened: list[Any] = []
        self._count = 0

    def make(self) -> Any:
        if self.kind == "memory":
            store: Any = MemoryStore()
        elif self.kind == "faulty_disk":
            store = FaultyDiskStore(random.Random(7), torn_probability=0.0)
        else:
            from quorumkv.storage.rocksdb import RocksDBStore

            self._count += 1
            store = RocksDBStore(str(self.directory / f"db{self._count}"))
        self.opened.append(store)
        return store

    def reopen(self, store: Any) -> Any:
        """The store after a restart: closed and reopened (RocksDB), crashed (faulty disk)."""
        if self.kind == "memory":
            return store
        if self.kind == "faulty_disk":
            survivor = store.crash()
            self.opened.append(survivor)
            return survivor
        from quorumkv.storage.rocksdb import RocksDBStore

        path = store.path
        store.close()
        reopened = RocksDBStore(path)
        self.opened.append(reopened)
        return reopened

    def close_all(self) -> None:
        for store in self.opened:
            store.close()


def _factory(kind: str, tmp_path: Path) -> Iterator[StoreFactory]:
    if kind == "rocksdb":
        pytest.importorskip("quorumkv.storage.rocksdb")
    factory = StoreFactory(kind, tmp_path / kind)
    factory.directory.mkdir(parents=True, exist_ok=True)
    try:
        yield factory
    finally:
        factory.close_all()


@pytest.fixture(params=KINDS)
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    yield from _factory(request.param, tmp_path)


@pytest.fixture(params=KINDS)
def other_stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    yield from _factory(request.param, tmp_path / "other")
