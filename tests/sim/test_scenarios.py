"""Directed scenarios: a hand-made fault schedule on the simulated cluster, for cases the
random sweep reaches too rarely. Each drives a Simulation by hand (start, run_until, inject)."""

from __future__ import annotations

from quorumkv.sim.options import SimOptions
from quorumkv.sim.simulator import Simulation

SHARD = 1
MS = 1_000


def quiet_cluster(read_only: str) -> Simulation:
    """Three nodes, one client writing now and then, no random faults."""
    options = SimOptions(seed=1, voters=3, read_only=read_only, check_quorum=True,
                         pre_vote=True, clients=1, keys=1, read_weight=0, write_weight=1,
                         cas_weight=0, think_max_us=20 * MS, delay_min_us=500,
                         delay_max_us=1_000)
    simulation = Simulation(options)
    simulation.start()
    simulation.run_until(1_000 * MS)
    return simulation


def read_after_old_leader_pause(read_only: str) -> tuple[object, object]:
    """Pause the leader and cut it off; a new leader commits a write; the old one resumes,
    still cut off, and is asked to read the key. Returns (write result, read result)."""
    simulation = quiet_cluster(read_only)
    old = simulation.leader(SHARD)
    assert old, "no leader after a second"
    others = [node for node in simulation.nodes if node != old]
    start = simulation.queue.now_us
    simulation.pause(old, 600 * MS)
    simulation.network.partition({(old, n) for n in others} | {(n, old) for n in others})
    simulation.run_until(start + 550 * MS)
    new = simulation.leader(SHARD)
    assert new not in (0, old), "the others did not elect a new leader"
    write = simulation.submit(new, SHARD, b"SET", (b"k0", b"fresh"))
    simulation.run_until(start + 600 * MS)  # the old leader resumes now
    read = simulation.submit(old, SHARD, b"GET", (b"k0",))
    simulation.run_until(start + 650 * MS)
    return (write[0] if write else None), (read[0] if read else None)


def test_paused_old_leader_never_serves_a_stale_read_index_read() -> None:
    """With ReadIndex reads, a leader that was paused and cut off cannot answer a read (it
    needs a quorum's heartbeat answers): no stale value (thesis §6.4)."""
    write, read = read_after_old_leader_pause("safe")
    assert write is not None and not isinstance(write, Exception)
    assert read is None or isinstance(read, Exception) or read == b"fresh"


def test_paused_old_leader_never_serves_a_stale_lease_read() -> None:
    """With lease reads, a leader paused past its lease and cut off must not answer a read
    with a value older than a write committed meanwhile by the new leader."""
    write, read = read_after_old_leader_pause("lease")
    assert write is not None and not isinstance(write, Exception)
    assert read is None or isinstance(read, Exception) or read == b"fresh"
