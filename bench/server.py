"""Benchmark of the server: a real 3-node cluster on loopback, fsync on, driven by redis-benchmark.

Measures (issue 4):
- throughput and latency: `redis-benchmark -t set,get -n 200000 -d 100 -r 100000 -c 50` at
  -P 1 and -P 16: operations/s, p50 and p99 (ms);
- efficiency: CPU seconds per 1,000 operations summed over the three server processes (from
  /proc/<pid>/stat), visible even when client and servers share the machine's cores;
- memory: resident memory of a fresh node idle and with 10,000 open client connections, and
  of the three nodes during a steady write load (sampled; after warm-up it must stay flat);
- failover: SIGKILL the leader under a steady write load; time until a write succeeds again
  through another node; median and max of 10 trials.

Figures, never pass/fail. Usage: `python bench/server.py [--quick] [--soak-seconds 600]
[--json results.json]`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import redis
from measure import cpu_seconds, resident_bytes
from measure import redis_benchmark as run_redis_benchmark
from redis.backoff import NoBackoff
from redis.retry import Retry

from quorumkv.server.local_cluster import LocalCluster, wait_until


def cluster_cpu(cluster: LocalCluster) -> float:
    return cpu_seconds(cluster.pid(n) for n in cluster.running())


def redis_benchmark(port: int, test: str, requests: int, pipeline: int, clients: int = 50
                    ) -> dict[str, float]:
    return run_redis_benchmark(["-p", str(port), "-t", test, "-n", str(requests), "-d", "100",
                                "-r", "100000", "-c", str(clients), "-P", str(pipeline)])


def throughput(cluster: LocalCluster, requests: int) -> list[dict[str, object]]:
    leader = cluster.wait_for_leader()
    port = cluster.client_ports[leader]
    results = []
    for pipeline in (1, 16):
        for test in ("set", "get"):
            before = cluster_cpu(cluster)
            figures = redis_benchmark(port, test, requests, pipeline)
            cpu = cluster_cpu(cluster) - before
            figures["cpu_seconds_per_1000_ops"] = cpu / requests * 1000
            results.append({"test": test.upper(), "pipeline": pipeline, **figures})
            print(f"  {test.upper():4} -P {pipeline:<2}  {figures['ops_per_second']:>9,.0f} ops/s"
                  f"  p50 {figures['p50_ms']:6.2f} ms  p99 {figures['p99_ms']:6.2f} ms"
                  f"  {figures['cpu_seconds_per_1000_ops']:.3f} CPU s/1000 ops", flush=True)
    return results


def memory_with_connections(cluster: LocalCluster, connections: int) -> dict[str, float]:
    node = cluster.wait_for_leader()
    pid, port = cluster.pid(node), cluster.client_ports[node]
    idle = resident_bytes(pid)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, connections + 1024), hard))
    sockets = []
    try:
        for _ in range(connections):
            sockets.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        for connection in sockets[:: max(1, connections // 100)]:
            connection.sendall(b"*1\r\n$4\r\nPING\r\n")
            connection.recv(16)
        busy = resident_bytes(pid)
    finally:
        for connection in sockets:
            connection.close()
    return {"idle_mib": idle / 2**20, "connections": len(sockets),
            "with_connections_mib": busy / 2**20}


class SteadyWriter(threading.Thread):
    """Writes in a loop through one node, recording when each acknowledged write was sent
    and when its acknowledgement came back."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.stop = threading.Event()
        self.acknowledged: list[tuple[float, float]] = []  # (sent, acknowledged)
        self.errors = 0

    def first_acknowledged_after(self, moment: float) -> float | None:
        """When the first write sent after `moment` was acknowledged (a write sent before
        it may be acknowledged after it: it does not show that writes flow again)."""
        return next((done for sent, done in self.acknowledged if sent > moment), None)

    def run(self) -> None:
        client = redis.Redis(port=self.port, socket_timeout=10, retry=Retry(NoBackoff(), 0))
        index = 0
        while not self.stop.is_set():
            index += 1
            sent = time.monotonic()
            try:
                if client.set(f"steady:{index % 10_000}", index):
                    self.acknowledged.append((sent, time.monotonic()))
            except (redis.ResponseError, redis.ConnectionError, redis.TimeoutError):
                self.errors += 1
                time.sleep(0.005)  # a client's retry pause, not a wait for a condition


def failover(cluster: LocalCluster, trials: int) -> dict[str, object]:
    times = []
    for trial in range(trials):
        leader = cluster.wait_for_leader()
        survivor = next(n for n in cluster.node_ids if n != leader)
        writer = SteadyWriter(cluster.client_ports[survivor])
        writer.start()
        wait_until(lambda w=writer: len(w.acknowledged) > 50, 30, "a steady write load")
        killed_at = time.monotonic()
        cluster.kill(leader, signal.SIGKILL)
        done = wait_until(lambda w=writer, k=killed_at: w.first_acknowledged_after(k), 30,
                          "writes to succeed again")
        recovered = done - killed_at
        writer.stop.set()
        writer.join()
        times.append(recovered)
        print(f"  trial {trial + 1}: writes again after {recovered:.3f} s", flush=True)
        cluster.start_node(leader, bootstrap_flags=False)
        wait_until(lambda: cluster.leader() != 0, 30, "the cluster to settle")
    return {"trials": trials, "median_s": statistics.median(times), "max_s": max(times),
            "all_s": times}


def soak(cluster: LocalCluster, seconds: float) -> dict[str, object]:
    """Resident memory of every node, sampled during a steady pipelined write load."""
    leader = cluster.wait_for_leader()
    port = cluster.client_ports[leader]
    command = ["redis-benchmark", "-p", str(port), "-t", "set", "-n", "1000000000", "-d", "100",
               "-r", "100000", "-c", "20", "-P", "4", "-q"]
    load = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    samples: list[tuple[float, float]] = []
    started = time.monotonic()
    try:
        while (elapsed := time.monotonic() - started) < seconds:
            total = sum(resident_bytes(cluster.pid(n)) for n in cluster.running()) / 2**20
            samples.append((elapsed, total))
            time.sleep(min(10.0, seconds / 20))  # the sampling period of the measurement
    finally:
        load.terminate()  # redis-benchmark ignores SIGINT while it runs
        try:
            load.wait(10)
        except subprocess.TimeoutExpired:
            load.kill()
            load.wait()
    # Caches and memtables fill during the first fifth; after that the sum must stay flat.
    settled = [m for t, m in samples if t >= seconds / 5] or [samples[-1][1]]
    third = max(1, len(settled) // 3)
    early = statistics.mean(settled[:third])
    late = statistics.mean(settled[-third:])
    print(f"  resident memory, sum of 3 nodes: {samples[0][1]:.0f} MiB at start; after "
          f"warm-up {early:.0f} MiB (first third), {late:.0f} MiB (last third), "
          f"max {max(settled):.0f} MiB over {seconds:.0f} s", flush=True)
    return {"seconds": seconds, "start_mib": samples[0][1], "settled_first_third_mib": early,
            "settled_last_third_mib": late, "settled_max_mib": max(settled),
            "samples": samples}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="20,000 requests, 3 failover trials, 30 s soak")
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--failover-trials", type=int, default=10)
    parser.add_argument("--soak-seconds", type=float, default=600)
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--only", default="throughput,memory,failover,soak",
                        help="comma-separated parts to run (default: all)")
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    arguments = parser.parse_args()
    if arguments.quick:
        arguments.requests, arguments.failover_trials = 20_000, 3
        arguments.soak_seconds = min(arguments.soak_seconds, 30)
    results: dict[str, object] = {"machine": {"cpus": os.cpu_count(),
                                              "python": sys.version.split()[0]}}
    with tempfile.TemporaryDirectory(prefix="quorumkv-bench-") as base, \
            LocalCluster(Path(base), nodes=3, server_args=["--shards", "1"]) as cluster:
        cluster.start()
        cluster.wait_for_leader()
        parts = set(arguments.only.split(","))
        if "memory" in parts:
            print(f"memory with {arguments.connections} connections:")
            results["memory"] = memory_with_connections(cluster, arguments.connections)
            print("  idle {idle_mib:.0f} MiB, with {connections} connections "
                  "{with_connections_mib:.0f} MiB".format(**results["memory"]), flush=True)
        if "throughput" in parts:
            print("throughput (3 nodes, fsync on, -d 100 -r 100000 -c 50, against the leader):")
            results["throughput"] = throughput(cluster, arguments.requests)
        if "failover" in parts:
            print(f"failover ({arguments.failover_trials} trials, SIGKILL of the leader):")
            results["failover"] = failover(cluster, arguments.failover_trials)
            print("  median {median_s:.3f} s, max {max_s:.3f} s".format(**results["failover"]))
        if "soak" in parts and arguments.soak_seconds > 0:
            print(f"steady write load for {arguments.soak_seconds:.0f} s:")
            results["soak"] = soak(cluster, arguments.soak_seconds)
    if arguments.json:
        arguments.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
