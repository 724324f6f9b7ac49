"""The options of one simulated run, drawn from its seed (swarm testing).

Rather than run every seed with every fault at a fixed rate, each seed first draws which faults
are on and how often they strike (Groce et al., "Swarm Testing", 2012): a run with only
partitions, or with no loss but frequent crashes, reaches states a blend of everything would
rarely reach. The options are printed before the run so a failing seed says what it exercised,
and `--seed N` replays them exactly: they are drawn from the first child Random of the seed.

Simulated time is in microseconds; the Raft core ticks every `tick_us` of a node's clock.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import MISSING, dataclass, fields, replace
from typing import TypeVar

from quorumkv import limits

DISKS = ("memory", "rocksdb")


@dataclass(frozen=True, slots=True)
class SimOptions:
    """Everything that shapes one run; see docs/simulator.md for each field."""

    seed: int
    disk: str = "memory"
    voters: int = 3  # initial voters of every shard; node ids 1..voters
    spare_nodes: int = 1  # fresh nodes that membership changes may add
    shards: int = 1
    tick_us: int = 10_000
    fault_ticks: int = 400  # length of the fault phase
    liveness_ticks_max: int = limits.sim_liveness_ticks_max
    # Raft and host settings
    election_timeout_ticks: int = limits.election_timeout_ticks
    heartbeat_interval_ticks: int = 2
    pre_vote: bool = True
    check_quorum: bool = True
    read_only: str = "safe"
    log_compaction_entries_min: int = 64
    # clock
    clock_jitter_us: int = 0  # each tick interval drawn in tick_us +- this
    clock_offset_max_us: int = 0  # each node's wall clock is off by up to this
    process_delay_us: int = 200  # host loop latency: events within it are batched
    # network
    delay_min_us: int = 500
    delay_max_us: int = 5_000
    reorder: bool = False  # without it each link delivers in order
    loss_rate: float = 0.0
    duplicate_rate: float = 0.0
    # faults: mean interval between two of a kind, 0 = off
    partition_interval_us: int = 0
    partition_duration_max_us: int = 0
    crash_interval_us: int = 0
    downtime_max_us: int = 0
    torn_write_rate: float = 0.0
    membership_interval_us: int = 0
    transfer_interval_us: int = 0
    disk_full_interval_us: int = 0  # a node's next 1-5 writes fail with DiskFull
    # workload
    clients: int = 3
    keys: int = 3
    read_weight: int = 3
    write_weight: int = 3
    cas_weight: int = 2
    think_max_us: int = 20_000
    operation_timeout_ticks: int = 60
    # faults added later (drawn last, so older seeds keep their other options)
    pause_interval_us: int = 0  # a node stops (no ticks, inputs held) for a while
    pause_duration_max_us: int = 0
    # the directed faults of issue 12 (drawn after the ones above)
    joint_interval_us: int = 0  # multi-replica membership changes (joint consensus)
    figure8_interval_us: int = 0  # the partition sequence of the Raft paper's Figure 8
    rejoin_interval_us: int = 0  # a follower cut off for elections' worth of time rejoins
    ready_crash_interval_us: int = 0  # a crash inside a Ready cycle (after a send, at a sync)
    clock_skew_ppm: int = 0  # each node's tick rate is off by up to this (parts per million)
    pause_cut_rate: float = 0.0  # share of pauses that also cut the paused node off
    transfer_cut_rate: float = 0.0  # share of leader transfers that deafen the old leader
    append_entries_max: int = limits.append_entries_max  # entries per append message
    stale_leader_interval_us: int = 0  # a leader paused and cut off, or deafened in a transfer
    pipelined_clients: int = 0  # connections pipelining SET/GET bursts (sim/pipelined.py)

    def describe(self) -> str:
        """One line of `name=value` pairs, in field order (printed before every run); exact
        (floats in full), so `from_description` gives these options back."""
        return " ".join(f"{item.name}={getattr(self, item.name)!s}" for item in fields(self))

    @classmethod
    def from_description(cls, text: str) -> SimOptions:
        """The options a `describe()` line names; fields it does not name keep their defaults
        (off, for faults added since). Raises ValueError on an unknown name or bad value."""
        known = {item.name: item for item in fields(cls)}
        values: dict[str, object] = {}
        for pair in text.split():
            name, _, raw = pair.partition("=")
            if name not in known:
                raise ValueError(f"unknown simulator option {name!r} in {pair!r}")
            default = known[name].default
            values[name] = _parse_value(raw, 0 if default is MISSING else default)
        return cls(**values)  # type: ignore[arg-type]

    def enabled_faults(self) -> list[str]:
        """The fault kinds this run injects, in a fixed order."""
        kinds = []
        if self.loss_rate > 0:
            kinds.append("loss")
        if self.duplicate_rate > 0:
            kinds.append("duplicate")
        if self.reorder:
            kinds.append("reorder")
        if self.partition_interval_us:
            kinds.append("partition")
        if self.crash_interval_us:
            kinds.append("crash")
        if self.torn_write_rate > 0:
            kinds.append("torn-write")
        if self.membership_interval_us:
            kinds.append("membership")
        if self.transfer_interval_us:
            kinds.append("transfer")
        if self.disk_full_interval_us:
            kinds.append("disk-full")
        if self.clock_jitter_us or self.clock_offset_max_us:
            kinds.append("clock")
        if self.pause_interval_us:
            kinds.append("pause")
        for kind, on in (("joint", self.joint_interval_us), ("figure8", self.figure8_interval_us),
                         ("rejoin", self.rejoin_interval_us),
                         ("ready-crash", self.ready_crash_interval_us),
                         ("clock-skew", self.clock_skew_ppm), ("pause-cut", self.pause_cut_rate),
                         ("transfer-cut", self.transfer_cut_rate),
                         ("short-appends", self.append_entries_max < limits.append_entries_max),
                         ("stale-leader", self.stale_leader_interval_us)):
            if on:
                kinds.append(kind)
        return kinds


def _parse_value(raw: str, default: object) -> object:
    if isinstance(default, bool):
        if raw not in ("True", "False"):
            raise ValueError(f"{raw!r} is not True or False")
        return raw == "True"
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    return raw


def draw_options(seed: int, rng: random.Random, disk: str = "memory") -> SimOptions:
    """The options of seed `seed`, drawn from `rng` (the seed's first child Random)."""
    tick_us = 10_000
    read_only = "lease" if rng.random() < 0.2 else "safe"
    check_quorum = read_only == "lease" or rng.random() < 0.7
    lease = read_only == "lease"
    drawn = SimOptions(
        seed=seed,
        disk=disk,
        voters=rng.choice((3, 3, 5)),
        spare_nodes=rng.choice((0, 1, 2)),
        shards=rng.choice((1, 1, 2)),
        tick_us=tick_us,
        fault_ticks=rng.randint(250, 450),
        election_timeout_ticks=rng.choice((8, 10, 12)),
        heartbeat_interval_ticks=rng.choice((1, 2, 3)),
        pre_vote=rng.random() < 0.7,
        check_quorum=check_quorum,
        read_only=read_only,
        log_compaction_entries_min=rng.choice((16, 64, 256, limits.log_compaction_entries_min)),
        # A lease assumes clocks drift by less than lease_drift_ticks over an election
        # timeout: keep the jitter well inside that bound when leases are on.
        clock_jitter_us=_maybe(rng, 0.5, lambda: rng.randint(1, tick_us // (50 if lease else 5))),
        clock_offset_max_us=_maybe(rng, 0.5, lambda: rng.randint(1, 5_000_000)),
        process_delay_us=rng.choice((0, 100, 500, 2_000)),
        delay_min_us=(delay_min := rng.randint(100, 2_000)),
        delay_max_us=delay_min + rng.choice((500, 5_000, 30_000)),
        reorder=rng.random() < 0.4,
        loss_rate=_maybe(rng, 0.4, lambda: rng.uniform(0.01, 0.25)),
        duplicate_rate=_maybe(rng, 0.3, lambda: rng.uniform(0.01, 0.15)),
        partition_interval_us=_maybe(rng, 0.5, lambda: _interval_ticks(rng) * tick_us),
        partition_duration_max_us=rng.randint(10, 80) * tick_us,
        crash_interval_us=_maybe(rng, 0.5, lambda: _interval_ticks(rng) * tick_us),
        downtime_max_us=rng.randint(2, 60) * tick_us,
        torn_write_rate=_maybe(
            rng, 0.5 if disk == "memory" else 0.0, lambda: rng.uniform(0.1, 0.9)),
        membership_interval_us=_maybe(rng, 0.35, lambda: rng.randint(40, 150) * tick_us),
        transfer_interval_us=_maybe(rng, 0.3, lambda: rng.randint(30, 150) * tick_us),
        disk_full_interval_us=_maybe(
            rng, 0.25 if disk == "memory" else 0.0, lambda: rng.randint(20, 100) * tick_us),
        clients=rng.randint(2, 5),
        keys=rng.randint(1, 4),
        read_weight=rng.randint(1, 4),
        write_weight=rng.randint(1, 4),
        cas_weight=rng.randint(0, 3),
        think_max_us=rng.choice((2_000, 10_000, 40_000)),
        operation_timeout_ticks=rng.choice((30, 60, 120)),
        pause_interval_us=_maybe(rng, 0.3, lambda: _interval_ticks(rng) * tick_us),
        pause_duration_max_us=rng.randint(2, 100) * tick_us,
    )
    return _draw_directed_faults(drawn, rng)


def _draw_directed_faults(drawn: SimOptions, rng: random.Random) -> SimOptions:
    """The faults issue 12 added, drawn after every older option (so those stay as they
    were), and the older options they adjust: more lease runs (with pauses, cut-offs and
    transfers, which is where leases break), enough spare nodes for joint changes."""
    tick_us = drawn.tick_us
    lease = drawn.read_only == "lease" or rng.random() < 0.2
    joint = _maybe(rng, 0.4, lambda: rng.randint(30, 120) * tick_us)
    spare_nodes = max(drawn.spare_nodes, rng.randint(2, 4)) if joint else drawn.spare_nodes
    pause_interval_us = drawn.pause_interval_us
    pause_on = rng.random() < 0.5
    pause_draw = _interval_ticks(rng) * tick_us
    if lease and pause_on and not pause_interval_us:
        pause_interval_us = pause_draw
    transfer_interval_us = drawn.transfer_interval_us
    transfer_on = rng.random() < 0.5
    transfer_draw = rng.randint(30, 150) * tick_us
    if lease and transfer_on and not transfer_interval_us:
        transfer_interval_us = transfer_draw
    # A lease rests on tick rates differing by less than lease_drift_ticks over an election
    # timeout (docs/raft.md): with leases the skew stays well inside (1.5%, with the 2%
    # per-tick jitter that averages out), without them it may reach 10%.
    skew_max = 15_000 if lease else 100_000
    clock_skew_ppm = _maybe(rng, 0.5, lambda: rng.randint(1, skew_max))
    return replace(
        drawn,
        read_only="lease" if lease else drawn.read_only,
        check_quorum=drawn.check_quorum or lease,
        clock_jitter_us=min(drawn.clock_jitter_us, tick_us // 50) if lease
        else drawn.clock_jitter_us,
        spare_nodes=spare_nodes,
        pause_interval_us=pause_interval_us,
        transfer_interval_us=transfer_interval_us,
        joint_interval_us=joint,
        figure8_interval_us=_maybe(rng, 0.35, lambda: rng.randint(60, 200) * tick_us),
        rejoin_interval_us=_maybe(rng, 0.35, lambda: rng.randint(60, 200) * tick_us),
        ready_crash_interval_us=_maybe(rng, 0.4, lambda: _interval_ticks(rng) * tick_us),
        clock_skew_ppm=clock_skew_ppm,
        pause_cut_rate=_maybe(rng, 0.6 if lease else 0.3, lambda: rng.uniform(0.3, 1.0)),
        transfer_cut_rate=_maybe(rng, 0.6 if lease else 0.3, lambda: rng.uniform(0.3, 1.0)),
        append_entries_max=rng.choice((1, 2, 4, limits.append_entries_max,
                                       limits.append_entries_max)),
        stale_leader_interval_us=_maybe(rng, 0.8 if lease else 0.3,
                                        lambda: rng.randint(40, 120) * tick_us),
        # Drawn last, so every option above stays as a seed drew it before pipelining existed.
        pipelined_clients=_maybe(rng, 0.3, lambda: rng.randint(1, 3)),
    )


def _interval_ticks(rng: random.Random) -> int:
    """A mean interval between faults of one kind: intense (every 8-40 ticks, a storm of
    crashes or partitions) in a third of the runs, moderate (40-200 ticks) otherwise."""
    return rng.randint(8, 40) if rng.random() < 0.33 else rng.randint(40, 200)


Number = TypeVar("Number", int, float)


def _maybe(rng: random.Random, probability: float, draw: Callable[[], Number]) -> Number:
    """`draw()` with the given probability, else 0 (off). Always consumes the same draws, so
    turning one fault off does not shift the options drawn after it."""
    enabled = rng.random() < probability
    value = draw()
    return value if enabled else type(value)(0)
