"""Operating errors: conditions that callers handle, each mapping to a precise client reply.

Two kinds of failure exist in quorumkv (see STYLE.md). A broken invariant is a bug and raises
`invariant.InvariantViolation`. Everything here is an operating condition: a proposal sent to a
follower, a shard that moved, a full disk, a corrupt record. Each class says what happened, to
what, and what the caller should do, and carries `reply_prefix`, the Redis error code the server
front end uses for it (`-MOVED`, `-TRYAGAIN`, `-ERR`...).

`definite` tells whether the operation is known not to have taken effect. An error with
`definite = False` means the outcome is unknown: the command may or may not have been applied,
and a client must not treat it as a failure (histories record it as `info`).
"""

from __future__ import annotations


class QuorumKVError(Exception):
    """Base of all operating errors."""

    reply_prefix = "ERR"
    definite = True


# ---- Raft proposals and reads -------------------------------------------------------------


class ProposalError(QuorumKVError):
    """A proposal or read was refused by the Raft core before it entered the log."""


class NotLeader(ProposalError):
    """This replica is not the leader of its group; `leader_id` is the best hint (0: unknown)."""

    reply_prefix = "TRYAGAIN"

    def __init__(self, group_id: int, leader_id: int) -> None:
        self.group_id = group_id
        self.leader_id = leader_id
        hint = f"leader is replica {leader_id}" if leader_id else "leader unknown"
        super().__init__(
            f"shard {group_id}: this replica is not the leader ({hint}); retry against the leader"
        )


class LeaderTransferInProgress(ProposalError):
    """The leader is handing leadership to another replica; proposals are refused meanwhile."""

    reply_prefix = "TRYAGAIN"

    def __init__(self, group_id: int, transferee: int) -> None:
        self.group_id = group_id
        self.transferee = transferee
        super().__init__(
            f"shard {group_id}: leadership is being transferred to replica {transferee}; "
            "retry shortly against the new leader"
        )


class ConfChangePending(ProposalError):
    """A configuration change is already in progress; only one may be pending at a time."""

    reply_prefix = "TRYAGAIN"

    def __init__(self, group_id: int, pending_index: int) -> None:
        self.group_id = group_id
        self.pending_index = pending_index
        super().__init__(
            f"shard {group_id}: a configuration change at index {pending_index} is not yet "
            "applied; retry after it is"
        )


class InvalidConfChange(ProposalError):
    """The requested configuration change is not valid for the current configuration."""

    def __init__(self, group_id: int, reason: str) -> None:
        self.group_id = group_id
        super().__init__(f"shard {group_id}: invalid configuration change: {reason}")


class ProposalDropped(ProposalError):
    """The core dropped the proposal (for example: too many uncommitted bytes); retry later."""

    reply_prefix = "TRYAGAIN"

    def __init__(self, group_id: int, reason: str) -> None:
        self.group_id = group_id
        super().__init__(f"shard {group_id}: proposal dropped: {reason}; retry later")


class OutcomeUnknown(QuorumKVError):
    """The command was proposed but its fate is not known (leadership lost, timeout).

    It may or may not have been applied. Clients must not assume either; read to find out.
    """

    reply_prefix = "UNKNOWN"
    definite = False

    def __init__(self, group_id: int, reason: str) -> None:
        self.group_id = group_id
        super().__init__(
            f"shard {group_id}: outcome unknown ({reason}): the command may or may not have "
            "been applied; read the key to find out before retrying"
        )


# ---- Storage --------------------------------------------------------------------------------

NO_REPLACE_YET = (
    "Re-creating a node's replicas on a fresh data directory needs `quorumkv node replace` "
    "(membership changes), which this version does not have yet; restarting with an emptied "
    "data directory under the same --node-id does not work (its peers refuse it)"
)
"""The part of every lost-storage message that says what does not work (yet): shared, so that
no message recommends wiping and restarting, the one procedure that never works."""


class StorageError(QuorumKVError):
    """Base of storage conditions."""


class LogCompacted(StorageError):
    """The requested log index was compacted into a snapshot and is no longer in the log."""

    def __init__(self, group_id: int, index: int, first_index: int) -> None:
        self.group_id = group_id
        self.index = index
        self.first_index = first_index
        super().__init__(
            f"shard {group_id}: log index {index} is compacted (first index is {first_index})"
        )


class LogUnavailable(StorageError):
    """The requested log index is past the end of the log."""

    def __init__(self, group_id: int, index: int, last_index: int) -> None:
        self.group_id = group_id
        self.index = index
        self.last_index = last_index
        super().__init__(
            f"shard {group_id}: log index {index} is past the last index {last_index}"
        )


class CorruptStorage(StorageError):
    """Stored data failed its checksum or format check. The data is never served.

    `path` names the file (or database) and `offset` the record where known.
    """

    def __init__(self, path: str, detail: str, offset: int | None = None) -> None:
        self.path = path
        self.offset = offset
        where = f"{path}" + (f" at offset {offset}" if offset is not None else "")
        super().__init__(
            f"corrupt storage in {where}: {detail}. The node will not serve this data. Keep "
            "the data directory for inspection (check the disk: dmesg, SMART); the rest of the "
            "cluster keeps serving without this node's replicas. " + NO_REPLACE_YET
        )


class DiskFull(StorageError):
    """The disk holding the data directory is full; writes are refused until space returns."""

    reply_prefix = "ERR"

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(
            f"disk full under {path}: writes are refused until space is freed on that disk "
            "(the node resumes by itself, no restart needed)"
        )


class SnapshotCorrupt(StorageError):
    """A received snapshot chunk or image failed its checksum; the transfer is abandoned."""

    def __init__(self, group_id: int, detail: str) -> None:
        self.group_id = group_id
        super().__init__(
            f"shard {group_id}: snapshot rejected: {detail}; the leader will send it again"
        )


class FormatVersionMismatch(StorageError):
    """A persisted file or database carries a format version this build cannot read."""

    def __init__(self, path: str, found: int, supported: int) -> None:
        self.path = path
        super().__init__(
            f"{path}: format version {found} is not supported by this build "
            f"(supports {supported}); run the quorumkv version that wrote it (or a newer one)"
        )


class ProposalSuperseded(ProposalError):
    """Another entry was committed at the index of this proposal: it can never take effect."""

    reply_prefix = "TRYAGAIN"

    def __init__(self, group_id: int, index: int) -> None:
        self.group_id = group_id
        self.index = index
        super().__init__(
            f"shard {group_id}: the proposal at index {index} was replaced by a new leader's "
            "entry and did not take effect; retry"
        )


class ReadTimeout(ProposalError):
    """A linearizable read did not obtain its read index in time; it had no effect."""

    reply_prefix = "TRYAGAIN"

    def __init__(self, group_id: int) -> None:
        self.group_id = group_id
        super().__init__(
            f"shard {group_id}: the read could not confirm leadership in time "
            "(no quorum reachable?); retry"
        )


class UnknownShard(QuorumKVError):
    """This node hosts no replica of the shard named."""

    reply_prefix = "TRYAGAIN"

    def __init__(self, group_id: int, node_id: int) -> None:
        self.group_id = group_id
        super().__init__(f"shard {group_id}: node {node_id} hosts no replica of it; retry")


# ---- Histories ------------------------------------------------------------------------------


class MalformedHistory(QuorumKVError):
    """A recorded operation history breaks its own format; no checker can judge it."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            f"malformed history: {detail}; fix the recorder (or the file) and check again"
        )


# ---- State machine --------------------------------------------------------------------------


class InvalidCommand(QuorumKVError):
    """A command record (the data of a committed log entry) cannot be decoded.

    Every replica holds the same bytes, so every replica fails the same way: it is a bug in the
    proposer or a record written by a newer build.
    """

    def __init__(self, detail: str) -> None:
        super().__init__(
            f"cannot decode a command record: {detail}; if the cluster runs mixed versions, "
            "upgrade every node to the newest one, otherwise report this as a bug"
        )


class ReplicaStateLost(StorageError):
    """A replica's log ends before entries it acknowledged: its storage was lost or rolled
    back (wiped, or restored from an older copy). It must not go on under its identity."""

    def __init__(self, group_id: int, commit: int, last_index: int, leader_id: int) -> None:
        self.group_id = group_id
        super().__init__(
            f"shard {group_id}: the leader (node {leader_id}) knows this replica holds entries "
            f"up to {commit}, but its log ends at {last_index}: this node's data directory "
            "lost entries it had acknowledged (emptied, or restored from an older copy). A "
            "replica that lost acknowledged entries cannot rejoin under its old identity (it "
            "could vote twice or be counted as holding entries it lacks). If the data "
            "directory was restored from a copy, put back the newest one. " + NO_REPLACE_YET
        )


class StorageLost(StorageError):
    """A peer refused this node: it knows this node id with another storage id, so this data
    directory is not the one the node ran with (it was lost, emptied or replaced)."""

    def __init__(self, node_id: int, path: str, storage_id: str, refused_by: int,
                 known_storage_id: str) -> None:
        self.node_id = node_id
        super().__init__(
            f"node {node_id}'s data directory {path} was initialised afresh (storage id "
            f"{storage_id}), but node {refused_by} knows node {node_id} with storage id "
            f"{known_storage_id}: the data this node held is not here, and a node whose data "
            "was lost cannot rejoin under its old identity. The rest of the cluster keeps "
            "serving without it. If the data directory with storage id "
            f"{known_storage_id} still exists, put it back and start the node on it. "
            + NO_REPLACE_YET
        )


class StorageUnavailable(StorageError):
    """The storage engine failed for a reason other than corruption or a full disk (an I/O
    error, the database locked by another process). The database is not used."""

    def __init__(self, path: str, detail: str) -> None:
        self.path = path
        super().__init__(
            f"storage at {path} is unavailable: {detail}. Check the disk and that no other "
            "quorumkv process uses this data directory, then restart the node"
        )


# ---- Verify harness ---------------------------------------------------------------------------


class VerifyError(QuorumKVError):
    """The verify harness could not do what a run needs (not a verdict about the database)."""


class VerifyUnavailable(VerifyError):
    """This machine lacks what a verify mode needs (root, the `ip` tool); nothing was created."""

    def __init__(self, missing: str) -> None:
        self.missing = missing
        super().__init__(
            f"network namespaces are unavailable: {missing}. Run as root with iproute2 "
            "installed, or use --loopback (processes on 127.0.0.1, process faults only)"
        )


class VerifySetupFailed(VerifyError):
    """A command building the run's network, or a node process, failed; the run is abandoned
    after removing whatever it had created."""

    def __init__(self, what: str, detail: str) -> None:
        self.what = what
        super().__init__(f"verify setup failed while {what}: {detail}")


# ---- Cluster placement ----------------------------------------------------------------------


class InvalidPlacement(QuorumKVError):
    """A placement request cannot be satisfied (no nodes, more replicas than nodes, more
    shards than slots); nothing was placed."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"cannot place shards: {detail}")
