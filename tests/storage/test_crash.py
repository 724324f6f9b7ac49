"""Crash safety with real processes: SIGKILL a writer at arbitrary moments, reopen, check.

The child (quorumkv.storage.crash_child) acknowledges each synced batch on a pipe. The parent
kills it after a seeded-random number of acknowledgements (so at a random point of its loop:
mid-batch, mid-fsync, mid-compaction), reopens the database, and checks that every
acknowledged entry and applied point is there, intact and in order, and that nothing half of
a batch is visible; then it starts the child again, continuing where the database stands.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from quorumkv.storage import crash_child
from quorumkv.storage.rocksdb import RocksDBStore

ACKS_PER_CYCLE_MAX = 12


def run_and_kill(path: str, acknowledgements: int) -> int:
    """Start the child, SIGKILL it once it acknowledged `acknowledgements` batches (or died);
    the highest index it acknowledged."""
    child = subprocess.Popen([sys.executable, "-m", "quorumkv.storage.crash_child", path],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout is not None
    acknowledged = 0
    seen = 0
    try:
        while seen < acknowledgements:
            line = child.stdout.readline()
            if not line:
                break
            acknowledged, seen = int(line), seen + 1
    finally:
        child.send_signal(signal.SIGKILL)
        remaining, errors = child.communicate()
    lines = remaining.split()
    if lines:
        acknowledged = int(lines[-1])  # acknowledged before the kill landed
    assert child.returncode == -signal.SIGKILL, f"the child failed: {errors.decode()[-2000:]}"
    return acknowledged


def check(path: str, acknowledged: int) -> int:
    """Every acknowledged batch is present and intact; nothing is half-written. Returns the
    last index the database holds (at least `acknowledged`)."""
    store = RocksDBStore(path)
    try:
        last = store.log(1).last_index()
        assert last >= acknowledged, f"acknowledged {acknowledged} but the log ends at {last}"
        for shard_id in crash_child.SHARDS:
            check_shard(store, shard_id, last)
        return last
    finally:
        store.close()


def check_shard(store: RocksDBStore, shard_id: int, last: int) -> None:
    log, state = store.log(shard_id), store.shard(shard_id)
    assert log.last_index() == last, "both shards' entries are written in one batch"
    assert state.applied() == crash_child.expected_applied(last) or last == 0
    assert log.hard_state().commit == last
    first = log.first_index()
    assert last - first < crash_child.COMPACT_EVERY + crash_child.KEEP_ENTRIES
    expected = [crash_child.expected_entry(shard_id, index) for index in range(first, last + 1)]
    assert log.entries(first, last + 1, 10**9) == expected
    if first > 1:
        assert log.term(first - 1) == crash_child.expected_term(first - 1)
    low = max(1, last - crash_child.DELETE_LAG + 1)
    rows = state.scan(b"", None, 10 * crash_child.DELETE_LAG)
    assert rows == [(crash_child.expected_key(index), crash_child.expected_value(shard_id, index))
                    for index in range(low, last + 1)]


def kill_cycles(tmp_path: Path, cycles: int, seed: int) -> None:
    rng = random.Random(seed)
    path = str(tmp_path / "node")
    last = 0
    for cycle in range(cycles):
        acknowledged = run_and_kill(path, rng.randint(0, ACKS_PER_CYCLE_MAX))
        last = check(path, max(acknowledged, last))
        assert os.path.isdir(path), f"cycle {cycle}: the database vanished"
    assert last > cycles  # the writer made progress overall


def test_fifty_kill_cycles_lose_no_acknowledged_batch(tmp_path: Path) -> None:
    """50 SIGKILLs at random points: every acknowledged batch survives, whole and in order."""
    kill_cycles(tmp_path, 50, seed=1)


@pytest.mark.slow
def test_a_thousand_kill_cycles_lose_no_acknowledged_batch(tmp_path: Path) -> None:
    """1,000 SIGKILLs at random points: every acknowledged batch survives, whole and in order."""
    kill_cycles(tmp_path, 1000, seed=2)


# ---- snapshot installs --------------------------------------------------------------------


def run_installs_and_kill(path: str, lines: int) -> list[str]:
    """Start the installing child, SIGKILL it after `lines` progress lines; all its lines."""
    child = subprocess.Popen(
        [sys.executable, "-m", "quorumkv.storage.crash_child", path, "--installs"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout is not None
    seen: list[str] = []
    try:
        while len(seen) < lines:
            line = child.stdout.readline()
            if not line:
                break
            seen.append(line.decode().strip())
    finally:
        child.send_signal(signal.SIGKILL)
        remaining, errors = child.communicate()
    assert child.returncode == -signal.SIGKILL, f"the child failed: {errors.decode()[-2000:]}"
    return seen + remaining.decode().split()


def check_install(path: str, acknowledged: str | None) -> None:
    """The shard is wholly one image (or untouched if none was acknowledged), and nothing of
    an unfinished install is left: no orphan generation, no staged file."""
    store = RocksDBStore(path)
    try:
        shard = crash_child.INSTALL_SHARD
        applied = store.shard(shard).applied()
        rows = store.shard(shard).scan(b"", None, 10_000)
        versions = [v for v in (0, 1) if applied == crash_child.image_meta(v)]
        if not versions:
            assert acknowledged is None and rows == [], f"a mix: {applied}, {len(rows)} rows"
            return
        (version,) = versions
        assert rows == crash_child.image_pairs(version), f"image {version} is not whole"
        if acknowledged is not None:  # the acknowledged one, or the next (done, unreported)
            assert f"v{version}" in (acknowledged, f"v{1 - int(acknowledged[1])}")
        log = store.log(shard)
        assert (log.first_index(), log.last_index()) == (applied.index + 1, applied.index)
        assert store.staged_files() == []
    finally:
        store.close()
    again = RocksDBStore(path)
    try:
        assert again._find_data_generations() == []  # the first open collected every orphan
    finally:
        again.close()


def install_kill_cycles(tmp_path: Path, cycles: int, seed: int) -> None:
    rng = random.Random(seed)
    path = str(tmp_path / "node")
    acknowledged: str | None = None
    for _ in range(cycles):
        lines = run_installs_and_kill(path, rng.randint(1, 40))
        acks = [line for line in lines if line.startswith("v")]
        acknowledged = acks[-1] if acks else acknowledged
        check_install(path, acknowledged)


def test_killed_snapshot_installs_leave_old_or_new_never_a_mix(tmp_path: Path) -> None:
    """Kills during staging, ingestion or the switch leave one whole image and no debris."""
    install_kill_cycles(tmp_path, 12, seed=3)


@pytest.mark.slow
def test_many_killed_snapshot_installs_leave_old_or_new_never_a_mix(tmp_path: Path) -> None:
    """200 kills during snapshot installs: always one whole image, never debris."""
    install_kill_cycles(tmp_path, 200, seed=4)
