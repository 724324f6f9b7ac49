"""A cluster of real node processes on this machine, for tests, benchmarks and fault injection.

Theory of operation. `LocalCluster` picks free loopback ports, starts one `quorumkv server`
process per node (its own data directory and log file under `base_dir`), and offers what a
test needs to act on real processes: stop (SIGTERM, graceful), kill (SIGKILL, by PID), restart
from the same data directory, and find the leader of a shard by asking the nodes (INFO
quorumkv over a plain socket, so this module needs no client library). Conditions are awaited
by polling with a bounded deadline, never by sleeping a guessed time.

Every process it started is killed by PID when the cluster is closed (`close()`, or leaving a
`with` block), so a failing test leaves nothing running.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from quorumkv.server.status import encode_command, parse_info, reply_complete

T = TypeVar("T")

STOP_TIMEOUT_S = 15.0
"""How long a graceful stop may take before the cluster kills the process."""

START_TIMEOUT_S = 30.0
"""How long a node may take to listen for clients after its process starts."""


LISTEN_PORTS = (20_000, 32_000)
"""Ports picked for listening sockets: below Linux's default ephemeral range (32768-60999), so
an outgoing connection of another process cannot take a node's port between the moment it is
picked and the moment the node (re)binds it, which happened with ports the kernel picked."""

_port_picker = random.Random()
_handed_out: set[int] = set()  # free_port never returns a port twice in one process


def free_port() -> int:
    """A loopback port that is free now, outside the ephemeral range (LISTEN_PORTS), and not
    handed out before by this process: two calls in a row (a cluster's ports) could otherwise
    return the same port, since the probe releases it at once."""
    for _ in range(1000):
        port = _port_picker.randrange(*LISTEN_PORTS)
        if port in _handed_out:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            _handed_out.add(port)
            return port
    raise RuntimeError(f"no free port in {LISTEN_PORTS}")


def free_port_range(count: int) -> int:
    """The first of `count` consecutive loopback ports that are free now (LISTEN_PORTS), for
    `quorumkv up`, whose node I listens on BASE + I - 1."""
    for _ in range(1000):
        first = free_port()
        if first + count > LISTEN_PORTS[1]:
            continue
        with contextlib.ExitStack() as probes:
            try:
                for port in range(first + 1, first + count):
                    probes.enter_context(socket.socket()).bind(("127.0.0.1", port))
            except OSError:
                continue
            return first
    raise RuntimeError(f"no {count} consecutive free ports in {LISTEN_PORTS}")


def resp_command(port: int, *words: bytes, timeout_s: float = 2.0) -> bytes:
    """Send one command and return the raw reply bytes (one reply; bulk or simple)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as connection:
        connection.sendall(encode_command(*words))
        data = b""
        while True:
            chunk = connection.recv(65536)
            if not chunk:
                return data
            data += chunk
            if reply_complete(data):
                return data


def pipeline_replies(port: int, commands: Sequence[Sequence[bytes]], timeout_s: float
                     ) -> list[object]:
    """Write every command at once on one connection (from a thread, so that a pipeline
    larger than the socket buffers cannot deadlock) and return every reply, parsed by hiredis;
    an error reply is ("error", text)."""
    import hiredis  # a server dependency; only this helper parses replies

    data = b"".join(encode_command(*words) for words in commands)
    failures: list[BaseException] = []

    def write(connection: socket.socket) -> None:
        # In pieces: sendall's timeout bounds the whole call, and the server rightly stops
        # reading a client that sends faster than it commits (back-pressure).
        try:
            for offset in range(0, len(data), 1 << 16):
                connection.sendall(data[offset:offset + (1 << 16)])
        except OSError as error:
            failures.append(error)

    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as connection:
        reader = hiredis.Reader(replyError=lambda text: ("error", text))
        writer = threading.Thread(target=write, args=(connection,), daemon=True)
        writer.start()
        replies: list[object] = []
        while len(replies) < len(commands):
            value = reader.gets()
            if value is not False:
                replies.append(value)
                continue
            try:
                chunk = connection.recv(1 << 20)
            except TimeoutError as error:
                raise TimeoutError(f"no reply for {timeout_s} s after {len(replies)} of "
                                   f"{len(commands)} replies; sending: {failures or 'ok'}"
                                   ) from error
            if not chunk:
                raise ConnectionError(f"the server closed the connection after "
                                      f"{len(replies)} of {len(commands)} replies")
            reader.feed(chunk)
        writer.join(timeout_s)
    return replies


def info_fields(port: int, section: bytes = b"quorumkv") -> dict[str, str]:
    """INFO <section> of the node listening on `port`, as field -> value."""
    reply = resp_command(port, b"INFO", section)
    return parse_info(reply.partition(b"\r\n")[2].decode(errors="replace"))


def shard_status(fields: dict[str, str], shard_id: int) -> dict[str, str]:
    line = fields.get(f"shard_{shard_id}", "")
    return dict(item.split("=", 1) for item in line.split(",") if "=" in item)


def wait_until(condition: Callable[[], T], timeout_s: float, what: str,
               poll_s: float = 0.02) -> T:
    """Poll `condition` until it returns something truthy; raise TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(OSError, ValueError):
            result = condition()
            if result:
                return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(poll_s)


class LocalCluster:
    """N node processes on loopback; see the module docstring."""

    def __init__(self, base_dir: Path, nodes: int = 3, server_args: Sequence[str] = (),
                 cluster_id: str = "local") -> None:
        self.base_dir = Path(base_dir)
        self.node_ids = list(range(1, nodes + 1))
        self.client_ports = {n: free_port() for n in self.node_ids}
        self.peer_ports = {n: free_port() for n in self.node_ids}
        self.server_args = list(server_args)
        self.cluster_id = cluster_id
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self._logs: dict[int, object] = {}

    @property
    def peers(self) -> str:
        return ",".join(f"{n}=127.0.0.1:{self.peer_ports[n]}/127.0.0.1:{self.client_ports[n]}"
                        for n in self.node_ids)

    def data_dir(self, node_id: int) -> Path:
        return self.base_dir / f"node{node_id}"

    def log_path(self, node_id: int) -> Path:
        return self.base_dir / f"node{node_id}.log"

    # ---- processes ---------------------------------------------------------------------------

    def start(self, wait: bool = True) -> LocalCluster:
        for node_id in self.node_ids:
            self.start_node(node_id, wait=False)
        if wait:
            for node_id in self.node_ids:
                self.wait_listening(node_id)
        return self

    def start_node(self, node_id: int, wait: bool = True, bootstrap_flags: bool = True) -> None:
        """Start (or restart) a node from its data directory."""
        command = [sys.executable, "-m", "quorumkv.cli", "server",
                   "--data-dir", str(self.data_dir(node_id)), *self.server_args]
        if bootstrap_flags:
            command += ["--node-id", str(node_id), "--peers", self.peers,
                        "--cluster-id", self.cluster_id]
        self.base_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path(node_id), "ab")  # noqa: SIM115 - closed in _reap
        self._logs[node_id] = log
        self.processes[node_id] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        if wait:
            self.wait_listening(node_id)

    def wait_listening(self, node_id: int) -> None:
        process = self.processes[node_id]

        def listening() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"node {node_id} exited with {process.returncode}:\n"
                                   f"{self.log(node_id)[-3000:]}")
            return resp_command(self.client_ports[node_id], b"PING") == b"+PONG\r\n"

        wait_until(listening, START_TIMEOUT_S, f"node {node_id} to listen")

    def kill(self, node_id: int, signal_number: int = signal.SIGKILL) -> None:
        """Send a signal to a node (SIGKILL by default) and wait for it to die."""
        process = self.processes[node_id]
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal_number)
        process.wait(STOP_TIMEOUT_S)
        self._reap(node_id)

    def stop(self, node_id: int) -> int:
        """Stop a node gracefully (SIGTERM); returns its exit code (killed after a timeout)."""
        process = self.processes[node_id]
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        try:
            code = process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            code = -signal.SIGKILL
        self._reap(node_id)
        return code

    def _reap(self, node_id: int) -> None:
        self.processes.pop(node_id, None)
        log = self._logs.pop(node_id, None)
        if log is not None:
            log.close()  # type: ignore[attr-defined]

    def is_running(self, node_id: int) -> bool:
        process = self.processes.get(node_id)
        return process is not None and process.poll() is None

    def pid(self, node_id: int) -> int:
        return self.processes[node_id].pid

    def close(self) -> None:
        """Kill every process this cluster started, by PID."""
        for node_id in list(self.processes):
            process = self.processes[node_id]
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGKILL)
                process.wait(STOP_TIMEOUT_S)
            self._reap(node_id)

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    # ---- observation -------------------------------------------------------------------------

    def log(self, node_id: int) -> str:
        try:
            return self.log_path(node_id).read_text(errors="replace")
        except OSError:
            return ""

    def running(self) -> list[int]:
        return [n for n in self.node_ids if self.is_running(n)]

    def leader(self, shard_id: int = 1) -> int:
        """The leader every running node hosting the shard agrees on (0 if they do not agree
        or none is, or a node does not know the cluster metadata yet)."""
        seen = set()
        for node_id in self.running():
            fields = info_fields(self.client_ports[node_id])
            if fields.get("cluster_epoch", "0") == "0":
                return 0
            if f"shard_{shard_id}" in fields:
                seen.add(int(shard_status(fields, shard_id).get("leader", 0)))
        return seen.pop() if len(seen) == 1 else 0

    def wait_for_leader(self, shard_id: int = 1, timeout_s: float = 30.0) -> int:
        leader = wait_until(lambda: self.leader(shard_id), timeout_s,
                            f"the nodes to agree on a leader of shard {shard_id}")
        return leader

    def preferred_leaders_lead(self) -> bool:
        """Whether every data shard is led by its preferred leader, as every running node
        hosting it sees it (the nodes hand leadership over to reach this: an even spread)."""
        for node_id in self.running():
            fields = info_fields(self.client_ports[node_id])
            if fields.get("cluster_epoch", "0") == "0":
                return False
            for name, value in fields.items():
                shard_id = name.removeprefix("cluster_shard_")
                if name.startswith("cluster_shard_") and shard_id != "0" and (
                        f"shard_{shard_id}" in fields):
                    shard = dict(item.split("=", 1) for item in value.split(","))
                    if shard["leader"] != shard["preferred_leader"]:
                        return False
        return True

    def wait_for_preferred_leaders(self, timeout_s: float = 30.0) -> None:
        wait_until(self.preferred_leaders_lead, timeout_s,
                   "every shard to be led by its preferred leader")

    def applied_index(self, node_id: int, shard_id: int = 1) -> int:
        status = shard_status(info_fields(self.client_ports[node_id]), shard_id)
        return int(status.get("applied", 0))
