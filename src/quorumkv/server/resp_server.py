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

Bad input: a protocol error is answered `-ERR Protocol error: ...` after the replies already
owed, then the connection is closed (Redis does the same); nothing a client sends can stop the
node.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any, cast

from quorumkv import limits
from quorumkv.cluster.pipeline_order import PipelineOrder
from quorumkv.cluster.routing import PLAIN
from quorumkv.codec.resp import RespParser, RespProtocolError, encode_reply
from quorumkv.kv.reply import Reply
from quorumkv.server import commands
from quorumkv.server.config import Address

if TYPE_CHECKING:
    from quorumkv.server.node import ServerNode

log = logging.getLogger("quorumkv.clients")

MAX_CLIENTS_REACHED = b"-ERR max number of clients reached\r\n"


class ReplySlot:
    """The place of one command's reply in its connection's output order."""

    __slots__ = ("data", "protocol")

    def __init__(self, protocol: int) -> None:
        """`protocol` 0: not yet known (the reply uses the connection's current one)."""
        self.data: bytes | None = None
        self.protocol = protocol


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

    def data_received(self, data: bytes) -> None:
        if self._close_after_flush or self.closed or not self.server.accepting:
            return
        self.last_active = time.monotonic()
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
        self.server.commands_total += 1
        slot = ReplySlot(0)  # a reply given at once uses the protocol the command left:
        self._pending.append(slot)  # HELLO 3 answers in RESP3
        commands.execute(self, argv, slot)
        slot.protocol = self.protocol  # a later reply uses the protocol of its command's time

    def reply_now(self, reply: Reply) -> None:
        """Answer in a new slot (protocol errors: not tied to a parsed command)."""
        slot = ReplySlot(self.protocol)
        self._pending.append(slot)
        self.fill(slot, reply)

    def fill(self, slot: ReplySlot, reply: Reply) -> None:
        """Complete a command's reply; written once every earlier reply is complete."""
        slot.data = encode_reply(reply, self.protocol if slot.protocol == 0 else slot.protocol)
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


def _format_peer(name: Any) -> str:
    if isinstance(name, tuple) and len(name) >= 2:
        host = f"[{name[0]}]" if ":" in str(name[0]) else str(name[0])
        return f"{host}:{name[1]}"
    return str(name or "")


class ClientServer:
    """The listening socket and every client connection of one node."""

    def __init__(self, node: ServerNode) -> None:
        self.node = node
        self.connections: dict[int, ClientConnection] = {}
        self.dirty: set[ClientConnection] = set()
        self._server: asyncio.Server | None = None
        self._next_id = 1
        self.accepted_total = 0
        self.rejected_total = 0
        self.commands_total = 0
        self.accepting = True
        self.settings: dict[bytes, bytes] = {}  # CONFIG SET values (commands.py)

    async def start(self, address: Address) -> None:
        """Listen for clients. Raises OSError if the address is taken."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._new_connection, address.host,
                                                address.port, reuse_address=True, backlog=4096)

    def _new_connection(self) -> ClientConnection:
        connection = ClientConnection(self, self._next_id)
        self._next_id += 1
        return connection

    def admit(self, connection: ClientConnection) -> bool:
        if len(self.connections) >= self.node.config.client_connections_max:
            self.rejected_total += 1
            return False
        self.connections[connection.id] = connection
        self.accepted_total += 1
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
        for connection in self.connections.values():
            if connection.transport is not None and not connection.transport.is_closing():
                connection.transport.pause_reading()

    async def close(self) -> None:
        for connection in list(self.connections.values()):
            connection.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
