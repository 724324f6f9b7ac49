"""Throughput of the pure Raft core: a 3-replica group on a perfect in-memory network.

Each host iteration proposes `batch` commands on the leader, then every replica handles its
Ready (persist into its MemoryLog, send, apply, advance) and every message is delivered. No
disk, no sockets, no codec: this measures the consensus core alone (all three replicas run in
this one process, so the CPU time per entry covers the leader AND both followers).

    python bench/raft_core.py [--entries N] [--payload BYTES] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import time

from quorumkv.raft.bootstrap import BOOTSTRAP_INDEX
from quorumkv.raft.config import Config
from quorumkv.raft.memory_log import MemoryLog
from quorumkv.raft.node import Node
from quorumkv.raft.types import ConfState, Message, Role, SnapshotMeta

GROUP_ID = 1
COMPACT_EVERY_ENTRIES = 20_000


class Group:
    """Three replicas of one group and the messages in flight between them."""

    def __init__(self) -> None:
        conf_state = ConfState(voters=(1, 2, 3))
        self.logs = {replica: MemoryLog.bootstrap(GROUP_ID, conf_state) for replica in (1, 2, 3)}
        self.nodes = {
            replica: Node(
                Config(id=replica, group_id=GROUP_ID, applied=BOOTSTRAP_INDEX),
                self.logs[replica],
                random.Random(replica),
            )
            for replica in (1, 2, 3)
        }
        self.inbox: list[Message] = []
        self.applied = dict.fromkeys(self.nodes, 0)
        self.leader_committed = 0

    def elect(self, replica: int) -> None:
        self.nodes[replica].campaign()
        while self.nodes[replica].role != Role.LEADER or self.inbox:
            self.round()
        self.round()

    def round(self) -> None:
        """Every replica handles its Ready, then every message is delivered."""
        for replica, node in self.nodes.items():
            if not node.has_ready():
                continue
            ready = node.ready()
            log = self.logs[replica]
            if ready.entries:
                log.append(ready.entries)
            if ready.hard_state is not None:
                log.set_hard_state(ready.hard_state)
            self.inbox.extend(ready.messages)
            if ready.committed_entries:
                self.applied[replica] = ready.committed_entries[-1].index
                if node.role == Role.LEADER:
                    self.leader_committed += len(ready.committed_entries)
            node.advance(ready)
        inbox, self.inbox = self.inbox, []
        nodes = self.nodes
        for message in inbox:
            nodes[message.target].step(message)

    def compact(self) -> None:
        for replica, log in self.logs.items():
            index = self.applied[replica] - 1000
            if index > log.first_index():
                log.compact(SnapshotMeta(index, log.term(index), ConfState(voters=(1, 2, 3))))


def run(batch: int, entries: int, payload: bytes) -> tuple[float, float, int]:
    """(entries committed per second, CPU microseconds per entry, entries) for one batch size."""
    group = Group()
    group.elect(1)
    leader = group.nodes[1]
    start_committed = group.leader_committed
    wall_start, cpu_start = time.perf_counter(), time.process_time()
    proposed = 0
    next_compaction = COMPACT_EVERY_ENTRIES
    while proposed < entries:
        for _ in range(batch):
            leader.propose(payload)
        proposed += batch
        group.round()
        if proposed >= next_compaction:
            group.compact()
            next_compaction += COMPACT_EVERY_ENTRIES
    while group.inbox or any(node.has_ready() for node in group.nodes.values()):
        group.round()
    wall, cpu = time.perf_counter() - wall_start, time.process_time() - cpu_start
    committed = group.leader_committed - start_committed
    return committed / wall, cpu / committed * 1e6, committed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--payload", type=int, default=64, help="bytes per command")
    parser.add_argument("--profile", action="store_true", help="profile batch 64")
    arguments = parser.parse_args()
    payload = b"x" * arguments.payload
    if arguments.profile:
        profiler = cProfile.Profile()
        profiler.runcall(run, 64, arguments.entries, payload)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        return
    print(f"3-replica group, pure core, in-memory network, {arguments.payload}-byte commands")
    print("(entries/CPU-s = 1e6 / CPU us per entry: the rate on one dedicated core, which the")
    print(" wall-clock rate matches only on an idle machine)")
    print(f"{'batch':>6} {'entries':>9} {'entries/s':>11} {'entries/CPU-s':>14} {'CPU us/entry':>13}")
    for batch in (1, 64):
        count = arguments.entries if batch > 1 else arguments.entries // 8
        rate, cpu_per_entry, committed = run(batch, count, payload)
        print(
            f"{batch:>6} {committed:>9,} {rate:>11,.0f} {1e6 / cpu_per_entry:>14,.0f} "
            f"{cpu_per_entry:>13.2f}"
        )


if __name__ == "__main__":
    main()
