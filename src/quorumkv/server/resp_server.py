"""Client connections: RESP in, replies out, in order, however many commands are in flight.

Theory of operation. Each client socket is a `ClientConnection` (an asyncio.Protocol). When
bytes arrive, the codec's sans-I/O parser splits them into commands (a pipelining client
sends many per read); each command takes the next reply slot of the connection and is handed
to `commands.execute`, which answers at once (PING, CLIENT...) or later (a data command
waiting for Raft). Replies are written strictly in command order: a completed reply waits until
every reply before it is there. Completed replies are gathered and written with one
`transport.write` per connection per driver iteration (`ClientServer.flush`).

Back-pressure: a connection stops reading while it has `client_pending_commands_max`
unanswered commands or more than `client_write_buffer_bytes_max` of unread replies, and resumes
when they drain. Connections beyond `client_connections_max` are answered
`-ERR max number of clients reached` and closed, as Redis does.

Settings a client may change at runtime (CONFIG SET, server/config_command.py) live on the
`ClientServer`: `maxclients`, `idle_timeout_s` (Redis's `timeout`) and `tcp_keepalive_s`. A cron
every `limits.stats_sample_interval_ms` closes connections idle for longer than the timeout
(none waiting for a reply) and samples the statistics (server/stats.py), which every connection
feeds: bytes in and out, commands, replies.

Bad input: a protocol error is answered `-ERR Protocol error: ...` after the replies already
owed, then the connection is closed (Redis does the same); nothing a client sends can stop the
node.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import deque
from typing import TYPE_CHECKING, Any, cast

from quorumkv import limits
from quorumkv.cluster.pipeline_order import PipelineOrder
from quorumkv.cluster.routing import PLAIN
from quorumkv.codec.resp import RespParser, RespProtocolError, encode_reply
from quorumkv.kv.reply import ErrorReply, Reply
from quorumkv.server import commands
from quorumkv.server.config import Address
from quorumkv.server.stats import ServerStats

if TYPE_CHECKING:
    from quorumkv.server.node import ServerNode

log = logging.getLogger("quorumkv.clients")

MAX_CLIENTS_REACHED = b"-ERR max number of clients reached\r\n"


class ReplySlot:
    """The place of one command's reply in its connection's output order."""

    __slots__ = ("data", "protocol", "command", "started_ns")

    def __init__(self, protocol: int, command: bytes = b"", started_ns: int = 0) -> None:
        """`protocol` 0: not yet known (the reply uses the connection's current one);
        `command`: the command's name as sent (b"": no command, a protocol error)."""
        self.data: bytes | None = None
        self.protocol = protocol
        self.command = command
        self.started_ns = started_ns


class ClientConnection(asyncio.Protocol):
    """One client socket and its per-connection state (CLIENT, HELLO, SELECT)."""

    def __init__(self, server: ClientServer, client_id: int) -> None:
        self.server = server
        self.id = client_id
        self.transport: asyncio.Transport | None = None
        self.parser = RespParser()
        self.protocol = 2
        self.name = b""
        self.library_name = b""
        self.library_version = b""
        self.database = 0
        self.address = ""
        self.local_address = ""
        self.created = time.monotonic()
        self.last_active = self.created
        self.last_command = b"NULL"
        self.mode = PLAIN  # cluster.routing.ConnectionMode, after each command (mode_after)
        self.commands_executed = 0
        self.order = PipelineOrder()  # when its data commands may start (dispatcher.py)
        self._pending: deque[ReplySlot] = deque()
        self._out: list[bytes] = []
        self._out_bytes = 0
        self._close_after_flush = False
        self._reading_paused = False
        self._writing_paused = False
        self.closed = False

    # ---- asyncio callbacks -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        stream = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.transport = stream
        self.address = _format_peer(stream.get_extra_info("peername"))
        self.local_address = _format_peer(stream.get_extra_info("sockname"))
        stream.set_write_buffer_limits(high=limits.client_write_buffer_bytes_max)
        if not self.server.admit(self):
            stream.write(MAX_CLIENTS_REACHED)
            stream.close()
            return
        _set_keepalive(stream.get_extra_info("socket"), self.server.tcp_keepalive_s)

    def data_received(self, data: bytes) -> None:
        if self._close_after_flush or self.closed or not self.server.accepting:
            return
        self.last_active = time.monotonic()
        stats = self.server.stats
        stats.reads_processed += 1
        stats.net_input_bytes += len(data)
        try:
            self.parser.feed(data)
            while not self._close_after_flush:
                command = self.parser.get_command()
                if command is None:
                    break
                self._execute(command)
        except RespProtocolError as error:
            self.reply_now(error.reply)
            self.close_after_replies()
        self.server.node.schedule()
        self._apply_back_pressure()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server.forget(self)

    def pause_writing(self) -> None:
        self._writing_paused = True
        self._apply_back_pressure()

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._apply_back_pressure()

    # ---- commands and replies ------------------------------------------------------------------

    def _execute(self, argv: list[bytes]) -> None:
        self.commands_executed += 1
        stats = self.server.stats
        stats.commands_processed += 1
        # a reply given at once uses the protocol the command left:
        slot = ReplySlot(0, argv[0] if argv else b"", stats.clock_ns())
        self._pending.append(slot)  # HELLO 3 answers in RESP3
        commands.execute(self, argv, slot)
        slot.protocol = self.protocol  # a later reply uses the protocol of its command's time

    def reply_now(self, reply: Reply) -> None:
        """Answer in a new slot (protocol errors: not tied to a parsed command)."""
        slot = ReplySlot(self.protocol)
        self._pending.append(slot)
        if isinstance(reply, ErrorReply):
            self.server.stats.error(reply)
        self.fill(slot, reply)

    def fill(self, slot: ReplySlot, reply: Reply) -> None:
        """Complete a command's reply; written once every earlier reply is complete."""
        slot.data = encode_reply(reply, self.protocol if slot.protocol == 0 else slot.protocol)
        if slot.command:
            self.server.stats.replied(slot.command, slot.started_ns, reply)
        pending = self._pending
        if pending[0] is not slot:
            return
        out = self._out
        while pending:
            data = pending[0].data
            if data is None:
                break
            pending.popleft()
            out.append(data)
            self._out_bytes += len(data)
        self.server.dirty.add(self)

    def write_out(self) -> None:
        transport = self.transport
        if self._out and transport is not None and not transport.is_closing():
            transport.write(b"".join(self._out) if len(self._out) > 1 else self._out[0])
            stats = self.server.stats
            stats.writes_processed += 1
            stats.net_output_bytes += self._out_bytes
            self.last_active = time.monotonic()
        self._out.clear()
        self._out_bytes = 0
        if self._close_after_flush and not self._pending and transport is not None:
            transport.close()
        else:
            self._apply_back_pressure()

    def close_after_replies(self) -> None:
        """Stop reading; close once every owed reply is written (QUIT, protocol errors)."""
        self._close_after_flush = True
        self.server.dirty.add(self)

    def _apply_back_pressure(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        full = (len(self._pending) >= limits.client_pending_commands_max
                or self._writing_paused or self._close_after_flush
                or not self.server.accepting)
        if full and not self._reading_paused:
            self._reading_paused = True
            transport.pause_reading()
        elif not full and self._reading_paused:
            self._reading_paused = False
            transport.resume_reading()

    def pending_replies(self) -> int:
        return len(self._pending)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


def _set_keepalive(sock: socket.socket | None, interval_s: int) -> None:
    """TCP keepalive as Redis sets it (anetKeepAlive): the first probe after `interval_s` idle
    seconds, then every third of it, the peer declared dead after 3 unanswered probes."""
    if sock is None or interval_s <= 0:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if hasattr(socket, "TCP_KEEPIDLE"):  # Linux; elsewhere the system's defaults apply
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, interval_s)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, max(1, interval_s // 3))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
    except OSError as error:  # the connection may already be gone
        log.debug("cannot set TCP keepalive: %s", error)


def _format_peer(name: Any) -> str:
    if isinstance(name, tuple) and len(name) >= 2:
        host = f"[{name[0]}]" if ":" in str(name[0]) else str(name[0])
        return f"{host}:{name[1]}"
    return str(name or "")


class ClientServer:
    """The listening socket and every client connection of one node."""

    def __init__(self, node: ServerNode) -> None:
        self.node: ServerNode = node
        self.connections: dict[int, ClientConnection] = {}
        self.dirty: set[ClientConnection] = set()
        self._server: asyncio.Server | None = None
        self._next_id = 1
        self.stats = ServerStats(commands.is_command, lambda: node.host.expired_keys)
        self.accepting = True
        # Settings CONFIG SET changes at runtime (server/config_command.py).
        self.maxclients: int = node.config.client_connections_max
        self.idle_timeout_s: int = 0  # Redis's `timeout`: 0 never closes an idle client
        self.tcp_keepalive_s: int = limits.client_tcp_keepalive_s
        self._cron_handle: asyncio.TimerHandle | None = None

    async def start(self, address: Address) -> None:
        """Listen for clients. Raises OSError if the address is taken."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._new_connection, address.host,
                                                address.port, reuse_address=True, backlog=4096)
        self._cron_handle = loop.call_later(limits.stats_sample_interval_ms / 1000, self._cron)

    def _cron(self) -> None:
        """Sample the statistics; close connections idle for longer than the timeout."""
        self.stats.sample()
        if self.idle_timeout_s > 0:
            idle_since = time.monotonic() - self.idle_timeout_s
            for connection in list(self.connections.values()):
                if connection.last_active < idle_since and not connection.pending_replies():
                    connection.close()
        self._cron_handle = asyncio.get_running_loop().call_later(
            limits.stats_sample_interval_ms / 1000, self._cron)

    def _new_connection(self) -> ClientConnection:
        connection = ClientConnection(self, self._next_id)
        self._next_id += 1
        return connection

    def admit(self, connection: ClientConnection) -> bool:
        if len(self.connections) >= self.maxclients:
            self.stats.rejected_connections += 1
            return False
        self.connections[connection.id] = connection
        self.stats.connections_received += 1
        return True

    def forget(self, connection: ClientConnection) -> None:
        self.connections.pop(connection.id, None)
        self.dirty.discard(connection)

    def flush(self) -> None:
        """Write every completed reply (one write per connection)."""
        if not self.dirty:
            return
        dirty, self.dirty = self.dirty, set()
        for connection in dirty:
            connection.write_out()

    def stop_accepting(self) -> None:
        """Refuse new connections and read no more commands (graceful shutdown)."""
        self.accepting = False
        if self._server is not None:
            self._server.close()
        if self._cron_handle is not None:
            self._cron_handle.cancel()
        for connection in self.connections.values():
            if connection.transport is not None and not connection.transport.is_closing():
                connection.transport.pause_reading()

    async def close(self) -> None:
        for connection in list(self.connections.values()):
            connection.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
