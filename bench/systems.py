"""The systems `make bench` compares, each started on loopback from scratch and stopped by PID.

Theory of operation. A `System` starts its processes under a fresh base directory, waits until
they serve, and tells the suite three things: where clients connect (`endpoints`), which
protocol they speak there (`protocol`: "resp" or "etcd"; `cluster_routing`: whether a client
should route keys by CLUSTER SLOTS), and which process ids are the server (`pids`, so the suite
can sum their CPU from /proc). `durability` states, in words, what an acknowledgement means on
that system; the report prints it next to every figure.

The systems whose failover and restart are measured (quorumkv, etcd) also offer
`node_names`, `leader_node`, `node_endpoint`, `kill_node`, `restart_node`, `wait_settled` and
`restart_all`. Every process a system started is killed by PID in
`stop()`; nothing else is touched.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from quorumkv.server.local_cluster import LocalCluster, free_port, resp_command, wait_until

T = TypeVar("T")

START_TIMEOUT_S = 60.0
"""How long a system may take to serve after its processes start."""

STOP_TIMEOUT_S = 20.0
"""How long a graceful stop may take before the process is killed."""

HOST = "127.0.0.1"


class System:
    """One system under test; subclasses start and stop its processes."""

    name = ""
    label = ""
    protocol = "resp"
    cluster_routing = False
    bulk_group = "none"
    """How bulk loading groups keys into one MSET: "none", "slot" or "range" (loadgen.py)."""
    durability = ""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = Path(base_dir)
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.processes: list[subprocess.Popen[bytes]] = []
        self._logs: list[object] = []

    # ---- what subclasses provide ---------------------------------------------------------------

    def start(self) -> None:
        raise NotImplementedError

    def endpoints(self) -> list[tuple[str, int]]:
        raise NotImplementedError

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes if p.poll() is None]

    def version(self) -> str:
        return ""

    # ---- shared process handling ---------------------------------------------------------------

    def spawn(self, command: list[str], log_name: str,
              env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = open(self.base_dir / log_name, "ab")  # noqa: SIM115 - closed in stop()
        self._logs.append(log)
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, **(env or {})})
        self.processes.append(process)
        return process

    def check_alive(self) -> None:
        for process in self.processes:
            if process.poll() is not None:
                raise RuntimeError(f"{self.name}: {process.args} exited with "
                                   f"{process.returncode}; logs in {self.base_dir}")

    def stop(self) -> None:
        """SIGTERM every process this system started, SIGKILL any still running after a while."""
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process in self.processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()
        for log in self._logs:
            log.close()  # type: ignore[attr-defined]
        self._logs.clear()

    def __enter__(self) -> System:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def resp_ping(port: int) -> bool:
    try:
        return resp_command(port, b"PING") == b"+PONG\r\n"
    except OSError:
        return False


def await_condition(condition: Callable[[], T], what: str,
                    timeout_s: float = START_TIMEOUT_S) -> T:
    return wait_until(condition, timeout_s, what)


def command_version(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True,
                              timeout=10).stdout.strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "unknown"


# ---- quorumkv -----------------------------------------------------------------------------------


class Quorumkv(System):
    """quorumkv, 3 nodes on loopback, `shards` data shards, sync on (the default)."""

    protocol = "resp"
    cluster_routing = True
    bulk_group = "range"
    durability = ("acknowledged after a majority of the shard's replicas fsynced the entry "
                  "(group commit; --sync, the default); linearizable reads by ReadIndex")

    def __init__(self, base_dir: Path, shards: int) -> None:
        super().__init__(base_dir)
        self.shards = shards
        self.name = f"quorumkv-{shards}"
        self.label = f"quorumkv, 3 nodes, {shards} shard{'s' if shards > 1 else ''}"
        self.routing = "cluster-aware: each key to its shard's leader (CLUSTER SLOTS)"
        self.cluster = LocalCluster(self.base_dir, nodes=3,
                                    server_args=["--shards", str(shards), "--log-level",
                                                 "warning"])

    def start(self) -> None:
        self.cluster.start()
        self.cluster.wait_for_leader()
        self.cluster.wait_for_preferred_leaders(timeout_s=START_TIMEOUT_S)

    def stop(self) -> None:
        for node_id in list(self.cluster.processes):
            self.cluster.stop(node_id)
        self.cluster.close()

    def endpoints(self) -> list[tuple[str, int]]:
        return [(HOST, self.cluster.client_ports[n]) for n in self.cluster.node_ids]

    def pids(self) -> list[int]:
        return [self.cluster.pid(n) for n in self.cluster.running()]

    def version(self) -> str:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, cwd=Path(__file__).parent).stdout.strip()

    def leader_node(self) -> int:
        return self.cluster.wait_for_leader(1)

    def kill_node(self, node_id: int) -> None:
        self.cluster.kill(node_id)

    def restart_node(self, node_id: int) -> None:
        self.cluster.start_node(node_id, bootstrap_flags=False)

    def node_endpoint(self, node_id: int) -> tuple[str, int]:
        return (HOST, self.cluster.client_ports[node_id])

    def node_names(self) -> list[int]:
        return list(self.cluster.node_ids)

    def wait_settled(self) -> None:
        self.cluster.wait_for_leader()
        self.cluster.wait_for_preferred_leaders(timeout_s=START_TIMEOUT_S)

    def restart_all(self) -> None:
        """Graceful stop of every node, then start them all again from their data."""
        for node_id in list(self.cluster.processes):
            self.cluster.stop(node_id)
        for node_id in self.cluster.node_ids:
            self.cluster.start_node(node_id, wait=False, bootstrap_flags=False)


# ---- etcd ---------------------------------------------------------------------------------------

ETCD_QUOTA_BYTES = 8 * 1024**3
"""--quota-backend-bytes: etcd's documented maximum, so 10,000,000 keys fit (the default 2 GiB
does not); it limits space, not durability."""


class Etcd(System):
    """etcd, 3 members on loopback, default durability (WAL fsync before acknowledging)."""

    name = "etcd"
    label = "etcd, 3 members"
    protocol = "etcd"
    durability = ("acknowledged after a majority fsynced the WAL (etcd default); "
                  "linearizable reads (Range, serializable=false)")
    routing = "client i to member i mod 3, as etcd's client balances; followers forward"

    def __init__(self, base_dir: Path) -> None:
        super().__init__(base_dir)
        self.names = ["m1", "m2", "m3"]
        self.client_ports = {n: free_port() for n in self.names}
        self.peer_ports = {n: free_port() for n in self.names}
        self.by_name: dict[str, subprocess.Popen[bytes]] = {}

    def _command(self, member: str, state: str) -> list[str]:
        initial = ",".join(f"{n}=http://{HOST}:{self.peer_ports[n]}" for n in self.names)
        client = f"http://{HOST}:{self.client_ports[member]}"
        peer = f"http://{HOST}:{self.peer_ports[member]}"
        return ["etcd", "--name", member, "--data-dir", str(self.base_dir / member),
                "--listen-client-urls", client, "--advertise-client-urls", client,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", initial, "--initial-cluster-token", "quorumkv-bench",
                "--initial-cluster-state", state, "--quota-backend-bytes",
                str(ETCD_QUOTA_BYTES), "--logger", "zap", "--log-level", "warn"]

    def start_member(self, member: str) -> None:
        state = "existing" if (self.base_dir / member).exists() else "new"
        self.by_name[member] = self.spawn(self._command(member, state), f"{member}.log")

    def start(self) -> None:
        for member in self.names:
            self.start_member(member)
        self.wait_serving()

    def endpoints(self) -> list[tuple[str, int]]:
        return [(HOST, self.client_ports[n]) for n in self.names]

    def etcdctl(self, *args: str, members: list[str] | None = None,
                 timeout_s: float = 5.0) -> subprocess.CompletedProcess[str]:
        endpoints = ",".join(f"http://{HOST}:{self.client_ports[n]}"
                             for n in (members or self.names))
        return subprocess.run(["etcdctl", "--endpoints", endpoints, "--command-timeout",
                               f"{timeout_s}s", *args], capture_output=True, text=True,
                              env={**os.environ, "ETCDCTL_API": "3"}, timeout=timeout_s + 5)

    def wait_serving(self, timeout_s: float = START_TIMEOUT_S) -> None:
        def serving() -> bool:
            self.check_running()
            return self.etcdctl("put", "bench-probe", "1", timeout_s=2).returncode == 0

        await_condition(serving, "etcd to accept writes", timeout_s)

    def check_running(self) -> None:
        for member, process in self.by_name.items():
            if process.poll() is not None:
                raise RuntimeError(f"etcd {member} exited with {process.returncode}; "
                                   f"see {self.base_dir / (member + '.log')}")

    def leader_node(self) -> str:
        def leader() -> str | None:
            live = [n for n, p in self.by_name.items() if p.poll() is None]
            status = self.etcdctl("endpoint", "status", "-w", "json", members=live)
            if status.returncode != 0:
                return None
            for entry in json.loads(status.stdout):
                header = entry["Status"]["header"]
                if header["member_id"] == entry["Status"]["leader"]:
                    port = int(entry["Endpoint"].rsplit(":", 1)[1])
                    return next(n for n in self.names if self.client_ports[n] == port)
            return None

        return await_condition(leader, "an etcd leader")

    def kill_node(self, member: str) -> None:
        process = self.by_name.pop(member)
        process.kill()
        process.wait()

    def restart_node(self, member: str) -> None:
        self.start_member(member)

    def node_endpoint(self, member: str) -> tuple[str, int]:
        return (HOST, self.client_ports[member])

    def node_names(self) -> list[str]:
        return list(self.names)

    def wait_settled(self) -> None:
        self.wait_serving()
        self.leader_node()

    def restart_all(self) -> None:
        for member in list(self.by_name):
            process = self.by_name.pop(member)
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for member in self.names:
            self.start_member(member)

    def version(self) -> str:
        return command_version(["etcd", "--version"]).replace("etcd Version: ", "")


# ---- Redis --------------------------------------------------------------------------------------


class RedisAlone(System):
    """One redis-server: appendfsync always, or no persistence (the single-thread ceiling)."""

    protocol = "resp"
    routing = "every client to the one server"

    def __init__(self, base_dir: Path, appendfsync_always: bool) -> None:
        super().__init__(base_dir)
        self.port = free_port()
        self.always = appendfsync_always
        if appendfsync_always:
            self.name, self.label = "redis-always", "Redis, 1 server, appendfsync always"
            self.durability = ("AOF fsynced before the reply (appendfsync always); "
                               "one copy, no replication")
        else:
            self.name, self.label = "redis-none", "Redis, 1 server, no persistence"
            self.durability = "in memory only: no AOF, no RDB, no replication"

    def start(self) -> None:
        persistence = (["--appendonly", "yes", "--appendfsync", "always"] if self.always
                       else ["--appendonly", "no"])
        self.spawn(["redis-server", "--port", str(self.port), "--bind", HOST, "--dir",
                    str(self.base_dir), "--save", "", "--daemonize", "no", *persistence],
                   "redis.log")
        await_condition(lambda: self.check_alive() or resp_ping(self.port), "redis to serve")

    def endpoints(self) -> list[tuple[str, int]]:
        return [(HOST, self.port)]

    def version(self) -> str:
        return redis_version()


def redis_version() -> str:
    text = command_version(["redis-server", "--version"])
    return text.split("v=")[1].split()[0] if "v=" in text else text


def cluster_port_pair() -> int:
    """A free port p whose cluster bus port p + 10000 is free too (Redis Cluster needs both)."""
    for _ in range(1000):
        port = free_port()  # below 32,000, so the bus port stays below 65,536
        try:
            for candidate in (port, port + REDIS_CLUSTER_BUS_OFFSET):
                with socket.socket() as probe:
                    probe.bind((HOST, candidate))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for Redis Cluster")


REDIS_CLUSTER_BUS_OFFSET = 10000


class RedisCluster(System):
    """Redis Cluster: 3 masters, each with one asynchronously replicated replica."""

    name = "redis-cluster"
    label = "Redis Cluster, 3 masters + 3 replicas"
    protocol = "resp"
    cluster_routing = True
    bulk_group = "slot"
    durability = ("in memory: acknowledged by the master before asynchronous replication; "
                  "no AOF, no RDB")
    routing = "cluster-aware: each key to its slot's master (CLUSTER SLOTS)"

    def __init__(self, base_dir: Path) -> None:
        super().__init__(base_dir)
        self.ports: list[int] = []
        while len(self.ports) < 6:
            port = cluster_port_pair()
            if port not in self.ports:
                self.ports.append(port)

    def start(self) -> None:
        for port in self.ports:
            directory = self.base_dir / str(port)
            directory.mkdir(parents=True, exist_ok=True)
            self.spawn(["redis-server", "--port", str(port), "--bind", HOST, "--dir",
                        str(directory), "--cluster-enabled", "yes", "--cluster-config-file",
                        "nodes.conf", "--appendonly", "no", "--save", "", "--daemonize", "no"],
                       f"redis-{port}.log")
        for port in self.ports:
            await_condition(lambda p=port: self.check_alive() or resp_ping(p), "redis to serve")
        subprocess.run(["redis-cli", "--cluster", "create",
                        *(f"{HOST}:{p}" for p in self.ports), "--cluster-replicas", "1",
                        "--cluster-yes"], check=True, capture_output=True, timeout=60)

        def ok() -> bool:
            return all(b"cluster_state:ok" in resp_command(p, b"CLUSTER", b"INFO")
                       for p in self.ports)

        await_condition(ok, "the Redis cluster to be ok")

    def endpoints(self) -> list[tuple[str, int]]:
        return [(HOST, p) for p in self.ports]

    def version(self) -> str:
        return redis_version()
