"""One quorumkv node process: the event loop that owns the host, the sockets and the clock.

Theory of operation. Exactly one piece of code touches the `Host`: the callbacks below, all on
the event loop thread, none of which awaits while it works. Inputs reach the host by direct
calls on that thread:

- peer records (`PeerTransport` calls `_on_peer_record`): Raft messages and snapshot chunks go
  to `host.receive`, forwarded commands to the dispatcher;
- client commands (the RESP front end calls `dispatcher.submit`, which may `host.submit`);
- ticks (`_tick`, every `tick_ms` of the loop's monotonic clock): `host.tick()`.

Each input only schedules the driver (`_drive`, once per loop iteration however many inputs
arrived): it runs `host.process()` until there is no work (each call one Ready cycle: one synced
store write for every shard = group commit), then flushes the peer transport (one writelines
per peer) and the client connections (one write per client). Because the driver runs after
the loop has handled every socket that was readable, all commands that arrived together are
persisted with one fsync.

Start: open the store, establish the membership (bootstrapping the metadata and data shards
on the very first start), load the replicas, listen for peers and clients, start ticking.
Stop (SIGTERM, SIGINT): stop accepting and reading clients, hand leadership of every shard this
node leads to the most caught-up follower, let in-flight commands finish (bounded), answer the
rest definitely (or -UNKNOWN when a write may have been proposed), sync, close the store.
The driver stops before anything it uses closes: ticks, inputs and `_drive` end first, then the
gate (handing over a cycle still on its worker), then clients, peers and the store.
"""

from __future__ import annotations

import asyncio
import logging
import random
import resource
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

from quorumkv import errors, limits
from quorumkv.codec.peer import (
    ClusterMetadataPush,
    ForwardRequest,
    ForwardResponse,
    Handshake,
    HandshakeRefused,
    PeerRecord,
)
from quorumkv.host.host import Host, HostConfig
from quorumkv.invariant import invariant
from quorumkv.server.cluster_state import ClusterState, is_write_command, validate_command
from quorumkv.server.config import ConfigError, ServerConfig
from quorumkv.server.dispatcher import Dispatcher
from quorumkv.server.host_gate import BufferedTransport, HostGate
from quorumkv.server.membership import Membership, establish
from quorumkv.server.peer_transport import PeerTransport
from quorumkv.server.resp_server import ClientServer
from quorumkv.server.storage_identity import (
    PEER_STORAGE_IDS_META,
    PeerStorageIds,
    storage_id_of,
)
from quorumkv.storage.protocols import NodeStore, WriteBatch

log = logging.getLogger("quorumkv.node")

EXIT_BUG = 70  # EX_SOFTWARE: an invariant broke
EXIT_STORAGE = 1  # the store failed in a way the node cannot work around
EXIT_STORAGE_LOST = 78  # EX_CONFIG: this data directory lost what the node held (restarting
# on it again gives the same refusal: storage_identity.py)


def open_rocksdb_store(path: Path) -> NodeStore:
    from quorumkv.storage.open import open_node_store

    return open_node_store(str(path))


class _UnsyncedStore:
    """A store whose writes are never synced (`sync = false`, for experiments only)."""

    def __init__(self, store: NodeStore) -> None:
        self._store = store

    def write(self, batch: WriteBatch, sync: bool) -> None:
        self._store.write(batch, sync=False)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


class ServerNode:
    """A running node. `await start()`, then `await wait_stopped()`; `request_stop()` to end."""

    def __init__(self, config: ServerConfig,
                 open_store: Callable[[Path], NodeStore] = open_rocksdb_store) -> None:
        self.config = config
        self._open_store = open_store
        self.started_at = time.time()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.membership: Membership | None = None
        self.store: NodeStore | None = None
        self.host: Host
        self.transport: PeerTransport
        self.dispatcher: Dispatcher
        self.clients: ClientServer
        self._drive_pending = False
        self._tick_handle: asyncio.TimerHandle | None = None
        self._next_tick = 0.0
        self._stop = asyncio.Event()
        self._stopping = False
        self._driving = True  # False once shutdown stopped the driver, for good
        self._failed = False
        self.exit_code = 0
        self.last_store_figures: dict[str, int] = {}  # info.store_figures
        self.ticks = 0
        self._next_statistics_tick = limits.shard_statistics_interval_ticks
        self.drives = 0
        self.disk_full_logged_since: int | None = None  # host.disk_full_since_ms, as logged

    # ---- start -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the data directory and start serving. Raises ConfigError, OSError."""
        self.loop = loop = asyncio.get_running_loop()
        config = self.config
        _raise_file_limit(config.client_connections_max + limits.reserved_file_descriptors)
        config.data_dir.mkdir(parents=True, exist_ok=True)
        store = self._open_store(config.data_dir / "store")
        if not config.sync:
            store = cast(NodeStore, _UnsyncedStore(store))
        self.store = store
        self.storage_id, created = storage_id_of(store)
        try:
            self.peer_storage = PeerStorageIds.load(store)
        except (ValueError, TypeError) as error:
            raise ConfigError(f"data directory {config.data_dir}: the record of the peers' "
                              f"storage ids is unreadable ({error}); run the quorumkv "
                              "version that wrote it") from error
        membership = establish(store, config)
        self.membership = membership
        # A restart without flags finds its own addresses in the stored membership.
        config = self.config = replace(config, node_id=membership.node_id,
                                       peers=dict(membership.peers))
        node_id = membership.node_id
        self.transport = PeerTransport(
            node_id, membership.cluster_id,
            {n: e.peer_address for n, e in membership.peers.items()},
            self._on_peer_record, on_peer_down=self._on_peer_down,
            storage_id=self.storage_id, peer_storage=self.peer_storage,
            on_storage_learned=self._on_storage_learned, on_storage_lost=self._on_storage_lost,
            greeting=lambda peer: self.cluster.greeting(peer))
        buffered = BufferedTransport(self.transport)
        self.host = Host(node_id, store, buffered, random.Random(),
                         clock_ms=lambda: int(time.time() * 1000),
                         config=HostConfig(
                             election_timeout_ticks=config.election_timeout_ticks,
                             heartbeat_interval_ticks=config.heartbeat_interval_ticks,
                             read_only=config.read_only))
        self.cluster = ClusterState(
            node_id, self.host,
            submit=lambda shard, name, args, reply: self.dispatcher.submit(
                shard, name, args, reply),
            transfer_leader=lambda shard, target: self.gate.transfer_leader(shard, target),
            is_connected=self.transport.is_connected)
        self.cluster.start(store, membership, config)  # bootstraps on the first start
        self.host.start()
        self.cluster.recall()  # the slot map is known before clients can ask
        self.gate = HostGate(self.host, buffered, threaded=config.ready_thread,
                             on_cycles_done=self._after_cycles,
                             after_each_cycle=self._flush_outputs, on_failure=self._fail)
        self.dispatcher = Dispatcher(
            node_id, self.gate, self.transport, now_ms=lambda: loop.time() * 1000,
            is_write=is_write_command, validate=validate_command,
            election_timeout_ms=config.election_timeout_ticks * config.tick_ms,
            request_timeout_ms=config.request_timeout_ms,
            remote_leader=self.cluster.remote_leader)
        self.cluster.learned_leaders = self.dispatcher.learned_leaders
        self.clients = ClientServer(self)
        await self.transport.start(config.peer_address())
        await self.clients.start(config.client_address())
        self._next_tick = self._loop().time()
        self._tick()
        log.info("node %d of cluster %r: clients on %s, peers on %s, data in %s (storage id "
                 "%s%s)", node_id, membership.cluster_id, config.client_address(),
                 config.peer_address(), config.data_dir, self.storage_id,
                 ", new" if created else "")

    def _loop(self) -> asyncio.AbstractEventLoop:
        invariant(self.loop is not None, "the node is used before start()")
        return cast(asyncio.AbstractEventLoop, self.loop)

    def require_membership(self) -> Membership:
        invariant(self.membership is not None, "the node is used before start()")
        return cast(Membership, self.membership)

    @property
    def node_id(self) -> int:
        return self.require_membership().node_id

    def install_signal_handlers(self) -> None:
        for signal_number in (signal.SIGTERM, signal.SIGINT):
            self._loop().add_signal_handler(signal_number, self.request_stop)

    # ---- the driver ------------------------------------------------------------------------

    def schedule(self) -> None:
        """Make sure the driver runs once the loop has handled what is readable now."""
        if not self._drive_pending and self._driving:
            self._drive_pending = True
            self._loop().call_soon(self._drive)

    def _drive(self) -> None:
        self._drive_pending = False
        if self._failed or not self._driving:
            return
        self.drives += 1
        try:
            if not self.gate.run_cycles():
                self._after_cycles()
        except Exception as error:  # a bug, or storage that can no longer be trusted
            self._fail(error)

    def _after_cycles(self) -> None:
        """The cycles ended (on this thread, or the worker's are handed back): send what they
        produced, and come back if inputs arrived meanwhile or work remains."""
        self._flush_outputs()
        if not self.gate.busy:
            self._observe_disk_full()
            self.cluster.after_cycles()  # shard 0 may have applied a metadata change
            if self.ticks >= self._next_statistics_tick:
                self._next_statistics_tick = self.ticks + limits.shard_statistics_interval_ticks
                self.cluster.sample_statistics(int(time.time() * 1000), self.dispatcher.served)
        if self.dispatcher.retry_parked() or self.gate.has_deferred() or self.gate.more_work:
            self.schedule()  # let the loop read sockets first, then come back

    def _observe_disk_full(self) -> None:
        """Log once when a full disk stalls the host and once when it resumes (INFO
        persistence shows it meanwhile: info.py)."""
        since = self.host.disk_full_since_ms
        if since == self.disk_full_logged_since:
            return
        if since is not None:
            log.warning("node %d: disk full under %s: writes are refused until space is freed "
                        "on that disk (the node resumes by itself); reads of shards whose only "
                        "voter is this node are still answered from its data, commands for "
                        "shards with other voters go to the leader those elect meanwhile",
                        self.node_id, self.config.data_dir)
        else:
            log.warning("node %d: disk space is back under %s after %.1f s: writes resumed",
                        self.node_id, self.config.data_dir,
                        (time.time() * 1000 - (self.disk_full_logged_since or 0)) / 1000)
        self.disk_full_logged_since = since

    def _flush_outputs(self) -> None:
        """What a cycle produced leaves now, not after the next cycle's fsync: appends and
        acknowledgements (peers) and replies (clients)."""
        self.transport.flush()
        self.clients.flush()

    def _tick(self) -> None:
        if self._failed or not self._driving:
            return
        loop = self._loop()
        interval = self.config.tick_ms / 1000
        # A tick that fires whole intervals late means the process was paused (GC, SIGSTOP,
        # VM migration): the cores' lease clocks must count that time, or a leader could
        # answer lease reads after another leader was elected (sim-findings: scenario test).
        missed = int((loop.time() - self._next_tick) / interval)
        try:
            if missed > 0:
                self.gate.missed_ticks(missed)
            self.ticks += 1
            self.gate.check_stall()
            self.gate.tick()
            self.dispatcher.tick()
            self.cluster.tick()
        except Exception as error:
            self._fail(error)
            return
        self.schedule()
        # Missed ticks are not replayed in a burst: a burst would fire election timeouts for
        # time in which this node simply did not look at its sockets.
        self._next_tick = max(self._next_tick + interval, loop.time())
        self._tick_handle = loop.call_at(self._next_tick, self._tick)

    def _fail(self, error: BaseException) -> None:
        """Stop driving the host for good and shut down: after a broken invariant (a bug,
        exit 70) or a storage error the node cannot work around (exit 1; exit 78 when this
        data directory lost what the node held), going on could acknowledge what is not
        durable."""
        self._failed = True
        if isinstance(error, errors.StorageLost | errors.ReplicaStateLost):
            log.critical("node %d: stopping: %s", self.node_id, error)
            self.exit_code = EXIT_STORAGE_LOST
        elif isinstance(error, errors.QuorumKVError):
            log.critical("node %d: stopping: %s", self.node_id, error)
            self.exit_code = EXIT_STORAGE
        else:
            log.critical("node %d: a bug stopped this node: %s", self.node_id, error,
                         exc_info=error)
            self.exit_code = EXIT_BUG
        self.request_stop()

    # ---- peer inputs ------------------------------------------------------------------------

    def _on_peer_record(self, source: int, record: PeerRecord) -> None:
        if not self._driving:
            return  # shutting down: nothing more reaches the host (Raft tolerates the loss)
        if isinstance(record, ForwardRequest):
            self.dispatcher.serve_forward(record)
        elif isinstance(record, ForwardResponse):
            self.dispatcher.on_forward_response(record)
        elif isinstance(record, ClusterMetadataPush):
            self.cluster.offer(record.metadata, f"node {source}")
        elif isinstance(record, (Handshake, HandshakeRefused)):
            return
        else:
            try:
                self.gate.receive(record)
            except Exception as error:
                self._fail(error)
                return
        self.schedule()

    def _on_storage_learned(self, node_id: int, storage_id: str) -> None:
        """A peer's first handshake: remember its storage id (in the store, which the gate
        lets us write only between cycles)."""
        log.info("node %d: node %d has storage id %s", self.node_id, node_id, storage_id)
        self.gate.call(self._persist_peer_storage)

    def _persist_peer_storage(self) -> None:
        try:
            self.require_store().put_meta(PEER_STORAGE_IDS_META, self.peer_storage.encode())
        except errors.DiskFull as error:  # kept in memory; learned again after a restart
            log.warning("node %d: cannot record the peers' storage ids: %s", self.node_id,
                        error)
        except Exception as error:
            self._fail(error)

    def _on_storage_lost(self, refused_by: int, known_storage_id: str) -> None:
        """A peer knows this node id with another storage: this data directory is not the
        one the node ran with. Stop, rather than act as replicas whose data is gone."""
        if not self._failed:
            self._fail(errors.StorageLost(self.node_id, str(self.config.data_dir),
                                          self.storage_id, refused_by, known_storage_id))

    def require_store(self) -> NodeStore:
        invariant(self.store is not None, "the node is used before start()")
        return cast(NodeStore, self.store)

    def _on_peer_down(self, node_id: int) -> None:
        self.dispatcher.on_peer_down(node_id)
        self.schedule()

    # ---- stop ------------------------------------------------------------------------------

    def request_stop(self) -> None:
        self._stop.set()

    async def wait_stopped(self) -> int:
        """Serve until asked to stop, then shut down gracefully; returns the exit code."""
        await self._stop.wait()
        await self.shutdown()
        return self.exit_code

    async def shutdown(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        log.info("node %d: shutting down", self.node_id)
        self.clients.stop_accepting()
        if self.exit_code == 0:
            await self._hand_over_leadership()
            await self._wait(lambda: self.dispatcher.in_flight() == 0,
                             self.config.shutdown_transfer_timeout_ms)
        await self._wait(lambda: not self.gate.busy, self.config.shutdown_transfer_timeout_ms)
        self._stop_driving()
        self.dispatcher.fail_all("the node is shutting down")
        if not self._failed:
            self.host.fail_pending(errors.OutcomeUnknown(0, "the node is shutting down"))
        self.clients.flush()
        await self.clients.close()
        self.transport.flush()
        await self.transport.close()
        self._close_store()
        log.info("node %d: stopped", self.node_id)

    def _stop_driving(self) -> None:
        """End the driver before what it uses closes: no tick, input or `_drive` runs a cycle
        from now on, and the gate hands over a cycle still running on its worker (its sends
        and replies go out below) before its executor shuts down (host_gate.py, "Closing")."""
        self._driving = False
        if self._tick_handle is not None:
            self._tick_handle.cancel()
        self.gate.close()

    def _close_store(self) -> None:
        store = self.store
        if store is None:
            return
        try:
            if not self._failed:
                store.write(store.batch(), sync=True)  # everything written so far is durable
        finally:
            try:
                store.close()
            except Exception as error:  # closing a store that already failed
                log.error("node %d: closing the store: %s", self.node_id, error)

    async def _hand_over_leadership(self) -> None:
        led = []
        for shard_id in [s for s in self.host.shard_ids() if self.host.is_leader(s)]:
            target = self._transfer_target(shard_id)
            if target:
                log.info("node %d: handing leadership of shard %d to node %d", self.node_id,
                         shard_id, target)
                self.gate.transfer_leader(shard_id, target)
                led.append(shard_id)
        if led:
            self.schedule()
            await self._wait(lambda: not any(self.host.is_leader(s) for s in led),
                             self.config.shutdown_transfer_timeout_ms)

    def _transfer_target(self, shard_id: int) -> int:
        """The connected follower with the highest match index (0 if none is reachable)."""
        replica = self.host.replica(shard_id)
        voters = replica.applied.conf_state.voters
        candidates = [v for v in voters if v != self.node_id and self.transport.is_connected(v)]
        if not candidates:
            return 0
        progress = _progress_of(replica.node)
        return max(candidates, key=lambda v: (progress.get(v, 0), -v))

    async def _wait(self, condition: Callable[[], bool], timeout_ms: float) -> bool:
        """Wait (bounded) for a condition that the driver or the ticks make true."""
        deadline = self._loop().time() + timeout_ms / 1000
        while not condition():
            if self._loop().time() >= deadline:
                return False
            await asyncio.sleep(self.config.tick_ms / 1000)
        return True

    # ---- observation -----------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id,
            "shards": self.host.status(),
            "peers": self.transport.status(),
            "dropped_peer_frames": self.transport.dropped_frames(),
            "dropped_messages": self.host.dropped_messages,
            "in_flight": self.dispatcher.in_flight(),
        }


def _progress_of(node: Any) -> dict[int, int]:
    """Match index of each follower, from the core's status() where it reports them."""
    try:
        progress = node.status().get("progress", {})
        return {int(k): int(v.get("match", 0) if isinstance(v, dict) else getattr(v, "match", 0))
                for k, v in progress.items()}
    except (AttributeError, NotImplementedError, TypeError, ValueError):
        return {}


def _raise_file_limit(wanted: int) -> None:
    """Raise the open-file limit towards `wanted` (client connections are files)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as error:
            log.warning("cannot raise the open-file limit to %d: %s", target, error)


def run(config: ServerConfig,
        open_store: Callable[[Path], NodeStore] = open_rocksdb_store) -> int:
    """Run a node until SIGTERM/SIGINT; returns the process exit code."""
    try:
        import uvloop

        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is a server dependency
        loop_factory = None

    async def main() -> int:
        if config.ready_thread:
            # A worker back from fsync waits for the GIL at most this long (default 5 ms).
            sys.setswitchinterval(limits.gil_switch_interval_us / 1_000_000)
        node = ServerNode(config, open_store)
        await node.start()
        node.install_signal_handlers()
        return await node.wait_stopped()

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(main())
