"""The shape of one shard's log: its compaction point, its last index and every entry's term.

Terms are kept as runs (first index of the run, term): a log of thousands of entries written by
a handful of leaders is a handful of runs, so every store can answer `term(index)` with a
binary search instead of reading an entry, and RocksDB can rebuild it at open from one pass over
the log. The stores keep this object consistent with every write (a batch works on copies of
the shapes it touches and swaps them in only once the batch is written), and use it for the
bounds checks every read does (LogCompacted, LogUnavailable).

Indices: the base (compaction point) is `base_index` with term `base_term`; entries run from
`base_index + 1` to `last_index` (none when they are equal).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from quorumkv.errors import LogCompacted, LogUnavailable
from quorumkv.invariant import invariant


class LogTerms:
    """Compaction point, last index and the term of every entry of one shard's log."""

    __slots__ = ("_run_starts", "_run_terms", "base_index", "base_term", "last_index",
                 "shard_id")

    def __init__(self, shard_id: int, base_index: int = 0, base_term: int = 0) -> None:
        self.shard_id = shard_id
        self.base_index = base_index
        self.base_term = base_term
        self.last_index = base_index
        self._run_starts: list[int] = []
        self._run_terms: list[int] = []

    def copy(self) -> LogTerms:
        other = LogTerms(self.shard_id, self.base_index, self.base_term)
        other.last_index = self.last_index
        other._run_starts = list(self._run_starts)
        other._run_terms = list(self._run_terms)
        return other

    def first_index(self) -> int:
        return self.base_index + 1

    def last_term(self) -> int:
        return self._run_terms[-1] if self._run_terms else self.base_term

    def term(self, index: int) -> int:
        """Term at `index`; raises LogCompacted below the base, LogUnavailable past the end."""
        if index < self.base_index:
            raise LogCompacted(self.shard_id, index, self.first_index())
        if index > self.last_index:
            raise LogUnavailable(self.shard_id, index, self.last_index)
        if index == self.base_index:
            return self.base_term
        return self._run_terms[bisect.bisect_right(self._run_starts, index) - 1]

    def check_range(self, low: int, high: int) -> None:
        """Raise LogCompacted / LogUnavailable unless [low, high) lies inside the log."""
        invariant(low <= high, f"shard {self.shard_id}: entry range [{low}, {high}) is reversed")
        if low < self.first_index():
            raise LogCompacted(self.shard_id, low, self.first_index())
        if high > self.last_index + 1:
            raise LogUnavailable(self.shard_id, high - 1, self.last_index)

    def append(self, first: int, terms: Sequence[int]) -> int:
        """Record entries `first`.. with `terms`, replacing any from `first` on.

        Returns the previous last index (the caller deletes stored entries past the new end).
        """
        invariant(self.base_index < first <= self.last_index + 1,
                  f"shard {self.shard_id}: append at {first} leaves a gap or rewrites the "
                  f"compacted log (base {self.base_index}, last {self.last_index})")
        previous_last = self.last_index
        self._truncate_from(first)
        for offset, term in enumerate(terms):
            if not self._run_terms or self._run_terms[-1] != term:
                invariant(term >= self.last_term(),
                          f"shard {self.shard_id}: term {term} at {first + offset} goes down")
                self._run_starts.append(first + offset)
                self._run_terms.append(term)
        self.last_index = first + len(terms) - 1
        return previous_last

    def compact(self, index: int, term: int) -> None:
        """Make `index` (with `term`) the base; entries up to it are gone. No-op below it."""
        if index <= self.base_index:
            return
        if index <= self.last_index:
            invariant(self.term(index) == term,
                      f"shard {self.shard_id}: compaction to {index} in term {term} but the "
                      f"entry there has term {self.term(index)}")
            keep = bisect.bisect_right(self._run_starts, index) - 1
            self._run_starts = [index + 1, *self._run_starts[keep + 1:]]
            self._run_terms = self._run_terms[keep:]
            if len(self._run_starts) > 1 and self._run_starts[1] == index + 1:
                del self._run_starts[0], self._run_terms[0]  # the kept run is now empty
            if index == self.last_index:
                self._run_starts, self._run_terms = [], []
        else:
            self._run_starts, self._run_terms = [], []
            self.last_index = index
        self.base_index, self.base_term = index, term

    def reset(self, index: int, term: int) -> None:
        """An empty log whose base is `index` (after a snapshot is installed)."""
        self.base_index, self.base_term, self.last_index = index, term, index
        self._run_starts, self._run_terms = [], []

    def _truncate_from(self, first: int) -> None:
        keep = bisect.bisect_left(self._run_starts, first)
        del self._run_starts[keep:]
        del self._run_terms[keep:]
        self.last_index = first - 1
