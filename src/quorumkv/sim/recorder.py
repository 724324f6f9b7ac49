"""The host observer of the simulator: turns the hosts' callbacks into records and trace lines.

Every host of the run shares one `Recorder`. It notes each new leader (with its log at that
moment), each applied entry (with the applying replica's current term), and counts what the
summary reports. The simulator adds log images itself (at crashes and at the end).
"""

from __future__ import annotations

from collections.abc import Callable

from quorumkv.host.host import Observer
from quorumkv.raft.types import Entry, HardState
from quorumkv.sim.records import AppliedRecord, LeaderRecord, LogImage, entry_digest
from quorumkv.sim.trace import Trace


class Recorder(Observer):
    """Collects the records the checkers read (sim/checks.py)."""

    def __init__(
        self,
        trace: Trace,
        now_us: Callable[[], int],
        term_of: Callable[[int, int], int],
        incarnation_of: Callable[[int], int],
        listener: Callable[[str, str], None] | None = None,
    ) -> None:
        self._trace = trace
        self._now_us = now_us
        self._term_of = term_of
        self._incarnation_of = incarnation_of
        self._listener = listener
        self.leaders: list[LeaderRecord] = []
        self.applied: list[AppliedRecord] = []
        self.images: list[LogImage] = []
        self.applied_max: dict[int, int] = {}  # shard -> highest index applied anywhere
        self.terms_max: dict[int, int] = {}  # shard -> highest term seen on any hard state
        self.persisted_entries = 0
        # Called on every new leader (node, shard, term): directed faults act on elections.
        self.leader_hook: Callable[[int, int, int], None] | None = None

    def on_leader(self, node_id: int, shard_id: int, term: int,
                  log_terms: list[tuple[int, int]]) -> None:
        now = self._now_us()
        self.leaders.append(LeaderRecord(shard_id, term, node_id, now, tuple(log_terms)))
        last = log_terms[-1] if log_terms else (0, 0)
        self._trace.record(now, f"leader node {node_id} shard {shard_id} term {term} "
                           f"log {log_terms[0] if log_terms else ()}..{last}")
        if self._listener is not None:
            self._listener("leader", f"node {node_id} leads shard {shard_id} in term {term}")
        if self.leader_hook is not None:
            self.leader_hook(node_id, shard_id, term)

    def on_applied(self, node_id: int, shard_id: int, entry: Entry) -> None:
        self.applied.append(AppliedRecord(
            node_id, self._incarnation_of(node_id), shard_id, entry.index, entry.term,
            entry_digest(entry), self._term_of(node_id, shard_id), self._now_us()))
        if entry.index > self.applied_max.get(shard_id, 0):
            self.applied_max[shard_id] = entry.index
            if self._listener is not None:
                self._listener("commit", f"shard {shard_id} committed index {entry.index} "
                               f"(term {entry.term})")

    def on_persisted(self, node_id: int, shard_id: int, entries: list[Entry],
                     hard_state: HardState | None) -> None:
        self.persisted_entries += len(entries)
        if hard_state is not None and hard_state.term > self.terms_max.get(shard_id, 0):
            self.terms_max[shard_id] = hard_state.term

    def add_image(self, image: LogImage) -> None:
        self.images.append(image)
