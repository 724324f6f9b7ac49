"""What the simulator writes down while a run goes on, for the checkers to judge afterwards.

The checks in sim/checks.py are pure functions over these records: they never look at a live
host, so a test can feed them hand-made records that break a rule and expect a violation.

- `LeaderRecord`: a replica became leader; its log as it stood at that moment, summarized as
  (index, term) pairs whose first pair is the snapshot point (the compacted prefix).
- `AppliedRecord`: a replica applied an entry; with the replica's current term at that moment,
  which bounds from above the term in which the entry was committed.
- `LogImage`: a replica's persisted log read back from its store (at a crash, after recovery,
  and at the end of the run).
- `Violation`: a rule that did not hold, named, with a sentence saying how.

Entry contents are compared through `entry_digest`, a keyed-free 64-bit BLAKE2 digest of the
entry's type and data: stable across processes (Python's own hash of bytes is not).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from quorumkv.raft.types import Entry


def entry_digest(entry: Entry) -> int:
    """A 64-bit digest of what an entry carries (type and data), stable across runs."""
    hasher = hashlib.blake2b(digest_size=8)
    hasher.update(bytes([int(entry.type)]))
    hasher.update(entry.data)
    return int.from_bytes(hasher.digest(), "big")


@dataclass(frozen=True, slots=True)
class LeaderRecord:
    """Replica `node_id` became leader of `shard_id` in `term` at `time_us`."""

    shard_id: int
    term: int
    node_id: int
    time_us: int
    log_terms: tuple[tuple[int, int], ...]  # (index, term); first pair: the snapshot point


@dataclass(frozen=True, slots=True)
class AppliedRecord:
    """Replica `node_id` (in its `incarnation`-th life) applied entry (index, term, digest)."""

    node_id: int
    incarnation: int
    shard_id: int
    index: int
    term: int
    digest: int
    node_term: int  # the replica's current term when it applied the entry
    time_us: int


@dataclass(frozen=True, slots=True)
class LogImage:
    """A replica's persisted log: snapshot point (base) and the entries after it."""

    node_id: int
    shard_id: int
    moment: str  # e.g. "crash at 1234000us" or "end"
    base_index: int
    base_term: int
    entries: tuple[tuple[int, int, int], ...]  # (index, term, digest), ascending


@dataclass(frozen=True, slots=True)
class Violation:
    """A checked rule that did not hold."""

    check: str
    message: str

    def __str__(self) -> str:
        return f"{self.check}: {self.message}"
