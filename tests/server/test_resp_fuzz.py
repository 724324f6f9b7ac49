"""Whatever bytes a client sends, the node answers or closes that connection, and stays up."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quorumkv.server.local_cluster import LocalCluster, resp_command

REPLY_TYPE_BYTES = b"+-:$*_%~,#(=|>"

COMMAND_NAMES = [b"GET", b"SET", b"DEL", b"INCR", b"MGET", b"MSET", b"EXPIRE", b"SCAN",
                 b"KEYS", b"CAS", b"CAD", b"PING", b"ECHO", b"HELLO", b"CLIENT", b"COMMAND",
                 b"CONFIG", b"INFO", b"SELECT", b"AUTH", b"GETRANGE", b"SETRANGE", b"APPEND",
                 b"INCRBYFLOAT", b"RENAME", b"TYPE", b"TTL", b"RESET", b"TIME", b"GETEX"]


def bulk(word: bytes) -> bytes:
    return b"$%d\r\n%b\r\n" % (len(word), word)


words = st.one_of(st.binary(max_size=40), st.sampled_from([b"-1", b"0", b"1", b"nan", b"inf",
                                                           b"9223372036854775808", b"EX",
                                                           b"PX", b"NX", b"XX", b"GET",
                                                           b"MATCH", b"COUNT", b"*"]))
valid_commands = st.builds(
    lambda name, args: b"*%d\r\n" % (len(args) + 1) + bulk(name) + b"".join(map(bulk, args)),
    st.sampled_from(COMMAND_NAMES), st.lists(words, max_size=6))
malformed = st.sampled_from([
    b"*x\r\n", b"*-5\r\n", b"*1\r\n$-3\r\n", b"*1\r\n$abc\r\nxyz\r\n", b"*2\r\n$3\r\nGET\r\n:1\r\n",
    b"*1\r\n$99999999999\r\n", b"*99999999\r\n", b"$3\r\nGET\r\n", b"*1\r\n$4\r\nPINGxx\r\n",
    b"\r\n\r\n", b"\x00\xff\xfe", b"SET \"unterminated\r\n", b"PING\r\n", b"*1\r\n$1\r\n",
    b"*0\r\n*1\r\n$4\r\nPING\r\n", b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1000000000\r\n",
])
frames = st.lists(st.one_of(valid_commands, malformed, st.binary(max_size=64)), min_size=1,
                  max_size=5).map(b"".join)


@pytest.fixture(scope="module")
def single_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    cluster = LocalCluster(Path(tmp_path_factory.mktemp("fuzz")), nodes=1)
    try:
        cluster.start()
        cluster.wait_for_leader()
        yield cluster
    finally:
        cluster.close()


def exchange(port: int, data: bytes) -> bytes:
    """Send `data`, half-close, and read until the node closes (bounded by a timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(data)
        connection.shutdown(socket.SHUT_WR)
        received = b""
        try:
            while chunk := connection.recv(65536):
                received += chunk
        except (ConnectionResetError, TimeoutError):
            pass
        return received


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=frames)
def test_random_and_malformed_frames_never_bring_the_node_down(single_node: LocalCluster,
                                                               data: bytes) -> None:
    """Each answer is RESP; afterwards the process runs and a new client gets PONG."""
    port = single_node.client_ports[1]
    received = exchange(port, data)
    assert not received or received[:1] in REPLY_TYPE_BYTES, received[:200]
    assert single_node.is_running(1), single_node.log(1)[-3000:]
    assert resp_command(port, b"PING") == b"+PONG\r\n"
    assert "Traceback" not in single_node.log(1), single_node.log(1)[-3000:]
