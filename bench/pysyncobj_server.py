"""One PySyncObj node behind a small RESP server, so the benchmark drives PySyncObj like quorumkv.

Run with the python of `bench/.venv-pysyncobj` (stdlib + pysyncobj only; never quorumkv):

    python bench/pysyncobj_server.py --self 127.0.0.1:7001 \
        --partners 127.0.0.1:7002,127.0.0.1:7003 --listen 127.0.0.1:6401 --journal n1/journal

Theory of operation. The replicated state is one `pysyncobj.batteries.ReplDict`. PySyncObj runs
Raft on its own thread (autoTick); asyncio serves clients on the main thread. A write (SET, or
MSET as one replicated `ReplDict.update`) is handed to PySyncObj with a callback; the callback
runs on PySyncObj's thread, so it resolves an asyncio future through
`loop.call_soon_threadsafe`. Each connection keeps its replies in a queue in command order and
writes a reply only when every earlier one is ready, so pipelined clients get replies in order
although writes complete asynchronously; a read queued behind a write runs when that write
completes, so a pipelining client reads its own writes. The queue holds at most CLIENT_PENDING_COMMANDS_MAX
commands; past that the connection stops reading until replies drain.

What a reply means (read from pysyncobj 0.3.17's source):

- SET/MSET +OK: the entry was committed by a Raft majority and applied to this node's dict.
  On a follower PySyncObj forwards the command itself (`SyncObj._checkCommandsToApply` sends
  an `apply_command` message to the leader; the leader answers `apply_command_response` with
  the entry's index and term, and the follower calls back once it has applied that index with
  that term, see `SyncObj.__onMessageReceived` and `SyncObj.__applyLogEntries`). So every node
  accepts writes and no -MOVED is ever sent.
- Durability: PySyncObj does not fsync its journal, neither on append nor on commit.
  `FileJournal.add` (pysyncobj/journal.py) copies each record into a shared mmap of the journal
  file (`ResizableFile.write`), which only dirties the page cache; `ResizableFile.flush`
  (msync) is reached through `FileJournal.flush`, which nothing calls, and through
  `FileJournal._destroy`, which runs only when the SyncObj is destroyed (graceful stop).
  Term and vote (`FileJournal.setCurrentTerm`) and the commit index (saved by
  `FileJournal.onOneSecondTimer`, at most once a second) go to `<journal>.meta` through
  `MetaStorer.storeMeta`: write a temporary file, `f.flush()` (Python's buffer only), rename;
  no fsync. The full dump (log compaction, `Serializer.serialize` in pysyncobj/serializer.py)
  is written and renamed without fsync too. A write acknowledged here survives the crash of
  processes (the page cache outlives them) but not a crash or power loss of the machine.
- GET reads this node's dict directly: not linearizable. A follower may return a value older
  than a write already acknowledged elsewhere, and a deposed leader may too.

Batching. PySyncObj's default (`appendEntriesUseBatch=True`) sends new entries with the next
periodic append_entries, every `appendEntriesPeriod` = 0.1 s, so a lone write waits about 100 ms.
`--no-batch` sends each at once, but then pysyncobj 0.3.17's followers log "truncating
already-applied log entries ... state machine may have diverged": `SyncObj.__onMessageReceived`
deletes every entry after `prevLogIdx` whenever there is one, not only on a conflicting term, so
overlapping append_entries truncate entries already acknowledged. The benchmark keeps the default.

INFO returns `role:leader` or `role:follower` and `leader:HOST:PORT`, the Raft address of the
leader this node knows (empty while it knows none), since Raft addresses are what PySyncObj
knows; callers that need the leader's client port ask every node for its role.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import signal
import sys

import pysyncobj
from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf
from pysyncobj.batteries import ReplDict
from pysyncobj.version import VERSION

CLIENT_PENDING_COMMANDS_MAX = 1024
"""Commands of one connection parsed but not yet answered; past it, reading pauses."""

BULK_BYTES_MAX = 16 * 1024 * 1024
"""Largest bulk string a client may send."""

ARRAY_LENGTH_MAX = 1024 * 1024
"""Most words in one command."""

INLINE_BYTES_MAX = 64 * 1024
"""Longest line without its CRLF: an inline command or a RESP header."""

FAIL_REASON_NAMES = {value: name for name, value in vars(FAIL_REASON).items()
                     if name.isupper()}


class ProtocolError(Exception):
    """The client sent bytes that are not a RESP command within our bounds."""


# ---- RESP parsing (pure) -------------------------------------------------------------------------

def _read_line(buffer: bytearray, offset: int) -> tuple[bytes | None, int]:
    end = buffer.find(b"\r\n", offset)
    if end < 0:
        if len(buffer) - offset > INLINE_BYTES_MAX:
            raise ProtocolError(f"line longer than {INLINE_BYTES_MAX} bytes")
        return None, offset
    if end - offset > INLINE_BYTES_MAX:
        raise ProtocolError(f"line longer than {INLINE_BYTES_MAX} bytes")
    return bytes(buffer[offset:end]), end + 2


def _read_integer(line: bytes, what: str, maximum: int) -> int:
    try:
        value = int(line[1:])
    except ValueError:
        raise ProtocolError(f"{what} is not an integer: {line[:32]!r}") from None
    if not 0 <= value <= maximum:
        raise ProtocolError(f"{what} {value} outside 0..{maximum}")
    return value


def parse_command(buffer: bytearray, offset: int) -> tuple[list[bytes] | None, int]:
    """Parse one command at `offset`: (words, offset after it), or (None, offset) if incomplete.

    Accepts RESP arrays of bulk strings and inline commands. Raises ProtocolError on bytes that
    are neither, or that exceed the bounds above.
    """
    if offset >= len(buffer):
        return None, offset
    if buffer[offset] != ord("*"):
        line, after = _read_line(buffer, offset)
        if line is None:
            return None, offset
        return line.split(), after
    header, position = _read_line(buffer, offset)
    if header is None:
        return None, offset
    count = _read_integer(header, "array length", ARRAY_LENGTH_MAX)
    words: list[bytes] = []
    for _ in range(count):
        line, position = _read_line(buffer, position)
        if line is None:
            return None, offset
        if line[:1] != b"$":
            raise ProtocolError(f"expected a bulk string, got {line[:32]!r}")
        length = _read_integer(line, "bulk length", BULK_BYTES_MAX)
        end = position + length
        if len(buffer) < end + 2:
            return None, offset
        if buffer[end:end + 2] != b"\r\n":
            raise ProtocolError("bulk string not followed by CRLF")
        words.append(bytes(buffer[position:end]))
        position = end + 2
    return words, position


def bulk(value: bytes | None) -> bytes:
    if value is None:
        return b"$-1\r\n"
    return b"$%d\r\n%b\r\n" % (len(value), value)


# ---- the node: commands against PySyncObj ----------------------------------------------------

Reply = bytes | asyncio.Future  # type: ignore[type-arg]

WRITE_COMMANDS = frozenset({b"SET", b"MSET"})


class Node:
    """One PySyncObj member and the commands clients run against it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, self_address: str,
                 partners: list[str], journal: str, batch: bool) -> None:
        self.loop = loop
        self.data = ReplDict()
        conf = SyncObjConf(journalFile=journal, fullDumpFile=journal + ".dump",
                           appendEntriesUseBatch=batch)
        self.sync = SyncObj(self_address, partners, conf=conf, consumers=[self.data])

    def execute(self, words: list[bytes]) -> Reply:
        """The reply to one command: bytes now, or a future of bytes for a replicated write."""
        if not words:
            return b"-ERR empty command; send PING, SET, GET, MSET, DBSIZE or INFO\r\n"
        name = words[0].upper()
        arguments = words[1:]
        if name == b"GET" and len(arguments) == 1:
            return bulk(self.data.get(arguments[0]))
        if name == b"SET" and len(arguments) == 2:
            return self._replicate("SET", self.data.set, arguments[0], arguments[1])
        if name == b"MSET" and arguments and len(arguments) % 2 == 0:
            pairs = dict(zip(arguments[0::2], arguments[1::2], strict=True))
            return self._replicate("MSET", self.data.update, pairs)
        if name == b"PING" and len(arguments) <= 1:
            return bulk(arguments[0]) if arguments else b"+PONG\r\n"
        if name == b"DBSIZE" and not arguments:
            return b":%d\r\n" % len(self.data)
        if name == b"INFO":
            return bulk(self.info().encode())
        if name == b"HELLO":
            return b"-NOPROTO this PySyncObj adapter speaks RESP2 only; connect with protocol 2\r\n"
        if name in (b"GET", b"SET", b"MSET", b"PING", b"DBSIZE"):
            return (b"-ERR wrong number of arguments for '%b' (SET takes no options here)\r\n"
                    % name.lower())
        return (b"-ERR unknown command '%b'; this PySyncObj adapter serves PING, SET, GET, MSET, "
                b"DBSIZE and INFO\r\n" % name[:64])

    def _replicate(self, command: str, method, *arguments: object) -> asyncio.Future:  # type: ignore[type-arg]
        future = self.loop.create_future()

        def resolve(reply: bytes) -> None:
            if not future.done():
                future.set_result(reply)

        def on_result(_result: object, error: int) -> None:
            # PySyncObj's thread: hand the outcome to the event loop.
            if error == FAIL_REASON.SUCCESS:
                reply = b"+OK\r\n"
            else:
                reason = FAIL_REASON_NAMES.get(error, str(error))
                reply = (f"-ERR PySyncObj did not apply {command}: {reason}; the write may or "
                         f"may not take effect, retry\r\n").encode()
            with contextlib.suppress(RuntimeError):  # loop closed while stopping
                self.loop.call_soon_threadsafe(resolve, reply)

        method(*arguments, callback=on_result)
        return future

    def info(self) -> str:
        leader = self.sync._getLeader()
        return "".join([
            "# Replication\r\n",
            f"role:{'leader' if self.sync._isLeader() else 'follower'}\r\n",
            f"leader:{leader.address if leader is not None else ''}\r\n",
            f"raft_term:{self.sync.raftCurrentTerm}\r\n",
            f"raft_commit_index:{self.sync.raftCommitIndex}\r\n",
            f"raft_last_applied:{self.sync.raftLastApplied}\r\n",
            f"pysyncobj_version:{VERSION}\r\n",
        ])


# ---- one client connection -------------------------------------------------------------------

class Connection(asyncio.Protocol):
    """Parses pipelined commands and writes their replies in order, with bounded queues."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.buffer = bytearray()
        self.pending: collections.deque[Reply | list[bytes]] = collections.deque()
        self.transport: asyncio.Transport | None = None
        self.reading_paused = False
        self.writing_paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.pending.clear()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self.advance()

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        self.advance()

    def advance(self) -> None:
        """Parse what fits in the pending queue, write the replies that are ready, pause reading
        while the queue is full or the client is not reading its replies."""
        if self.transport is None:
            return
        self.write_ready()
        offset = 0
        while not self.writing_paused and len(self.pending) < CLIENT_PENDING_COMMANDS_MAX:
            try:
                words, offset = parse_command(self.buffer, offset)
            except ProtocolError as error:
                self.transport.write(f"-ERR protocol error: {error}; closing\r\n".encode())
                self.transport.close()
                return
            if words is None:
                break
            self.pending.append(self._start(words))
        del self.buffer[:offset]
        self.write_ready()
        blocked = self.writing_paused or len(self.pending) >= CLIENT_PENDING_COMMANDS_MAX
        if blocked and not self.reading_paused:
            self.transport.pause_reading()
            self.reading_paused = True
        elif not blocked and self.reading_paused:
            self.transport.resume_reading()
            self.reading_paused = False

    def _start(self, words: list[bytes]) -> Reply | list[bytes]:
        """Run a command now, or keep a read (its words) until the writes before it complete.

        Deferring reads gives a pipelining client its own writes: a write's future resolves
        once the entry is applied to this node's dict, so a read run after it sees it.
        """
        if self.pending and words and words[0].upper() not in WRITE_COMMANDS:
            return words
        reply = self.node.execute(words)
        if not isinstance(reply, bytes):
            reply.add_done_callback(self._on_reply_ready)
        return reply

    def write_ready(self) -> None:
        replies = []
        while self.pending:
            head = self.pending[0]
            if isinstance(head, bytes):
                replies.append(head)
            elif isinstance(head, list):
                replies.append(self.node.execute(head))  # type: ignore[arg-type]
            elif head.done():
                replies.append(head.result())
            else:
                break
            self.pending.popleft()
        if replies and self.transport is not None:
            self.transport.write(b"".join(replies))

    def _on_reply_ready(self, _future: asyncio.Future) -> None:  # type: ignore[type-arg]
        self.advance()


# ---- process ---------------------------------------------------------------------------------

def host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--self", dest="self_address", required=True,
                        help="this node's Raft address, HOST:PORT")
    parser.add_argument("--partners", required=True,
                        help="the other nodes' Raft addresses, HOST:PORT,HOST:PORT")
    parser.add_argument("--listen", type=host_port, required=True,
                        help="RESP client address, HOST:PORT")
    parser.add_argument("--journal", required=True,
                        help="PySyncObj journal file; the full dump goes to FILE.dump")
    parser.add_argument("--no-batch", dest="batch", action="store_false",
                        help="SyncObjConf(appendEntriesUseBatch=False): send each command to "
                             "the followers at once instead of with the next periodic "
                             "append_entries (PySyncObj's default batches, every 0.1 s)")
    arguments = parser.parse_args(argv)
    host_port(arguments.self_address)
    arguments.partners = [p for p in arguments.partners.split(",") if p]
    for partner in arguments.partners:
        host_port(partner)
    return arguments


async def serve(arguments: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    node = Node(loop, arguments.self_address, arguments.partners, arguments.journal,
                arguments.batch)
    host, port = arguments.listen
    server = await loop.create_server(lambda: Connection(node), host, port)
    stopping = asyncio.Event()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stopping.set)
    print(f"pysyncobj {VERSION} ({pysyncobj.__file__}) raft {arguments.self_address} "
          f"serving RESP on {host}:{port}", flush=True)
    await stopping.wait()
    server.close()
    # destroy_synchronous stops PySyncObj's thread; its _doDestroy msyncs the journal mmap.
    await loop.run_in_executor(None, node.sync.destroy_synchronous)


def main(argv: list[str] | None = None) -> None:
    asyncio.run(serve(parse_arguments(argv)))


if __name__ == "__main__":
    sys.exit(main())
