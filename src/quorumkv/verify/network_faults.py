"""Network faults inside a run's namespaces: partitions, lossy links, slow links.

Theory of operation. A partition is a *grudge*: for each node, the set of nodes it hears nothing
from. Node N's grudge becomes rules in N's own namespace that drop every packet arriving from
those nodes' addresses (iptables, chain `qkv-partition`, jumped to from INPUT), as Jepsen does;
a one-way partition is a grudge held by one side only. Clients sit on the bridge's address,
which no rule names, so clients always reach every node: only nodes lose each other.

Without iptables a partition falls back to blackhole routes (`ip route add blackhole`) in the
sending node's namespace: the same grudge, enforced at the sender, and failing fast (the
sender's connects and sends get an error) instead of silently.

Links: *lossy* drops a share of the packets each node receives from its peers (iptables
`statistic` match, chain `qkv-loss`; or netem loss); *slow* shapes each node's outgoing traffic
with netem delay and jitter where the kernel has netem, else with a token bucket (tbf) of low
rate, whose queue adds delay under load. Which method served is part of each fault's record.

Healing flushes the chains, the routes and the qdiscs; deleting the namespaces at the end of
the run would remove them anyway.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping

from quorumkv.errors import VerifySetupFailed
from quorumkv.verify.hosts import NodeHost
from quorumkv.verify.namespaces import run_ip

PARTITION_CHAIN = "qkv-partition"
LOSS_CHAIN = "qkv-loss"

SLOW_DELAY_MS = 50
"""Mean added delay of a slow link, where netem exists (milliseconds, each direction)."""

SLOW_JITTER_MS = 25
"""Jitter around that delay (milliseconds)."""

SLOW_RATE = "256kbit"
"""Rate of a slow link where netem is missing (tbf), small enough to queue heartbeats."""

SLOW_QUEUE_LATENCY_MS = 300
"""Longest a packet may wait in a slow link's tbf queue before it is dropped (milliseconds)."""

LOSS_PROBABILITY = 0.2
"""Share of the packets from its peers a node drops on a lossy link."""

TOOL_TIMEOUT_S = 30.0
"""Seconds one iptables or tc invocation may take."""

Grudge = Mapping[int, set[int]]
"""A partition: node -> the nodes it hears nothing from."""


class NetworkFaults:
    """Partitions and link faults for the namespaces of one run; see the module docstring."""

    def __init__(self, hosts: list[NodeHost]) -> None:
        self.hosts = {host.node_id: host for host in hosts}
        self.enabled = all(host.namespace is not None for host in hosts)
        self.iptables = shutil.which("iptables") is not None
        self.tc = shutil.which("tc") is not None
        self._netem: bool | None = None

    def prepare(self) -> None:
        """Create the (empty) rule chains in every namespace; raise VerifySetupFailed."""
        if not (self.enabled and self.iptables):
            return
        for node_id in self.hosts:
            self._restore(node_id, [f":{PARTITION_CHAIN} - [0:0]", f":{LOSS_CHAIN} - [0:0]",
                                    f"-A INPUT -j {PARTITION_CHAIN}", f"-A INPUT -j {LOSS_CHAIN}"])

    # ---- partitions --------------------------------------------------------------------------

    def partition(self, grudge: Grudge) -> str:
        """Enforce `grudge`; return the method used ("iptables" or "blackhole routes")."""
        if self.iptables:
            for node_id, enemies in grudge.items():
                if enemies:
                    self._restore(node_id, [
                        f"-A {PARTITION_CHAIN} -s {self.hosts[enemy].peer_host} -j DROP"
                        for enemy in sorted(enemies)], flush=False)
            return "iptables"
        for node_id, enemies in grudge.items():
            for enemy in sorted(enemies):  # the enemy cannot send to node_id
                self._ip(enemy, ["route", "add", "blackhole",
                                 f"{self.hosts[node_id].peer_host}/32"])
        return "blackhole routes"

    def heal(self) -> None:
        """Remove every partition rule."""
        for node_id in self.hosts:
            if self.iptables:
                self._tool(node_id, ["iptables", "-w", "-F", PARTITION_CHAIN])
            else:
                self._ip(node_id, ["route", "flush", "type", "blackhole"], check=False)

    # ---- links -------------------------------------------------------------------------------

    def lossy(self, probability: float = LOSS_PROBABILITY) -> str | None:
        """Drop `probability` of every node's packets from its peers; the method, or None when
        neither iptables nor netem is available."""
        if self.iptables:
            for node_id in self.hosts:
                self._restore(node_id, [
                    f"-A {LOSS_CHAIN} -s {self.hosts[peer].peer_host} -m statistic --mode random "
                    f"--probability {probability} -j DROP"
                    for peer in self.hosts if peer != node_id], flush=False)
            return f"iptables statistic, p={probability}"
        if self.has_netem():
            for node_id in self.hosts:
                self._qdisc(node_id, ["netem", "loss", f"{probability * 100:g}%"])
            return f"netem loss {probability * 100:g}%"
        return None

    def slow(self) -> str | None:
        """Slow every node's outgoing link; the method, or None without tc."""
        if not self.tc:
            return None
        if self.has_netem():
            shape = ["netem", "delay", f"{SLOW_DELAY_MS}ms", f"{SLOW_JITTER_MS}ms"]
        else:
            shape = ["tbf", "rate", SLOW_RATE, "burst", "4kb",
                     "latency", f"{SLOW_QUEUE_LATENCY_MS}ms"]
        for node_id in self.hosts:
            self._qdisc(node_id, shape)
        return "tc " + " ".join(shape)

    def restore_links(self) -> None:
        """Undo lossy and slow links."""
        for node_id in self.hosts:
            if self.iptables:
                self._tool(node_id, ["iptables", "-w", "-F", LOSS_CHAIN])
            if self.tc:
                self._tool(node_id, ["tc", "qdisc", "del", "dev", "eth0", "root"], check=False)

    def has_netem(self) -> bool:
        """Whether the kernel has the netem qdisc (probed once, on node 1's link)."""
        if self._netem is None:
            first = min(self.hosts)
            self._netem = self.tc and self._tool(
                first, ["tc", "qdisc", "add", "dev", "eth0", "root", "netem", "delay", "1ms"],
                check=False)
            if self._netem:
                self._tool(first, ["tc", "qdisc", "del", "dev", "eth0", "root"], check=False)
        return self._netem

    # ---- running the tools in a namespace ----------------------------------------------------

    def _qdisc(self, node_id: int, shape: list[str]) -> None:
        self._tool(node_id, ["tc", "qdisc", "replace", "dev", "eth0", "root", *shape])

    def _restore(self, node_id: int, rules: list[str], flush: bool = True) -> None:
        """Apply filter-table rules in one iptables-restore call (chains kept unless `flush`)."""
        script = "*filter\n" + "\n".join(rules) + "\nCOMMIT\n"
        arguments = ["iptables-restore", "-w"] + ([] if flush else ["--noflush"])
        self._tool(node_id, arguments, stdin=script)

    def _ip(self, node_id: int, arguments: list[str], check: bool = True) -> None:
        namespace = self._namespace(node_id)
        run_ip(["-n", namespace, *arguments], f"changing routes in {namespace}", check=check)

    def _tool(self, node_id: int, arguments: list[str], stdin: str | None = None,
              check: bool = True) -> bool:
        namespace = self._namespace(node_id)
        command = ["ip", "netns", "exec", namespace, *arguments]
        try:
            result = subprocess.run(command, input=stdin, capture_output=True, text=True,
                                    timeout=TOOL_TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise VerifySetupFailed(f"running {arguments[0]} in {namespace}", str(error)) from error
        if check and result.returncode != 0:
            raise VerifySetupFailed(f"running {arguments[0]} in {namespace}",
                                    f"{' '.join(arguments)}: {result.stderr.strip()}")
        return result.returncode == 0

    def _namespace(self, node_id: int) -> str:
        namespace = self.hosts[node_id].namespace
        if namespace is None:
            raise VerifySetupFailed("injecting a network fault",
                                    "network faults need namespace mode (not --loopback)")
        return namespace
