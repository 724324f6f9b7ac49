"""`make bench`: quorumkv side by side with etcd, Redis and PySyncObj, same machine, same run.

Theory of operation. The suite runs one system at a time on loopback (systems.py), each from
an empty data directory, and drives every one with the same load generator (loadgen.py), so
the ratios between systems are fair. For each system it bulk-loads the key space, then runs
each workload at each client count, sampling the servers' CPU from /proc over exactly the
measured window. Then, for the systems it names, it measures how cost grows with data
(`growth`), how long writes are unavailable after SIGKILL of the leader (`failover`), how long
a full restart takes to serve again with 1,000,000 keys (`restart`, taken during growth), and
how fast a snapshot reaches a replica that fell behind (`snapshot`). redis-benchmark
cross-checks the load generator on the RESP systems.

The results are one JSON document; report.py renders it into bench/results/<date>.md, the
plots, and the README table. `--quick` runs a subset in under five minutes and writes into
bench/results/quick/ without touching the README.

Figures, never pass/fail: the aims are ratios the report states, met or not.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from loadgen import LoadSpec, SlotMap, bulk_load, etcd_put, etcd_range, key_name, run_load
from measure import cpu_seconds
from measure import redis_benchmark as run_redis_benchmark
from systems import Etcd, Quorumkv, RedisAlone, RedisCluster, System, await_condition

from quorumkv.cluster.slots import key_slot
from quorumkv.server.local_cluster import info_fields, resp_command, shard_status

BENCH_DIR = Path(__file__).resolve().parent

PROBE_INTERVAL_S = 0.01
PROBE_TIMEOUT_S = 2.0
PROBE_IN_FLIGHT_MAX = 256
"""Failover probes: one write every 10 ms, each given 2 s, so at most 200 are in flight (the
bound is above that): writes stuck behind the dead leader (etcd holds them up to its 7 s
request timeout) must not stop new probes from being sent."""

RECOVERY_TIMEOUT_S = 60.0
"""How long writes may stay unavailable after a kill, or a restart take, before the suite fails."""

SETTLE_WINDOW_S = 2.0
SETTLE_MARGIN_CORES = 0.05
SETTLE_TIMEOUT_S = 300.0
"""After a bulk load the suite waits (at most 300 s) until the servers' CPU over 2 s is within
0.05 cores of what they used idle before the load."""

PYSYNCOBJ_CROSS_CHECK_REQUESTS = 5_000
"""redis-benchmark requests per test against PySyncObj (the others: Plan.cross_check_requests)."""

SNAPSHOT_LOAD_RUNS_MAX = 60
"""One-second write runs made at most while a follower is down, waiting for the leader to
compact its log past the follower (log_compaction_entries_min entries)."""


@dataclass
class Plan:
    mode: str
    systems: list[str]
    workloads: list[str]
    clients: list[int]
    warmup_s: float
    duration_s: float
    keys: int = 100_000
    value_bytes: int = 100
    processes: int = 2
    pipelined: list[tuple[str, int, int]] = field(default_factory=list)
    """(workload, clients, pipeline) runs beyond pipeline 1."""
    cross_check: bool = False
    cross_check_requests: int = 50_000
    growth_systems: list[str] = field(default_factory=list)
    growth_keys: list[int] = field(default_factory=list)
    growth_clients: int = 64
    growth_load_timeout_s: float = 600.0
    """A growth step whose bulk load takes longer is recorded as failed, with what it reached."""
    restart_keys: int = 1_000_000
    failover_systems: list[str] = field(default_factory=list)
    failover_trials: int = 10
    snapshot_keys: int = 0


ALL_SYSTEMS = ["quorumkv-1", "quorumkv-12", "etcd", "redis-always", "redis-none",
               "redis-cluster", "pysyncobj"]


def full_plan() -> Plan:
    return Plan(mode="full", systems=ALL_SYSTEMS, workloads=["write", "read", "mix"],
                clients=[1, 16, 64, 256], warmup_s=2.0, duration_s=10.0,
                pipelined=[("write", 64, 16), ("read", 64, 16)], cross_check=True,
                growth_systems=["quorumkv-12", "etcd", "redis-always"],
                growth_keys=[100_000, 1_000_000, 10_000_000],
                failover_systems=["quorumkv-1", "etcd"], failover_trials=10,
                snapshot_keys=1_000_000)


def quick_plan() -> Plan:
    """Every kind of measurement once, small: under five minutes."""
    return Plan(mode="quick", systems=ALL_SYSTEMS, workloads=["write", "read"],
                clients=[16, 64], warmup_s=0.5, duration_s=3.0, keys=20_000,
                pipelined=[("write", 64, 16)], cross_check=True, cross_check_requests=1_000,
                growth_systems=["quorumkv-12", "etcd"], growth_keys=[20_000, 40_000],
                restart_keys=40_000, failover_systems=["quorumkv-1", "etcd"],
                failover_trials=2, snapshot_keys=20_000)


def make_system(name: str, base: Path) -> System:
    directory = base / name
    if name.startswith("quorumkv-"):
        return Quorumkv(directory, int(name.split("-")[1]))
    if name == "etcd":
        return Etcd(directory)
    if name in ("redis-always", "redis-none"):
        return RedisAlone(directory, appendfsync_always=name == "redis-always")
    if name == "redis-cluster":
        return RedisCluster(directory)
    if name == "pysyncobj":
        from pysyncobj_system import PySyncObjSystem

        return PySyncObjSystem(directory)
    raise ValueError(f"unknown system {name!r}")


# ---- measuring ----------------------------------------------------------------------------------


def measured_run(system: System, plan: Plan, workload: str, clients: int, pipeline: int = 1,
                 keys: int | None = None) -> dict[str, Any]:
    """One load-generator run with the servers' CPU over its window."""
    pids = system.pids()
    cpu: dict[str, float] = {}
    spec = LoadSpec(protocol=system.protocol, endpoints=system.endpoints(), workload=workload,
                    clients=clients, pipeline=pipeline, warmup_s=plan.warmup_s,
                    duration_s=plan.duration_s, keys=keys or plan.keys,
                    value_bytes=plan.value_bytes, processes=plan.processes,
                    cluster_routing=system.cluster_routing)
    result = run_load(spec, on_window_start=lambda: cpu.__setitem__("start", cpu_seconds(pids)),
                      on_window_end=lambda: cpu.__setitem__("end", cpu_seconds(pids)))
    server_cpu = cpu["end"] - cpu["start"]
    result.update(system=system.name, server_cpu_s=server_cpu,
                  server_cpu_s_per_1k_ops=(server_cpu / result["ops"] * 1000
                                           if result["ops"] else None))
    print(f"  {system.name:14} {workload:5} c={clients:<3} P={pipeline:<2} "
          f"{result['ops_per_second']:>9,.0f} ops/s  p50 {result['p50_ms']:7.2f} ms  "
          f"p99 {result['p99_ms']:7.2f} ms  cpu/1k "
          f"{result['server_cpu_s_per_1k_ops'] or float('nan'):.3f} s  loadgen "
          f"{result['loadgen_cpu_share']:.0%}  errors {result['errors']}", flush=True)
    return result


def redis_benchmark(system: System, test: str, clients: int, requests: int) -> dict[str, Any]:
    """redis-benchmark against a RESP system, as a cross-check of the load generator."""
    host, port = system.endpoints()[0]
    cluster = system.cluster_routing and not (isinstance(system, Quorumkv) and system.shards == 1)
    if isinstance(system, Quorumkv) and not cluster:
        # --cluster refuses a cluster of one master: send everything to the shard's leader.
        host, port = system.node_endpoint(system.leader_node())
    figures = {"system": system.name, "tool": "redis-benchmark", "test": test.upper(),
               "clients": clients, "pipeline": 1, **run_redis_benchmark(
                   [*(["--cluster"] if cluster else []), "-h", host, "-p", str(port), "-t", test,
                    "-n", str(requests), "-d", "100", "-r", "100000", "-c", str(clients),
                    "-P", "1"])}
    print(f"  {system.name:14} redis-benchmark {test.upper():3} c={clients} "
          f"{figures['ops_per_second']:>9,.0f} ops/s  p50 {figures['p50_ms']:.2f} ms  "
          f"p99 {figures['p99_ms']:.2f} ms", flush=True)
    return figures


class Prober:
    """Open-loop writes through one node: a new write every PROBE_INTERVAL_S whatever became of
    the earlier ones (up to PROBE_IN_FLIGHT_MAX at once, each with a long timeout), so the end
    of an outage is seen to within one interval, not one timeout. Records (sent, acknowledged)
    pairs; the first acknowledgement of a write sent after a moment marks recovery."""

    def __init__(self, system: System, endpoint: tuple[str, int]) -> None:
        self.system = system
        self.endpoint = endpoint
        self.stop = threading.Event()
        self.acknowledged: list[tuple[float, float]] = []
        self._lock = threading.Lock()
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(PROBE_IN_FLIGHT_MAX)
        self._slots = threading.Semaphore(PROBE_IN_FLIGHT_MAX)
        self._thread = threading.Thread(target=self._run, daemon=True)
        if system.protocol == "etcd":
            import grpc

            self._grpc = grpc
            channel = grpc.insecure_channel(f"{endpoint[0]}:{endpoint[1]}")
            self._put = channel.unary_unary("/etcdserverpb.KV/Put")

    def _write(self, key: bytes) -> bool:
        if self.system.protocol == "etcd":
            try:
                self._put(etcd_put(key, b"x" * 100), timeout=PROBE_TIMEOUT_S)
                return True
            except self._grpc.RpcError:
                return False
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        client = getattr(self._local, "client", None)
        if client is None:  # one connection per pool thread, no client-side retries
            client = self._local.client = redis.Redis(
                *self.endpoint, socket_timeout=PROBE_TIMEOUT_S, retry=Retry(NoBackoff(), 0),
                socket_connect_timeout=PROBE_TIMEOUT_S, protocol=2)
        try:
            return bool(client.set(key, b"x" * 100))
        except redis.RedisError:
            return False

    def _one(self, key: bytes, sent: float) -> None:
        try:
            if self._write(key):
                with self._lock:
                    self.acknowledged.append((sent, time.monotonic()))
        finally:
            self._slots.release()

    def _run(self) -> None:
        index = 0
        while not self.stop.wait(PROBE_INTERVAL_S):
            if not self._slots.acquire(timeout=PROBE_TIMEOUT_S):
                continue
            index += 1
            self._pool.submit(self._one, key_name(index % 100_000), time.monotonic())

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self.stop.set()
        self._thread.join()
        self._pool.shutdown(wait=True)

    def first_acknowledged_after(self, moment: float) -> float | None:
        """When the first write sent at or after `moment` was acknowledged (None: none yet)."""
        with self._lock:
            after = [acknowledged for sent, acknowledged in self.acknowledged if sent >= moment]
        return min(after) if after else None

    def acknowledged_count(self) -> int:
        with self._lock:
            return len(self.acknowledged)


def failover(system: Any, trials: int) -> dict[str, Any]:
    """SIGKILL the leader under an open-loop write stream through a surviving node (Prober);
    time until a write sent after the kill is acknowledged. The killed node restarts and the
    cluster settles between trials."""
    times = []
    for trial in range(trials):
        system.wait_settled()
        leader = system.leader_node()
        survivor = next(n for n in system.node_names() if n != leader)
        prober = Prober(system, system.node_endpoint(survivor))
        prober.start()
        try:
            await_condition(lambda p=prober: p.acknowledged_count() > 50, "a steady write stream")
            killed_at = time.monotonic()
            system.kill_node(leader)
            done = await_condition(lambda p=prober, k=killed_at: p.first_acknowledged_after(k),
                                   "writes to succeed again", RECOVERY_TIMEOUT_S)
        finally:
            prober.close()
        times.append(done - killed_at)
        print(f"  {system.name:14} failover trial {trial + 1}: writes again after "
              f"{done - killed_at:.3f} s", flush=True)
        system.restart_node(leader)
    system.wait_settled()
    return {"system": system.name, "trials_s": times, "median_s": statistics.median(times),
            "max_s": max(times)}


def shard_probe_keys(system: System) -> list[bytes]:
    """One key in each CLUSTER SLOTS range (quorumkv: one per shard), so a probe touches every
    shard; a single key for a system without slots."""
    if not system.cluster_routing:
        return [b"restart-probe"]
    slots = SlotMap()
    asyncio.run(slots.load(system.endpoints()))
    keys: dict[int, bytes] = {}
    for index in range(100_000):
        key = b"restart-probe:%d" % index
        keys.setdefault(slots.range_of[key_slot(key)], key)
        if len(keys) == len(set(slots.range_of)):
            break
    return list(keys.values())


def serves_everywhere(system: Any, probe_keys: list[bytes], loaded_key: bytes) -> bool:
    """Every node (member) acknowledges a write of each probe key and returns a loaded key."""
    if system.protocol == "etcd":
        import grpc

        for host, port in system.endpoints():
            with grpc.insecure_channel(f"{host}:{port}") as channel:
                put = channel.unary_unary("/etcdserverpb.KV/Put")
                get = channel.unary_unary("/etcdserverpb.KV/Range")
                try:
                    put(etcd_put(probe_keys[0], b"1"), timeout=1.0)
                    if loaded_key not in get(etcd_range(loaded_key), timeout=1.0):
                        return False
                except grpc.RpcError:
                    return False
        return True
    try:
        for _, port in system.endpoints():
            for key in probe_keys:
                if not resp_command(port, b"SET", key, b"1", timeout_s=1).startswith(b"+OK"):
                    return False
            if not resp_command(port, b"GET", loaded_key, timeout_s=1).startswith(b"$"):
                return False
        return True
    except OSError:
        return False


def restart_to_serving(system: Any, keys: int) -> dict[str, Any]:
    """Stop every node gracefully and start them again; the time from starting them until every
    node acknowledges a write to every shard and returns a loaded key (the same definition for
    quorumkv and etcd)."""
    probe_keys = shard_probe_keys(system)
    loaded_key = key_name(keys - 1)
    system.restart_all()
    began = time.monotonic()
    await_condition(lambda: serves_everywhere(system, probe_keys, loaded_key),
                    "the restarted cluster to serve", RECOVERY_TIMEOUT_S)
    seconds = time.monotonic() - began
    print(f"  {system.name:14} restart with {keys:,} keys: serving after {seconds:.2f} s",
          flush=True)
    system.wait_settled()
    return {"system": system.name, "keys": keys, "seconds": seconds}


def snapshot_transfer(base: Path, keys: int, plan: Plan) -> dict[str, Any]:
    """quorumkv, 1 shard, `keys` loaded: a follower down while the log is compacted past it
    catches up by snapshot on restart; the bytes it received over the time from its serving
    clients (process start and its own recovery done) until it applied the leader's commit.
    A replica that fell behind stands in for a new one: replicas cannot be added to a running
    cluster yet (membership commands are a later issue)."""
    system = Quorumkv(base / "snapshot", 1)
    system.start()
    try:
        bulk_load("resp", system.endpoints(), "range", 0, keys, plan.value_bytes, plan.processes)
        cluster = system.cluster
        leader = cluster.wait_for_leader()
        lagging = next(n for n in cluster.node_ids if n != leader)
        lagging_applied = cluster.applied_index(lagging)
        cluster.kill(lagging)
        # Pipelined SETs (each its own log entry) until the leader compacts past the follower.
        spec = LoadSpec(protocol="resp", endpoints=system.endpoints(), workload="write",
                        clients=64, pipeline=16, warmup_s=0.0, duration_s=1.0, keys=keys,
                        cluster_routing=True)

        def compacted() -> dict[str, str] | None:
            status = shard_status(info_fields(cluster.client_ports[leader]), 1)
            return status if int(status["log_first_index"]) > lagging_applied + 1 else None

        leader_status = compacted()
        for _ in range(SNAPSHOT_LOAD_RUNS_MAX):
            if leader_status is not None:
                break
            run_load(spec)
            leader_status = compacted()
        if leader_status is None:
            raise RuntimeError("the leader did not compact its log past the stopped follower")
        commit = int(leader_status["commit"])
        launched = time.monotonic()
        cluster.start_node(lagging, wait=False, bootstrap_flags=False)
        cluster.wait_listening(lagging)
        began = time.monotonic()  # serving clients: the transfer starts with its next heartbeat
        await_condition(lambda: cluster.applied_index(lagging) >= commit,
                        f"node {lagging} to catch up", RECOVERY_TIMEOUT_S * 5)
        seconds = time.monotonic() - began
        stats = info_fields(cluster.client_ports[lagging], b"stats")
        size = int(stats["quorumkv_snapshot_bytes_received"])
        if int(stats["quorumkv_snapshots_received"]) < 1:
            raise RuntimeError("the restarted follower caught up without a snapshot")
        print(f"  snapshot: {size / 1e6:.1f} MB to a restarted follower in {seconds:.2f} s "
              f"({size / 1e6 / seconds:.1f} MB/s, {keys:,} keys; process start "
              f"{began - launched:.2f} s not included)", flush=True)
        return {"system": system.name, "keys": keys, "bytes": size, "seconds": seconds,
                "mb_per_second": size / 1e6 / seconds, "process_start_s": began - launched}
    finally:
        system.stop()


# ---- the plan -----------------------------------------------------------------------------------


@contextlib.contextmanager
def running(system: System) -> Iterator[System]:
    try:
        system.start()
        yield system
    finally:
        system.stop()


def machine() -> dict[str, Any]:
    meminfo = Path("/proc/meminfo").read_text().split()
    return {"cpus": os.cpu_count(), "memory_gib": round(int(meminfo[1]) / 2**20, 1),
            "kernel": platform.release(), "python": platform.python_version(),
            "load_average_start": [round(x, 2) for x in os.getloadavg()]}


def attempt(results: dict[str, Any], system: str, phase: str, action: Callable[[], Any],
            logs_from: Path | None = None) -> bool:
    """Run one phase; a failure is recorded (and the system's logs kept) and the suite goes on
    with the next, so one broken system does not lose the others' figures."""
    try:
        action()
        return True
    except Exception as error:  # recorded in the results, printed, and the run continues
        message = f"{type(error).__name__}: {error}"
        print(f"  {system:14} FAILED in {phase}: {message}", flush=True)
        kept = None
        if logs_from is not None and logs_from.exists():
            kept = results["_logs_dir"] / system
            for log in (p for p in logs_from.rglob("*.log") if "store" not in p.parts):
                target = kept / log.relative_to(logs_from)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(log, target)
        results["failures"].append({"system": system, "phase": phase, "error": message[:2000],
                                    "logs": str(kept) if kept else None})
        return False


def measure_system(system: System, plan: Plan, results: dict[str, Any]) -> None:
    name = system.name
    with running(system):
        results["versions"].setdefault(name.split("-")[0], system.version())
        seconds = bulk_load(system.protocol, system.endpoints(), system.bulk_group, 0,
                            plan.keys, plan.value_bytes, plan.processes)
        print(f"  {name:14} loaded {plan.keys:,} keys in {seconds:.1f} s", flush=True)
        for workload in plan.workloads:
            for clients in plan.clients:
                results["runs"].append(measured_run(system, plan, workload, clients))
        for workload, clients, pipeline in plan.pipelined:
            results["runs"].append(measured_run(system, plan, workload, clients, pipeline))
        if plan.cross_check and system.protocol == "resp":
            # PySyncObj acknowledges about 150 writes/s (0.1 s append batching): fewer.
            requests = (min(PYSYNCOBJ_CROSS_CHECK_REQUESTS, plan.cross_check_requests)
                        if name == "pysyncobj" else plan.cross_check_requests)
            for test in ("set", "get"):
                results["cross_check"].append(redis_benchmark(system, test, 64, requests))
        if name in plan.failover_systems:
            results["failover"].append(failover(system, plan.failover_trials))


def cpu_rate(system: System, seconds: float) -> float:
    """The servers' CPU use over `seconds`, in cores."""
    pids = system.pids()
    before = cpu_seconds(pids)
    time.sleep(seconds)
    return (cpu_seconds(pids) - before) / seconds


def wait_quiet(system: System, idle_cores: float) -> float:
    """After a bulk load, wait until the servers' CPU use is back near its idle level (RocksDB
    compacts what was loaded, etcd's backend commits it), so the next run measures the cost of
    the data set, not the load's aftermath. Returns the seconds waited (bounded)."""
    began = time.monotonic()
    while time.monotonic() - began < SETTLE_TIMEOUT_S:
        if cpu_rate(system, SETTLE_WINDOW_S) <= idle_cores + SETTLE_MARGIN_CORES:
            break
    return time.monotonic() - began


def measure_growth(system: System, plan: Plan, results: dict[str, Any]) -> None:
    with running(system):
        idle_cores = cpu_rate(system, SETTLE_WINDOW_S)
        loaded = 0
        for keys in plan.growth_keys:
            seconds = bulk_load(system.protocol, system.endpoints(), system.bulk_group,
                                loaded, keys, plan.value_bytes, plan.processes,
                                timeout_s=plan.growth_load_timeout_s)
            settle = wait_quiet(system, idle_cores)
            print(f"  {system.name:14} loaded keys {loaded:,} to {keys:,} in {seconds:.1f} s, "
                  f"quiet again after {settle:.1f} s", flush=True)
            loaded = keys
            run = measured_run(system, plan, "write", plan.growth_clients, keys=keys)
            run.update(keys_loaded=keys, load_seconds=seconds, settle_seconds=settle)
            results["growth"].append(run)
            if keys == plan.restart_keys and hasattr(system, "restart_all"):
                results["restart"].append(restart_to_serving(system, keys))
            results["_save"]()


def run_plan(plan: Plan, base: Path, results: dict[str, Any]) -> None:
    save = results["_save"]
    for name in plan.systems:
        system = make_system(name, base)
        print(f"{system.label}: {system.durability}", flush=True)
        results["systems"].append({"name": system.name, "label": system.label,
                                   "durability": system.durability, "protocol": system.protocol,
                                   "routing": getattr(system, "routing", "")})
        if attempt(results, name, "workloads", lambda s=system: measure_system(s, plan, results),
                   system.base_dir):
            shutil.rmtree(system.base_dir, ignore_errors=True)
        save()
    for name in plan.growth_systems:
        system = make_system(name, base / "growth")
        print(f"growth: {system.label}", flush=True)
        if attempt(results, name, "growth", lambda s=system: measure_growth(s, plan, results),
                   system.base_dir):
            shutil.rmtree(system.base_dir, ignore_errors=True)
        save()
    if plan.snapshot_keys:
        attempt(results, "quorumkv-1", "snapshot",
                lambda: results["snapshot"].append(
                    snapshot_transfer(base, plan.snapshot_keys, plan)), base / "snapshot")
        save()


PHASES = ("workloads", "growth", "snapshot")


def merge_results(old: dict[str, Any], new: dict[str, Any], plan: Plan) -> dict[str, Any]:
    """`old` with the figures of the systems and phases `new` re-measured replaced by them."""
    redone = {("workloads", s) for s in plan.systems} | {("growth", s)
                                                        for s in plan.growth_systems}
    if plan.snapshot_keys:
        redone.add(("snapshot", "quorumkv-1"))
    merged = dict(old)
    for key, phase in (("runs", "workloads"), ("cross_check", "workloads"),
                       ("failover", "workloads"), ("growth", "growth"), ("restart", "growth"),
                       ("snapshot", "snapshot")):
        merged[key] = [e for e in old.get(key, []) if (phase, e["system"]) not in redone]
        merged[key] += new.get(key, [])
    systems = {e["name"]: e for e in old.get("systems", []) + new.get("systems", [])}
    merged["systems"] = [systems[n] for n in ALL_SYSTEMS if n in systems]
    merged["failures"] = [f for f in old.get("failures", [])
                          if (f["phase"], f["system"]) not in redone] + new["failures"]
    merged["versions"] = {**old.get("versions", {}), **new["versions"]}
    merged["remeasured"] = old.get("remeasured", []) + [{
        "what": sorted(f"{system} {phase}" for phase, system in redone),
        "started_utc": new["started_utc"], "duration_s": new["duration_s"],
        "load_average_start": new["machine"]["load_average_start"]}]
    merged["duration_s"] = old.get("duration_s", 0.0) + new["duration_s"]
    return merged


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a subset, under five minutes")
    parser.add_argument("--systems", help="comma-separated subset of " + ",".join(ALL_SYSTEMS))
    parser.add_argument("--results", type=Path, default=BENCH_DIR / "results")
    parser.add_argument("--no-readme", action="store_true", help="leave README.md alone")
    parser.add_argument("--phases", default=",".join(PHASES),
                        help="comma-separated subset of " + ",".join(PHASES))
    parser.add_argument("--merge", type=Path, metavar="RESULTS_JSON",
                        help="re-measure the chosen systems and phases and replace their "
                             "figures in this earlier results file")
    arguments = parser.parse_args()
    plan = quick_plan() if arguments.quick else full_plan()
    if arguments.systems:
        chosen = arguments.systems.split(",")
        plan.systems = [s for s in plan.systems if s in chosen]
        plan.growth_systems = [s for s in plan.growth_systems if s in chosen]
        plan.failover_systems = [s for s in plan.failover_systems if s in chosen]
        if "quorumkv-1" not in chosen:
            plan.snapshot_keys = 0
    phases = arguments.phases.split(",")
    if "workloads" not in phases:
        plan.systems = []
    if "growth" not in phases:
        plan.growth_systems = []
    if "snapshot" not in phases:
        plan.snapshot_keys = 0
    results_dir = arguments.results / "quick" if arguments.quick else arguments.results
    results_dir.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    today = datetime.datetime.now(datetime.UTC)
    results: dict[str, Any] = {
        "date": today.strftime("%Y-%m-%d"), "started_utc": today.isoformat(timespec="seconds"),
        "mode": plan.mode, "machine": machine(), "versions": {},
        "plan": {k: v for k, v in asdict(plan).items()},
        "loadgen": {"processes": plan.processes, "warmup_s": plan.warmup_s,
                    "duration_s": plan.duration_s, "value_bytes": plan.value_bytes,
                    "keys": plan.keys},
        "systems": [], "runs": [], "growth": [], "failover": [], "restart": [], "snapshot": [],
        "cross_check": [], "failures": []}
    partial = results_dir / f"{results['date']}.partial.json"

    def save() -> None:
        data = {k: v for k, v in results.items() if not k.startswith("_")}
        data["duration_s"] = time.monotonic() - began
        partial.write_text(json.dumps(data, indent=1))

    results["_save"] = save
    results["_logs_dir"] = results_dir / f"{results['date']}-failed-logs"
    base = Path(tempfile.mkdtemp(prefix="quorumkv-bench-"))
    try:
        run_plan(plan, base, results)
    finally:
        shutil.rmtree(base, ignore_errors=True)
        # Imported here, not at the top: the load generator's spawned workers import this
        # module again, and should not pay for matplotlib.
        from report import write_report

        del results["_save"], results["_logs_dir"]
        results["duration_s"] = time.monotonic() - began
        if arguments.merge:
            results = merge_results(json.loads(arguments.merge.read_text()), results, plan)
        readme = (None if arguments.quick or arguments.no_readme
                  else BENCH_DIR.parent / "README.md")
        report = write_report(results, results_dir, readme)
        partial.unlink(missing_ok=True)
        print(f"report: {report} ({results['duration_s'] / 60:.1f} min); "
              f"{len(results['failures'])} phase(s) failed")
        for failure in results["failures"]:
            print(f"  failed: {failure['system']} {failure['phase']}: {failure['error']}")
    # Figures, not pass/fail: a phase that failed is a finding, recorded in the report.
    return 0


if __name__ == "__main__":
    sys.exit(main())
