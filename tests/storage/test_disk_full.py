"""A full disk: writes fail with DiskFull and change nothing, reads go on, and writes succeed
again once space returns, without restarting the process (an 8 MB tmpfs plays the disk)."""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from quorumkv.errors import DiskFull
from quorumkv.raft.types import ConfState, Entry, SnapshotMeta
from quorumkv.storage.open import open_node_store
from quorumkv.storage.rocksdb import RocksDBStore

BALLAST_BYTES = 5 * 1024 * 1024


@contextlib.contextmanager
def small_tmpfs(mount: Path, size_bytes: int) -> Iterator[Path]:
    """A tmpfs of `size_bytes` mounted at `mount` (needs root: the test is skipped
    otherwise), unmounted afterwards. Also used by tests/server/test_disk_full_node.py."""
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs",
                              str(mount)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MB tmpfs mounted for the test."""
    with small_tmpfs(tmp_path / "disk", 8 * 1024 * 1024) as mount:
        yield mount


def write_batch(store: RocksDBStore, index: int, rng: random.Random) -> None:
    """Entry `index` plus 16 KB of incompressible data and the applied point, synced."""
    batch = store.batch()
    if index == 1:
        batch.compact_log(1, SnapshotMeta(0, 0, ConfState(voters=(1,))))
    batch.append_entries(1, [Entry(1, index, data=rng.randbytes(100))])
    for part in range(16):
        batch.put(1, b"%06d-%02d" % (index, part), rng.randbytes(1024))
    batch.set_applied(1, SnapshotMeta(index, 1, ConfState(voters=(1,))))
    store.write(batch, sync=True)


def fill_until_full(store: RocksDBStore, rng: random.Random) -> int:
    """Write until DiskFull; the number of batches acknowledged."""
    index = store.log(1).last_index()
    while True:
        try:
            write_batch(store, index + 1, rng)
        except DiskFull as error:
            assert str(store.path) in str(error) and "writes are refused" in str(error)
            return index
        index += 1


def test_full_disk_refuses_writes_then_resumes_when_space_returns(small_disk: Path) -> None:
    """DiskFull applies nothing; reads work meanwhile; freeing space lets writes resume."""
    rng = random.Random(5)
    ballast = small_disk / "ballast"
    ballast.write_bytes(b"\0" * BALLAST_BYTES)
    store = open_node_store(str(small_disk / "node"))
    acknowledged = fill_until_full(store, rng)
    assert acknowledged > 10
    assert store.log(1).last_index() == acknowledged  # the failed batch left nothing
    assert store.shard(1).applied().index == acknowledged
    assert store.shard(1).get(b"%06d-00" % acknowledged) is not None  # reads still work
    assert store.shard(1).get(b"%06d-00" % (acknowledged + 1)) is None
    with pytest.raises(DiskFull):  # still full: refused at once, still nothing applied
        write_batch(store, acknowledged + 1, rng)
    ballast.unlink()
    write_batch(store, acknowledged + 1, rng)  # same process, same store object
    assert store.log(1).last_index() == acknowledged + 1
    store.close()
    reopened = open_node_store(str(small_disk / "node"))
    assert reopened.log(1).last_index() == acknowledged + 1
    assert len(reopened.shard(1).scan(b"", None, 100_000)) == 16 * (acknowledged + 1)
    reopened.close()


def test_opening_on_a_full_disk_raises_disk_full_not_a_crash(small_disk: Path) -> None:
    """When the WAL replay at open has no room, open raises DiskFull; with room, it opens."""
    rng = random.Random(6)
    ballast = small_disk / "ballast"
    ballast.write_bytes(b"\0" * BALLAST_BYTES)
    store = open_node_store(str(small_disk / "node"))
    acknowledged = fill_until_full(store, rng)
    store.close()  # its flush fails for lack of room: the data stays in the WAL
    with pytest.raises(DiskFull):
        open_node_store(str(small_disk / "node"))
    ballast.unlink()
    reopened = open_node_store(str(small_disk / "node"))
    assert reopened.log(1).last_index() == acknowledged
    write_batch(reopened, acknowledged + 1, rng)
    reopened.close()


def test_a_reopen_that_finds_the_disk_full_keeps_serving_reads(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               ) -> None:
    """If reopening after DiskFull hits a full disk again, the store reopens read-only:
    reads go on, the write fails with DiskFull, and a later write succeeds."""
    rng = random.Random(7)
    store = open_node_store(str(tmp_path / "node"))
    write_batch(store, 1, rng)
    store._disk_full = True  # as after a failed write
    real_open = RocksDBStore._open
    attempts: list[bool] = []

    def open_once_full(self: RocksDBStore, read_only: bool) -> None:
        attempts.append(read_only)
        if attempts == [False]:
            raise DiskFull(self.path)
        real_open(self, read_only)

    monkeypatch.setattr(RocksDBStore, "_open", open_once_full)
    with pytest.raises(DiskFull):
        write_batch(store, 2, rng)
    assert attempts == [False, True]
    assert store.log(1).last_index() == 1 and store.shard(1).get(b"000001-00") is not None
    write_batch(store, 2, rng)
    assert store.log(1).last_index() == 2
    store.close()
