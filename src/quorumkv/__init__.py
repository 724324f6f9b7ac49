"""quorumkv: a distributed key-value database.

Data is partitioned by hash slot into shards; every shard is a Raft group; clients speak the
Redis protocol. See ARCHITECTURE.md (shared) for the layers: raft/, kv/, cluster/ and codec/ are
pure (no I/O, no clock, no randomness of their own); host/ drives them; server/ and sim/ are the
two shells that run the same host code on real and simulated I/O.
"""

__version__ = "0.1.0"
