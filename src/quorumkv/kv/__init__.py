"""The Redis data model as a deterministic replicated state machine (no I/O, no clock).

`state_machine.apply` executes a committed write, `state_machine.read` answers a read after
ReadIndex, both over a `store.KeyValueStore` the host provides. `commands` holds the command
table (arity, flags, key positions) and the checks made before anything is proposed. See
docs/kv.md for the storage layout.
"""
