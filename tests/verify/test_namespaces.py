"""The private network: built as described, removed completely, stale runs cleaned up."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

from quorumkv.verify import namespaces
from quorumkv.verify.namespaces import PrivateNetwork, remove_stale_runs, run_ip
from quorumkv.verify.network_faults import NetworkFaults

from .environment import needs_namespaces


def run_names(run_id: int) -> tuple[set[str], bool]:
    """The run's namespaces, and whether its bridge or any of its veth ends exist."""
    listing = run_ip(["netns", "list"], "listing", check=False)
    names = {line.split()[0] for line in listing.splitlines() if line.strip()}
    ours = {name for name in names if name.startswith(f"qkv-{run_id}-")}
    links = run_ip(["-o", "link"], "listing", check=False)
    bridge = namespaces.bridge_name(run_id) in links or f"qkv{run_id}h" in links
    return ours, bridge


def reachable(source_namespace: str, address: str) -> bool:
    """Whether a TCP connect from the namespace to address:9 is answered (refused counts)."""
    probe = ("import socket,sys\ns=socket.socket();s.settimeout(0.5)\n"
             f"try:\n s.connect(('{address}',9))\nexcept ConnectionRefusedError:\n sys.exit(0)\n"
             "except OSError:\n sys.exit(1)\n")
    result = subprocess.run(["ip", "netns", "exec", source_namespace, "python3", "-c", probe],
                            check=False, timeout=10)
    return result.returncode == 0


@needs_namespaces
def test_network_is_built_and_removed_completely(tmp_path: Path) -> None:
    """Each node gets its namespace and address on the run's bridge; destroy leaves nothing."""
    network = PrivateNetwork(3, state_directory=tmp_path)
    hosts = network.create()
    try:
        assert [host.client_host for host in hosts] == [
            f"10.77.{network.run_id}.{n}" for n in (1, 2, 3)]
        names, bridge = run_names(network.run_id)
        assert names == {f"qkv-{network.run_id}-{n}" for n in (1, 2, 3)} and bridge
        assert reachable(hosts[0].namespace or "", hosts[1].client_host)
    finally:
        network.destroy()
    assert run_names(network.run_id) == (set(), False)
    assert not list(tmp_path.glob("run-*.json"))


@needs_namespaces
def test_partition_rules_cut_only_the_grudged_direction(tmp_path: Path) -> None:
    """A one-way grudge drops what node 1 receives from node 2, and healing restores it."""
    network = PrivateNetwork(2, state_directory=tmp_path)
    hosts = network.create()
    try:
        faults = NetworkFaults(hosts)
        faults.prepare()
        first, second = (host.namespace or "" for host in hosts)
        faults.partition({1: {2}})
        assert not reachable(second, hosts[0].client_host)  # 2's packets never reach 1
        faults.heal()
        assert reachable(second, hosts[0].client_host)
        assert reachable(first, hosts[1].client_host)
    finally:
        network.destroy()


@needs_namespaces
def test_without_iptables_partitions_fall_back_to_blackhole_routes(tmp_path: Path) -> None:
    """Without iptables the same grudge is enforced by a route at the sender, and healed."""
    network = PrivateNetwork(2, state_directory=tmp_path)
    hosts = network.create()
    try:
        faults = NetworkFaults(hosts)
        faults.iptables = False
        second = hosts[1].namespace or ""
        assert faults.partition({1: {2}}) == "blackhole routes"
        assert not reachable(second, hosts[0].client_host)
        faults.heal()
        assert reachable(second, hosts[0].client_host)
    finally:
        network.destroy()


@needs_namespaces
def test_stale_runs_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    """A run whose harness died is removed by the next run's cleanup; a live run is not."""
    live = PrivateNetwork(1, state_directory=tmp_path)
    stale = PrivateNetwork(1, state_directory=tmp_path)
    live.create()
    stale.create()
    try:
        exited = subprocess.Popen(["true"])
        exited.wait()  # its PID now names no process: the stale run's harness "crashed"
        claim = tmp_path / f"run-{stale.run_id}.json"
        claim.write_text(json.dumps({"owner_pid": exited.pid}))
        removed = remove_stale_runs(tmp_path)
        assert stale.run_id in removed and live.run_id not in removed
        assert run_names(stale.run_id) == (set(), False)
        assert run_names(live.run_id)[0]
    finally:
        live.destroy()
        stale.destroy()


@needs_namespaces
def test_concurrent_claims_get_distinct_run_ids(tmp_path: Path) -> None:
    """Runs claiming at the same time get distinct run ids, and no claim is ever half-written
    (so no run's stale cleanup removes another live run)."""
    networks = [PrivateNetwork(1, state_directory=tmp_path) for _ in range(4)]
    threads = [threading.Thread(target=network.create) for network in networks]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len({network.run_id for network in networks}) == 4
        assert all(run_names(network.run_id)[0] for network in networks)
    finally:
        for network in networks:
            network.destroy()
    assert not list(tmp_path.iterdir())
