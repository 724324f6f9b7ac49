"""The node's identity and the cluster it belongs to, kept in its data directory.

Theory of operation. On the first start a node is told who it is (`node_id`), which cluster it
belongs to (`cluster_id`) and the initial cluster (`peers`). It bootstraps the metadata shard
(0) and the data shard (1) with every listed node as a voter, then writes a `Membership` record
into the store's node metadata (msgpack, with a format version). Every later start reads that
record, so a restart needs only `--data-dir`.

Flags given on a restart must agree with the record: another node id or cluster id is refused
(the data directory belongs to someone else); a peers list with the same node ids updates the
addresses (a node moved to another port); a peers list with other node ids is refused, because
membership changes go through the cluster (a later issue), not through flags.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import msgpack

from quorumkv.server.config import Address, ConfigError, PeerEntry, ServerConfig, format_peers
from quorumkv.storage.protocols import NodeStore

MEMBERSHIP_META = "membership"
MEMBERSHIP_FORMAT_VERSION = 1

METADATA_SHARD = 0
DATA_SHARD = 1
INITIAL_SHARDS = (METADATA_SHARD, DATA_SHARD)


@dataclass(frozen=True)
class Membership:
    cluster_id: str
    node_id: int
    peers: dict[int, PeerEntry]

    def encode(self) -> bytes:
        peers = [[e.node_id, str(e.peer_address),
                  str(e.client_address) if e.client_address else ""]
                 for e in sorted(self.peers.values(), key=lambda e: e.node_id)]
        encoded: bytes = msgpack.packb(
            [MEMBERSHIP_FORMAT_VERSION, self.cluster_id, self.node_id, peers], use_bin_type=True)
        return encoded

    @staticmethod
    def decode(data: bytes, where: str) -> Membership:
        """Raises ConfigError if the record is not one this build wrote."""
        try:
            version, cluster_id, node_id, peers = msgpack.unpackb(data, raw=False)
        except Exception as error:
            raise ConfigError(f"{where}: the membership record is unreadable ({error}); "
                              "this data directory was not written by a quorumkv node of a "
                              "compatible version, or is damaged: give the node's own data "
                              "directory, with the version that wrote it") from error
        if version != MEMBERSHIP_FORMAT_VERSION:
            raise ConfigError(f"{where}: membership record format {version} is not supported "
                              f"(this build reads {MEMBERSHIP_FORMAT_VERSION})")
        entries = {}
        for peer_node, peer, client in peers:
            entries[peer_node] = PeerEntry(peer_node, _address(peer),
                                           _address(client) if client else None)
        return Membership(str(cluster_id), int(node_id), entries)


def _address(text: str) -> Address:
    host, _, port = text.rpartition(":")
    return Address(host, int(port))


def establish(store: NodeStore, config: ServerConfig) -> Membership:
    """The membership this node runs with: read from the store (reconciled with the flags
    given), or taken from `config` on the first start and written to the store.

    The caller bootstraps the initial shards when the store holds none: a crash between the
    record and the bootstrap leaves a record and no shards, and the next start bootstraps the
    same shards then, since nothing can have happened in them yet.

    Raises ConfigError when the data directory and the settings disagree."""
    where = f"data directory {config.data_dir}"
    stored = store.get_meta(MEMBERSHIP_META)
    if stored is None:
        membership = _first_start(config, where)
        store.put_meta(MEMBERSHIP_META, membership.encode())
        return membership
    membership = Membership.decode(stored, where)
    updated = reconcile(membership, config, where)
    if updated != membership:
        store.put_meta(MEMBERSHIP_META, updated.encode())
    return updated


def _first_start(config: ServerConfig, where: str) -> Membership:
    if not config.node_id or not config.peers:
        raise ConfigError(
            f"{where} holds no cluster yet: give --node-id and --peers (the initial cluster, "
            "e.g. 1=127.0.0.1:17001/127.0.0.1:7001,2=...) on the first start")
    return Membership(config.cluster_id, config.node_id, dict(config.peers))


def reconcile(membership: Membership, config: ServerConfig, where: str) -> Membership:
    """`membership` with the addresses of `config.peers`, if the flags agree with it."""
    if config.node_id and config.node_id != membership.node_id:
        raise ConfigError(f"{where} belongs to node {membership.node_id}, not node "
                          f"{config.node_id}; give that node's data directory")
    if "cluster_id" in config.given and config.cluster_id != membership.cluster_id:
        raise ConfigError(f"{where} belongs to cluster {membership.cluster_id!r}, not "
                          f"{config.cluster_id!r}")
    if not config.peers:
        return membership
    if sorted(config.peers) != sorted(membership.peers):
        raise ConfigError(
            f"{where}: --peers lists nodes {format_peers(config.peers)} but the cluster's "
            f"members are {format_peers(membership.peers)}; membership changes go through the "
            "cluster, not through flags (omit --peers on a restart)")
    return replace(membership, peers=dict(config.peers))
