"""Per-connection order under pipelining: the issue 11 reproduction, as a figure.

Starts a local cluster of real processes (the quorumkv of the Python running this script), then
on one connection to each node writes pipelines and checks the replies:

- the short pipeline `SET A 1, GET A, SET A 2, GET A, DEL A` (Redis: +OK, 1, +OK, 2, :1);
- `--pairs` pipelined `SET key:i v:i` / `GET key:i` pairs, sent as fast as the socket takes
  them while the replies are read on another thread: counts GETs that missed their SET and
  replies that are errors (-UNKNOWN, -TRYAGAIN), and the time taken.

    python bench/pipeline_order.py --nodes 3 --shards 12 --pairs 100000

Run it with /work/main/.venv/bin/python for the code on main.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from quorumkv.server.local_cluster import (
    LocalCluster,
    info_fields,
    pipeline_replies,
    shard_status,
)


def short_pipeline(port: int) -> list[object]:
    return pipeline_replies(port, [(b"SET", b"A", b"1"), (b"GET", b"A"), (b"SET", b"A", b"2"),
                                   (b"GET", b"A"), (b"DEL", b"A")], 30.0)


def pairs(port: int, count: int, prefix: bytes, timeout_s: float) -> dict[str, float]:
    commands: list[tuple[bytes, ...]] = []
    for i in range(count):
        key = b"%b:%d" % (prefix, i)
        commands.append((b"SET", key, b"v%d" % i))
        commands.append((b"GET", key))
    started = time.monotonic()
    replies = pipeline_replies(port, commands, timeout_s)
    seconds = time.monotonic() - started
    missed = errors = unknown = 0
    for i in range(count):
        set_reply, get_reply = replies[2 * i], replies[2 * i + 1]
        for reply in (set_reply, get_reply):
            if isinstance(reply, tuple):
                errors += 1
                unknown += reply[1].startswith("UNKNOWN")
        if set_reply == b"OK" and get_reply != b"v%d" % i:
            missed += 1
    return {"seconds": seconds, "missed_gets": missed, "error_replies": errors,
            "unknown_replies": unknown, "commands_per_second": 2 * count / seconds}


def terms_above_one(port: int) -> int:
    """How many terms the node's data shard replicas went through beyond the first."""
    fields = info_fields(port)
    return sum(int(shard_status(fields, int(name[6:]))["term"]) - 1 for name in fields
               if name.removeprefix("shard_").isdigit() and name != "shard_0")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--shards", type=int, default=12)
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--timeout-s", type=float, default=900.0)
    parser.add_argument("--only-node", type=int, default=0, help="run the pairs on this node")
    parser.add_argument("--data-dir", default="", help="keep the nodes' data and logs here")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch, LocalCluster(
            Path(options.data_dir or scratch), nodes=options.nodes,
            server_args=["--shards", str(options.shards)]) as cluster:
        cluster.start()
        cluster.wait_for_leader()
        cluster.wait_for_preferred_leaders()
        for node_id in cluster.node_ids:
            port = cluster.client_ports[node_id]
            print(f"node {node_id} short pipeline: {short_pipeline(port)}", flush=True)
        for node_id in cluster.node_ids:
            if options.only_node and node_id != options.only_node:
                continue
            port = cluster.client_ports[node_id]
            figures = pairs(port, options.pairs, b"key%d" % node_id, options.timeout_s)
            print(f"node {node_id} {options.pairs} pairs: " + ", ".join(
                f"{name}={value:.1f}" if isinstance(value, float) else f"{name}={value}"
                for name, value in figures.items()), flush=True)
            print("  elections since start (sum of shard terms above 1, per node): " + ", ".join(
                f"{n}={terms_above_one(cluster.client_ports[n])}" for n in cluster.node_ids),
                flush=True)
            print("  dropped peer frames per node: " + ", ".join(
                f"{n}={info_fields(cluster.client_ports[n], b'stats').get('quorumkv_dropped_peer_frames')}"
                for n in cluster.node_ids), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
