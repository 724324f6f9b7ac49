"""Durable state of a node: Raft logs, hard states, shard data, snapshots. See docs/storage.md."""
