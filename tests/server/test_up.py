"""`quorumkv up` supervises its nodes: real `up` processes, real nodes, a plain redis-py client.

Each test runs `quorumkv up --nodes 3` as a subprocess with its own data directory and ports,
reads what it prints, and acts on the node processes by the PIDs it prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from quorumkv import limits
from quorumkv.server.local_cluster import free_port_range, resp_command, wait_until
from quorumkv.server.supervisor import Supervisor, UpSettings

NODES = 3
START_TIMEOUT_S = limits.up_serve_timeout_ms / 1000 + 30
"""`up` gives up on its own after up_serve_timeout_ms; this leaves it time to say so."""

WRITES_MAX = 5_000
"""Writes the failover test sends at most while the killed node is away."""


class Up:
    """One `quorumkv up` process; its merged output is collected line by line."""

    def __init__(self, data_dir: Path, *up_options: str, client_port: int = 0) -> None:
        self.data_dir = data_dir
        self.client_port = client_port or free_port_range(NODES)
        peer_port = free_port_range(NODES)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "quorumkv.cli", "up", "--nodes", str(NODES),
             "--data-dir", str(data_dir), "--client-port", str(self.client_port),
             "--peer-port", str(peer_port), *up_options],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self.node_pids: set[int] = set()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def port(self, node_id: int) -> int:
        return self.client_port + node_id - 1

    def await_line(self, pattern: str, timeout_s: float = START_TIMEOUT_S) -> re.Match[str]:
        """The first line matching `pattern` (regex), awaited; fails if `up` exits first."""
        def found() -> re.Match[str] | None:
            for line in list(self.lines):
                if match := re.search(pattern, line):
                    return match
            if self.process.poll() is not None:
                raise AssertionError(f"`up` exited ({self.process.returncode}) before printing "
                                     f"{pattern!r}:\n{self.output}")
            return None

        return wait_until(found, timeout_s, f"`up` to print {pattern!r}:\n{self.output}")

    def pids(self) -> dict[int, int]:
        """Node id -> PID, from the last table `up` printed."""
        table: dict[int, int] = {}
        for line in self.lines:
            if match := re.match(r"^\s+(\d+)\s+(\d+)\s+127\.0\.0\.1:\d+\s", line):
                table[int(match[1])] = int(match[2])
        self.node_pids.update(table.values())
        return table

    def close(self) -> None:
        """Kill `up` and every node PID it printed, if still running."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)
        for pid in self.node_pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    running = Up(tmp_path / "data")
    try:
        running.await_line(r"connect with")
        running.pids()
        yield running
    finally:
        running.close()


def gone(pid: int) -> bool:
    """Whether no process has this PID any more (or it is a zombie awaiting its parent)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] == "Z"
    except FileNotFoundError:
        return True


def listening(port: int) -> bool:
    try:
        return resp_command(port, b"PING", timeout_s=1.0) == b"+PONG\r\n"
    except OSError:
        return False


def test_up_says_connect_only_once_every_node_serves(up: Up) -> None:
    """When `up` prints "connect with", every node already answers a linearizable DBSIZE
    (before, it printed it once the ports listened, while nodes still said CLUSTERDOWN)."""
    for node_id in range(1, NODES + 1):
        assert resp_command(up.port(node_id), b"DBSIZE") == b":0\r\n"


def test_up_restarts_a_killed_node_while_the_others_serve(up: Up) -> None:
    """SIGKILL of one node: `up` keeps running, says which node died, how and where its log
    is; the other nodes acknowledge writes while it is away; `up` restarts it, prints the new
    PID, and it serves again; every acknowledged write is readable through it."""
    old_pid = up.pids()[1]
    clients = {n: redis.Redis(port=up.port(n), socket_timeout=10) for n in (2, 3)}
    acknowledged: dict[str, str] = {}
    for i in range(20):  # before the kill
        clients[2 + i % 2].set(f"before:{i}", str(i))
        acknowledged[f"before:{i}"] = str(i)

    os.kill(old_pid, signal.SIGKILL)
    log = up.data_dir / "node1" / "node.log"
    up.await_line(rf"node 1 \(pid {old_pid}\) killed by SIGKILL after .*log: {re.escape(str(log))}"
                  r"; the other nodes keep serving; restarting it in")

    # Writes through nodes 2 and 3; node 1 refusing connections right after an acknowledgement
    # proves it was not listening when that write was acknowledged (once back, it listens).
    acknowledged_while_away = 0
    deadline = time.monotonic() + START_TIMEOUT_S
    for i in range(WRITES_MAX):
        if re.search(r"node 1 \(pid \d+\) serves again", up.output) or (
                time.monotonic() > deadline):
            break
        key, value = f"during:{i}", str(i)
        try:
            clients[2 + i % 2].set(key, value)
        except redis.exceptions.RedisError:
            continue  # a shard node 1 led is electing: TRYAGAIN, or UNKNOWN (not acknowledged)
        acknowledged[key] = value
        if not listening(up.port(1)):
            acknowledged_while_away += 1
    assert acknowledged_while_away > 0, up.output

    new_pid = int(up.await_line(r"node 1 restarted \(pid (\d+), was (\d+)\)")[1])
    assert new_pid != old_pid
    assert up.pids()[1] == new_pid
    up.await_line(rf"node 1 \(pid {new_pid}\) serves again")
    assert up.process.poll() is None
    assert f"process_id:{new_pid}\r\n".encode() in resp_command(up.port(1), b"INFO", b"server")
    assert f"node 1 (pid {old_pid}) killed by SIGKILL" in log.read_text()

    through_node_1 = redis.Redis(port=up.port(1), socket_timeout=10)
    for key, value in acknowledged.items():
        assert through_node_1.get(key) == value.encode(), key


def test_up_gives_up_on_a_node_that_crashes_at_every_start(tmp_path: Path) -> None:
    """A node whose store cannot be opened dies at every start: `up` restarts it with back-off,
    gives up after up_quick_failures_max quick failures, prints the end of its log, and the
    other two nodes serve writes."""
    data = tmp_path / "data"
    (data / "node2").mkdir(parents=True)
    (data / "node2" / "store").write_text("not a RocksDB directory\n")
    running = Up(data)
    try:
        running.await_line(rf"node 2 \(pid \d+\) exited with status 1 after .*giving up on it: "
                           rf"it failed {limits.up_quick_failures_max} times in a row")
        running.await_line(r"\[node 2\] error: .*Not a directory")
        running.await_line(r"connect with")
        assert "node 2 given up" in running.output
        assert running.output.count("node 2 restarted") == limits.up_quick_failures_max - 1
        client = redis.Redis(port=running.port(1), socket_timeout=10)
        assert client.set("after-giving-up", "yes")
        assert redis.Redis(port=running.port(3)).get("after-giving-up") == b"yes"
        assert running.process.poll() is None
    finally:
        running.close()


def test_sigterm_stops_every_node_cleanly_and_exits_0(up: Up) -> None:
    """SIGTERM of `up`: every node stops gracefully (hands its leaderships over, says
    'stopped'), and `up` exits 0."""
    pids = up.pids()
    up.process.send_signal(signal.SIGTERM)
    assert up.process.wait(limits.up_stop_timeout_ms / 1000 + 30) == 0
    assert all(gone(pid) for pid in pids.values())
    assert "every node stopped" in up.output and "not all cleanly" not in up.output
    logs = {n: (up.data_dir / f"node{n}" / "node.log").read_text() for n in pids}
    assert all(f"node {node_id}: stopped" in log for node_id, log in logs.items())
    assert any("handing leadership of shard" in log for log in logs.values())


def test_nodes_stop_when_up_is_killed(up: Up) -> None:
    """SIGKILL of `up` itself leaves no orphan: the kernel sends every node SIGTERM
    (PR_SET_PDEATHSIG) and each stops gracefully."""
    pids = up.pids()
    up.process.kill()
    up.process.wait(30)
    wait_until(lambda: all(gone(pid) for pid in pids.values()), START_TIMEOUT_S,
               f"nodes {pids} to stop after `up` was killed")
    logs = [(up.data_dir / f"node{n}" / "node.log").read_text() for n in pids]
    assert all(f"node {n}: stopped" in log for n, log in zip(pids, logs, strict=True))


def test_a_node_stopped_on_purpose_stays_stopped(tmp_path: Path) -> None:
    """A node sent SIGTERM exits 0 after a graceful stop: `up` says so, does not restart it,
    and the other nodes serve; --follow-logs echoes the nodes' log lines, prefixed."""
    running = Up(tmp_path / "data", "--follow-logs")
    try:
        running.await_line(r"connect with")
        running.await_line(r"^\[node 3\] .*node 3 of cluster 'quorumkv': clients on")
        pid = running.pids()[3]
        os.kill(pid, signal.SIGTERM)
        running.await_line(rf"node 3 \(pid {pid}\) exited with status 0 after .*a graceful stop "
                           r".*it stays stopped")
        assert redis.Redis(port=running.port(1), socket_timeout=10).set("k", "v")
        assert redis.Redis(port=running.port(2), socket_timeout=10).get("k") == b"v"
        assert "node 3 restarted" not in running.output and gone(pid)
        running.process.send_signal(signal.SIGTERM)
        assert running.process.wait(limits.up_stop_timeout_ms / 1000 + 30) == 0
    finally:
        running.close()


def test_up_refuses_to_start_on_a_taken_port(tmp_path: Path) -> None:
    """A port of the cluster already in use (another `up`): `up` says which and exits 1
    before starting any node (before, it started them and the one on the taken port died)."""
    first = free_port_range(NODES)
    with socket.socket() as other:
        other.bind(("127.0.0.1", first + 1))
        other.listen()
        running = Up(tmp_path / "data", client_port=first)
        try:
            assert running.process.wait(START_TIMEOUT_S) == 1
            running._reader.join(30)
            assert f"node 2's client port 127.0.0.1:{first + 1} is taken" in running.output
            assert not (tmp_path / "data").exists()
        finally:
            running.close()


def test_a_log_past_its_bound_is_kept_as_node_log_1_and_emptied(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A node log larger than up_node_log_bytes_max is copied to node.log.1 and emptied in
    place, so a writer appending to it (O_APPEND) goes on at its start."""
    monkeypatch.setattr(limits, "up_node_log_bytes_max", 1000)
    settings = UpSettings(1, "127.0.0.1", 1, 1, tmp_path)

    async def bound() -> None:
        supervisor = Supervisor(settings, lambda text, error: None)
        node = supervisor.nodes[0]
        node.data_dir.mkdir()
        with open(node.log_path, "ab", buffering=0) as writer:
            writer.write(b"x" * 1500 + b"\n")
            await supervisor._bound_log(node)
            writer.write(b"after\n")
        assert (node.data_dir / "node.log.1").read_bytes() == b"x" * 1500 + b"\n"
        assert node.log_path.read_bytes() == b"after\n"

    asyncio.run(bound())
