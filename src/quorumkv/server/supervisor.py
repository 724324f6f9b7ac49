"""`quorumkv up`: a local cluster of real node processes, kept running by a supervisor.

Theory of operation. `Supervisor.run` starts one `quorumkv server` process per node (client
port CLIENT_PORT + I - 1, peer port PEER_PORT + I - 1, data in DATA_DIR/nodeI), each writing
its log straight into DATA_DIR/nodeI/node.log (the file outlives `up`; nothing is lost if `up`
itself dies), and prints which node is which PID and where its log is. One watcher task per
node waits for its process to exit. When a node dies without being asked to, the watcher says
which node, how it died (exit status or signal), after how long, and where its log is; the
pure policy (cluster/supervision.py) decides whether to restart it after a bounded back-off,
to give up on it (a crash loop: the tail of its log is printed, the others keep running) or
to leave it stopped (it exited 0: someone stopped it gracefully on purpose). A restarted node
is announced with the new PID table, then again once it serves.

"Serves" means the node answers PING and DBSIZE: DBSIZE is a linearizable count over every
shard, so it is answered only once the node knows the cluster metadata and every shard has a
leader that confirmed its leadership. `up` prints "connect with" only once every node serves
(bounded by up_serve_timeout_ms; past it, it stops them all and exits 1).

Nodes run in their own session, so a Ctrl-C at the terminal reaches `up` alone; `up` then
stops every node with SIGTERM (each hands its leaderships over and exits 0), kills any that
has not exited within up_stop_timeout_ms, and exits 0 if every node stopped cleanly. Each node
also asks the kernel for SIGTERM should `up` die without stopping it (PR_SET_PDEATHSIG), so a
killed `up` leaves no orphan.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from quorumkv import limits
from quorumkv.cluster.supervision import (
    Decision,
    GiveUp,
    LeaveStopped,
    Restart,
    RestartPolicy,
    after_exit,
)
from quorumkv.server.node import EXIT_STORAGE_LOST
from quorumkv.server.status import encode_command, reply_complete

POLICY = RestartPolicy(backoff_ms_min=limits.up_restart_backoff_ms_min,
                       backoff_ms_max=limits.up_restart_backoff_ms_max,
                       stable_run_ms=limits.up_stable_run_ms,
                       quick_failures_max=limits.up_quick_failures_max,
                       final_exit_statuses=frozenset({EXIT_STORAGE_LOST}))

SERVE_CHECK_TIMEOUT_S = 2.0
"""How long one readiness check (PING, then DBSIZE) may take before it counts as 'no answer'."""

SERVE_POLL_S = 0.2
"""Pause between two readiness checks of a node that does not serve yet."""

HOUSEKEEPING_POLL_S = 0.5
"""Pause between two passes over the log files (bound their size; echo with --follow-logs)."""

Output = Callable[[str, bool], None]
"""Where `up` writes its own lines: (text, is_error)."""


@dataclass
class UpSettings:
    nodes: int
    host: str
    client_port: int
    peer_port: int
    data_dir: Path
    server_options: tuple[str, ...] = ()
    follow_logs: bool = False


@dataclass
class SupervisedNode:
    node_id: int
    client_port: int
    data_dir: Path
    command: list[str]
    process: asyncio.subprocess.Process | None = None
    started_at: float = 0.0
    starts: int = 0
    quick_failures: int = 0
    listened: bool = False  # this run answered PING
    state: str = "starting"  # starting, serving, restarting, stopped, given up
    last_answer: str = "not started"
    log_offset: int = field(default=0, repr=False)

    @property
    def log_path(self) -> Path:
        return self.data_dir / "node.log"

    @property
    def pid(self) -> int:
        return self.process.pid if self.process is not None else 0

    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None


def describe_exit(status: int) -> str:
    """An exit status as subprocess reports it (negative: the signal that killed it)."""
    if status < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-status).name}"
        return f"killed by signal {-status}"
    return f"exited with status {status}"


def log_tail(path: Path, lines_max: int = limits.up_log_tail_lines_max) -> list[str]:
    """The last lines of a log file (empty if it cannot be read)."""
    try:
        with open(path, "rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - 64 * 1024))
            text = log.read().decode(errors="replace")
    except OSError:
        return []
    return text.splitlines()[-lines_max:]


def _die_with_parent(parent_pid: int) -> None:
    """In the child, before exec: SIGTERM this node if `up` dies (Linux prctl)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:  # `up` died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


async def serving_answer(host: str, port: int) -> tuple[bool, str, bool]:
    """Whether the node at host:port serves (PING, then DBSIZE answered), what it said, and
    whether it answered PING at least."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port),
                                                SERVE_CHECK_TIMEOUT_S)
    except (OSError, TimeoutError) as error:
        return False, f"no connection ({error.__class__.__name__}: {error})", False
    try:
        replies: list[bytes] = []
        for words in ((b"PING",), (b"DBSIZE",)):
            writer.write(encode_command(*words))
            data = b""
            while not reply_complete(data):
                chunk = await asyncio.wait_for(reader.read(65536), SERVE_CHECK_TIMEOUT_S)
                if not chunk:
                    return False, "closed the connection", bool(replies)
                data += chunk
            replies.append(data)
    except (OSError, TimeoutError):
        return False, f"no answer within {SERVE_CHECK_TIMEOUT_S} s", bool(replies)
    finally:
        writer.close()
    pong = replies[0] == b"+PONG\r\n"
    answer = (replies[1] if pong else replies[0]).decode(errors="replace").strip()
    return pong and replies[1][:1] == b":", answer, pong


class Supervisor:
    """Runs and supervises the nodes of one `quorumkv up`; see the module docstring."""

    def __init__(self, settings: UpSettings, output: Output) -> None:
        self.settings = settings
        self.output = output
        peers = ",".join(f"{i}={settings.host}:{settings.peer_port + i - 1}/"
                         f"{settings.host}:{settings.client_port + i - 1}"
                         for i in range(1, settings.nodes + 1))
        self.nodes = [self._node(i, peers) for i in range(1, settings.nodes + 1)]
        self.stopping = False
        self.stop_requested = asyncio.Event()
        self.changed = asyncio.Event()

    def _node(self, node_id: int, peers: str) -> SupervisedNode:
        data_dir = self.settings.data_dir / f"node{node_id}"
        command = [sys.executable, "-m", "quorumkv.cli", "server", "--node-id", str(node_id),
                   "--peers", peers, "--data-dir", str(data_dir), *self.settings.server_options]
        return SupervisedNode(node_id, self.settings.client_port + node_id - 1, data_dir, command)

    def say(self, text: str, error: bool = False) -> None:
        self.output(f"quorumkv: {text}", error)

    # ---- the whole run -----------------------------------------------------------------------

    async def run(self) -> int:
        """Start, supervise until SIGINT/SIGTERM, stop; returns the exit code."""
        taken = self._ports_taken()
        if taken:
            self.say(f"cannot start: {taken}; another `quorumkv up` may be running (stop it, "
                     f"or choose other ports with --client-port and --peer-port)", error=True)
            return 1
        loop = asyncio.get_running_loop()
        for signal_number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signal_number, self.stop_requested.set)
        watchers: list[asyncio.Task[None]] = []
        housekeeping = asyncio.ensure_future(self._housekeeping())
        code = 1
        try:
            for node in self.nodes:
                await self._start(node)
            self._print_table("started")
            watchers = [asyncio.ensure_future(self._watch(node)) for node in self.nodes]
            code = await self._await_all_serving()
            if code == 0 and not self.stop_requested.is_set():
                self._say_connect()
                code = await self._until_stopped()
        finally:
            clean = await self._stop_all(watchers)
            housekeeping.cancel()
            await asyncio.gather(housekeeping, return_exceptions=True)
            for signal_number in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signal_number)
        return code if code != 0 or clean else 1

    def _ports_taken(self) -> str:
        """Which of the nodes' ports another process listens on now ('' if none)."""
        for node in self.nodes:
            peer_port = self.settings.peer_port + node.node_id - 1
            for kind, port in (("client", node.client_port), ("peer", peer_port)):
                with socket.socket() as probe:
                    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    try:
                        probe.bind((self.settings.host, port))
                    except OSError as error:
                        return (f"node {node.node_id}'s {kind} port {self.settings.host}:{port} "
                                f"is taken ({error.strerror})")
        return ""

    def _say_connect(self) -> None:
        serving = [n for n in self.nodes if n.state == "serving"]
        ports = ", ".join(str(n.client_port) for n in serving)
        if len(serving) == len(self.nodes):
            what = f"{len(serving)} nodes serve"
        else:
            others = ", ".join(f"node {n.node_id} {n.state}" for n in self.nodes
                               if n.state != "serving")
            what = (f"nodes {', '.join(str(n.node_id) for n in serving)} serve "
                    f"({others}, see above)")
        self.say(f"{what}; connect with:  redis-cli -p {serving[0].client_port}   "
                 f"(any of ports {ports}); Ctrl-C stops them all")

    async def _until_stopped(self) -> int:
        """Wait for SIGINT/SIGTERM, or for no node to be left to supervise."""
        while not self.stop_requested.is_set():
            if all(node.state in ("stopped", "given up") for node in self.nodes):
                given_up = [n.node_id for n in self.nodes if n.state == "given up"]
                self.say("no node is left running; exiting", error=True)
                return 1 if given_up else 0
            await self._wait_change(None)
        return 0

    async def _wait_change(self, timeout_s: float | None) -> None:
        """Until a node changes state, SIGINT/SIGTERM arrives, or `timeout_s` passes."""
        self.changed.clear()
        stop = asyncio.ensure_future(self.stop_requested.wait())
        change = asyncio.ensure_future(self.changed.wait())
        await asyncio.wait([stop, change], timeout=timeout_s,
                           return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        change.cancel()

    async def _await_all_serving(self) -> int:
        """0 once every node not given up or stopped serves; 1 (reported) past the bound."""
        deadline = time.monotonic() + limits.up_serve_timeout_ms / 1000
        while not self.stop_requested.is_set():
            waiting = [n for n in self.nodes if n.state not in ("serving", "stopped", "given up")]
            if not waiting:
                if any(n.state == "serving" for n in self.nodes):
                    return 0
                self.say("no node serves; stopping", error=True)
                return 1
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                for node in waiting:
                    self.say(f"node {node.node_id} (pid {node.pid}) does not serve after "
                             f"{limits.up_serve_timeout_ms / 1000:g} s (last answer: "
                             f"{node.last_answer}); log: {node.log_path}", error=True)
                    self._print_tail(node)
                self.say("stopping every node", error=True)
                return 1
            await self._wait_change(remaining)
        return 0

    # ---- one node --------------------------------------------------------------------------

    async def _start(self, node: SupervisedNode) -> bool:
        """Start the node's process (its log opened for appending); False, reported, and the
        node given up on, if the process cannot even be started (a file system error)."""
        node.starts += 1
        try:
            node.data_dir.mkdir(parents=True, exist_ok=True)
            with open(node.log_path, "ab") as log:
                if node.starts == 1:  # --follow-logs echoes what this run adds
                    node.log_offset = log.tell()
                log.write(f"---- {time.strftime('%Y-%m-%d %H:%M:%S')} quorumkv up: starting "
                          f"node {node.node_id} (start {node.starts})\n".encode())
                log.flush()
                parent = os.getpid()
                node.process = await asyncio.create_subprocess_exec(
                    *node.command, stdin=asyncio.subprocess.DEVNULL, stdout=log,
                    stderr=asyncio.subprocess.STDOUT, start_new_session=True,
                    preexec_fn=lambda: _die_with_parent(parent))
        except OSError as error:
            node.process = None
            node.state = "given up"
            self.changed.set()
            self.say(f"cannot start node {node.node_id}: {error}; giving up on it, the other "
                     f"nodes keep running. Fix it, then stop `up` (Ctrl-C) and start it again",
                     error=True)
            return False
        node.started_at = time.monotonic()
        node.listened = False
        node.state = "starting"
        if self.stopping:  # asked to stop while this one was being started
            with contextlib.suppress(ProcessLookupError):
                node.process.send_signal(signal.SIGTERM)
        return True

    async def _watch(self, node: SupervisedNode) -> None:
        """Follow one node for the whole run: serving, death, restart or giving up."""
        while not self.stopping and node.process is not None:
            await self._await_serving(node)
            status = await node.process.wait()
            if self.stopping:
                return
            ran_ms = int((time.monotonic() - node.started_at) * 1000)
            decision = after_exit(POLICY, node.quick_failures, status, ran_ms, node.listened)
            self._report_exit(node, status, ran_ms, decision)
            if isinstance(decision, LeaveStopped | GiveUp):
                node.state = "stopped" if isinstance(decision, LeaveStopped) else "given up"
                self.changed.set()
                return
            node.quick_failures = decision.quick_failures
            node.state = "restarting"
            self.changed.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_requested.wait(), decision.delay_ms / 1000)
            if self.stopping or self.stop_requested.is_set():
                return
            previous = node.pid
            if not await self._start(node):
                return
            self._print_table(f"node {node.node_id} restarted (pid {node.pid}, was {previous})")

    async def _await_serving(self, node: SupervisedNode) -> None:
        """Poll the node until it serves (announced after a restart) or its process exits."""
        assert node.process is not None
        exited = asyncio.ensure_future(node.process.wait())
        try:
            await self._poll_serving(node, exited)
        finally:
            exited.cancel()

    async def _poll_serving(self, node: SupervisedNode, exited: asyncio.Future[int]) -> None:
        reported_slow = False
        while node.running() and not self.stopping:
            serves, node.last_answer, pong = await serving_answer(self.settings.host,
                                                                  node.client_port)
            node.listened = node.listened or pong
            if serves:
                node.state = "serving"
                self.changed.set()
                if node.starts > 1:
                    self.say(f"node {node.node_id} (pid {node.pid}) serves again")
                return
            waited_ms = (time.monotonic() - node.started_at) * 1000
            if node.starts > 1 and not reported_slow and waited_ms > limits.up_serve_timeout_ms:
                reported_slow = True
                self.say(f"node {node.node_id} (pid {node.pid}) does not serve "
                         f"{waited_ms / 1000:.0f} s after its restart (last answer: "
                         f"{node.last_answer}); log: {node.log_path}", error=True)
            await asyncio.wait([exited], timeout=SERVE_POLL_S)

    def _report_exit(self, node: SupervisedNode, status: int, ran_ms: int,
                     decision: Decision) -> None:
        how = f"node {node.node_id} (pid {node.pid}) {describe_exit(status)} after " \
              f"{ran_ms / 1000:.1f} s"
        with contextlib.suppress(OSError), open(node.log_path, "ab") as log:
            log.write(f"---- {time.strftime('%Y-%m-%d %H:%M:%S')} quorumkv up: {how}\n".encode())
        if isinstance(decision, LeaveStopped):
            self.say(f"{how}: a graceful stop (it was sent SIGTERM or SIGINT); it stays "
                     f"stopped, the other nodes keep running (Ctrl-C, then `quorumkv up` again, "
                     f"restarts it); log: {node.log_path}")
        elif isinstance(decision, GiveUp):
            why = "its data directory lost what the node held, which no restart mends" \
                if decision.final else f"it failed {decision.quick_failures} times in a row " \
                f"within {limits.up_stable_run_ms / 1000:g} s of starting"
            self.say(f"{how}; giving up on it: {why}. The other nodes keep running. Its log, "
                     f"{node.log_path}, ends:", error=True)
            self._print_tail(node)
            self.say(f"fix what the log says, then stop `up` (Ctrl-C) and start it again to "
                     f"bring node {node.node_id} back", error=True)
        elif isinstance(decision, Restart):
            others = "; the other nodes keep serving" if len(self.nodes) > 1 else ""
            self.say(f"{how}; log: {node.log_path}{others}; restarting it in "
                     f"{decision.delay_ms / 1000:g} s", error=True)
            if status > 0 and decision.quick_failures <= 1:  # once per run of failures
                self._print_tail(node)

    def _print_tail(self, node: SupervisedNode) -> None:
        for line in log_tail(node.log_path):
            self.output(f"  [node {node.node_id}] {line}", True)

    def _print_table(self, title: str) -> None:
        self.say(f"{title}; nodes:")
        self.output(f"  {'node':>4}  {'pid':>8}  {'client address':<21}  log", False)
        for node in self.nodes:
            pid = str(node.pid) if node.running() else node.state
            self.output(f"  {node.node_id:>4}  {pid:>8}  "
                        f"{self.settings.host + ':' + str(node.client_port):<21}  "
                        f"{node.log_path}", False)

    # ---- stopping ----------------------------------------------------------------------------

    async def _stop_all(self, watchers: list[asyncio.Task[None]]) -> bool:
        """SIGTERM every running node, kill those still running after the bound; whether every
        node stopped cleanly (exit status 0)."""
        self.stopping = True
        self.stop_requested.set()
        running = [n for n in self.nodes if n.running()]
        if running:
            self.say(f"stopping nodes {', '.join(str(n.node_id) for n in running)} (SIGTERM)")
        for node in running:
            assert node.process is not None
            with contextlib.suppress(ProcessLookupError):
                node.process.send_signal(signal.SIGTERM)
        if watchers:  # a watcher starting a node now signals it itself (see _start)
            await asyncio.wait(watchers, timeout=limits.up_stop_timeout_ms / 1000)
        clean = True
        for node in running + [n for n in self.nodes if n.running() and n not in running]:
            assert node.process is not None
            try:
                status = await asyncio.wait_for(node.process.wait(),
                                                limits.up_stop_timeout_ms / 1000)
            except TimeoutError:
                self.say(f"node {node.node_id} (pid {node.pid}) did not stop within "
                         f"{limits.up_stop_timeout_ms / 1000:g} s; killing it", error=True)
                with contextlib.suppress(ProcessLookupError):
                    node.process.kill()
                status = await node.process.wait()
            if status != 0:
                clean = False
                self.say(f"node {node.node_id} (pid {node.pid}) {describe_exit(status)} while "
                         f"stopping; log: {node.log_path}", error=True)
        for watcher in watchers:
            watcher.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
        if running:
            self.say("every node stopped" + ("" if clean else " (not all cleanly)"))
        return clean

    # ---- log files ---------------------------------------------------------------------------

    async def _housekeeping(self) -> None:
        """Bound every node's log file; with --follow-logs, echo new lines, prefixed."""
        while True:
            for node in self.nodes:
                await self._bound_log(node)
                if self.settings.follow_logs:
                    self._echo_new_lines(node)
            await asyncio.sleep(HOUSEKEEPING_POLL_S)

    async def _bound_log(self, node: SupervisedNode) -> None:
        """Copy a log past up_node_log_bytes_max to node.log.1 and empty it: the node appends
        (O_APPEND) to the same open file, so it goes on from the start of the emptied one."""
        try:
            size = node.log_path.stat().st_size
        except OSError:
            return
        if size <= limits.up_node_log_bytes_max:
            return
        previous = node.log_path.with_name("node.log.1")
        with contextlib.suppress(OSError):
            await asyncio.to_thread(shutil.copyfile, node.log_path, previous)
            os.truncate(node.log_path, 0)
            node.log_offset = 0

    def _echo_new_lines(self, node: SupervisedNode) -> None:
        try:
            with open(node.log_path, "rb") as log:
                if log.seek(0, os.SEEK_END) < node.log_offset:
                    node.log_offset = 0  # emptied by _bound_log
                log.seek(node.log_offset)
                data = log.read(1024 * 1024)
        except OSError:
            return
        complete = data[:data.rfind(b"\n") + 1]
        node.log_offset += len(complete)
        for line in complete.decode(errors="replace").splitlines():
            self.output(f"[node {node.node_id}] {line}", False)
