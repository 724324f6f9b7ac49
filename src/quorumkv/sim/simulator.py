"""The deterministic whole-cluster simulator: production hosts on a simulated world.

Theory of operation. One seed drives everything. `Random(seed)` is split, in a fixed order, into
child Randoms for the options, the network, the disks, the clocks, the workload, the faults and
the hosts (each host incarnation gets its own child). An event queue (sim/event_queue.py) orders
everything by simulated time, ties broken by scheduling order, so a seed replays exactly.

The world around the production code:
- each node is a quorumkv.host.Host on its own store (sim/disk.py), ticked by its own clock:
  a tick every `tick_us` give or take `clock_jitter_us`, and a wall clock (`clock_ms`, which
  the leader stamps into commands) off by a fixed per-node offset;
- after any input (tick, message, client command, fault) a node runs its Ready driver
  (`Host.process`) `process_delay_us` later; inputs arriving meanwhile share that cycle, which
  is how group commit happens in the real server;
- messages cross sim/network.py; clients are sim/workload.py;
- faults (sim/faults.py) strike during the fault phase: partitions, crashes (the store keeps
  what a crash keeps; the node restarts later from it), membership changes, leader transfers,
  full disks, pauses; directed faults (sim/directed.py) aim at the histories single Raft rules
  guard: joint consensus, Figure 8, disruptive rejoins, cut-off paused or transferring leaders;
- a crash may land inside a Ready cycle, after some of its messages left and before its
  writes were synced (MidReadyCrash), so persist-before-send is observable.

A run is bounded in simulated time, in events handled and in wall time; past the last two it
fails as a livelock (with its seed) rather than stall a sweep.

Then the liveness phase heals everything (network whole, loss and duplication off, crashed
nodes restarted) and requires, within `liveness_ticks_max`, a leader of every shard and a client
write committed on every shard. The run then settles briefly so replicas catch up, and the
checkers (sim/checks.py) judge the records (sim/recorder.py): any violation fails the seed, as
does any exception escaping the production code (an invariant violation is a bug found).
"""

from __future__ import annotations

import random
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, cast

from quorumkv import limits
from quorumkv.cluster.metadata import METADATA_SHARD_ID
from quorumkv.codec.peer import PeerMessage
from quorumkv.errors import DiskFull
from quorumkv.host.host import BOOTSTRAP_INDEX, Host, HostConfig
from quorumkv.invariant import invariant
from quorumkv.raft.confchange import ConfChange
from quorumkv.raft.types import ConfState
from quorumkv.sim import checks, faults, pipelined, store_images
from quorumkv.sim.directed import DirectedFaults
from quorumkv.sim.disk import Disks
from quorumkv.sim.event_queue import EventQueue
from quorumkv.sim.network import Envelope, Network
from quorumkv.sim.options import SimOptions, draw_options
from quorumkv.sim.pipelined import PipelinedClients
from quorumkv.sim.recorder import Recorder
from quorumkv.sim.records import Violation
from quorumkv.sim.trace import Trace
from quorumkv.sim.workload import Client, Workload
from quorumkv.storage.protocols import NodeStore

SETTLE_TICKS = 30
"""Ticks the run goes on after liveness is shown, so followers catch up before the end checks."""

Listener = Callable[[str, str], None]


@dataclass(slots=True)
class SimNode:
    """One simulated machine: its store survives crashes, its host does not."""

    node_id: int
    store: NodeStore
    clock_offset_us: int
    host: Host | None = None
    incarnation: int = 0
    process_pending: bool = False
    paused_until_us: int = 0  # a paused node (SIGSTOP) neither ticks nor reads its inputs
    paused_ticks: int = 0  # ticks the pause spans: reported as missed when it resumes
    tick_rate_ppm: int = 0  # its clock runs this much slow (+) or fast (-): clock skew
    crash_point: str = ""  # armed mid-Ready crash: "send" (after a send) or "sync" (at one)
    crash_sends_left: int = 0  # for "send": the send of the next cycles after which it dies
    in_process: bool = False  # inside Host.process(): where crash points may spring


class MidReadyCrash(BaseException):
    """The node dies here, in the middle of a Ready cycle (raised by an armed crash point).

    A BaseException, as a real process death is no error the production code may handle: it
    unwinds the host's cycle wherever it stands. A real host can die after some of a Ready's
    messages left and before its entries and hard state were synced; the simulator springs it
    after the n-th send of a cycle, or at a synced write (which then reaches the disk unsynced,
    so the crash keeps it or not). With the host's persist-then-send order nothing observable
    follows; a host that sent before persisting is caught by the checkers."""


class _Transport:
    """A node's view of the network (host.Transport)."""

    def __init__(self, simulation: Simulation, node_id: int) -> None:
        self._simulation = simulation
        self._node_id = node_id

    def send(self, target_node: int, message: PeerMessage) -> None:
        self._simulation.network.send(self._simulation.queue.now_us, self._node_id,
                                      target_node, message)
        node = self._simulation.nodes[self._node_id]
        if node.in_process and node.crash_point == "send":
            node.crash_sends_left -= 1
            if node.crash_sends_left <= 0:
                raise MidReadyCrash(f"after sending to node {target_node}")


class _CrashPointStore:
    """A node's store as its host sees it when mid-Ready crashes are on: every call passes
    through, and an armed synced write inside a Ready cycle becomes the node's death
    (installed at start-up around the store, never in the production request path)."""

    def __init__(self, store: NodeStore, node: SimNode) -> None:
        self._store = store
        self._node = node

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def write(self, batch: Any, sync: bool) -> None:
        node = self._node
        if sync and node.in_process and node.crash_point == "sync":
            self._store.write(batch, sync=False)  # in the page cache, not yet on the platter
            raise MidReadyCrash("during a synced write")
        self._store.write(batch, sync)


@dataclass(slots=True)
class RunResult:
    """The outcome of one seed."""

    options: SimOptions
    violations: list[Violation]
    summary: dict[str, object]
    trace_hash: str
    trace_lines: list[str] = field(default_factory=list)
    features: tuple[str, ...] = ()  # what the run reached (the sweep's coverage table)

    @property
    def ok(self) -> bool:
        return not self.violations


class Simulation:
    """One run: build the cluster, drive it through the fault and liveness phases, check it."""

    def __init__(self, options: SimOptions, keep_trace: bool = False,
                 listener: Listener | None = None) -> None:
        self.options = options
        master = random.Random(options.seed)
        master.getrandbits(64)  # the options' child (see run_seed): drawn before this
        self._network_rng = random.Random(master.getrandbits(64))
        self._disk_rng = random.Random(master.getrandbits(64))
        self._clock_rng = random.Random(master.getrandbits(64))
        self._workload_rng = random.Random(master.getrandbits(64))
        self.fault_rng = random.Random(master.getrandbits(64))
        self._host_rng = random.Random(master.getrandbits(64))
        # Pipelining connections (sim/pipelined.py), drawn last: other streams stay as they were.
        self.pipelined = (PipelinedClients(self, random.Random(master.getrandbits(64)),
                                           options.pipelined_clients)
                          if options.pipelined_clients else None)
        self._listener = listener
        self.trace = Trace(keep_lines=keep_trace)
        self.queue = EventQueue()
        self.network = Network(
            self._network_rng, self.trace, self._schedule_delivery, options.delay_min_us,
            options.delay_max_us, options.reorder, options.loss_rate, options.duplicate_rate)
        self.disks = Disks(options.disk, self._disk_rng, options.torn_write_rate)
        self.nodes: dict[int, SimNode] = {}
        # Data shards only: shard 0 is the metadata shard, with its own state machine.
        self.shard_ids = [METADATA_SHARD_ID + number for number in range(1, options.shards + 1)]
        self.recorder = Recorder(self.trace, lambda: self.queue.now_us, self._term_of,
                                 self._incarnation_of, listener)
        self.directed = DirectedFaults(self)
        self.recorder.leader_hook = self.directed.on_leader
        self.workload = Workload(
            self._workload_rng, self.trace, options.clients, max(options.keys, options.shards),
            self.shard_ids, (options.read_weight, options.write_weight, options.cas_weight),
            self._client_nodes)
        self.host_config = HostConfig(
            election_timeout_ticks=options.election_timeout_ticks,
            heartbeat_interval_ticks=options.heartbeat_interval_ticks,
            pre_vote=options.pre_vote, check_quorum=options.check_quorum,
            read_only=options.read_only,
            log_compaction_entries_min=options.log_compaction_entries_min,
            append_entries_max=options.append_entries_max)
        self.phase = "faults"
        self.violations: list[Violation] = []
        self.fault_counts: dict[str, int] = {}
        self.members_ever: dict[int, set[int]] = {}
        self._partition_number = 0
        self._heal_us: int | None = None
        self._live_us: int | None = None
        self._live_leader_us: int | None = None
        self._live_write_us: int | None = None
        self._finished = False
        self.linearizability_decided = True
        self.checked: dict[str, str] = {}
        self.progress_interval_ticks = 0  # the demo's periodic progress lines; 0: none
        self._handlers: dict[str, Callable[[Any], None]] = {
            "deliver": self._on_deliver, "tick": self._on_tick, "process": self._on_process,
            "client": self._on_client, "client-timeout": self._on_client_timeout,
            "fault": self._on_fault, "heal-partition": self._on_heal_partition,
            "restart": self._on_restart, "liveness": self._on_liveness,
            "liveness-check": self._on_liveness_check, "end": self._on_end,
            "progress": self._on_progress, "resume": self._on_resume,
            "submit": self._on_submit, "heal-cut": lambda p: self.directed.on_heal_cut(*p),
            "figure8-cut": lambda p: self.directed.on_figure8_cut(*p),
            "rejoin": lambda p: self.directed.on_rejoin(*p),
            "joint-split": lambda p: self.directed.on_joint_split(*p),
            "route-to": lambda p: self.directed.route_to(*p),
            "unwatch": lambda p: self.directed.unwatch(*p),
        }
        self._fault_kinds: dict[str, tuple[Callable[[], None], int]] = {
            "partition": (self._fault_partition, options.partition_interval_us),
            "crash": (self._fault_crash, options.crash_interval_us),
            "membership": (self._fault_membership, options.membership_interval_us),
            "transfer": (self._fault_transfer, options.transfer_interval_us),
            "disk-full": (self._fault_disk_full, options.disk_full_interval_us),
            "pause": (self._fault_pause, options.pause_interval_us),
            "joint": (self.directed.joint, options.joint_interval_us),
            "figure8": (self.directed.figure8, options.figure8_interval_us),
            "rejoin": (self.directed.rejoin, options.rejoin_interval_us),
            "ready-crash": (self._fault_ready_crash, options.ready_crash_interval_us),
            "stale-leader": (self.directed.stale_leader, options.stale_leader_interval_us),
        }
        if self.pipelined is not None:
            self._handlers[pipelined.EVENT] = self.pipelined.on_event

    # ---- running -----------------------------------------------------------------------------

    def run(self) -> RunResult:
        """Run to the end (or the first exception) and check everything."""
        try:
            self.start()
        except Exception as error:  # noqa: BLE001 - production code failed: that is a finding
            self._fail_with(error)
            self._finished = True
        return self.finish()

    # Directed scenarios (tests/sim/test_scenarios.py) drive a run by hand: start(), then
    # run_until() and inject faults or client commands, then finish() to run on and check.

    def run_until(self, time_us: int) -> None:
        """Handle every event due up to `time_us` (exceptions propagate: a test sees them)."""
        while not self._finished:
            next_time = self.queue.peek_time_us()
            if next_time is None or next_time > time_us:
                return
            event = self.queue.pop()
            if event is None:
                return
            self._handlers[event.kind](event.payload)

    def submit(self, node_id: int, shard_id: int, name: bytes,
               args: tuple[bytes, ...]) -> list[object]:
        """Send a command to a node outside the workload; the list receives its result."""
        answers: list[object] = []
        host = self.nodes[node_id].host
        invariant(host is not None, f"node {node_id} is down: nothing to submit to")
        if host is not None:
            host.submit(shard_id, name, args, answers.append)
            self.wake(self.nodes[node_id])
        return answers

    def submit_to(self, node_id: int, shard_id: int, name: bytes, args: tuple[bytes, ...],
                  done: Callable[[object], None]) -> None:
        """Hand a command to a running node's host (sim/pipelined.py's clients)."""
        node = self.nodes[node_id]
        invariant(node.host is not None, f"node {node_id} is down: nothing to submit to")
        if node.host is not None:
            node.host.submit(shard_id, name, args, done)
            self.wake(node)

    def leader(self, shard_id: int) -> int:
        """The node that leads the shard now (0: none)."""
        node = self.leader_node(shard_id)
        return node.node_id if node is not None else 0

    def finish(self) -> RunResult:
        """Run on to the end of the run, then check everything."""
        if not self._finished:
            try:
                self._loop()
            except Exception as error:  # noqa: BLE001 - production code failed: a finding
                self._fail_with(error)
        try:
            self._final_checks()
        except Exception as error:  # noqa: BLE001
            self._fail_with(error)
        finally:
            self.disks.close([node.store for node in self.nodes.values()])
        return RunResult(self.options, self.violations, self.summary(),
                         self.trace.hexdigest(), self.trace.lines, self.features())

    def _fail_with(self, error: Exception) -> None:
        where = traceback.format_exception(error)
        self.violations.append(Violation(
            "exception", f"{type(error).__name__}: {error} at {self.queue.now_us}us\n"
            + "".join(where[-6:])))

    def _loop(self) -> None:
        deadline = limits.sim_ticks_max * self.options.tick_us
        # The wall clock only bounds the run (it never steers it): a run cut off by it is a
        # finding, reported with its seed, not a replay difference.
        wall_deadline = time.monotonic() + limits.sim_run_seconds_max
        handled = 0
        while not self._finished:
            event = self.queue.pop()
            if event is None:
                self.violations.append(Violation("stuck", "nothing left to simulate"))
                return
            if event.time_us > deadline:
                self.violations.append(Violation(
                    "stuck", f"the run passed limits.sim_ticks_max ({limits.sim_ticks_max})"))
                return
            handled += 1
            if handled % 4096 == 0 and self._livelocked(handled, wall_deadline):
                return
            self._handlers[event.kind](event.payload)

    def _livelocked(self, handled: int, wall_deadline: float) -> bool:
        """Past the run's bound on events or on wall time: a livelock, reported as one."""
        where = (f"at {self.queue.now_us}us ({self.queue.now_us // self.options.tick_us} "
                 f"ticks, phase {self.phase}), seed {self.options.seed}")
        if handled > limits.sim_events_max:
            self.violations.append(Violation(
                "livelock", f"{handled} events handled, past limits.sim_events_max "
                f"({limits.sim_events_max}) {where}"))
            return True
        if time.monotonic() > wall_deadline:
            self.violations.append(Violation(
                "livelock", f"{handled} events in {limits.sim_run_seconds_max}s of wall time "
                f"(limits.sim_run_seconds_max) {where}"))
            return True
        return False

    def start(self) -> None:
        """Build the cluster and schedule the clients, the faults and the phases."""
        options = self.options
        voters = list(range(1, options.voters + 1))
        for shard_id in self.shard_ids:
            self.members_ever[shard_id] = set(voters)
        for node_id in voters:
            node = self._create_node(node_id)
            host = self._new_host(node)
            for shard_id in self.shard_ids:
                host.bootstrap_shard(shard_id, voters)
            self._boot(node, host)
        for client in self.workload.clients:
            self.queue.push(self._workload_rng.randint(0, options.think_max_us), "client",
                            client.client_id)
        if self.pipelined is not None:
            self.pipelined.start()
        self._schedule_faults()
        self.queue.push(options.fault_ticks * options.tick_us, "liveness")
        if self.progress_interval_ticks and self._listener is not None:
            self.queue.push(self.progress_interval_ticks * options.tick_us, "progress")

    def _schedule_faults(self) -> None:
        for kind, (_, interval) in self._fault_kinds.items():
            if interval:
                self._schedule_fault(kind, interval)

    def _schedule_fault(self, kind: str, interval_us: int) -> None:
        delay = faults.next_interval_us(self.fault_rng, interval_us)
        self.queue.push(self.queue.now_us + delay, "fault", kind)

    # ---- nodes -------------------------------------------------------------------------------

    def _create_node(self, node_id: int) -> SimNode:
        offset_max = self.options.clock_offset_max_us
        offset = self._clock_rng.randint(-offset_max, offset_max) if offset_max else 0
        node = SimNode(node_id, self.disks.create(node_id), offset)
        skew = self.options.clock_skew_ppm
        if skew:
            node.tick_rate_ppm = self._clock_rng.randint(-skew, skew)
        self.nodes[node_id] = node
        return node

    def _new_host(self, node: SimNode) -> Host:
        clock_ms = partial(self._clock_ms, node)
        rng = random.Random(self._host_rng.getrandbits(64))
        store = node.store
        if self.options.ready_crash_interval_us:
            store = cast(NodeStore, _CrashPointStore(node.store, node))
        return Host(node.node_id, store, _Transport(self, node.node_id), rng, clock_ms,
                    self.host_config, self.recorder)

    def _boot(self, node: SimNode, host: Host) -> None:
        """Start a host on the node's store and begin ticking it."""
        host.start()
        node.host = host
        self.trace.record(self.queue.now_us, f"start node {node.node_id} "
                          f"life {node.incarnation} shards {host.shard_ids()}")
        first_tick = self.queue.now_us + self._clock_rng.randint(1, self.options.tick_us)
        self.queue.push(first_tick, "tick", (node.node_id, node.incarnation))
        self.wake(node)

    def _clock_ms(self, node: SimNode) -> int:
        return max(0, self.queue.now_us + node.clock_offset_us) // 1000

    def _term_of(self, node_id: int, shard_id: int) -> int:
        host = self.nodes[node_id].host
        return host.replica(shard_id).node.term if host is not None else 0

    def _incarnation_of(self, node_id: int) -> int:
        return self.nodes[node_id].incarnation

    def up(self) -> list[int]:
        return [node_id for node_id, node in sorted(self.nodes.items()) if node.host is not None]

    def _client_nodes(self) -> list[int]:
        return sorted(self.nodes)

    def _running(self) -> list[int]:
        """Nodes up and not paused: those that can take an operator's request now."""
        now = self.queue.now_us
        return [node_id for node_id in self.up()
                if self.nodes[node_id].paused_until_us <= now]

    def _held(self, node: SimNode, kind: str, payload: Any) -> bool:
        """If the node is paused, hold this input until it resumes (a stopped process's
        sockets and timers wait for it); True when held."""
        if node.paused_until_us <= self.queue.now_us:
            return False
        self.queue.push(node.paused_until_us, kind, payload)
        return True

    def leader_node(self, shard_id: int) -> SimNode | None:
        """The running node that believes it leads the shard, the highest term winning."""
        best: tuple[int, SimNode] | None = None
        for node_id in self._running():
            node = self.nodes[node_id]
            host = node.host
            if host is not None and shard_id in host.shard_ids() and host.is_leader(shard_id):
                term = host.replica(shard_id).node.term
                if best is None or term > best[0]:
                    best = (term, node)
        return best[1] if best is not None else None

    def wake(self, node: SimNode) -> None:
        """Run the node's Ready driver soon (inputs arriving meanwhile share the cycle)."""
        if not node.process_pending and node.host is not None:
            node.process_pending = True
            self.queue.push(self.queue.now_us + self.options.process_delay_us, "process",
                            (node.node_id, node.incarnation))

    def _live_node(self, payload: Any) -> SimNode | None:
        node_id, incarnation = payload
        node = self.nodes[node_id]
        if node.host is None or node.incarnation != incarnation:
            return None
        return node

    # ---- events ------------------------------------------------------------------------------

    def _schedule_delivery(self, time_us: int, envelope: Envelope) -> None:
        self.queue.push(time_us, "deliver", envelope)

    def _on_deliver(self, payload: Any) -> None:
        envelope: Envelope = payload
        node = self.nodes.get(envelope.target)
        if node is None or node.host is None:
            self.trace.record(self.queue.now_us, f"drop #{envelope.number} "
                              f"{envelope.source}->{envelope.target} node down")
            return
        if self._held(node, "deliver", envelope):
            return
        message = self.network.arrive(self.queue.now_us, envelope)
        if message is not None:
            node.host.receive(message)
            self.wake(node)

    def _on_tick(self, payload: Any) -> None:
        node = self._live_node(payload)
        if node is None or node.host is None or self._held(node, "tick", payload):
            return  # a paused node's ticks resume with it, missed ones are not replayed
        self.trace.record(self.queue.now_us, f"tick {node.node_id}")
        node.host.tick()
        jitter = self.options.clock_jitter_us
        interval = self.options.tick_us + (self._clock_rng.randint(-jitter, jitter) if jitter else 0)
        if node.tick_rate_ppm:
            interval += self.options.tick_us * node.tick_rate_ppm // 1_000_000
        self.queue.push(self.queue.now_us + interval, "tick", payload)
        self.wake(node)

    def _on_process(self, payload: Any) -> None:
        node = self._live_node(payload)
        if node is None or node.host is None or self._held(node, "process", payload):
            return
        node.process_pending = False
        node.in_process = True
        try:
            more = node.host.process()
        except MidReadyCrash as crash:
            self._crash_mid_ready(node, str(crash))
            return
        finally:
            node.in_process = False
        if more:
            self.wake(node)  # there may be more: run another cycle

    # ---- clients -----------------------------------------------------------------------------

    def _on_client(self, payload: Any) -> None:
        client = self.workload.clients[int(payload) - 1]
        if client.pending is not None or self._finished:
            return
        now = self.queue.now_us
        operation = self.workload.invoke(client, now)
        node = self.nodes.get(operation.node_id)
        if node is None or node.host is None:
            self.workload.node_down(client, operation, now, crashed=False)
            self._client_later(client.client_id)
            return
        timeout = now + self.options.operation_timeout_ticks * self.options.tick_us
        self.queue.push(timeout, "client-timeout", (client.client_id, operation.number))
        self._on_submit((client.client_id, operation, node.incarnation))

    def _on_submit(self, payload: Any) -> None:
        """The request reaches the node (held while it is paused; lost if it crashed)."""
        client_id, operation, incarnation = payload
        node = self.nodes[operation.node_id]
        if node.host is None or node.incarnation != incarnation:
            return  # the connection died with the node: the client times out
        if self._held(node, "submit", payload):
            return
        name, args = operation.command
        done = partial(self._client_done, client_id, operation.number)
        node.host.submit(operation.shard_id, name, args, done)
        self.wake(node)

    def _client_done(self, client_id: int, number: int, result: object) -> None:
        client = self.workload.clients[client_id - 1]
        operation = client.pending
        if operation is None or operation.number != number:
            return  # answered after the client gave up on it
        outcome = self.workload.complete(client, operation, result, self.queue.now_us)
        if outcome == "ok" and operation.function != "read" and self._listener is not None:
            self._listener("client", f"client {client_id} {operation.function} "
                           f"{operation.key}={operation.value!r} ok")
        self._client_later(client_id, backoff=outcome != "ok")

    def _client_later(self, client_id: int, backoff: bool = True) -> None:
        """Schedule the client's next operation: after a think time, plus up to a tick of
        back-off after anything but success (as a real client backs off on errors)."""
        delay = self._workload_rng.randint(0, self.options.think_max_us)
        if backoff:
            delay += self._workload_rng.randint(0, self.options.tick_us)
        self.queue.push(self.queue.now_us + delay, "client", client_id)

    def abandon_operations_on(self, node_id: int) -> None:
        """Clients waiting on `node_id` give up now (outcome unknown) and go on elsewhere."""
        for client in self.workload.clients:
            operation = client.pending
            if operation is not None and operation.node_id == node_id:
                self.abandon_operation(client)

    def abandon_operation(self, client: Client) -> None:
        """The client gives up on its pending operation now (outcome unknown), as one with a
        short timeout does, and invokes its next one soon."""
        if client.pending is not None:
            self.workload.timeout(client, client.pending, self.queue.now_us)
            self._client_later(client.client_id)

    def _on_client_timeout(self, payload: Any) -> None:
        client_id, number = payload
        client = self.workload.clients[client_id - 1]
        operation = client.pending
        if operation is None or operation.number != number:
            return
        self.workload.timeout(client, operation, self.queue.now_us)
        self._client_later(client_id)

    # ---- faults ------------------------------------------------------------------------------

    def count_fault(self, kind: str, text: str) -> None:
        self.fault_counts[kind] = self.fault_counts.get(kind, 0) + 1
        self.trace.record(self.queue.now_us, f"fault {kind} {text}")
        if self._listener is not None:
            self._listener("fault", f"{kind} {text}")

    def _on_fault(self, payload: Any) -> None:
        kind = str(payload)
        if self.phase != "faults":
            return
        strike, interval = self._fault_kinds[kind]
        strike()
        self._schedule_fault(kind, interval)

    def _fault_partition(self) -> None:
        partition = faults.choose_partition(self.fault_rng, sorted(self.nodes))
        self._partition_number += 1
        self.network.partition(partition.blocked)
        duration = faults.choose_duration_us(self.fault_rng,
                                             self.options.partition_duration_max_us)
        self.count_fault("partition", f"{partition.describe()} for {duration}us")
        self.queue.push(self.queue.now_us + duration, "heal-partition", self._partition_number)

    def _on_heal_partition(self, payload: Any) -> None:
        if payload == self._partition_number and self.network.is_partitioned("partition"):
            self.network.heal("partition")
            self.count_fault("heal", "network whole again")

    def _leaders(self) -> list[int]:
        """The node leading each shard that has a leader now."""
        return [leader.node_id for shard_id in self.shard_ids
                if (leader := self.leader_node(shard_id)) is not None]

    def _fault_crash(self) -> None:
        victim = faults.choose_crash_victim(self.fault_rng, self.up(), self._leaders())
        if victim is None:
            return
        self._crash(self.nodes[victim])
        self._restart_later(victim)

    def _restart_later(self, node_id: int) -> None:
        downtime = self.fault_rng.randint(1, max(1, self.options.downtime_max_us))
        self.queue.push(self.queue.now_us + downtime, "restart", node_id)

    def _fault_ready_crash(self) -> None:
        """Arm a crash point on a node: it dies inside one of its next Ready cycles."""
        victim = faults.choose_crash_victim(self.fault_rng, self.up(), self._leaders())
        if victim is None:
            return
        node = self.nodes[victim]
        node.crash_point = self.fault_rng.choice(("send", "sync"))
        node.crash_sends_left = self.fault_rng.randint(1, 4)
        where = (f"after its {node.crash_sends_left}th send" if node.crash_point == "send"
                 else "at its next synced write")
        self.trace.record(self.queue.now_us, f"armed node {victim}: crash {where} in a Ready")

    def _crash_mid_ready(self, node: SimNode, where: str) -> None:
        self.directed.features.add("crash-mid-ready")
        self._crash(node, f"mid-Ready {where}")
        self._restart_later(node.node_id)

    def _crash(self, node: SimNode, how: str = "") -> None:
        now = self.queue.now_us
        self._capture_images(node, f"before crash at {now}us")
        node.host = None
        node.incarnation += 1
        node.process_pending = False
        node.paused_until_us = 0
        node.crash_point = ""
        for client in self.workload.clients:
            operation = client.pending
            if operation is not None and operation.node_id == node.node_id:
                self.workload.node_down(client, operation, now, crashed=True)
                self._client_later(client.client_id)
        node.store = self.disks.crash(node.node_id, node.store)
        self.count_fault("crash", f"node {node.node_id}{' ' + how if how else ''}")
        self._capture_images(node, f"after crash at {now}us")

    def _on_restart(self, payload: Any) -> None:
        node = self.nodes[int(payload)]
        if node.host is not None:
            return
        self.count_fault("restart", f"node {node.node_id}")
        self._boot(node, self._new_host(node))

    def _fault_pause(self) -> None:
        victim = faults.choose_crash_victim(self.fault_rng, self._running(), self._leaders())
        if victim is None:
            return
        duration = self.fault_rng.randint(1, max(1, self.options.pause_duration_max_us))
        led = [shard_id for shard_id in self.shard_ids
               if (leader := self.leader_node(shard_id)) is not None and leader.node_id == victim]
        self.pause(victim, duration)
        self.directed.after_pause(victim, duration, led)

    def pause(self, node_id: int, duration_us: int) -> None:
        """Stop a node for `duration_us` (no ticks; its inputs wait for it)."""
        node = self.nodes[node_id]
        node.paused_until_us = self.queue.now_us + duration_us
        node.paused_ticks = duration_us // self.options.tick_us
        self.count_fault("pause", f"node {node_id} for {duration_us}us")
        self.queue.push(node.paused_until_us, "resume", (node_id, node.incarnation))

    def _on_resume(self, payload: Any) -> None:
        node = self._live_node(payload)
        if node is not None and node.paused_until_us == self.queue.now_us:
            self.count_fault("resume", f"node {node.node_id}")
            if node.host is not None and node.paused_ticks:
                # As the server does: the first tick after a pause finds it late, and the
                # cores' lease clocks count the missed ticks (inputs held meanwhile come after).
                node.host.missed_ticks(node.paused_ticks)

    def _fault_disk_full(self) -> None:
        up = self.up()
        if not up:
            return
        node = self.nodes[self.fault_rng.choice(up)]
        writes = self.fault_rng.randint(1, 5)
        if self.disks.fail_writes(node.store, writes):
            self.count_fault("disk-full", f"node {node.node_id} next {writes} writes")
            self.wake(node)

    def _fault_transfer(self) -> None:
        shard_id = self.fault_rng.choice(self.shard_ids)
        leader = self.leader_node(shard_id)
        if leader is None or leader.host is None:
            return
        voters = [v for v in self.conf_state(leader, shard_id).voters if v != leader.node_id]
        if not voters:
            return
        target = self.fault_rng.choice(sorted(voters))
        self.count_fault("transfer", f"shard {shard_id} from node {leader.node_id} "
                          f"to node {target}")
        leader.host.transfer_leader(shard_id, target)
        self.wake(leader)
        self.directed.after_transfer(shard_id, leader.node_id)

    def conf_state(self, node: SimNode, shard_id: int) -> ConfState:
        invariant(node.host is not None, "the configuration of a crashed node was asked for")
        return node.host.replica(shard_id).applied.conf_state  # type: ignore[union-attr]

    def _fault_membership(self) -> None:
        shard_id = self.fault_rng.choice(self.shard_ids)
        leader = self.leader_node(shard_id)
        if leader is None or leader.host is None:
            return
        conf = self.conf_state(leader, shard_id)
        if conf.voters_outgoing:
            return  # a joint configuration is being left
        choice = faults.choose_membership_change(
            self.fault_rng, sorted(conf.voters), sorted(conf.learners),
            self.join_candidates(shard_id))
        if choice is None:
            return
        change = self._membership_change(shard_id, choice)
        if change is None:
            return
        self.count_fault("membership", f"shard {shard_id} {change} via node {leader.node_id}")
        done = partial(self.membership_done, shard_id, str(change))
        leader.host.propose_conf_change(shard_id, change, done)
        self.wake(leader)

    def join_candidates(self, shard_id: int) -> list[int]:
        """Nodes that may join the shard: never its members (replica ids are not reused),
        and up if they exist."""
        spare_ids = range(1, self.options.voters + self.options.spare_nodes + 1)
        return [n for n in spare_ids if n not in self.members_ever[shard_id]
                and (n not in self.nodes or self.nodes[n].host is not None)]

    def _membership_change(self, shard_id: int,
                           choice: faults.MembershipChoice) -> ConfChange | None:
        if choice.action == "add-learner":
            self.members_ever[shard_id].add(choice.node_id)
            if not self.prepare_replica(choice.node_id, shard_id):
                return None
            return ConfChange.add_learner(choice.node_id)
        if choice.action == "promote":
            return ConfChange.promote_learner(choice.node_id)
        return ConfChange.remove(choice.node_id)

    def prepare_replica(self, node_id: int, shard_id: int) -> bool:
        """An empty replica on the joining node, waiting for the leader's snapshot; False if
        the node's disk refused it (the change is not proposed)."""
        node = self.nodes.get(node_id)
        if node is None:
            node = self._create_node(node_id)
            host = self._new_host(node)
            host.create_replica(shard_id)
            self._boot(node, host)
            return True
        if node.host is not None and shard_id not in node.host.shard_ids():
            try:
                node.host.create_replica(shard_id)
            except DiskFull:
                self.trace.record(self.queue.now_us, f"node {node_id} disk full: no replica "
                                  f"of shard {shard_id} created")
                return False
        return True

    def membership_done(self, shard_id: int, change: str, result: object) -> None:
        outcome = type(result).__name__ if isinstance(result, BaseException) else "applied"
        self.trace.record(self.queue.now_us, f"membership shard {shard_id} {change}: {outcome}")

    # ---- liveness ----------------------------------------------------------------------------

    def _on_liveness(self, payload: Any) -> None:
        """End of the fault phase: heal everything and start the liveness clock."""
        self.phase = "liveness"
        now = self.queue.now_us
        self._heal_us = now
        self.network.heal()
        self.directed.heal_all()
        for node in self.nodes.values():
            node.crash_point = ""
        self.network.set_faults(0.0, 0.0)
        self.count_fault("heal", "all: network whole, loss and duplication off, "
                          "crashed nodes restarted")
        for node_id in sorted(self.nodes):
            node = self.nodes[node_id]
            if node.host is None:
                self._boot(node, self._new_host(node))
        self.queue.push(now + self.options.tick_us, "liveness-check")

    def _on_liveness_check(self, payload: Any) -> None:
        now = self.queue.now_us
        heal = self._heal_us or 0
        if self._live_leader_us is None and all(
                self.leader_node(shard_id) is not None for shard_id in self.shard_ids):
            self._live_leader_us = now
        if self._live_write_us is None:
            shards_written = {shard for shard, invoked, _ in self.workload.writes_ok
                              if invoked >= heal}
            if len(shards_written) == len(self.shard_ids):
                self._live_write_us = now
        deadline = heal + self.options.liveness_ticks_max * self.options.tick_us
        if self._live_leader_us is not None and self._live_write_us is not None:
            self._live_us = now
            if self._listener is not None:
                self._listener("liveness", f"leader and a committed write "
                               f"{(now - heal) // self.options.tick_us} ticks after healing")
            self.queue.push(now + SETTLE_TICKS * self.options.tick_us, "end")
        elif now >= deadline:
            self.queue.push(now, "end")
        else:
            self.queue.push(now + self.options.tick_us, "liveness-check")

    def _on_progress(self, payload: Any) -> None:
        """A periodic status line for the demo (never part of a checked run's trace)."""
        if self._listener is None:
            return
        leaders = []
        for shard_id in self.shard_ids:
            leader = self.leader_node(shard_id)
            leaders.append(f"shard {shard_id}: " + (
                f"leader {leader.node_id} term {self._term_of(leader.node_id, shard_id)}"
                if leader is not None else "no leader"))
        counts = self.workload.counts
        self._listener("progress", f"tick {self.queue.now_us // self.options.tick_us} "
                       f"{self.phase}: {', '.join(leaders)}; committed "
                       f"{sum(i - BOOTSTRAP_INDEX for i in self.recorder.applied_max.values())}; "
                       f"ops ok={counts['ok']} fail={counts['fail']} info={counts['info']}; "
                       f"up {self.up()}")
        self.queue.push(self.queue.now_us + self.progress_interval_ticks * self.options.tick_us,
                        "progress")

    def _on_end(self, payload: Any) -> None:
        self._finished = True
        self.phase = "end"

    # ---- checking ----------------------------------------------------------------------------

    def _capture_images(self, node: SimNode, moment: str) -> None:
        for image in store_images.log_images(node.node_id, node.store, moment):
            self.recorder.add_image(image)

    def _final_checks(self) -> None:
        recorder = self.recorder
        for node_id in sorted(self.nodes):
            self._capture_images(self.nodes[node_id], "end")
        found = self.violations
        self.checked = {
            "election safety": f"{len(recorder.leaders)} leaders",
            "log matching": f"{len(recorder.images)} log images",
            "leader completeness": f"{len(recorder.leaders)} leaders x "
                                   f"{len({(a.shard_id, a.index) for a in recorder.applied})} "
                                   "committed entries",
            "state machine safety": f"{len(recorder.applied)} applied entries",
            "replica convergence": f"{len(self.up())} replicas",
            "linearizability": f"{len(self.workload.history)} history events",
            "liveness": "leader and write after healing",
        }
        found += checks.check_election_safety(recorder.leaders)
        found += checks.check_log_matching(recorder.images)
        found += checks.check_leader_completeness(recorder.leaders, recorder.applied)
        found += checks.check_state_machine_safety(recorder.applied)
        found += checks.check_replica_convergence(self._replica_states())
        linearizability, decided = checks.check_linearizability(self.workload.history)
        found += linearizability
        self.linearizability_decided = decided
        if self._heal_us is not None and not any(v.check in ("exception", "stuck") for v in found):
            deadline = self._heal_us + self.options.liveness_ticks_max * self.options.tick_us
            found += checks.check_liveness(self._heal_us, deadline, self._live_leader_us,
                                           self._live_write_us)
        found += [Violation("workload", anomaly) for anomaly in self.workload.anomalies]
        if self.pipelined is not None:
            self.checked["pipeline order"] = f"{len(self.pipelined.connections)} connections"
            found += [Violation("pipeline order", text) for text in self.pipelined.violations()]

    def _replica_states(self) -> list[tuple[int, int, int, int]]:
        return [state for node_id in self.up()
                for state in store_images.replica_states(node_id, self.nodes[node_id].store)]

    def features(self) -> tuple[str, ...]:
        """What this run reached, for the sweep's coverage table (sorted names)."""
        found = set(self.directed.features)
        if self.fault_counts.get("disk-full") or self.disks.torn_batches:
            found.add("disk-fault")
        if self.pipelined is not None:
            found.add("pipelined")
        return tuple(sorted(found))

    def summary(self) -> dict[str, object]:
        recorder = self.recorder
        counts = self.workload.counts
        return {
            "ticks": self.queue.now_us // self.options.tick_us,
            "elections": len(recorder.leaders),
            "terms": max(recorder.terms_max.values(), default=0),
            "committed": sum(index - BOOTSTRAP_INDEX for index in recorder.applied_max.values()),
            "ops": f"ok={counts['ok']} fail={counts['fail']} info={counts['info']}",
            "faults": " ".join(f"{k}={v}" for k, v in sorted(self.fault_counts.items()))
                      or "none",
            "network": " ".join(f"{k}={v}" for k, v in self.network.counts.items()),
            "liveness_ticks": (None if self._live_us is None or self._heal_us is None
                               else (self._live_us - self._heal_us) // self.options.tick_us),
            "linearizability": "checked" if self.linearizability_decided else "unknown",
            "trace_events": self.trace.count,
            **({"pipelined": " ".join(f"{k}={v}" for k, v in self.pipelined.counts.items())}
               if self.pipelined is not None else {}),
        }


def options_of_seed(seed: int, disk: str = "memory") -> SimOptions:
    """The options seed `seed` draws (from its first child Random)."""
    return draw_options(seed, random.Random(random.Random(seed).getrandbits(64)), disk)


def run_seed(seed: int, disk: str = "memory", keep_trace: bool = False,
             listener: Listener | None = None) -> RunResult:
    """Draw the options of `seed` and run it."""
    return Simulation(options_of_seed(seed, disk), keep_trace, listener).run()
