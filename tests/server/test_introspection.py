"""CONFIG and INFO tell the truth about a real node (issue 11, item 8).

Each test talks to real node processes over real sockets, with a raw RESP client (exact bytes)
or redis-py: the size limit CONFIG GET reports is the one requests and values meet, durability
parameters follow the node's --sync setting, CONFIG SET changes what it says it changes and
refuses the rest, INFO has Redis 7.0's sections with figures that move with what the node
does, and CONFIG RESETSTAT zeroes them.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from quorumkv import limits
from quorumkv.kv import layout
from quorumkv.raft.types import ConfState, SnapshotMeta
from quorumkv.server.dispatcher import command_bytes
from quorumkv.server.local_cluster import LocalCluster, wait_until
from quorumkv.server.status import parse_info
from quorumkv.storage.snapshot_stream import (
    KIND_DATA,
    KIND_END,
    KIND_META,
    ChunkedSnapshotReader,
    decode_chunk,
)

from .resp_client import RawClient, encode_command

TOO_LONG = b"-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n"


@pytest.fixture
def raw(cluster: LocalCluster) -> Iterator[RawClient]:
    """A raw connection to a follower of the data shard (data commands are forwarded)."""
    leader = cluster.wait_for_leader()
    node = next(n for n in cluster.node_ids if n != leader)
    client = RawClient(cluster.client_ports[node], timeout_s=30)
    try:
        yield client
    finally:
        client.close()


def config_get(raw: RawClient, name: str) -> bytes:
    """The value of one parameter (the reply must be [name, value])."""
    raw.send(encode_command((b"CONFIG", b"GET", name.encode())))
    reply = raw.read_reply()[1]
    assert isinstance(reply, list) and len(reply) == 2, reply
    return bytes(reply[1])


def info(raw: RawClient, *sections: str) -> dict[str, str]:
    reply = raw.call(("INFO", *sections))
    return parse_info(reply.partition(b"\r\n")[2].decode())


def bulk_limit(raw: RawClient) -> int:
    return int(config_get(raw, "proto-max-bulk-len"))


# ---- one size limit, reported and enforced -------------------------------------------------


def test_proto_max_bulk_len_is_the_limit_values_are_held_to() -> None:
    """CONFIG GET proto-max-bulk-len is the one limit of a value's size (limits.py); a write of
    a value that size fits in one proposal, so the whole of it is usable."""
    assert limits.bulk_bytes_max == limits.string_bytes_max
    largest = command_bytes(b"SET", (b"k" * limits.key_bytes_max,
                                     b"v" * limits.string_bytes_max, b"PXAT",
                                     b"9" * 20, b"NX", b"GET", b"KEEPTTL"))
    assert largest <= limits.proposal_bytes_max


def test_the_largest_value_travels_in_one_snapshot_chunk() -> None:
    """A key of key_bytes_max holding a value of proto-max-bulk-len streams as a snapshot chunk
    the receiver accepts (a value APPEND grew past it could never be sent to a follower)."""
    stored_key = layout.data_key(b"k" * limits.key_bytes_max)
    record = layout.encode_record(layout.ValueType.STRING, 2**40, b"v" * limits.string_bytes_max)
    meta = SnapshotMeta(9, 2, ConfState(voters=(1, 2, 3)))
    reader = ChunkedSnapshotReader(1, meta, iter([[(stored_key, record)]]))
    kinds = []
    while chunk := reader.read_chunk(limits.snapshot_chunk_bytes_max):
        kinds.append(decode_chunk(chunk, 1).kind)
    assert kinds == [KIND_META, KIND_DATA, KIND_END]


def test_a_value_of_the_reported_size_is_stored_and_one_byte_more_is_not(
        raw: RawClient) -> None:
    """SET of a value of exactly proto-max-bulk-len bytes is stored; APPEND and SETRANGE that
    would make it longer are refused with Redis's error and change nothing."""
    limit = bulk_limit(raw)
    assert limit == limits.string_bytes_max
    assert raw.call(("SET", "big{1}", b"x" * limit)) == b"+OK\r\n"
    assert raw.call("STRLEN big{1}") == b":%d\r\n" % limit
    assert raw.call("APPEND big{1} y") == TOO_LONG
    assert raw.call(f"SETRANGE big{{1}} {limit} y") == TOO_LONG
    assert raw.call(f"SETRANGE fresh{{1}} {limit} y") == TOO_LONG
    assert raw.call("EXISTS fresh{1}") == b":0\r\n"
    assert raw.call("STRLEN big{1}") == b":%d\r\n" % limit
    assert raw.call("DEL big{1}") == b":1\r\n"


def test_append_cannot_grow_a_value_past_the_reported_limit(raw: RawClient) -> None:
    """APPEND in 1 MiB steps is refused at the step that would pass proto-max-bulk-len (it
    grew values to 12 MB while CONFIG GET said 8 MiB)."""
    limit = bulk_limit(raw)
    chunk = b"a" * (1024 * 1024)
    length = 0
    for _ in range(limit // len(chunk) + 2):
        reply = raw.call(("APPEND", "grow{1}", chunk))
        if reply == TOO_LONG:
            break
        length += len(chunk)
        assert reply == b":%d\r\n" % length
    assert length + len(chunk) > limit >= length
    assert raw.call("STRLEN grow{1}") == b":%d\r\n" % length
    assert raw.call("DEL grow{1}") == b":1\r\n"


def test_a_request_bulk_longer_than_the_limit_is_a_protocol_error(raw: RawClient) -> None:
    """A bulk string announced longer than proto-max-bulk-len is refused from its header (no
    byte of it is awaited) and the connection closed, as Redis does."""
    limit = bulk_limit(raw)
    raw.send(b"*3\r\n$3\r\nSET\r\n$4\r\nhuge\r\n$%d\r\n" % (limit + 1))
    assert raw.read_all() == b"-ERR Protocol error: invalid bulk length\r\n"


def test_a_bulk_of_exactly_the_limit_is_accepted(raw: RawClient) -> None:
    """ECHO of a bulk of proto-max-bulk-len bytes is answered whole."""
    limit = bulk_limit(raw)
    reply = raw.call(("ECHO", b"e" * limit))
    assert reply == b"$%d\r\n" % limit + b"e" * limit + b"\r\n"


# ---- durability ------------------------------------------------------------------------------


def test_appendonly_and_appendfsync_follow_sync(raw: RawClient, tmp_path: Path) -> None:
    """With --sync (the default) every write is logged and fsynced before its reply:
    appendonly yes, appendfsync always; with --no-sync it is logged, never fsynced: no."""
    assert config_get(raw, "appendonly") == b"yes"
    assert config_get(raw, "appendfsync") == b"always"
    assert info(raw, "persistence")["aof_enabled"] == "1"
    with LocalCluster(tmp_path, nodes=1, server_args=["--shards", "1", "--no-sync"]) as single:
        single.start()
        unsynced = RawClient(single.client_ports[1])
        try:
            assert config_get(unsynced, "appendonly") == b"yes"
            assert config_get(unsynced, "appendfsync") == b"no"
            assert unsynced.call("CONFIG SET appendfsync always").startswith(
                b"-ERR CONFIG SET failed (possibly related to argument 'appendfsync')")
            assert unsynced.call("CONFIG SET appendfsync no") == b"+OK\r\n"
        finally:
            unsynced.close()


# ---- CONFIG SET ------------------------------------------------------------------------------


def test_config_set_refuses_what_it_cannot_do(raw: RawClient) -> None:
    """Unknown parameters, immutable ones and new values of the fixed ones are refused with
    Redis-style errors that say why; setting a fixed parameter to its value is accepted."""
    assert raw.call("CONFIG SET nosuch 1") == (
        b"-ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'\r\n")
    assert raw.call("CONFIG SET slowlog-log-slower-than 5").startswith(b"-ERR Unknown option")
    assert raw.call("CONFIG SET port 1") == (
        b"-ERR CONFIG SET failed (possibly related to argument 'port') - can't set immutable "
        b"config\r\n")
    for name, value, reason in (
            ("appendfsync", "everysec", b"--sync"),
            ("appendonly", "no", b"Raft log"),
            ("maxmemory", "1gb", b"no memory limit"),
            ("maxmemory-policy", "allkeys-lru", b"never evicts"),
            ("notify-keyspace-events", "KEA", b"not supported"),
            ("proto-max-bulk-len", "10gb", b"string_bytes_max"),
            ("save", "3600 1", b"no RDB")):
        reply = raw.call(("CONFIG", "SET", name, value))
        assert reply.startswith(b"-ERR CONFIG SET failed (possibly related to argument '%b')"
                                % name.encode()), reply
        assert reason in reply, reply
        assert config_get(raw, name) != value.encode()
    for name, value in (("save", ""), ("appendonly", "YES"), ("appendfsync", "always"),
                        ("maxmemory", "0"), ("maxmemory-policy", "noeviction"),
                        ("notify-keyspace-events", ""), ("proto-max-bulk-len", "8mb")):
        assert raw.call(("CONFIG", "SET", name, value)) == b"+OK\r\n", name
    # several pairs are checked before any is applied
    assert raw.call("CONFIG SET timeout 7 port 1").startswith(b"-ERR CONFIG SET failed")
    assert config_get(raw, "timeout") == b"0"
    assert raw.call("CONFIG SET timeout 7 timeout 8").endswith(b"duplicate parameter\r\n")
    assert raw.call("CONFIG SET timeout -1").endswith(
        b"argument must be between 0 and 2147483647 inclusive\r\n")


def test_config_get_reports_the_values_the_node_runs_with(raw: RawClient) -> None:
    """CONFIG GET (patterns, redis-py) answers the values the node runs with; unknown: nothing."""
    client = redis.Redis(port=raw.socket.getpeername()[1], protocol=2)
    try:
        values = client.config_get("*")
        assert values["cluster-enabled"] == "yes"
        assert values["databases"] == "1"
        assert values["maxmemory"] == "0"
        assert values["port"] == str(raw.socket.getpeername()[1])
        assert values["proto-max-bulk-len"] == str(limits.string_bytes_max)
        assert values["client-query-buffer-limit"] == str(limits.query_buffer_bytes_max)
        assert client.config_get("MAX*") == {"maxclients": "10000", "maxmemory": "0",
                                             "maxmemory-policy": "noeviction"}
        assert client.config_get("nosuch") == {}
    finally:
        client.close()


def only_this_connection(raw: RawClient) -> None:
    """Wait until the connections of earlier tests are gone from the node."""
    wait_until(lambda: info(raw, "clients")["connected_clients"] == "1", 30,
               "the node to see earlier connections closed")


def test_config_set_maxclients_is_enforced(raw: RawClient) -> None:
    """CONFIG SET maxclients takes effect for the next connection, and INFO reports it."""
    port = raw.socket.getpeername()[1]
    only_this_connection(raw)
    rejected = int(info(raw, "stats")["rejected_connections"])
    assert raw.call("CONFIG SET maxclients 1") == b"+OK\r\n"
    try:
        assert info(raw, "clients")["maxclients"] == "1"
        refused = RawClient(port)
        try:
            assert refused.read_all() == b"-ERR max number of clients reached\r\n"
        finally:
            refused.close()
        assert int(info(raw, "stats")["rejected_connections"]) == rejected + 1
    finally:
        assert raw.call("CONFIG SET maxclients 10000") == b"+OK\r\n"
    accepted = RawClient(port)
    try:
        assert accepted.call("PING") == b"+PONG\r\n"
    finally:
        accepted.close()


def test_config_set_timeout_closes_idle_clients(raw: RawClient) -> None:
    """With CONFIG SET timeout 1 a connection idle for over a second is closed by the node."""
    port = raw.socket.getpeername()[1]
    assert raw.call("CONFIG SET timeout 1") == b"+OK\r\n"
    try:
        idle = RawClient(port, timeout_s=30)
        try:
            assert idle.call("PING") == b"+PONG\r\n"
            assert idle.read_all() == b""  # returns once the node closes it
        finally:
            idle.close()
    finally:
        restore = RawClient(port)
        try:
            assert restore.call("CONFIG SET timeout 0") == b"+OK\r\n"
        finally:
            restore.close()


def keepalive_timer(port: int, client: RawClient) -> str:
    """The timer `ss` shows on the node's side of `client`'s connection."""
    client_port = client.socket.getsockname()[1]
    listing = subprocess.run(
        ["ss", "-tnoH", "state", "established",
         f"( sport = :{port} and dport = :{client_port} )"],
        capture_output=True, text=True, check=True).stdout
    assert listing.strip(), f"no connection {client_port} -> {port} in ss"
    return listing.partition("timer:(")[2].partition(")")[0]


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2)")
def test_config_set_tcp_keepalive_applies_to_new_connections(raw: RawClient) -> None:
    """CONFIG SET tcp-keepalive sets the keepalive probes of the next connections the node
    accepts (seen with ss on the node's socket); 0 turns them off."""
    port = raw.socket.getpeername()[1]
    assert raw.call("CONFIG SET tcp-keepalive 40000").endswith(
        b"argument must be between 0 and 32767 inclusive\r\n")  # Linux's TCP_KEEPIDLE bound
    assert raw.call("CONFIG SET tcp-keepalive 60") == b"+OK\r\n"
    try:
        assert config_get(raw, "tcp-keepalive") == b"60"
        probed = RawClient(port)
        try:
            assert probed.call("PING") == b"+PONG\r\n"
            timer = keepalive_timer(port, probed)
            assert timer.startswith("keepalive,"), timer
            assert 0 < float(timer.split(",")[1].rstrip("sec").split("min")[0] or 0) <= 60
        finally:
            probed.close()
        assert raw.call("CONFIG SET tcp-keepalive 0") == b"+OK\r\n"
        unprobed = RawClient(port)
        try:
            assert unprobed.call("PING") == b"+PONG\r\n"
            assert not keepalive_timer(port, unprobed).startswith("keepalive")
        finally:
            unprobed.close()
    finally:
        assert raw.call("CONFIG SET tcp-keepalive 300") == b"+OK\r\n"


# ---- INFO ------------------------------------------------------------------------------------

DEFAULT = ["Server", "Clients", "Memory", "Persistence", "Stats", "Replication", "CPU",
           "Modules", "Errorstats", "Cluster", "Keyspace"]


def headers(text: bytes) -> list[str]:
    return [line[2:].decode() for line in text.split(b"\r\n") if line.startswith(b"# ")]


def test_info_sections_as_redis_7(raw: RawClient) -> None:
    """INFO, INFO default, all, everything and named sections (any case) give Redis 7.0's
    sections in Redis's order; everything adds the node's own section."""
    assert headers(raw.call("INFO")) == DEFAULT
    assert headers(raw.call("INFO default")) == DEFAULT
    all_sections = DEFAULT[:8] + ["Commandstats"] + DEFAULT[8:]
    assert headers(raw.call("INFO all")) == all_sections
    assert headers(raw.call("INFO everything")) == all_sections + ["Quorumkv"]
    assert headers(raw.call("INFO cpu")) == ["CPU"]
    assert headers(raw.call("INFO commandSTATS cpu")) == ["CPU", "Commandstats"]
    assert headers(raw.call("INFO cpu default")) == DEFAULT
    assert headers(raw.call("INFO nosuch")) == []
    assert headers(raw.call("INFO quorumkv")) == ["Quorumkv"]


def test_info_fields_tools_read_at_start_up(raw: RawClient, cluster: LocalCluster) -> None:
    """The fields clients and tools read (cluster_enabled, used_cpu_user, redis_mode,
    process_id, tcp_port...) are there, with this node's real values."""
    port = raw.socket.getpeername()[1]
    node = next(n for n, p in cluster.client_ports.items() if p == port)
    fields = info(raw, "everything")
    assert fields["cluster_enabled"] == "1"
    assert fields["redis_mode"] == "cluster"
    assert fields["role"] == "master"
    assert fields["process_id"] == str(cluster.pid(node))
    assert fields["tcp_port"] == str(port)
    assert len(fields["run_id"]) == 40
    assert fields["arch_bits"] == "64"
    assert int(fields["connected_clients"]) >= 1
    for name in ("used_cpu_user", "used_cpu_sys", "used_cpu_user_children",
                 "used_cpu_sys_children", "used_cpu_user_main_thread"):
        assert float(fields[name]) >= 0
    assert float(fields["used_cpu_user"]) > 0  # a Python process has run its start-up
    assert 0 < int(fields["used_memory"]) <= int(fields["used_memory_rss"])
    assert int(fields["used_memory_peak"]) >= int(fields["used_memory"])
    assert fields["maxmemory_policy"] == "noeviction"
    status = Path(f"/proc/{cluster.pid(node)}/status").read_text()
    assert "RssAnon" in status  # used_memory is measured from it
    assert int(fields["master_repl_offset"]) > 0


def test_info_stats_count_this_connection_exactly(raw: RawClient) -> None:
    """Bytes in and out, commands, key hits and misses and errors move by exactly what one
    connection sent and received (nothing else talks to the node meanwhile)."""
    raw.call("SET counted{1} v")
    before_reply = raw.call("INFO stats")
    before = parse_info(before_reply.partition(b"\r\n")[2].decode())
    commands = [("GET", "counted{1}"), ("GET", "missing{1}"),
                ("MGET", "counted{1}", "missing{1}", "counted{1}"), ("INCR", "counted{1}")]
    sent = received = 0
    for command in commands:
        request = encode_command(tuple(w.encode() for w in command))
        reply = raw.call(command)
        sent += len(request)
        received += len(reply)
    info_request = encode_command((b"INFO", b"stats"))
    after = info(raw, "stats")
    assert int(after["total_net_input_bytes"]) - int(before["total_net_input_bytes"]) == (
        sent + len(info_request))
    assert int(after["total_net_output_bytes"]) - int(before["total_net_output_bytes"]) == (
        received + len(before_reply))
    assert int(after["total_commands_processed"]) - int(
        before["total_commands_processed"]) == len(commands) + 1
    assert int(after["keyspace_hits"]) - int(before["keyspace_hits"]) == 3
    assert int(after["keyspace_misses"]) - int(before["keyspace_misses"]) == 2
    assert int(after["total_error_replies"]) - int(before["total_error_replies"]) == 1


def test_commandstats_and_errorstats(raw: RawClient) -> None:
    """A command's calls, failed and rejected calls, and each error code, are counted."""
    assert raw.call("CONFIG RESETSTAT") == b"+OK\r\n"
    raw.call("SET text{1} abc")
    raw.call("INCR text{1}")  # fails: not an integer
    raw.call("GET")  # rejected: wrong arity
    raw.call("NOSUCHCOMMAND")  # an error, not a command
    fields = info(raw, "commandstats", "errorstats")
    assert fields["cmdstat_set"].startswith("calls=1,usec=")
    assert fields["cmdstat_incr"].endswith("rejected_calls=0,failed_calls=1")
    assert fields["cmdstat_get"].startswith("calls=0,")
    assert fields["cmdstat_get"].endswith("rejected_calls=1,failed_calls=0")
    assert "cmdstat_nosuchcommand" not in fields
    assert fields["errorstat_ERR"] == "count=3"


def test_config_resetstat_zeroes_the_statistics(raw: RawClient) -> None:
    """CONFIG RESETSTAT zeroes the stats counters, commandstats and errorstats."""
    raw.call("GET")
    raw.call("GET nothing{1}")
    before = info(raw, "stats")
    assert int(before["total_commands_processed"]) > 2
    assert raw.call("CONFIG RESETSTAT") == b"+OK\r\n"
    after = info(raw, "stats", "commandstats", "errorstats")
    assert after["total_commands_processed"] == "1"  # this INFO
    assert after["total_connections_received"] == "0"
    assert after["total_error_replies"] == "0"
    assert after["keyspace_misses"] == "0"
    assert after["keyspace_hits"] == "0"
    assert after["rejected_connections"] == "0"
    assert int(after["total_net_input_bytes"]) == len(
        encode_command((b"INFO", b"stats", b"commandstats", b"errorstats")))
    assert not any(name.startswith("errorstat_") for name in after)
    assert [name for name in after if name.startswith("cmdstat_")] == ["cmdstat_config"]


def test_instantaneous_ops_per_sec_sees_a_burst(raw: RawClient) -> None:
    """instantaneous_ops_per_sec is measured: positive while commands flow."""
    port = raw.socket.getpeername()[1]
    client = redis.Redis(port=port, protocol=2)
    try:
        def busy() -> bool:
            pipeline = client.pipeline(transaction=False)
            for _ in range(200):
                pipeline.ping()
            pipeline.execute()
            return int(client.info("stats")["instantaneous_ops_per_sec"]) > 0
        wait_until(busy, 30, "a positive instantaneous_ops_per_sec")
    finally:
        client.close()


def test_info_over_redis_py_resp3(raw: RawClient) -> None:
    """redis-py parses INFO everything in RESP3 (a verbatim string) into its fields."""
    client = redis.Redis(port=raw.socket.getpeername()[1], protocol=3)
    try:
        fields = client.info("everything")
        assert fields["cluster_enabled"] == 1
        assert "used_cpu_user" in fields
    finally:
        client.close()


def test_expired_keys_counts_the_leaders_expiry_deletions(cluster: LocalCluster) -> None:
    """expired_keys at the shard's leader grows by the keys whose time came and that its
    background expiry deleted."""
    leader = RawClient(cluster.client_ports[cluster.wait_for_leader()])
    try:
        before = int(info(leader, "stats")["expired_keys"])
        for index in range(3):
            assert leader.call(f"SET gone{index}{{1}} v PX 50") == b"+OK\r\n"
        wait_until(lambda: int(info(leader, "stats")["expired_keys"]) == before + 3, 30,
                   "the leader to delete the three expired keys")
        assert leader.call("EXISTS gone0{1} gone1{1} gone2{1}") == b":0\r\n"
    finally:
        leader.close()


def keyspace(raw: RawClient) -> dict[str, int]:
    line = info(raw, "keyspace").get("db0", "keys=0,expires=0,avg_ttl=0")
    return {name: int(value) for name, value in (f.split("=") for f in line.split(","))}


def test_keyspace_counts_keys_with_an_expiry_and_their_mean_time_left(raw: RawClient) -> None:
    """INFO keyspace's db0 line counts the keys, those with an expiry, and gives the mean
    time those have left (milliseconds), as this node has applied them."""
    wait_until(lambda: keyspace(raw)["expires"] == 0, 30,
               "keys of earlier tests with an expiry to be deleted")
    before = keyspace(raw)
    started_ms = int(time.time() * 1000)
    first, second = started_ms + 1_000_000, started_ms + 3_000_000
    assert raw.call(f"SET ttl-a{{1}} v PXAT {first}") == b"+OK\r\n"
    assert raw.call(f"SET ttl-b{{1}} v PXAT {second}") == b"+OK\r\n"
    assert raw.call("SET ttl-none{1} v") == b"+OK\r\n"
    wait_until(lambda: keyspace(raw)["keys"] == before["keys"] + 3, 30,
               "this node to apply the three writes")
    figures = keyspace(raw)
    ended_ms = int(time.time() * 1000)
    assert figures["expires"] == 2
    mean = (first + second) // 2
    assert mean - ended_ms - 1 <= figures["avg_ttl"] <= mean - started_ms
    assert raw.call("PERSIST ttl-a{1}") == b":1\r\n"
    assert raw.call("DEL ttl-b{1} ttl-none{1}") == b":2\r\n"
    wait_until(lambda: keyspace(raw)["keys"] == before["keys"] + 1, 30,
               "this node to apply the deletions")
    assert keyspace(raw)["expires"] == 0
    assert raw.call("DEL ttl-a{1}") == b":1\r\n"
