"""How long clients on healthy nodes stall when a shard's leader is paused (issue 11, item 3).

Starts a local cluster of real processes (the quorumkv of the Python running this script; one
data shard, default settings: request_timeout_ms 5000, election timeout 500 ms to 1 s). On each
node that does not lead the shard, one client writes (SET) and one reads (GET) in a loop, one
command at a time. Then the leader is stopped with SIGSTOP and, per client, two times are taken
from that moment: until its first reply of any kind (how long the command in flight was stuck),
and until its first OK / value (operations complete again). Then SIGCONT, wait for the preferred
leader to lead again, and repeat.

    python bench/leader_pause.py --rounds 5

Run it with /work/main/.venv/bin/python for the code on main.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import hiredis

from quorumkv.server.local_cluster import LocalCluster, wait_until


def encode(*words: bytes) -> bytes:
    return b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%b\r\n" % (len(w), w) for w in words)


class LoopClient(threading.Thread):
    """One connection issuing one command at a time; records (sent, answered, ok) each."""

    def __init__(self, port: int, write: bool, name: str) -> None:
        super().__init__(daemon=True)
        self.port, self.write, self.name = port, write, name
        self.records: list[tuple[float, float, bool]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        connection = socket.create_connection(("127.0.0.1", self.port), timeout=60)
        reader = hiredis.Reader(replyError=lambda text: ("error", text))
        number = 0
        while not self.stop.is_set():
            number += 1
            key = b"pause:%s" % self.name.encode()
            command = encode(b"SET", key, b"%d" % number) if self.write else encode(b"GET", key)
            sent = time.monotonic()
            connection.sendall(command)
            while (reply := reader.gets()) is False:
                reader.feed(connection.recv(65536))
            self.records.append((sent, time.monotonic(), not isinstance(reply, tuple)))
        connection.close()

    def after(self, moment: float) -> tuple[float, float]:
        """Seconds from `moment` to the first reply, and to the first success, after it."""
        replies = [answered for _, answered, _ in self.records if answered > moment]
        successes = [answered for _, answered, ok in self.records if answered > moment and ok]
        return ((replies[0] - moment) if replies else float("nan"),
                (successes[0] - moment) if successes else float("nan"))


def one_round(cluster: LocalCluster, settle_s: float, measure_s: float) -> list[str]:
    leader = cluster.wait_for_leader()
    clients = [LoopClient(cluster.client_ports[n], write, f"{n}{'w' if write else 'r'}")
               for n in cluster.node_ids if n != leader for write in (True, False)]
    for client in clients:
        client.start()
    time.sleep(settle_s)  # the clients are running at full speed before the pause
    paused_at = time.monotonic()
    os.kill(cluster.pid(leader), signal.SIGSTOP)
    try:
        time.sleep(measure_s)
    finally:
        os.kill(cluster.pid(leader), signal.SIGCONT)
    for client in clients:
        client.stop.set()
    for client in clients:
        client.join(60)
    lines = []
    for client in clients:
        first_reply, first_success = client.after(paused_at)
        lines.append(f"{client.name}: first reply {first_reply:.2f} s, "
                     f"first success {first_success:.2f} s")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--measure-s", type=float, default=8.0,
                        help="how long the leader stays paused (longer than request_timeout_ms)")
    options = parser.parse_args()
    results: dict[str, list[float]] = {"reply": [], "success": []}
    with tempfile.TemporaryDirectory() as base, LocalCluster(
            Path(base), nodes=3, server_args=["--shards", "1"]) as cluster:
        cluster.start()
        for number in range(1, options.rounds + 1):
            cluster.wait_for_preferred_leaders(60)
            lines = one_round(cluster, 1.0, options.measure_s)
            print(f"round {number}: " + "; ".join(lines), flush=True)
            for line in lines:
                reply, success = (float(part.split()[-2]) for part in line.split(", "))
                results["reply"].append(reply)
                results["success"].append(success)
            wait_until(lambda: cluster.leader() != 0, 60, "a leader after the pause")
    for kind, values in results.items():
        print(f"first {kind} after the pause, over {len(values)} clients: "
              f"median {statistics.median(values):.2f} s, max {max(values):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
