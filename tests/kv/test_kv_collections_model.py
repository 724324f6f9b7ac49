"""Hash and set commands against a Python model (hypothesis state machine): every reply and
every key's contents agree, and the layout's invariants hold after every step, through
deletions, overwrites, renames (within and across slots), SPOP, set algebra and sweeps."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from quorumkv.kv import state_machine
from quorumkv.kv.reply import OK, WRONGTYPE, Map, SetReply

from .kv_harness import Shard, check_layout

KEYS = st.sampled_from(["{t}a", "{t}b", "{t}c", "x", "yy"])
SAME_SLOT = st.sampled_from(["{t}a", "{t}b", "{t}c"])
FIELDS = st.sampled_from([f"f{n}" for n in range(80)])
MANY_FIELDS = st.lists(FIELDS, min_size=1, max_size=90)
VALUES = st.sampled_from(["1", "-3", "x", ""])

Model = dict[str, tuple[str, object]]


class CollectionsMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.shard = Shard(check_every_command=False)
        self.model: Model = {}

    def _kind(self, key: str) -> str | None:
        return self.model[key][0] if key in self.model else None

    def _hash(self, key: str) -> dict[str, str]:
        return self.model[key][1]  # type: ignore[return-value]

    def _set(self, key: str) -> set[str]:
        return self.model[key][1]  # type: ignore[return-value]

    @rule(key=KEYS, fields=MANY_FIELDS, value=VALUES)
    def hset(self, key: str, fields: list[str], value: str) -> None:
        reply = self.shard(("HSET", key) + tuple(w for f in fields for w in (f, value)))
        if self._kind(key) not in (None, "hash"):
            assert reply == WRONGTYPE
            return
        current = self._hash(key) if key in self.model else {}
        assert reply == len(set(fields) - set(current))
        current.update(dict.fromkeys(fields, value))
        self.model[key] = ("hash", current)

    @rule(key=KEYS, fields=MANY_FIELDS)
    def hdel(self, key: str, fields: list[str]) -> None:
        reply = self.shard(("HDEL", key) + tuple(fields))
        if self._kind(key) not in (None, "hash"):
            assert reply == WRONGTYPE
            return
        current = self._hash(key) if key in self.model else {}
        assert reply == len(set(fields) & set(current))
        for field in fields:
            current.pop(field, None)
        if key in self.model and not current:
            del self.model[key]

    @rule(key=KEYS, field=FIELDS, increment=st.integers(-5, 5))
    def hincrby(self, key: str, field: str, increment: int) -> None:
        reply = self.shard(("HINCRBY", key, field, increment))
        if self._kind(key) not in (None, "hash"):
            assert reply == WRONGTYPE
            return
        current = self._hash(key) if key in self.model else {}
        text = current.get(field, "0")
        if text in ("x", ""):
            assert getattr(reply, "message", b"").startswith(b"ERR hash value")
            return
        assert reply == int(text) + increment
        current[field] = str(int(text) + increment)
        self.model[key] = ("hash", current)

    @rule(key=KEYS, members=MANY_FIELDS)
    def sadd(self, key: str, members: list[str]) -> None:
        reply = self.shard(("SADD", key) + tuple(members))
        if self._kind(key) not in (None, "set"):
            assert reply == WRONGTYPE
            return
        current = self._set(key) if key in self.model else set()
        assert reply == len(set(members) - current)
        current.update(members)
        self.model[key] = ("set", current)

    @rule(key=KEYS, members=MANY_FIELDS)
    def srem(self, key: str, members: list[str]) -> None:
        reply = self.shard(("SREM", key) + tuple(members))
        if self._kind(key) not in (None, "set"):
            assert reply == WRONGTYPE
            return
        current = self._set(key) if key in self.model else set()
        assert reply == len(set(members) & current)
        current.difference_update(members)
        if key in self.model and not current:
            del self.model[key]

    @rule(key=KEYS, count=st.integers(0, 100))
    def spop(self, key: str, count: int) -> None:
        reply = self.shard(("SPOP", key, count))
        if self._kind(key) not in (None, "set"):
            assert reply == WRONGTYPE
            return
        current = self._set(key) if key in self.model else set()
        assert isinstance(reply, SetReply)
        popped = {item.decode() for item in reply.items}  # type: ignore[union-attr]
        assert len(popped) == len(reply.items) == min(count, len(current))
        assert popped <= current
        current.difference_update(popped)
        if key in self.model and not current:
            del self.model[key]

    @rule(source=SAME_SLOT, destination=SAME_SLOT, member=FIELDS)
    def smove(self, source: str, destination: str, member: str) -> None:
        reply = self.shard(("SMOVE", source, destination, member))
        if self._kind(source) is None:
            assert reply == 0
            return
        if self._kind(source) != "set" or self._kind(destination) not in (None, "set"):
            assert reply == WRONGTYPE
            return
        if member not in self._set(source):
            assert reply == 0
            return
        assert reply == 1
        if source != destination:
            self._set(source).discard(member)
            if not self._set(source):
                del self.model[source]
            self.model.setdefault(destination, ("set", set()))
            self._set(destination).add(member)

    @rule(operation=st.sampled_from(["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"]),
          destination=SAME_SLOT, sources=st.lists(SAME_SLOT, min_size=1, max_size=3))
    def store(self, operation: str, destination: str, sources: list[str]) -> None:
        reply = self.shard((operation, destination) + tuple(sources))
        if any(self._kind(key) not in (None, "set") for key in sources):
            assert reply == WRONGTYPE
            return
        sets = [self._set(key) if key in self.model else set() for key in sources]
        if operation == "SINTERSTORE":
            result = set.intersection(*sets)
        elif operation == "SUNIONSTORE":
            result = set.union(*sets)
        else:
            result = sets[0].difference(*sets[1:])
        assert reply == len(result)
        self.model.pop(destination, None)
        if result:
            self.model[destination] = ("set", set(result))

    @rule(key=KEYS)
    def delete(self, key: str) -> None:
        assert self.shard(("DEL", key)) == int(key in self.model)
        self.model.pop(key, None)

    @rule(key=KEYS, value=VALUES)
    def set_string(self, key: str, value: str) -> None:
        assert self.shard(("SET", key, value or "e")) == OK
        self.model[key] = ("string", value or "e")

    @rule(source=KEYS, destination=KEYS)
    def rename(self, source: str, destination: str) -> None:
        reply = self.shard(("RENAME", source, destination))
        if source not in self.model:
            assert getattr(reply, "message", b"") == b"ERR no such key"
            return
        assert reply == OK
        self.model[destination] = self.model.pop(source)

    @rule()
    def sweep(self) -> None:
        state_machine.apply(self.shard.store, state_machine.sweep_command(self.shard.now_ms))

    @invariant()
    def contents_agree(self) -> None:
        check_layout(self.shard.store)
        for key in ["{t}a", "{t}b", "{t}c", "x", "yy"]:
            kind = self._kind(key)
            assert self.shard(("TYPE", key)).value == (kind or "none").encode()  # type: ignore[union-attr]
            if kind == "hash":
                reply = self.shard(("HGETALL", key))
                assert isinstance(reply, Map)
                assert {f.decode(): v.decode() for f, v in reply.pairs} == self._hash(key)  # type: ignore[union-attr]
                assert self.shard(("HLEN", key)) == len(self._hash(key))
            elif kind == "set":
                reply = self.shard(("SMEMBERS", key))
                assert isinstance(reply, SetReply)
                assert {m.decode() for m in reply.items} == self._set(key)  # type: ignore[union-attr]
                assert self.shard(("SCARD", key)) == len(self._set(key))
        assert self.shard("DBSIZE") == len(self.model)


CollectionsMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30,
                                                deadline=None)
TestCollectionsAgainstModel = CollectionsMachine.TestCase
