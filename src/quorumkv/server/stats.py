"""The counters behind INFO stats, commandstats and errorstats, and what CONFIG RESETSTAT zeroes.

Theory of operation. The client connections report what happens to them (a connection accepted
or refused, bytes read and written, a command taken, its reply given) to the node's one
`ServerStats`; INFO reads the totals back. Everything is counted on the event loop thread, at
the node the client is connected to: a command forwarded to its shard's leader is counted
here, where it arrived and was answered, not at the leader.

- A command counts in its `cmdstat_<name>` once answered: `calls` and `usec` (microseconds from
  the command's arrival to its reply: for a data command that includes replication, where
  Redis counts only execution), `failed_calls` for an error the command itself answered,
  `rejected_calls` (and no call) for one refused before it could run: wrong arity, or a
  cluster refusal (-MOVED, -ASK, -CROSSSLOT, -CLUSTERDOWN, -TRYAGAIN), as Redis counts those.
  Unknown commands are not counted as commands (only as errors), as in Redis.
- Every error reply counts in `total_error_replies` and in `errorstat_<CODE>` (its first word),
  for at most `limits.error_codes_tracked_max` distinct codes.
- `expired_keys` counts the keys this node deleted, as leader of their shard, because their
  time had come (the background expiry); a write that replaces a key whose time had come
  replaces it without counting it, where Redis would count it.
- Keyspace hits and misses are counted from the replies of the reads whose nil means a
  missing key: GET, GETEX, GETDEL and each key of MGET.
- Instantaneous rates (ops/s, kbps) are averages over the last `limits.stats_samples_max`
  samples taken every `stats_sample_interval_ms`, as Redis's `instantaneous_*` figures are.

- Memory is measured from /proc/self/status (`process_memory`): `used_memory` is the process's
  anonymous resident memory (what its allocators hold: Python objects, RocksDB's block cache
  and memtables), `used_memory_rss` all of its resident memory; the peak is the largest
  `used_memory` seen by the samples and by INFO.

`reset` is CONFIG RESETSTAT: it zeroes what Redis's resetServerStats zeroes (the totals above,
commandstats, errorstats, the rate samples, the memory peak); connected clients stay.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable

from quorumkv import limits
from quorumkv.kv.reply import ErrorReply, Reply

_REJECTION_CODES = frozenset({b"MOVED", b"ASK", b"CROSSSLOT", b"CLUSTERDOWN", b"TRYAGAIN"})
_ARITY_ERROR_PREFIX = b"ERR wrong number of arguments"
_SINGLE_KEY_READS = frozenset({b"get", b"getex", b"getdel"})


class CommandStats:
    """One command's line of INFO commandstats."""

    __slots__ = ("calls", "usec", "rejected_calls", "failed_calls")

    def __init__(self) -> None:
        self.calls = 0
        self.usec = 0
        self.rejected_calls = 0
        self.failed_calls = 0


class ServerStats:
    """The node's statistics (one per node; see the module docstring)."""

    def __init__(self, is_command: Callable[[bytes], bool], expired_total: Callable[[], int],
                 clock_ns: Callable[[], int] = time.monotonic_ns) -> None:
        """`is_command(name)`: whether `name` (lower case) is a command the node knows;
        `expired_total()`: keys the node's leaders deleted as they expired, since start."""
        self._is_command = is_command
        self._expired_total = expired_total
        self.clock_ns = clock_ns
        self._by_spelling: dict[bytes, tuple[bytes, CommandStats]] = {}
        self.reset()

    def reset(self) -> None:
        """CONFIG RESETSTAT."""
        self.connections_received = 0
        self.rejected_connections = 0
        self.commands_processed = 0
        self.net_input_bytes = 0
        self.net_output_bytes = 0
        self.reads_processed = 0
        self.writes_processed = 0
        self.error_replies = 0
        self.keyspace_hits = 0
        self.keyspace_misses = 0
        self.commands: dict[bytes, CommandStats] = {}
        self._by_spelling.clear()
        self.errors: dict[bytes, int] = {}
        self._samples: deque[tuple[int, int, int, int]] = deque(
            maxlen=limits.stats_samples_max)  # (time ns, commands, input bytes, output bytes)
        self.memory_peak = 0
        self._expired_at_reset = self._expired_total()

    @property
    def expired_keys(self) -> int:
        return self._expired_total() - self._expired_at_reset

    # ---- what the connections report ---------------------------------------------------------

    def replied(self, spelling: bytes, started_ns: int, reply: Reply) -> None:
        """The command sent as `spelling` (its name as the client wrote it), arrived at
        `started_ns`, was answered `reply`."""
        known = self._by_spelling.get(spelling)
        if known is None:
            name = spelling.lower()
            if not self._is_command(name):
                if isinstance(reply, ErrorReply):
                    self.error(reply)
                return
            entry = self.commands.get(name)
            if entry is None:
                entry = self.commands[name] = CommandStats()
            known = (name, entry)
            if len(self._by_spelling) < limits.command_spellings_tracked_max:
                self._by_spelling[spelling] = known
        name, entry = known
        if isinstance(reply, ErrorReply):
            self.error(reply)
            if reply.code in _REJECTION_CODES or reply.message.startswith(_ARITY_ERROR_PREFIX):
                entry.rejected_calls += 1
                return
            entry.failed_calls += 1
        elif name in _SINGLE_KEY_READS:
            if reply is None:
                self.keyspace_misses += 1
            else:
                self.keyspace_hits += 1
        elif name == b"mget" and isinstance(reply, list):
            misses = reply.count(None)
            self.keyspace_misses += misses
            self.keyspace_hits += len(reply) - misses
        entry.calls += 1
        entry.usec += (self.clock_ns() - started_ns) // 1000

    def error(self, reply: ErrorReply) -> None:
        """An error reply (a command's, or a protocol error's)."""
        self.error_replies += 1
        code = reply.code
        if code in self.errors:
            self.errors[code] += 1
        elif len(self.errors) < limits.error_codes_tracked_max:
            self.errors[code] = 1

    # ---- rates -------------------------------------------------------------------------------

    def sample(self) -> None:
        """Take one sample of the totals (every `limits.stats_sample_interval_ms`)."""
        self._samples.append((self.clock_ns(), self.commands_processed, self.net_input_bytes,
                              self.net_output_bytes))
        self.memory()

    def memory(self) -> dict[str, int]:
        """The process's memory now (`process_memory`), the peak updated."""
        figures = process_memory()
        self.memory_peak = max(self.memory_peak, figures.get("used", 0))
        figures["peak"] = self.memory_peak
        return figures

    def rates(self) -> tuple[float, float, float]:
        """Commands per second and input and output kilobytes per second over the samples."""
        samples = self._samples
        if len(samples) < 2:
            return 0.0, 0.0, 0.0
        first, last = samples[0], samples[-1]
        seconds = (last[0] - first[0]) / 1e9
        if seconds <= 0:
            return 0.0, 0.0, 0.0
        return ((last[1] - first[1]) / seconds, (last[2] - first[2]) / seconds / 1024,
                (last[3] - first[3]) / seconds / 1024)


def process_memory() -> dict[str, int]:
    """Bytes of memory of this process: `used` (anonymous resident: RssAnon), `rss` (VmRSS);
    empty where /proc is not available."""
    figures = {}
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"RssAnon:"):
                    figures["used"] = int(line.split()[1]) * 1024
                elif line.startswith(b"VmRSS:"):
                    figures["rss"] = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return {}
    return figures


def system_memory_bytes() -> int:
    """Physical memory of the machine (0 if unknown)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (OSError, ValueError):
        return 0
