"""A shard in a test: a MemoryKeyValueStore, a clock, and commands run as the host runs them.

`Shard("SET k v")` validates the command like the server does before proposing, then applies
it (a write, stamped with the shard's clock as the leader would) or reads it. After every
command the harness checks the layout's invariants: each expiring key has exactly its index
entry, every index entry has its key, and each slot's count is its number of keys; each
collection's member records are as many as its count says, every member record belongs to a
live collection or to a released one (a garbage record), and each slot's version counter is
past every version used in the slot.
"""

from __future__ import annotations

from collections import Counter

from quorumkv.kv import layout
from quorumkv.kv.command import Command
from quorumkv.kv.commands import is_write, validate
from quorumkv.kv.reply import Reply
from quorumkv.kv.state_machine import apply, read
from quorumkv.kv.store import MemoryKeyValueStore

START_MS = 1_700_000_000_000

Word = str | bytes | int


def words_of(command: Word | tuple[Word, ...]) -> tuple[bytes, ...]:
    if isinstance(command, str):
        return tuple(word.encode() for word in command.split(" "))
    if isinstance(command, tuple):
        return tuple(w.encode() if isinstance(w, str) else b"%d" % w if isinstance(w, int)
                     else w for w in command)
    raise TypeError(command)


class Shard:
    def __init__(self, now_ms: int = START_MS, check_every_command: bool = True) -> None:
        self.store = MemoryKeyValueStore()
        self.now_ms = now_ms
        self.check_every_command = check_every_command

    def __call__(self, *command: Word) -> Reply:
        words = words_of(command[0] if len(command) == 1 else tuple(command))
        name, args = words[0].upper(), words[1:]
        error = validate(name, args)
        if error is not None:
            return error
        if is_write(name):
            reply = apply(self.store, Command(name, args, self.now_ms))
        else:
            reply = read(self.store, name, args, self.now_ms)
        if self.check_every_command:
            check_layout(self.store)
        return reply

    def advance(self, milliseconds: int) -> None:
        self.now_ms += milliseconds


def check_layout(store: MemoryKeyValueStore) -> None:
    """The record families agree (kv/layout.py)."""
    data, index, counts = {}, set(), {}
    member_counts: Counter[bytes] = Counter()
    garbage, versions = set(), {}
    for key, value in store.items():
        if key.startswith(layout.DATA_PREFIX):
            data[key] = layout.decode_record(value, key)
        elif key.startswith(layout.EXPIRY_PREFIX):
            index.add(key)
        elif key.startswith(layout.COUNT_PREFIX):
            counts[key] = layout.decode_count(value)
        elif key.startswith(layout.MEMBER_PREFIX):
            member_counts[key[:layout.COLLECTION_PREFIX_BYTES]] += 1
        elif key.startswith(layout.GARBAGE_PREFIX):
            garbage.add(layout.garbage_prefix(key))
        elif key.startswith(layout.VERSION_PREFIX):
            versions[key[1:]] = int.from_bytes(value, "big")
        else:
            raise AssertionError(f"unexpected record {key!r}")
    expected_index = {layout.expiry_key(r.expiry_ms, k) for k, r in data.items() if r.expiry_ms}
    assert index == expected_index, f"expiry index {index} != {expected_index}"
    actual_counts = Counter(layout.count_key(k) for k in data)
    assert counts == dict(actual_counts), f"slot counts {counts} != {dict(actual_counts)}"
    expiring = Counter(layout.count_key(k) for k, r in data.items() if r.expiry_ms)
    expiry_sums: Counter[bytes] = Counter()
    for key, record in data.items():
        expiry_sums[layout.count_key(key)] += record.expiry_ms
    for key, value in store.items():
        if key.startswith(layout.COUNT_PREFIX):
            _, counted, summed = layout.decode_counts(value)
            assert (counted, summed) == (expiring[key], expiry_sums[key]), (
                f"slot {key!r} counts {counted} expiring keys summing {summed} ms, "
                f"stores {expiring[key]} summing {expiry_sums[key]}")
    for key in data:
        assert layout.data_key(layout.user_key(key)) == key, f"misplaced data key {key!r}"
    live = {}
    for key, record in data.items():
        if layout.is_collection(record.type_tag):
            version, count = layout.decode_collection(record.payload, key)
            assert count > 0, f"empty collection stored at {key!r}"
            prefix = layout.collection_prefix(layout.slot_bytes(key), version)
            assert prefix not in live and prefix not in garbage, f"{prefix!r} used twice"
            live[prefix] = count
            assert versions.get(layout.slot_bytes(key), 0) > version, f"counter behind {key!r}"
    for prefix, count in live.items():
        assert member_counts[prefix] == count, (
            f"collection {prefix!r} counts {count} members, stores {member_counts[prefix]}")
    for prefix in member_counts:
        assert prefix in live or prefix in garbage, f"orphan member records under {prefix!r}"
    for prefix in garbage:
        assert versions.get(prefix[1:3], 0) > int.from_bytes(prefix[3:], "big")


def run_script(steps: list[tuple[object, object]], shard: Shard | None = None) -> Shard:
    """Run (command, expected reply) steps; ("advance", ms) moves the clock."""
    shard = shard or Shard()
    for number, (command, expected) in enumerate(steps):
        if command == "advance":
            assert isinstance(expected, int)
            shard.advance(expected)
            continue
        reply = shard(command)  # type: ignore[arg-type]
        assert reply == expected, f"step {number} {command!r}: got {reply!r}, want {expected!r}"
    return shard
