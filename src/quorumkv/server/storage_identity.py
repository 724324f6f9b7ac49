"""The identity of a node's storage, and the storage identities of its peers.

Theory of operation. A node id says who a node is; it does not say whether the node still has
what it promised. A Raft replica that loses its data (an emptied or replaced data directory)
and comes back under its old node id has forgotten its votes and the entries it acknowledged:
it could vote twice in a term, or be counted towards a majority for entries it lacks, and its
own core finds the leader's commit past its log. So every data directory gets a storage id: a
random 128-bit id written (synced) into the store's node metadata the first time a node opens
it, and never changed afterwards. A directory written by an older version, without one, gets
one on its first open (it is the same directory, whatever it holds).

Each node sends its storage id in the peer handshake and remembers, per peer node id, the
storage id it first saw (`PeerStorageIds`, kept in its own node metadata, so a restart keeps
it). A handshake whose storage id differs from the remembered one is refused (peer_transport):
the caller is a node whose data was lost. The refused node learns why from the refusal and
stops (errors.StorageLost, exit code EXIT_STORAGE_LOST) instead of bootstrapping itself into
the shards it used to hold. What remains possible today is named in that message; the
membership issue (13) adds the path that re-creates the lost replicas on a new incarnation.

Limits of trust on first use: a peer that never completed a handshake with the node before its
data was lost cannot tell; the Raft core then still refuses to go on when a leader's commit is
past its log (errors.ReplicaStateLost), so the node stops with a clear message, not a crash.
"""

from __future__ import annotations

import uuid

import msgpack

from quorumkv.storage.protocols import NodeStore

STORAGE_ID_META = "storage_id"
PEER_STORAGE_IDS_META = "peer_storage_ids"
PEER_STORAGE_IDS_FORMAT_VERSION = 1


def storage_id_of(store: NodeStore) -> tuple[str, bool]:
    """This data directory's storage id, and whether it was created now (written, synced)."""
    stored = store.get_meta(STORAGE_ID_META)
    if stored is not None:
        return stored.decode("ascii"), False
    storage_id = uuid.uuid4().hex
    store.put_meta(STORAGE_ID_META, storage_id.encode("ascii"))
    return storage_id, True


class PeerStorageIds:
    """The storage id this node first saw for each peer node id, persisted in its store."""

    def __init__(self, known: dict[int, str]) -> None:
        self.known = dict(known)

    @staticmethod
    def load(store: NodeStore) -> PeerStorageIds:
        """Raises ValueError if the record is not one this build wrote."""
        stored = store.get_meta(PEER_STORAGE_IDS_META)
        if stored is None:
            return PeerStorageIds({})
        version, pairs = msgpack.unpackb(stored, raw=False)
        if version != PEER_STORAGE_IDS_FORMAT_VERSION:
            raise ValueError(f"peer storage ids record format {version} is not supported "
                             f"(this build reads {PEER_STORAGE_IDS_FORMAT_VERSION})")
        return PeerStorageIds({int(node): str(storage) for node, storage in pairs})

    def encode(self) -> bytes:
        encoded: bytes = msgpack.packb(
            [PEER_STORAGE_IDS_FORMAT_VERSION, sorted(self.known.items())], use_bin_type=True)
        return encoded

    def check(self, node_id: int, storage_id: str) -> str:
        """The storage id known for `node_id` if `storage_id` is another one, else ""."""
        known = self.known.get(node_id, "")
        return known if known and storage_id != known else ""

    def learn(self, node_id: int, storage_id: str) -> bool:
        """Remember `node_id`'s storage id if none is known yet; True if this is news (the
        caller then persists `encode()`)."""
        if not storage_id or node_id in self.known:
            return False
        self.known[node_id] = storage_id
        return True
