"""Every command of issue 4 answers over the wire as Redis does, through any node of a cluster.

The expectations are kv's (tests/kv): the same replies, byte for byte on the wire, whether the
command runs on the leader or is forwarded by a follower. Time-dependent replies (TTL) are
checked by range, since the real clock moves between commands.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest
import redis

from quorumkv.kv.reply import (
    NOT_AN_INTEGER,
    OK,
    SYNTAX_ERROR,
    WRONGTYPE,
    ErrorReply,
    Reply,
    arity_error,
)
from quorumkv.server.local_cluster import LocalCluster, wait_until

from .resp_client import RawClient, wire

Step = tuple[str | tuple[str | bytes | int, ...], Reply]


def follower_of(cluster: LocalCluster) -> int:
    leader = cluster.wait_for_leader()
    return next(n for n in cluster.node_ids if n != leader)


@pytest.fixture(params=["leader", "follower"])
def raw(request: pytest.FixtureRequest, cluster: LocalCluster) -> Iterator[RawClient]:
    """A raw connection to the leader, or to a follower (which forwards every data command)."""
    leader = cluster.wait_for_leader()
    node = leader if request.param == "leader" else follower_of(cluster)
    client = RawClient(cluster.client_ports[node])
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def client(cluster: LocalCluster) -> Iterator[redis.Redis]:
    """redis-py (RESP2) connected to a follower."""
    connection = redis.Redis(port=cluster.client_ports[follower_of(cluster)], protocol=2,
                             socket_timeout=10)
    try:
        yield connection
    finally:
        connection.close()


def run(raw: RawClient, prefix: str, steps: list[Step]) -> None:
    """Run steps, keys prefixed per test (the cluster is shared), comparing wire bytes."""
    for command, expected in steps:
        words = tuple(command.split(" ")) if isinstance(command, str) else command
        words = tuple(w.replace("{p}", prefix) if isinstance(w, str) else w for w in words)
        got = raw.call(words)
        assert got == wire(expected), f"{words}: got {got!r}, expected {wire(expected)!r}"


def test_strings_set_get_and_conditions(raw: RawClient) -> None:
    """GET/SET with NX, XX, GET, SETNX, GETSET, GETDEL, MGET, MSET, MSETNX, APPEND, STRLEN."""
    run(raw, f"s{time.monotonic_ns()}", [
        ("GET {p}k", None),
        ("SET {p}k v", OK),
        ("GET {p}k", b"v"),
        (("SET", "{p}bin", b"\x00\xff\r\n"), OK),
        (("GET", "{p}bin"), b"\x00\xff\r\n"),
        ("SET {p}k w NX", None),
        ("SET {p}k w XX GET", b"v"),
        ("SET {p}other v XX", None),
        ("SETNX {p}k z", 0),
        ("SETNX {p}n z", 1),
        ("GETSET {p}k g", b"w"),
        ("GETDEL {p}k", b"g"),
        ("GETDEL {p}k", None),
        ("MSET {p}a 1 {p}b 2", OK),
        ("MGET {p}a {p}b {p}missing", [b"1", b"2", None]),
        ("MSETNX {p}a 9 {p}c 3", 0),
        ("MSETNX {p}c 3 {p}d 4", 1),
        ("APPEND {p}a 23", 3),
        ("STRLEN {p}a", 3),
        ("STRLEN {p}missing", 0),
        ("GETRANGE {p}a 0 1", b"12"),
        ("GETRANGE {p}a -1 -1", b"3"),
        ("SETRANGE {p}a 1 xy", 3),
        ("GET {p}a", b"1xy"),
        ("SET {p}k v NX XX", SYNTAX_ERROR),
        ("SET {p}k v EX 0", ErrorReply(b"ERR invalid expire time in 'set' command")),
        ("SET {p}k v EX abc", NOT_AN_INTEGER),
    ])


def test_counters(raw: RawClient) -> None:
    """INCR/INCRBY/INCRBYFLOAT/DECR/DECRBY, with Redis's errors for non-numbers."""
    run(raw, f"c{time.monotonic_ns()}", [
        ("INCR {p}n", 1),
        ("INCRBY {p}n 10", 11),
        ("DECR {p}n", 10),
        ("DECRBY {p}n 4", 6),
        ("INCRBYFLOAT {p}n 1.5", b"7.5"),
        ("SET {p}s abc", OK),
        ("INCR {p}s", NOT_AN_INTEGER),
        ("INCRBYFLOAT {p}s 1", ErrorReply(b"ERR value is not a valid float")),
        ("SET {p}max 9223372036854775807", OK),
        ("INCR {p}max", ErrorReply(b"ERR increment or decrement would overflow")),
    ])


def test_keys_commands(raw: RawClient) -> None:
    """DEL, UNLINK, EXISTS, TYPE, RENAME, RENAMENX, PERSIST, EXPIRE family without timing."""
    run(raw, f"k{time.monotonic_ns()}", [
        ("MSET {p}a 1 {p}b 2 {p}c 3", OK),
        ("EXISTS {p}a {p}a {p}nope", 2),
        ("TYPE {p}a", _status(b"string")),
        ("TYPE {p}nope", _status(b"none")),
        ("DEL {p}a {p}nope", 1),
        ("UNLINK {p}b", 1),
        ("RENAME {p}c {p}d", OK),
        ("RENAME {p}nope {p}x", ErrorReply(b"ERR no such key")),
        ("SET {p}e 5", OK),
        ("RENAMENX {p}d {p}e", 0),
        ("RENAMENX {p}d {p}f", 1),
        ("TTL {p}f", -1),
        ("TTL {p}nope", -2),
        ("EXPIRE {p}f 100", 1),
        ("PERSIST {p}f", 1),
        ("PERSIST {p}f", 0),
        ("EXPIRETIME {p}f", -1),
        ("PEXPIRETIME {p}nope", -2),
        ("EXPIRE {p}nope 100", 0),
    ])


def _status(text: bytes) -> Reply:
    from quorumkv.kv.reply import SimpleString

    return SimpleString(text)


def test_expiry_is_stamped_and_keys_vanish(client: redis.Redis) -> None:
    """EX/PX/EXAT/PXAT/KEEPTTL and the EXPIRE family set TTLs; an expired key is invisible."""
    prefix = f"e{time.monotonic_ns()}"
    assert client.set(f"{prefix}a", "v", ex=100)
    assert 98 <= client.ttl(f"{prefix}a") <= 100
    assert 98_000 <= client.pttl(f"{prefix}a") <= 100_000
    assert client.set(f"{prefix}a", "w", keepttl=True)
    assert client.ttl(f"{prefix}a") > 90
    at = int(time.time()) + 1000
    assert client.set(f"{prefix}b", "v", exat=at)
    assert client.expiretime(f"{prefix}b") == at
    assert client.set(f"{prefix}c", "v", pxat=at * 1000)
    assert client.pexpiretime(f"{prefix}c") == at * 1000
    assert client.execute_command("SETEX", f"{prefix}d", 50, "v")
    assert 48 <= client.ttl(f"{prefix}d") <= 50
    assert client.execute_command("PSETEX", f"{prefix}e", 50_000, "v")
    assert client.pttl(f"{prefix}e") > 48_000
    assert client.getex(f"{prefix}e", persist=True) == b"v" and client.ttl(f"{prefix}e") == -1
    assert client.expireat(f"{prefix}e", at) and client.expiretime(f"{prefix}e") == at
    assert client.pexpire(f"{prefix}e", 60_000) and client.pttl(f"{prefix}e") > 58_000
    assert client.pexpireat(f"{prefix}e", at * 1000)
    assert client.set(f"{prefix}short", "v", px=200)
    wait_until(lambda: client.get(f"{prefix}short") is None, 10, "the key to expire")
    assert client.exists(f"{prefix}short") == 0


def test_expired_keys_are_deleted_in_the_background(client: redis.Redis) -> None:
    """Keys past their expiry leave DBSIZE without being touched: the leader proposes their
    deletion (QKV.EXPIRE-DELETE), applied identically on every replica."""
    before = client.dbsize()
    prefix = f"bg{time.monotonic_ns()}"
    client.mset({f"{prefix}:{i}": "v" for i in range(20)})
    for i in range(20):
        client.pexpire(f"{prefix}:{i}", 100)
    # DBSIZE counts keys stored, expired or not: it falls back only once the deletions
    # are applied. (Other tests' keys expiring meanwhile can only make it fall further.)
    wait_until(lambda: client.dbsize() <= before, 20, "the expired keys to be deleted")


def test_scan_keys_dbsize_randomkey(client: redis.Redis) -> None:
    """KEYS and SCAN (MATCH, COUNT, TYPE) list keys; DBSIZE counts; RANDOMKEY picks one."""
    prefix = f"scan{time.monotonic_ns()}"
    names = {f"{prefix}:{i}".encode() for i in range(30)}
    client.mset({name: b"x" for name in names})
    assert set(client.keys(f"{prefix}:*")) == names
    assert set(client.scan_iter(match=f"{prefix}:*", count=7)) == names
    assert set(client.scan_iter(match=f"{prefix}:*", _type="string")) == names
    assert not set(client.scan_iter(match=f"{prefix}:*", _type="list"))
    assert client.dbsize() >= 30
    assert client.randomkey() is not None


def test_compare_and_set_and_delete(raw: RawClient) -> None:
    """CAS swaps only on an exact match (a missing key never matches); CAD deletes likewise."""
    run(raw, f"cas{time.monotonic_ns()}", [
        ("CAS {p}k a b", 0),
        ("SET {p}k a", OK),
        ("CAS {p}k x b", 0),
        ("CAS {p}k a b", 1),
        ("GET {p}k", b"b"),
        ("CAD {p}k a", 0),
        ("CAD {p}k b", 1),
        ("EXISTS {p}k", 0),
        ("CAS {p}k a", arity_error(b"cas")),
    ])


def test_unknown_commands_arity_and_wrong_type(raw: RawClient) -> None:
    """Unknown commands, wrong argument counts and wrong types get Redis's error texts."""
    assert raw.call("FOO bar baz") == (
        b"-ERR unknown command 'FOO', with args beginning with: 'bar' 'baz' \r\n")
    assert raw.call("GET") == b"-ERR wrong number of arguments for 'get' command\r\n"
    assert raw.call("PING a b") == b"-ERR wrong number of arguments for 'ping' command\r\n"
    assert raw.call("QKV.EXPIRE-DELETE k 1").startswith(b"-ERR unknown command")
    assert raw.call("INCR") == b"-ERR wrong number of arguments for 'incr' command\r\n"
    assert WRONGTYPE.message.startswith(b"WRONGTYPE")  # needs another type to provoke


def test_connection_commands(raw: RawClient) -> None:
    """PING, ECHO, SELECT, AUTH, TIME, CLIENT ID/SETNAME/GETNAME/INFO/LIST, RESET."""
    assert raw.call("PING") == b"+PONG\r\n"
    assert raw.call("PING hi") == b"$2\r\nhi\r\n"
    assert raw.call("ECHO hello") == b"$5\r\nhello\r\n"
    assert raw.call("SELECT 0") == b"+OK\r\n"
    assert raw.call("SELECT 1") == b"-ERR DB index is out of range\r\n"
    assert raw.call("AUTH pw").startswith(b"-ERR AUTH <password> called without any password")
    assert raw.call("AUTH default pw") == b"+OK\r\n"
    assert raw.call("AUTH bob pw").startswith(b"-WRONGPASS")
    assert raw.call("TIME").startswith(b"*2\r\n")
    assert raw.call("CLIENT ID").startswith(b":")
    assert raw.call("CLIENT GETNAME") == b"$-1\r\n"
    assert raw.call("CLIENT SETNAME tester") == b"+OK\r\n"
    assert raw.call("CLIENT GETNAME") == b"$6\r\ntester\r\n"
    assert raw.call("CLIENT SETNAME bad\nname").startswith(b"-ERR Client names cannot")
    assert raw.call("CLIENT SETINFO LIB-NAME mylib") == b"+OK\r\n"
    assert b"name=tester" in raw.call("CLIENT INFO")
    assert b"lib-name=mylib" in raw.call("CLIENT LIST")
    assert raw.call("CLIENT NOPE").startswith(b"-ERR unknown subcommand 'NOPE'")
    assert raw.call("RESET") == b"+RESET\r\n"
    assert raw.call("CLIENT GETNAME") == b"$-1\r\n"


def test_hello_switches_to_resp3_and_back(raw: RawClient) -> None:
    """HELLO 3 answers a map in RESP3 and later replies use RESP3 nulls; HELLO 2 returns."""
    hello = raw.call("HELLO 3")
    assert hello.startswith(b"%7\r\n") and b"proto" in hello
    assert raw.call(f"GET nokey{time.monotonic_ns()}") == b"_\r\n"
    assert raw.call("HELLO 2").startswith(b"*14\r\n")
    assert raw.call(f"GET nokey{time.monotonic_ns()}") == b"$-1\r\n"
    assert raw.call("HELLO 4") == b"-NOPROTO unsupported protocol version\r\n"
    assert raw.call("HELLO 3 AUTH default x SETNAME n").startswith(b"%7\r\n")


def test_server_commands(raw: RawClient) -> None:
    """COMMAND COUNT/INFO/DOCS/LIST, INFO sections, CONFIG GET and SET."""
    count = int(raw.call("COMMAND COUNT")[1:-2])
    assert count >= 50
    info = raw.call("COMMAND INFO get nosuch")
    assert b"get" in info and info.endswith(b"$-1\r\n")
    assert b"summary" in raw.call("COMMAND DOCS set")
    assert b"cas" in raw.call("COMMAND LIST")
    text = raw.call("INFO everything")
    for section in (b"# Server", b"# Clients", b"# Memory", b"# Persistence", b"# Stats",
                    b"# Replication", b"# Keyspace", b"# Quorumkv"):
        assert section in text
    assert b"shard_1:role=" in raw.call("INFO quorumkv")
    assert raw.call("CONFIG GET maxclients") == b"*2\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n"
    assert raw.call("CONFIG SET timeout 30") == b"+OK\r\n"
    assert raw.call("CONFIG GET timeout") == b"*2\r\n$7\r\ntimeout\r\n$2\r\n30\r\n"
    assert raw.call("CONFIG SET timeout 0") == b"+OK\r\n"  # idle clients of later tests stay
    assert raw.call("CONFIG SET nosuch 1").startswith(b"-ERR Unknown option")


def test_pipelined_replies_come_back_in_order(raw: RawClient) -> None:
    """Many commands in one write are all answered, in order, writes and reads interleaved."""
    prefix = f"pipe{time.monotonic_ns()}"
    commands = b"".join(
        b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%d\r\n" % (len(f"{prefix}{i}"),
                                                          f"{prefix}{i}".encode(),
                                                          len(str(i)), i)
        + b"*2\r\n$4\r\nECHO\r\n$%d\r\n%d\r\n" % (len(str(i)), i)
        for i in range(200))
    raw.send(commands)
    for i in range(200):
        assert raw.read_reply()[1] == b"OK"
        assert raw.read_reply()[1] == str(i).encode()
    assert raw.call(f"GET {prefix}199") == b"$3\r\n199\r\n"


def test_quit_and_protocol_errors_close_the_connection(cluster: LocalCluster) -> None:
    """QUIT answers +OK then closes; a protocol error is answered, then the connection closes."""
    port = cluster.client_ports[cluster.node_ids[0]]
    quitter = RawClient(port)
    assert quitter.call("QUIT") == b"+OK\r\n"
    assert quitter.closed_by_server()
    broken = RawClient(port)
    broken.send(b"*1\r\n$4\r\nPING\r\n*x\r\n")
    assert broken.read_all() == b"+PONG\r\n-ERR Protocol error: invalid multibulk length\r\n"
    assert RawClient(port).call("PING") == b"+PONG\r\n"


def test_redis_py_resp3_and_redis_cli(cluster: LocalCluster) -> None:
    """redis-py in RESP3 and redis-cli work against a follower, end to end."""
    port = cluster.client_ports[follower_of(cluster)]
    client = redis.Redis(port=port, protocol=3)
    key = f"cli{time.monotonic_ns()}"
    assert client.set(key, "1") is True
    assert client.incr(key) == 2
    output = subprocess.run(["redis-cli", "-p", str(port), "GET", key], capture_output=True,
                            check=True, timeout=30).stdout
    assert output.strip() == b"2"
    output = subprocess.run(["redis-cli", "-p", str(port), "INCRBY", key, "5"],
                            capture_output=True, check=True, timeout=30).stdout
    assert output.strip() == b"7"
    client.close()


def test_flushall_empties_every_node(client: redis.Redis, cluster: LocalCluster) -> None:
    """FLUSHDB/FLUSHALL through a follower empty the data everywhere (runs last in module)."""
    client.set("flushme", "1")
    assert client.flushall() is True
    for node in cluster.node_ids:
        other = redis.Redis(port=cluster.client_ports[node], protocol=2)
        assert other.dbsize() == 0
        other.close()
    assert client.flushdb() is True


def test_thousands_of_connections_are_served_at_once(cluster: LocalCluster) -> None:
    """2,000 clients connected together each get their answer; the node keeps serving."""
    port = cluster.client_ports[follower_of(cluster)]
    clients = [RawClient(port) for _ in range(2000)]
    try:
        for client in clients:
            client.send(b"*1\r\n$4\r\nPING\r\n")
        assert all(client.read_reply()[0] == b"+PONG\r\n" for client in clients)
        info = RawClient(port).call("INFO clients").decode()
        connected = int(info.split("connected_clients:")[1].split("\r\n")[0])
        assert connected >= 2000
    finally:
        for client in clients:
            client.close()
