"""What a node's store holds, read back as records the checkers compare.

Two readings: every shard's persisted log (`log_images`, for log matching: read before and
after each crash and at the end) and a digest of every shard's applied data with its applied
index (`replica_states`, for convergence: replicas at the same index must hold the same data).
Both read the store through its protocols only, so they work on every store kind.
"""

from __future__ import annotations

import hashlib

from quorumkv.sim.records import LogImage, entry_digest
from quorumkv.storage.protocols import NodeStore, iterate_scan

SCAN_PAGE_PAIRS = 256
"""(key, value) pairs read per page when digesting a shard's data."""


def log_images(node_id: int, store: NodeStore, moment: str) -> list[LogImage]:
    """Each shard's persisted log on this store: its base (snapshot point) and entries."""
    images = []
    for shard_id in store.shard_ids():
        log = store.log(shard_id)
        first, last = log.first_index(), log.last_index()
        entries = log.entries(first, last + 1, 1 << 62) if last >= first else []
        images.append(LogImage(
            node_id, shard_id, moment, first - 1, log.term(first - 1),
            tuple((entry.index, entry.term, entry_digest(entry)) for entry in entries)))
    return images


def replica_states(node_id: int, store: NodeStore) -> list[tuple[int, int, int, int]]:
    """(node, shard, applied index, 64-bit digest of the shard's data) for each shard."""
    states = []
    for shard_id in store.shard_ids():
        shard = store.shard(shard_id)
        digest = hashlib.blake2b(digest_size=8)
        for key, value in iterate_scan(shard, b"", None, SCAN_PAGE_PAIRS):
            digest.update(len(key).to_bytes(4, "big") + key)
            digest.update(len(value).to_bytes(4, "big") + value)
        states.append((node_id, shard_id, shard.applied().index,
                       int.from_bytes(digest.digest(), "big")))
    return states
