"""Differential test: random string and key commands give the same replies and the same data
from a real Redis server and from the state machine.

Runs only where a Redis 7 server binary exists: `redis-server` on PATH, or Debian's
redis-tools, whose `redis-check-rdb` is the whole server and runs as one when called by the
name redis-server. Known, documented differences are not compared: DBSIZE (Redis's active
expiry deletes keys in the background, ours waits for the leader's QKV.EXPIRE-DELETE), SCAN's
cursor values, and cursors that Redis 7.0 and 7.2 (our model) read differently ("-1", "",
" 1").
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import hiredis
import pytest

from quorumkv.kv.command import Command
from quorumkv.kv.commands import is_write, validate
from quorumkv.kv.reply import ErrorReply, Reply, SimpleString
from quorumkv.kv.state_machine import apply, read
from quorumkv.kv.store import MemoryKeyValueStore

from .kv_harness import check_layout

pytestmark = pytest.mark.slow


def redis_binary(directory: Path) -> str | None:
    found = shutil.which("redis-server")
    if found:
        return found
    multi_call = shutil.which("redis-check-rdb")
    if multi_call is None:
        return None
    link = directory / "redis-server"
    link.symlink_to(multi_call)
    return str(link)


@pytest.fixture
def redis_socket(tmp_path: Path) -> Iterator[socket.socket]:
    binary = redis_binary(tmp_path)
    if binary is None:
        pytest.skip("no Redis server binary on this machine")
    path = tmp_path / "redis.sock"
    process = subprocess.Popen(
        [binary, "--port", "0", "--unixsocket", str(path), "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        connection = socket.socket(socket.AF_UNIX)
        for _ in range(200):
            with contextlib.suppress(OSError):
                connection.connect(str(path))
                break
            time.sleep(0.025)  # the server's socket appears once it has started
        else:
            pytest.skip("the Redis server did not start")
        yield connection
        connection.close()
    finally:
        process.terminate()
        process.wait(timeout=10)


class RealRedis:
    def __init__(self, connection: socket.socket) -> None:
        self.connection = connection
        self.reader = hiredis.Reader()

    def __call__(self, *words: bytes) -> object:
        self.connection.sendall(b"*%d\r\n" % len(words) + b"".join(
            b"$%d\r\n%b\r\n" % (len(word), word) for word in words))
        while (reply := self.reader.gets()) is False:
            self.reader.feed(self.connection.recv(1 << 20))
        return reply


class Model:
    def __init__(self) -> None:
        self.store = MemoryKeyValueStore()

    def __call__(self, *words: bytes) -> Reply:
        name, args = words[0].upper(), words[1:]
        now_ms = time.time_ns() // 1_000_000
        error = validate(name, args)
        if error is not None:
            return error
        if is_write(name):
            return apply(self.store, Command(name, args, now_ms))
        return read(self.store, name, args, now_ms)


def normalised(reply: object) -> object:
    if isinstance(reply, ErrorReply):
        return ("error", reply.message.decode(errors="replace"))
    if isinstance(reply, hiredis.ReplyError):
        return ("error", str(reply))
    if isinstance(reply, SimpleString):
        return reply.value
    if isinstance(reply, list):
        return [normalised(item) for item in reply]
    return reply


KEYS = [b"a", b"b", b"{t}c", b"{t}d", b"", b"h"]
NUMBERS = [b"0", b"1000", b"-1", b"100000", b"abc", b"1.5", b"9223372036854775807",
           b"-9223372036854775808", b"9223372036854776", b"+1", b"01", b" 1", b"1e3", b"inf",
           b"-0", b"", b"3000"]
VALUES = [b"v", b"", b"10", b"-5", b"1.5", b"x y", b"\x00\xff", b"5.0e3", b"9223372036854775807"]
OPTIONS = [b"NX", b"XX", b"GET", b"KEEPTTL", b"EX", b"PX", b"EXAT", b"PXAT", b"PERSIST", b"GT",
           b"LT", b"FOO", b"nx", b"ex"]
COMMANDS = [b"GET", b"SET", b"SETNX", b"SETEX", b"PSETEX", b"GETSET", b"GETDEL", b"GETEX", b"MGET",
            b"MSET", b"MSETNX", b"APPEND", b"STRLEN", b"GETRANGE", b"SETRANGE", b"INCR", b"INCRBY",
            b"INCRBYFLOAT", b"DECR", b"DECRBY", b"DEL", b"UNLINK", b"EXISTS", b"TYPE", b"EXPIRE",
            b"PEXPIRE", b"EXPIREAT", b"PEXPIREAT", b"PERSIST", b"RENAME", b"RENAMENX", b"KEYS",
            b"EXPIRETIME", b"PEXPIRETIME", b"TTL", b"SCAN", b"NOPE"]


def random_command(chooser: random.Random) -> tuple[bytes, ...]:
    name = chooser.choice(COMMANDS)
    words = [name]
    for position in range(chooser.choice([0, 1, 1, 2, 2, 3, 3, 4, 5])):
        if position == 0 and name not in (b"SCAN", b"KEYS"):
            words.append(chooser.choice(KEYS))
        else:
            words.append(chooser.choice(chooser.choice([NUMBERS, OPTIONS, VALUES, KEYS])))
    if name == b"KEYS" and len(words) > 1:
        words[1] = chooser.choice([b"*", b"a*", b"{t}*", b"?", b"[ab]", b"*c*", b"h[^a]"])
    if name == b"SCAN" and len(words) > 1:  # cursors that 7.0 and 7.2 read alike
        words[1] = chooser.choice([b"0", b"abc", b"123", b"1.5"])
    return tuple(words)


def comparable(name: bytes, real: object, model: object) -> bool:
    if name == b"TTL" or (name == b"SCAN" and isinstance(real, list)):
        return True  # a TTL read across a second boundary; cursors differ by design
    if name == b"KEYS" and isinstance(real, list) and isinstance(model, list):
        return sorted(real) == sorted(model)
    return real == model


def test_replies_and_data_match_real_redis(redis_socket: socket.socket) -> None:
    """Four thousand random commands, state compared after each: the same replies, the same
    values and about the same expiries."""
    real, model = RealRedis(redis_socket), Model()
    chooser = random.Random(int(os.environ.get("QUORUMKV_DIFFERENTIAL_SEED", "1")))
    differences: list[str] = []
    for _ in range(4000):
        words = random_command(chooser)
        got_real, got_model = normalised(real(*words)), normalised(model(*words))
        if not comparable(words[0], got_real, got_model):
            differences.append(f"{words!r}: redis {got_real!r}, model {got_model!r}")
        for key in KEYS:
            value_real, value_model = real(b"GET", key), normalised(model(b"GET", key))
            ttl_real, ttl_model = real(b"PTTL", key), model(b"PTTL", key)
            assert isinstance(ttl_real, int) and isinstance(ttl_model, int)
            if value_real != value_model or (ttl_real < 0) != (ttl_model < 0) or abs(
                    ttl_real - ttl_model) > 100:
                differences.append(f"after {words!r}: {key!r} is {value_real!r} "
                                   f"(PTTL {ttl_real}) in Redis, {value_model!r} "
                                   f"(PTTL {ttl_model}) in the model")
        if differences:
            break
    check_layout(model.store)
    assert not differences, "\n".join(differences[:10])


# ---- hashes and sets ---------------------------------------------------------------------------

COLLECTION_KEYS = [b"{t}a", b"{t}b", b"{t}c", b"{t}s"]
MEMBERS = [b"m1", b"m2", b"m3", b"m4", b"10", b"-3", b"1.5", b"x", b"", b"\x00"]
COLLECTION_COMMANDS = [
    b"HSET", b"HSETNX", b"HGET", b"HMGET", b"HMSET", b"HDEL", b"HLEN", b"HEXISTS", b"HGETALL",
    b"HKEYS", b"HVALS", b"HINCRBY", b"HINCRBYFLOAT", b"HSTRLEN", b"HRANDFIELD", b"HSCAN",
    b"SADD", b"SREM", b"SCARD", b"SISMEMBER", b"SMISMEMBER", b"SMEMBERS", b"SRANDMEMBER", b"SPOP",
    b"SMOVE", b"SINTER", b"SUNION", b"SDIFF", b"SINTERSTORE", b"SUNIONSTORE", b"SDIFFSTORE",
    b"SINTERCARD", b"SSCAN", b"SET", b"GET", b"INCR", b"DEL", b"TYPE", b"RENAME", b"EXISTS"]
UNORDERED = {b"HGETALL", b"HKEYS", b"HVALS", b"SMEMBERS", b"SINTER", b"SUNION", b"SDIFF"}
RANDOM = {b"HRANDFIELD", b"SRANDMEMBER", b"SPOP"}


def random_collection_command(chooser: random.Random) -> tuple[bytes, ...]:
    name = chooser.choice(COLLECTION_COMMANDS)
    words = [name]
    if name == b"SINTERCARD":
        words.append(chooser.choice([b"1", b"2", b"0", b"x", b"5"]))
    for position in range(chooser.choice([1, 1, 2, 2, 3, 3, 4, 5])):
        if position == 0 or (name in (b"SINTER", b"SUNION", b"SDIFF", b"SMOVE", b"RENAME")
                             and chooser.random() < 0.7):
            words.append(chooser.choice(COLLECTION_KEYS))
        else:
            words.append(chooser.choice(chooser.choice([MEMBERS, MEMBERS, NUMBERS, KEYS[:2],
                                                        [b"LIMIT", b"WITHVALUES", b"COUNT"]])))
    if name in (b"HSCAN", b"SSCAN") and len(words) > 2:  # cursors that 7.0 and 7.2 read alike
        words[2] = chooser.choice([b"0", b"abc", b"123", b"1.5"])
    return tuple(words)


def unordered(reply: object) -> object:
    """A reply whose order Redis does not define, in a comparable form: field/value pairs or
    members, sorted."""
    if not isinstance(reply, list):
        return reply
    return sorted(map(repr, reply))


def flattened(reply: object) -> object:
    from quorumkv.kv.reply import Map, Pairs, SetReply

    if isinstance(reply, (Map, Pairs)):
        return [flattened(item) for pair in reply.pairs for item in pair]
    if isinstance(reply, SetReply):
        return [flattened(item) for item in reply.items]
    if isinstance(reply, list):
        return [flattened(item) for item in reply]
    return normalised(reply)


def contents_of(call: object, key: bytes) -> object:
    kind = normalised(call(b"TYPE", key))  # type: ignore[operator]
    if kind == b"hash":
        pairs = flattened(call(b"HGETALL", key))  # type: ignore[operator]
        assert isinstance(pairs, list)
        return kind, sorted(zip(pairs[0::2], pairs[1::2], strict=True))
    if kind == b"set":
        return kind, sorted(flattened(call(b"SMEMBERS", key)))  # type: ignore[operator,arg-type]
    return kind, normalised(call(b"GET", key)) if kind == b"string" else None  # type: ignore[operator]


def test_hash_and_set_replies_and_data_match_real_redis(redis_socket: socket.socket) -> None:
    """Three thousand random hash, set and key commands: the same replies (orderless ones
    compared sorted; random picks compared by shape, SPOP's choices reconciled) and the same
    contents of every key after each."""
    real, model = RealRedis(redis_socket), Model()
    chooser = random.Random(int(os.environ.get("QUORUMKV_DIFFERENTIAL_SEED", "1")))
    differences: list[str] = []
    for _ in range(3000):
        words = random_collection_command(chooser)
        name = words[0]
        got_real, got_model = flattened(real(*words)), flattened(model(*words))
        if name in UNORDERED:
            got_real, got_model = unordered(got_real), unordered(got_model)
        if name in RANDOM and isinstance(got_real, (list, bytes)) and isinstance(
                got_model, (list, bytes)):
            same = (isinstance(got_real, bytes) == isinstance(got_model, bytes)
                    and len(got_real) == len(got_model)) if isinstance(got_real, list) else True
            if name == b"SPOP":  # make Redis pop what the model popped
                key = words[1]
                for member in (got_real if isinstance(got_real, list) else [got_real]):
                    real(b"SADD", key, member)
                for member in (got_model if isinstance(got_model, list) else [got_model]):
                    real(b"SREM", key, member)
            if not same:
                differences.append(f"{words!r}: redis {got_real!r}, model {got_model!r}")
        elif name == b"HSCAN" or name == b"SSCAN":
            if isinstance(got_real, list) and isinstance(got_model, list):
                got_real, got_model = unordered(got_real[1]), unordered(got_model[1])
                if words[2:3] != [b"0"] or len(words) > 3:
                    got_real = got_model  # cursors differ by design; COUNT pages differ
            if got_real != got_model:
                differences.append(f"{words!r}: redis {got_real!r}, model {got_model!r}")
        elif got_real != got_model:
            differences.append(f"{words!r}: redis {got_real!r}, model {got_model!r}")
        for key in COLLECTION_KEYS + [b"a"]:
            in_real, in_model = contents_of(real, key), contents_of(model, key)
            if in_real != in_model:
                differences.append(f"after {words!r}: {key!r} is {in_real!r} in Redis, "
                                   f"{in_model!r} in the model")
        if differences:
            break
    check_layout(model.store)
    assert not differences, "\n".join(differences[:10])
