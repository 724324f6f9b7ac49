"""The settings of one replica's Raft core, fixed for its lifetime.

Every bound defaults to the named constant of limits.py; a host may narrow them per group (tests
use small values to exercise flow control). The configuration is validated when built: a bad
value is a bug in the caller, so it fails an invariant rather than raising an operating error.
"""

from __future__ import annotations

from dataclasses import dataclass

from quorumkv import limits
from quorumkv.invariant import invariant

READ_ONLY_SAFE = "safe"
"""ReadIndex (thesis §6.4): every read confirms leadership with a heartbeat round."""

READ_ONLY_LEASE = "lease"
"""Leader lease (thesis §6.4.1): reads answered at once while the lease holds; assumes bounded
clock drift between replicas (see docs/raft.md)."""


@dataclass(frozen=True)
class Config:
    """Settings of one replica of one Raft group."""

    id: int  # this replica's id within the group (nonzero)
    group_id: int  # shard id; stamped on every outgoing message
    election_timeout_ticks: int = limits.election_timeout_ticks
    heartbeat_interval_ticks: int = limits.heartbeat_interval_ticks
    applied: int = 0  # last applied index on restart (the host knows it from storage)
    pre_vote: bool = True
    check_quorum: bool = True
    read_only: str = READ_ONLY_SAFE  # "safe" (ReadIndex) or "lease" (leader lease)
    inflight_messages_max: int = limits.inflight_messages_max
    append_entries_max: int = limits.append_entries_max
    append_bytes_max: int = limits.append_bytes_max
    uncommitted_bytes_max: int = limits.uncommitted_bytes_max
    committed_entries_bytes_max: int = limits.committed_entries_bytes_max
    inflight_bytes_max: int = 0  # bytes of entries in flight to one follower; 0: unbounded

    def __post_init__(self) -> None:
        invariant(self.id > 0, "a replica id must be nonzero (0 means 'none' in messages)")
        invariant(self.group_id >= 0, "a group id is a shard id, never negative")
        invariant(
            self.heartbeat_interval_ticks > 0, "the heartbeat interval must be at least one tick"
        )
        invariant(
            self.election_timeout_ticks > self.heartbeat_interval_ticks,
            "the election timeout must exceed the heartbeat interval, or followers would "
            "campaign against a healthy leader",
        )
        invariant(self.applied >= 0, "the applied index is never negative")
        invariant(
            self.read_only in (READ_ONLY_SAFE, READ_ONLY_LEASE),
            f"read_only must be {READ_ONLY_SAFE!r} or {READ_ONLY_LEASE!r}",
        )
        invariant(
            self.read_only != READ_ONLY_LEASE or self.check_quorum,
            "lease reads require check_quorum: a leader must step down before its lease ends",
        )
        invariant(
            self.read_only != READ_ONLY_LEASE
            or self.election_timeout_ticks > limits.lease_drift_ticks,
            "the lease (election timeout minus drift) must be at least one tick",
        )
        invariant(self.inflight_messages_max > 0, "at least one append must be allowed in flight")
        invariant(self.append_entries_max > 0, "an append must carry at least one entry")
        invariant(self.append_bytes_max > 0, "append_bytes_max must be positive")
        invariant(self.uncommitted_bytes_max > 0, "uncommitted_bytes_max must be positive")
        invariant(
            self.committed_entries_bytes_max > 0, "committed_entries_bytes_max must be positive"
        )
        invariant(self.inflight_bytes_max >= 0, "inflight_bytes_max is 0 (off) or positive")
