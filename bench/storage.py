"""Figures of the RocksDB store: group commit, snapshot transfer, resident memory.

    python bench/storage.py [--dir DIR] [--seconds S] [--size-mb MB] [--keys N] [--ten-million]
                            [--only commit|snapshot|memory]

1. Synced batches per second with 1, 16 and 256 entries of 100 bytes per batch (each batch
   also sets the hard state, as the host's does; a second column adds the applied effects: one
   100-byte put per entry and the applied point), next to the raw fdatasync rate of the same
   directory measured the same way (os.write of the same bytes + os.fdatasync, in a loop).
2. Snapshot of one shard of `--size-mb` MB of 100-byte values (default 1024): stream (read
   every chunk from the source) and ingest (write every chunk into a second store's writer,
   finish, install) in MB/s of chunk bytes.
3. Resident memory of a process holding `--keys` keys (default 1,000,000; 10,000,000 with
   --ten-million) of 100-byte values, after writing them and reading 100,000 at random: bounded
   by the block cache and memtables (limits.py), not by the number of keys.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

from quorumkv import limits
from quorumkv.raft.types import ConfState, Entry, HardState, SnapshotMeta
from quorumkv.storage.rocksdb import RocksDBStore

VALUE_BYTES = 100
CONF = ConfState(voters=(1, 2, 3))
KEYS_PER_FILL_BATCH = 10_000


class RawSyncs:
    """os.write + os.fdatasync of `record_bytes` per iteration, appending to one file."""

    def __init__(self, directory: str, record_bytes: int) -> None:
        self.path = os.path.join(directory, "fdatasync.probe")
        self.descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self.record = os.urandom(record_bytes)

    def run(self, seconds: float) -> tuple[int, float]:
        """(syncs, elapsed seconds) of a loop lasting `seconds`."""
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            os.write(self.descriptor, self.record)
            os.fdatasync(self.descriptor)
            count += 1
        return count, time.perf_counter() - started

    def close(self) -> None:
        os.close(self.descriptor)
        os.remove(self.path)


class CommitWorkload:
    """Synced batches like the host's: `entries_per_batch` entries of one shard and its hard
    state; with `apply`, also one put per entry and the applied point."""

    def __init__(self, store: RocksDBStore, entries_per_batch: int, apply: bool) -> None:
        self.store = store
        self.entries_per_batch = entries_per_batch
        self.apply = apply
        self.shard_id = 1 + entries_per_batch + (1000 if apply else 0)
        self.index = 0
        self.payload = os.urandom(VALUE_BYTES)
        meta = SnapshotMeta(0, 0, CONF)
        batch = store.batch()
        batch.compact_log(self.shard_id, meta)
        batch.set_applied(self.shard_id, meta)
        store.write(batch, sync=True)

    def run(self, seconds: float) -> tuple[int, float]:
        """(batches, elapsed seconds) of a loop lasting `seconds`."""
        batches, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            self.write_one()
            batches += 1
        return batches, time.perf_counter() - started

    def write_one(self) -> None:
        batch = self.store.batch()
        first = self.index + 1
        new = [Entry(1, first + offset, data=self.payload)
               for offset in range(self.entries_per_batch)]
        self.index += self.entries_per_batch
        batch.append_entries(self.shard_id, new)
        batch.set_hard_state(self.shard_id, HardState(1, 1, self.index))
        if self.apply:
            for entry in new:
                batch.put(self.shard_id, b"key-%012d" % entry.index, self.payload)
            batch.set_applied(self.shard_id, SnapshotMeta(self.index, 1, CONF))
        if self.index // limits.log_compaction_entries_min != (first - 1) // limits.log_compaction_entries_min:
            batch.compact_log(self.shard_id, SnapshotMeta(first - 1, 1, CONF))
        self.store.write(batch, sync=True)


def interleaved(workloads: list[RawSyncs | CommitWorkload], seconds: float,
                rounds: int) -> list[float]:
    """Rates of the workloads measured in alternating slices, so that load from elsewhere on
    the machine weighs on each alike."""
    counts = [0] * len(workloads)
    elapsed = [0.0] * len(workloads)
    for _ in range(rounds):
        for position, workload in enumerate(workloads):
            count, spent = workload.run(seconds / rounds)
            counts[position] += count
            elapsed[position] += spent
    return [count / spent for count, spent in zip(counts, elapsed, strict=True)]


def bench_commit(directory: str, seconds: float) -> None:
    print(f"group commit, synced, {VALUE_BYTES}-byte entries, {seconds:.0f} s per column, "
          f"measured in alternating slices ({directory})")
    store = RocksDBStore(os.path.join(directory, "commit"))
    try:
        for per_batch in (1, 16, 256):
            raw = RawSyncs(directory, per_batch * (VALUE_BYTES + 40))
            log = CommitWorkload(store, per_batch, apply=False)
            applied = CommitWorkload(store, per_batch, apply=True)
            raw_rate, log_rate, apply_rate = interleaved([raw, log, applied], seconds, rounds=10)
            raw.close()
            print(f"  {per_batch:>4} entries/batch: raw fdatasync {raw_rate:>7,.0f}/s | "
                  f"log+hard state {log_rate:>7,.0f} batches/s = {log_rate * per_batch:>9,.0f} "
                  f"entries/s ({log_rate / raw_rate:.0%} of raw) | + apply {apply_rate:>7,.0f} "
                  f"batches/s = {apply_rate * per_batch:>9,.0f} entries/s "
                  f"({apply_rate / raw_rate:.0%})")
    finally:
        store.close()


def fill_shard(store: RocksDBStore, shard_id: int, size_mb: int) -> int:
    keys = size_mb * 1024 * 1024 // VALUE_BYTES
    rng = random.Random(1)
    meta = SnapshotMeta(0, 0, CONF)
    batch = store.batch()
    batch.compact_log(shard_id, meta)
    store.write(batch, sync=True)
    value = rng.randbytes(VALUE_BYTES)
    for start in range(0, keys, KEYS_PER_FILL_BATCH):
        batch = store.batch()
        for number in range(start, min(keys, start + KEYS_PER_FILL_BATCH)):
            batch.put(shard_id, b"user:%012d" % number, value)
        batch.set_applied(shard_id, SnapshotMeta(start + 1, 1, CONF))
        store.write(batch, sync=False)
    store.flush()
    return keys


def bench_snapshot(directory: str, size_mb: int) -> None:
    print(f"snapshot of one shard: {size_mb} MB of {VALUE_BYTES}-byte values, chunks of "
          f"{limits.snapshot_chunk_bytes_max // 1024} KB")
    source = RocksDBStore(os.path.join(directory, "snapshot-source"))
    target = RocksDBStore(os.path.join(directory, "snapshot-target"))
    try:
        started = time.perf_counter()
        keys = fill_shard(source, 1, size_mb)
        print(f"  filled {keys:,} keys in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        reader = source.open_snapshot(1)
        chunks = []
        while chunk := reader.read_chunk(limits.snapshot_chunk_bytes_max):
            chunks.append(chunk)
        reader.close()
        stream_seconds = time.perf_counter() - started
        total_mb = sum(len(chunk) for chunk in chunks) / 1024 / 1024
        started = time.perf_counter()
        writer = target.snapshot_writer(1, reader.meta)
        for chunk in chunks:
            writer.write_chunk(chunk)
        image = writer.finish()
        batch = target.batch()
        batch.install_snapshot(1, image)
        target.write(batch, sync=True)
        ingest_seconds = time.perf_counter() - started
        assert target.shard(1).applied() == reader.meta
        print(f"  stream (read):    {total_mb / stream_seconds:7.1f} MB/s "
              f"({total_mb:.0f} MB in {stream_seconds:.1f} s, {len(chunks)} chunks)")
        print(f"  ingest (install): {total_mb / ingest_seconds:7.1f} MB/s "
              f"({ingest_seconds:.1f} s: verify, SST files, ingest, switch)")
    finally:
        source.close()
        target.close()


def resident_child(path: str, keys: int) -> None:
    """Runs in a child process: write `keys` keys, read some at random, print VmRSS/VmHWM."""
    store = RocksDBStore(path)
    value = os.urandom(VALUE_BYTES)
    for start in range(0, keys, KEYS_PER_FILL_BATCH):
        batch = store.batch()
        for number in range(start, min(keys, start + KEYS_PER_FILL_BATCH)):
            batch.put(1, b"user:%012d" % number, value)
        store.write(batch, sync=False)
    rng = random.Random(2)
    state = store.shard(1)
    for _ in range(100_000):
        state.get(b"user:%012d" % rng.randrange(keys))
    with open("/proc/self/status") as file:
        status = dict(line.split(":", 1) for line in file.read().splitlines())
    print(status["VmRSS"].strip(), status["VmHWM"].strip())
    store.close()


def bench_memory(directory: str, keys: int) -> None:
    path = os.path.join(directory, f"memory-{keys}")
    started = time.perf_counter()
    output = subprocess.run([sys.executable, __file__, "--resident-child", path, str(keys)],
                            check=True, capture_output=True, text=True).stdout.split()
    budget = (limits.rocksdb_block_cache_bytes + limits.rocksdb_write_buffers_total_bytes) >> 20
    print(f"resident memory with {keys:,} keys of {VALUE_BYTES} bytes: RSS {output[0]} "
          f"{output[1]}, peak {output[2]} {output[3]} (block cache + memtables budget "
          f"{budget} MB; {time.perf_counter() - started:.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", help="directory on the disk to measure (default: a temp dir)")
    parser.add_argument("--seconds", type=float, default=3.0, help="per commit-rate row")
    parser.add_argument("--size-mb", type=int, default=1024, help="snapshot size")
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--ten-million", action="store_true", help="also 10,000,000 keys")
    parser.add_argument("--only", choices=["commit", "snapshot", "memory"])
    parser.add_argument("--resident-child", nargs=2, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.resident_child:
        resident_child(arguments.resident_child[0], int(arguments.resident_child[1]))
        return
    directory = tempfile.mkdtemp(prefix="quorumkv-bench-", dir=arguments.dir)
    try:
        if arguments.only in (None, "commit"):
            bench_commit(directory, arguments.seconds)
        if arguments.only in (None, "snapshot"):
            bench_snapshot(directory, arguments.size_mb)
        if arguments.only in (None, "memory"):
            bench_memory(directory, arguments.keys)
            if arguments.ten_million:
                bench_memory(directory, 10_000_000)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
