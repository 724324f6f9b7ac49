"""The node processes of a verify run: start, kill -9, stop, pause, resume, restart, observe.

Theory of operation. Each node is one `quorumkv server` process started where its `NodeHost`
says (inside its namespace through `ip netns exec`, which execs the server in place, so the PID
the harness holds is the server's own). Its output is appended to `nodes/nodeN.log` in the run
directory, across restarts. Every signal goes to a PID this object started; `close()` resumes
and kills them all, so nothing outlives the run.

The harness knows which nodes it took down (killed, stopping) and which it paused; a process
that exits otherwise crashed by itself, and `crashes()` reports it with its exit code (70 is a
broken invariant, a bug). Observations go through the nodes' own client port: PING, `INFO quorumkv` for
each shard's role, leader and term, and a read (EXISTS) that must go through a leader. Conditions are awaited by polling with a
deadline, never by sleeping a guessed time.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import redis

from quorumkv import limits
from quorumkv.errors import VerifySetupFailed
from quorumkv.verify import interruption
from quorumkv.verify.connection import NodeConnection
from quorumkv.verify.hosts import NodeHost, peers_flag

OBSERVE_TIMEOUT_S = 0.5
"""Seconds the harness waits for a node's answer to PING or INFO when it observes the cluster."""

POLL_INTERVAL_S = 0.05
"""Seconds between two looks at a condition being awaited."""

HEALTH_KEY = "{verify-health}"
"""The key whose EXISTS tells that a node serves reads (through its shard's leader)."""

_SHARD_LINE = re.compile(r"^shard_(\d+):(.*)$")


@dataclass(frozen=True, slots=True)
class Crash:
    """A node process that exited without the harness taking it down, or that exited with an
    error when asked to stop gracefully."""

    node_id: int
    exit_code: int
    time_s: float
    log_tail: str


@dataclass(frozen=True, slots=True)
class ShardView:
    """One node's view of one shard, from INFO quorumkv."""

    role: str
    leader: int
    term: int


def observe_command(host: NodeHost, *words: str) -> object:
    """Send one command to a node on a fresh connection; raise redis errors or OSError."""
    connection = NodeConnection(host.client_host, host.client_port, OBSERVE_TIMEOUT_S,
                                OBSERVE_TIMEOUT_S)
    try:
        connection.connect()
        return connection.command(*words)
    finally:
        connection.close()


def shard_views(info_text: str) -> dict[int, ShardView]:
    """The `shard_N:role=...,leader=...,term=...` lines of INFO quorumkv, by shard id."""
    views = {}
    for line in info_text.splitlines():
        match = _SHARD_LINE.match(line.strip())
        if not match:
            continue
        fields = dict(item.split("=", 1) for item in match.group(2).split(",") if "=" in item)
        views[int(match.group(1))] = ShardView(fields.get("role", "?"),
                                               int(fields.get("leader", "0") or 0),
                                               int(fields.get("term", "0") or 0))
    return views


class NodeProcesses:
    """Every node process of one run; see the module docstring."""

    def __init__(self, hosts: Sequence[NodeHost], run_directory: Path, cluster_id: str,
                 server_arguments: Sequence[str] = ()) -> None:
        self.hosts = {host.node_id: host for host in hosts}
        self.log_directory = run_directory / "nodes"
        self.data_directory = run_directory / "data"
        self.cluster_id = cluster_id
        self.server_arguments = list(server_arguments)
        self._processes: dict[int, subprocess.Popen[bytes]] = {}
        self._logs: dict[int, IO[bytes]] = {}
        self._taken_down: set[int] = set()
        self._paused: set[int] = set()
        self._crashes: list[Crash] = []
        self._lock = threading.Lock()
        self._started_at = time.monotonic()

    @property
    def node_ids(self) -> list[int]:
        return sorted(self.hosts)

    # ---- lifecycle ---------------------------------------------------------------------------

    def command(self, node_id: int) -> list[str]:
        host = self.hosts[node_id]
        return [*host.command_prefix, sys.executable, "-m", "quorumkv.cli", "server",
                "--node-id", str(node_id), "--cluster-id", self.cluster_id,
                "--peers", peers_flag(list(self.hosts.values())),
                "--data-dir", str(self.data_directory / f"node{node_id}"),
                *self.server_arguments]

    def start_all(self) -> None:
        """Start every node and wait until each answers PING; raise VerifySetupFailed."""
        for node_id in self.node_ids:
            self.start(node_id)
        for node_id in self.node_ids:
            self.wait_listening(node_id)

    def start(self, node_id: int) -> None:
        """Start (or restart, from its data directory) one node's process."""
        with self._lock:
            self._check_crashes()
            if self._running(node_id):
                return
            self.log_directory.mkdir(parents=True, exist_ok=True)
            log = self._logs.get(node_id)
            if log is None:
                log = open(self.log_directory / f"node{node_id}.log", "ab")  # noqa: SIM115
                self._logs[node_id] = log
            log.write(f"==== verify: starting node {node_id} at "
                      f"{time.monotonic() - self._started_at:.3f} s ====\n".encode())
            log.flush()
            try:
                self._processes[node_id] = subprocess.Popen(
                    self.command(node_id), stdout=log, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, start_new_session=True)
            except OSError as error:
                raise VerifySetupFailed(f"starting node {node_id}", str(error)) from error
            self._taken_down.discard(node_id)
            self._paused.discard(node_id)

    def wait_listening(self, node_id: int) -> None:
        """Wait until a node answers PING; raise VerifySetupFailed if it exits or times out."""
        deadline = time.monotonic() + limits.verify_node_start_timeout_ms / 1000
        while not self.answers_ping(node_id):
            process = self._processes.get(node_id)
            if process is None or process.poll() is not None:
                raise VerifySetupFailed(f"starting node {node_id}",
                                        f"it exited:\n{self.log_tail(node_id)}")
            if time.monotonic() > deadline:
                raise VerifySetupFailed(f"starting node {node_id}",
                                        "it did not answer PING in time")
            interruption.wait(POLL_INTERVAL_S)

    def kill(self, node_id: int) -> None:
        """SIGKILL a node (by PID) and wait for it to die."""
        with self._lock:
            self._check_crashes()
            process = self._processes.get(node_id)
            if process is None or process.poll() is not None:
                return
            self._taken_down.add(node_id)
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
            process.wait()
            self._paused.discard(node_id)

    def stop(self, node_id: int) -> int:
        """SIGTERM a node (graceful: it hands over leadership) and wait; SIGKILL it after
        `limits.verify_node_stop_timeout_ms`. Returns its exit code."""
        with self._lock:
            self._check_crashes()
            process = self._processes.get(node_id)
            if process is None or process.poll() is not None:
                return 0
            self._taken_down.add(node_id)
            if node_id in self._paused:
                self._signal(process, signal.SIGCONT)
                self._paused.discard(node_id)
            self._signal(process, signal.SIGTERM)
            try:
                code = process.wait(limits.verify_node_stop_timeout_ms / 1000)
            except subprocess.TimeoutExpired:
                self._signal(process, signal.SIGKILL)
                return process.wait()
            if code != 0:  # a graceful stop exits 0; anything else (70: an invariant) is a bug
                self._crashes.append(Crash(node_id, code, time.monotonic() - self._started_at,
                                           self.log_tail(node_id)))
            return code

    def pause(self, node_id: int) -> None:
        """SIGSTOP a node: it keeps its sockets but does nothing until resumed."""
        with self._lock:
            process = self._processes.get(node_id)
            if process is not None and process.poll() is None:
                self._signal(process, signal.SIGSTOP)
                self._paused.add(node_id)

    def resume(self, node_id: int) -> None:
        """SIGCONT a paused node."""
        with self._lock:
            process = self._processes.get(node_id)
            if process is not None and node_id in self._paused:
                self._signal(process, signal.SIGCONT)
            self._paused.discard(node_id)

    def close(self) -> None:
        """Kill every process this run started (resumed first, so SIGKILL is prompt)."""
        with self._lock:
            for node_id, process in self._processes.items():
                if process.poll() is None:
                    self._taken_down.add(node_id)
                    self._signal(process, signal.SIGCONT)
                    self._signal(process, signal.SIGKILL)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        process.wait(limits.verify_node_stop_timeout_ms / 1000)
            for log in self._logs.values():
                log.close()
            self._logs.clear()

    @staticmethod
    def _signal(process: subprocess.Popen[bytes], number: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, number)

    # ---- state -------------------------------------------------------------------------------

    def _running(self, node_id: int) -> bool:
        process = self._processes.get(node_id)
        return process is not None and process.poll() is None

    def running(self) -> list[int]:
        """Nodes whose process is alive (paused ones included)."""
        return [n for n in self.node_ids if self._running(n)]

    def paused(self) -> list[int]:
        return sorted(self._paused)

    def serving(self) -> list[int]:
        """Nodes alive and not paused."""
        paused = set(self._paused)
        return [n for n in self.running() if n not in paused]

    def _check_crashes(self) -> None:
        for node_id, process in list(self._processes.items()):
            code = process.poll()
            if code is not None and node_id not in self._taken_down:
                self._taken_down.add(node_id)  # reported once
                self._crashes.append(Crash(node_id, code, time.monotonic() - self._started_at,
                                           self.log_tail(node_id)))

    def crashes(self) -> list[Crash]:
        """Node processes that exited by themselves so far (not killed or stopped by us)."""
        with self._lock:
            self._check_crashes()
            return list(self._crashes)

    def log_tail(self, node_id: int, characters: int = 3000) -> str:
        path = self.log_directory / f"node{node_id}.log"
        try:
            with path.open("rb") as log:
                log.seek(max(0, path.stat().st_size - characters))
                return log.read().decode(errors="replace")
        except OSError:
            return ""

    # ---- observation -------------------------------------------------------------------------

    def answers_ping(self, node_id: int) -> bool:
        with contextlib.suppress(redis.RedisError, OSError):
            return observe_command(self.hosts[node_id], "PING") in (b"PONG", "PONG", True)
        return False

    def views(self, node_id: int) -> dict[int, ShardView]:
        """The node's view of every shard it hosts ({} when it does not answer)."""
        with contextlib.suppress(redis.RedisError, OSError, ValueError):
            reply = observe_command(self.hosts[node_id], "INFO", "quorumkv")
            text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
            return shard_views(text)
        return {}

    def leaders(self) -> dict[int, int]:
        """For each shard, the node that claims its leadership in the highest term, among the
        nodes that answer (0 when none does)."""
        best: dict[int, tuple[int, int]] = {}
        for node_id in self.serving():
            for shard_id, view in self.views(node_id).items():
                best.setdefault(shard_id, (-1, 0))
                if view.role == "leader" and view.term > best[shard_id][0]:
                    best[shard_id] = (view.term, node_id)
        return {shard_id: node_id for shard_id, (_, node_id) in best.items()}

    def agreed_leaders(self) -> dict[int, int] | None:
        """Every shard's leader if every node is up, answers and names the same leader for
        every shard; else None."""
        if len(self.serving()) != len(self.hosts):
            return None
        agreed: dict[int, int] = {}
        for node_id in self.node_ids:
            views = self.views(node_id)
            if not views:
                return None
            for shard_id, view in views.items():
                if view.leader == 0 or agreed.setdefault(shard_id, view.leader) != view.leader:
                    return None
        return agreed

    def serves_reads(self, node_id: int) -> bool:
        """Whether the node answers a linearizable read (EXISTS of a key no workload uses)."""
        with contextlib.suppress(redis.RedisError, OSError):
            return isinstance(observe_command(self.hosts[node_id], "EXISTS", HEALTH_KEY), int)
        return False

    def healthy(self) -> bool:
        """Every node up, agreeing on every shard's leader, and answering reads."""
        return self.agreed_leaders() is not None and all(map(self.serves_reads, self.node_ids))

    def wait_healthy(self, timeout_s: float) -> bool:
        """Wait until `healthy()`; False if it did not hold within `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while not self.healthy():
            if time.monotonic() > deadline:
                return False
            interruption.wait(POLL_INTERVAL_S)
        return True
