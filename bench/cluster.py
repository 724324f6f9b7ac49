"""Benchmark of partitioning: `redis-benchmark --cluster` on 3 nodes, 12 shards next to 1 shard.

With one shard every write goes through one leader (one node's CPU orders and replicates
everything, the other two only follow); with 12 shards the leaders spread 4 per node and
`redis-benchmark --cluster` sends each key to its slot's leader, so the three processes share
the leading work. Measures, per layout: SET and GET operations/s, p50/p99 (ms), CPU seconds per
1,000 operations over the three processes, and the resident memory and data directory size of
the nodes after the run.

Figures, never pass/fail. Usage: `python bench/cluster.py [--quick] [--requests N]
[--json results.json]`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from measure import cpu_seconds, redis_benchmark, resident_bytes

from quorumkv.server.local_cluster import LocalCluster


def cluster_cpu(cluster: LocalCluster) -> float:
    return cpu_seconds(cluster.pid(n) for n in cluster.running())


def directory_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def cluster_benchmark(port: int, test: str, requests: int, pipeline: int,
                      cluster_mode: bool) -> dict[str, float]:
    return redis_benchmark([*(["--cluster"] if cluster_mode else []), "-p", str(port), "-t", test,
                            "-n", str(requests), "-d", "100", "-r", "100000", "-c", "50", "-P",
                            str(pipeline)])


def measure(shards: int, requests: int, pipelines: list[int]) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="quorumkv-cluster-bench-") as base, \
            LocalCluster(Path(base), nodes=3, server_args=["--shards", str(shards)]) as cluster:
        cluster.start()
        cluster.wait_for_leader()
        cluster.wait_for_preferred_leaders()
        # redis-benchmark --cluster refuses a cluster with one master ("Invalid cluster"): with
        # one shard it runs without --cluster, against the leader (where --cluster would send
        # every key anyway).
        port = cluster.client_ports[cluster.leader(1)]
        rows = []
        for pipeline in pipelines:
            for test in ("set", "get"):
                before = cluster_cpu(cluster)
                figures = cluster_benchmark(port, test, requests, pipeline, shards > 1)
                figures["cpu_seconds_per_1000_ops"] = (
                    (cluster_cpu(cluster) - before) / requests * 1000)
                rows.append({"test": test.upper(), "pipeline": pipeline, **figures})
                print(f"  {shards:2} shards  {test.upper():4} -P {pipeline:<2} "
                      f"{figures['ops_per_second']:>9,.0f} ops/s  p50 {figures['p50_ms']:6.2f} ms"
                      f"  p99 {figures['p99_ms']:6.2f} ms  "
                      f"{figures['cpu_seconds_per_1000_ops']:.3f} CPU s/1000 ops", flush=True)
        memory = sum(resident_bytes(cluster.pid(n)) for n in cluster.running())
        disk = sum(directory_bytes(cluster.data_dir(n)) for n in cluster.node_ids)
        print(f"  {shards:2} shards  resident {memory / 2**20:.0f} MiB (3 nodes), "
              f"data directories {disk / 2**20:.0f} MiB", flush=True)
        return {"shards": shards, "rows": rows, "resident_bytes": memory, "disk_bytes": disk}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 requests, -P 1 only")
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    arguments = parser.parse_args()
    pipelines = [1, 16]
    if arguments.quick:
        arguments.requests, pipelines = 20_000, [1]
    print("redis-benchmark --cluster, 3 nodes, fsync on, -d 100 -r 100000 -c 50:")
    results = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
               "layouts": [measure(shards, arguments.requests, pipelines)
                           for shards in (1, 12)]}
    if arguments.json:
        arguments.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
