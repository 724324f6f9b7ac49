"""The simulator runs its nodes on the production RocksDB store too (--disk rocksdb)."""

from __future__ import annotations

import dataclasses

from quorumkv.sim.simulator import Simulation, options_of_seed


def test_a_short_run_on_rocksdb_passes_every_check() -> None:
    """A crash-and-partition seed, shortened, passes on RocksDBStore in temporary directories."""
    options = dataclasses.replace(options_of_seed(14, disk="rocksdb"), fault_ticks=150)
    assert options.disk == "rocksdb" and options.crash_interval_us
    result = Simulation(options).run()
    assert result.ok, "\n".join(str(violation) for violation in result.violations)
    assert "crash=" in str(result.summary["faults"])
