"""How a new Raft group starts: its first membership lives in a snapshot point, not in entries.

A replica that joins later (added by a configuration change) starts with an empty log and no
membership, and must learn the group's membership from what the leader sends it. If the first
membership were only implied (a log starting at index 1 with no record of it), a joining
replica replaying the log would never learn it. So, as etcd-io/raft's tests do, every founding
replica starts with its log compacted to a bootstrap point (index 1, term 1) whose snapshot
meta carries the founding ConfState, and with hard state (term 1, commit 1). A joining replica
then needs entries from index 1, which are "compacted": the leader sends it a snapshot, which
carries the membership. Founding replicas start with `Config.applied = BOOTSTRAP_INDEX`.
"""

from __future__ import annotations

from quorumkv.invariant import invariant
from quorumkv.raft.types import ConfState, HardState, SnapshotMeta

BOOTSTRAP_INDEX = 1
BOOTSTRAP_TERM = 1


def bootstrap_state(conf_state: ConfState) -> tuple[SnapshotMeta, HardState]:
    """The snapshot point and hard state a founding replica's storage starts with."""
    invariant(conf_state.voters, "a group is founded with at least one voter")
    invariant(not conf_state.voters_outgoing, "a group is not founded in a joint configuration")
    meta = SnapshotMeta(index=BOOTSTRAP_INDEX, term=BOOTSTRAP_TERM, conf_state=conf_state)
    return meta, HardState(term=BOOTSTRAP_TERM, vote=0, commit=BOOTSTRAP_INDEX)
