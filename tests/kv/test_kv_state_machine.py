"""The state machine is deterministic, and agrees with a plain model of Redis strings."""

from __future__ import annotations

import random

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from quorumkv.kv.command import Command, decode_command, encode_command
from quorumkv.kv.reply import NOT_AN_INTEGER, OK, ErrorReply
from quorumkv.kv.state_machine import apply, expire_delete_command, expired_keys, read
from quorumkv.kv.store import MemoryKeyValueStore

from .kv_harness import START_MS, check_layout

KEYS = [b"a", b"b", b"{t}c", b"{t}d", b"e"]

COMMAND_SHAPES = [
    lambda r: (b"SET", (r.choice(KEYS), r.choice([b"1", b"x", b"-7"]))),
    lambda r: (b"SET", (r.choice(KEYS), b"v", b"PX", str(r.randint(-5, 50)).encode())),
    lambda r: (b"SET", (r.choice(KEYS), b"v", r.choice([b"NX", b"XX", b"GET", b"KEEPTTL"]))),
    lambda r: (b"INCR", (r.choice(KEYS),)),
    lambda r: (b"INCRBYFLOAT", (r.choice(KEYS), b"0.1")),
    lambda r: (b"APPEND", (r.choice(KEYS), b"z")),
    lambda r: (b"DEL", (r.choice(KEYS), r.choice(KEYS))),
    lambda r: (b"EXPIRE", (r.choice(KEYS), str(r.randint(-1, 3)).encode())),
    lambda r: (b"PEXPIRE", (r.choice(KEYS), str(r.randint(1, 40)).encode(), b"GT")),
    lambda r: (b"RENAME", (r.choice(KEYS), r.choice(KEYS))),
    lambda r: (b"GETEX", (r.choice(KEYS), b"PERSIST")),
    lambda r: (b"SETRANGE", (r.choice(KEYS), str(r.randint(0, 5)).encode(), b"ab")),
    lambda r: (b"CAS", (r.choice(KEYS), b"1", b"2")),
    lambda r: (b"MSET", (r.choice(KEYS), b"m", r.choice(KEYS), b"n")),
    lambda r: (b"FLUSHALL", ()),
]


def random_commands(seed: int, count: int) -> list[Command]:
    chooser = random.Random(seed)
    now, commands = START_MS, []
    for _ in range(count):
        now += chooser.randint(0, 10)
        name, args = chooser.choice(COMMAND_SHAPES[:-1] if chooser.random() < 0.98
                                    else COMMAND_SHAPES)(chooser)
        commands.append(Command(name, args, now))
        if chooser.random() < 0.1:  # the leader's background deletion, filled in later
            commands.append(Command(b"QKV.EXPIRE-DELETE", (), now))
    return commands


def test_same_commands_give_identical_stores() -> None:
    """Two replicas applying the same entries end with identical stores and replies."""
    for seed in range(20):
        first, second = MemoryKeyValueStore(), MemoryKeyValueStore()
        for command in random_commands(seed, 300):
            if command.name == b"QKV.EXPIRE-DELETE":
                due = expired_keys(first, command.timestamp_ms, 5)
                if not due:
                    continue
                command = expire_delete_command(due, command.timestamp_ms)
            entry = encode_command(command)  # what travels through the log
            assert apply(first, decode_command(entry)) == apply(second, decode_command(entry))
        assert first.items() == second.items()
        check_layout(first)


class StringModel(RuleBasedStateMachine):
    """A dict of (value, expiry) against apply/read for SET/GET/DEL/INCR/APPEND/EXPIRE."""

    def __init__(self) -> None:
        super().__init__()
        self.store = MemoryKeyValueStore()
        self.model: dict[bytes, tuple[bytes, int]] = {}
        self.now = START_MS

    def live(self, key: bytes) -> tuple[bytes, int] | None:
        entry = self.model.get(key)
        if entry is not None and entry[1] and entry[1] < self.now:
            del self.model[key]
            return None
        return entry

    def run(self, name: bytes, *args: bytes) -> object:
        command = Command(name, args, self.now)
        return apply(self.store, command)

    @rule(key=st.sampled_from(KEYS), value=st.binary(max_size=4))
    def set(self, key: bytes, value: bytes) -> None:
        assert self.run(b"SET", key, value) == OK
        self.model[key] = (value, 0)

    @rule(key=st.sampled_from(KEYS), value=st.binary(max_size=4), ttl=st.integers(1, 30))
    def set_px(self, key: bytes, value: bytes, ttl: int) -> None:
        assert self.run(b"SET", key, value, b"PX", b"%d" % ttl) == OK
        self.model[key] = (value, self.now + ttl)

    @rule(key=st.sampled_from(KEYS))
    def get(self, key: bytes) -> None:
        entry = self.live(key)
        assert read(self.store, b"GET", (key,), self.now) == (None if entry is None else entry[0])

    @rule(keys=st.lists(st.sampled_from(KEYS), min_size=1, max_size=3))
    def delete(self, keys: list[bytes]) -> None:
        expected = 0
        for key in keys:
            if self.live(key) is not None:
                del self.model[key]
                expected += 1
        assert self.run(b"DEL", *keys) == expected

    @rule(key=st.sampled_from(KEYS))
    def incr(self, key: bytes) -> None:
        entry = self.live(key)
        value, expiry = entry if entry is not None else (b"0", 0)
        reply = self.run(b"INCR", key)
        try:
            number = int(value)
            canonical = str(number).encode() == value
        except ValueError:
            canonical = False
        if not canonical:
            assert reply == NOT_AN_INTEGER
            return
        assert reply == number + 1
        self.model[key] = (b"%d" % (number + 1), expiry)

    @rule(key=st.sampled_from(KEYS), suffix=st.binary(max_size=3))
    def append(self, key: bytes, suffix: bytes) -> None:
        entry = self.live(key)
        value, expiry = entry if entry is not None else (b"", 0)
        assert self.run(b"APPEND", key, suffix) == len(value) + len(suffix)
        self.model[key] = (value + suffix, expiry)

    @rule(key=st.sampled_from(KEYS), seconds=st.integers(-1, 2))
    def expire(self, key: bytes, seconds: int) -> None:
        entry = self.live(key)
        reply = self.run(b"EXPIRE", key, b"%d" % seconds)
        if entry is None:
            assert reply == 0
            return
        assert reply == 1
        if seconds <= 0:
            del self.model[key]
        else:
            self.model[key] = (entry[0], self.now + seconds * 1000)

    @rule(milliseconds=st.integers(0, 1500))
    def advance(self, milliseconds: int) -> None:
        self.now += milliseconds

    @rule()
    def delete_expired(self) -> None:
        due = expired_keys(self.store, self.now, 3)
        if not due:
            return
        reply = apply(self.store, expire_delete_command(due, self.now))
        assert not isinstance(reply, ErrorReply) and reply == len(due)

    @invariant()
    def same_keys_and_ttls(self) -> None:
        for key in KEYS:
            entry = self.live(key)
            pttl = read(self.store, b"PTTL", (key,), self.now)
            if entry is None:
                assert pttl == -2
            else:
                assert pttl == (-1 if not entry[1] else entry[1] - self.now)
        check_layout(self.store)


TestStringModel = StringModel.TestCase
TestStringModel.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
