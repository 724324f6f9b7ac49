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
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import hiredis

from quorumkv.server.local_cluster import LocalCluster, info_fields


def encode(*words: bytes) -> bytes:
    return b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%b\r\n" % (len(w), w) for w in words)


def pipeline(port: int, commands: list[bytes], timeout_s: float) -> list[object]:
    """Send every command at once (a writer thread) and read every reply."""
    connection = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
    reader = hiredis.Reader(replyError=lambda text: ("error", text))
    writer = threading.Thread(target=lambda: connection.sendall(b"".join(commands)),
                              daemon=True)
    writer.start()
    replies: list[object] = []
    while len(replies) < len(commands):
        value = reader.gets()
        if value is not False:
            replies.append(value)
            continue
        chunk = connection.recv(1 << 20)
        if not chunk:
            raise ConnectionError(f"closed after {len(replies)} replies")
        reader.feed(chunk)
    writer.join()
    connection.close()
    return replies


def short_pipeline(port: int) -> list[object]:
    return pipeline(port, [encode(b"SET", b"A", b"1"), encode(b"GET", b"A"),
                           encode(b"SET", b"A", b"2"), encode(b"GET", b"A"),
                           encode(b"DEL", b"A")], 30.0)


def pairs(port: int, count: int, prefix: bytes, timeout_s: float) -> dict[str, float]:
    commands = []
    for i in range(count):
        key = b"%b:%d" % (prefix, i)
        commands.append(encode(b"SET", key, b"v%d" % i))
        commands.append(encode(b"GET", key))
    started = time.monotonic()
    replies = pipeline(port, commands, timeout_s)
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
            print("  dropped peer frames per node: " + ", ".join(
                f"{n}={info_fields(cluster.client_ports[n], b'stats').get('quorumkv_dropped_peer_frames')}"
                for n in cluster.node_ids), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
