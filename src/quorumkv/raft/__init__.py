"""The Raft consensus core: a pure, synchronous state machine.

It performs no I/O, reads no clock and owns no randomness: input is `step(message)` and
`tick()`, output is a `Ready` (entries and hard state to persist, messages to send, committed
entries to apply, a snapshot to install, read states to answer). The host executes a Ready in a
fixed order (persist and sync, send, apply, advance). See ARCHITECTURE.md and docs/raft.md.
"""
