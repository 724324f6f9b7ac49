"""One RESP connection to one node, as the harness's clients and observers use it.

Theory of operation. A thin, typed wrapper around `redis.Connection` (redis-py, with hiredis
when installed): connecting is a separate step from sending, so a caller knows whether a
command can have left; there are no retries and every wait is bounded by the timeouts given.
Connecting includes redis-py's CLIENT SETINFO exchange, answered by the node itself, so a
paused node (SIGSTOP: the kernel still accepts the TCP connection) counts as unreachable
rather than costing an operation. Error replies come back as redis-py's exceptions (`redis.ResponseError` and subclasses), lost
connections as `redis.ConnectionError`, timeouts as `redis.TimeoutError`.
"""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


class NodeConnection:
    """A connection to `host:port` that sends one command at a time."""

    def __init__(self, host: str, port: int, timeout_s: float, connect_timeout_s: float) -> None:
        self._connection = redis.Connection(  # type: ignore[no-untyped-call]
            host=host, port=port, socket_timeout=timeout_s,
            socket_connect_timeout=connect_timeout_s, retry=Retry(NoBackoff(), 0))

    def connect(self) -> None:
        """Connect unless connected; raise redis.ConnectionError / OSError if unreachable."""
        self._connection.connect()  # type: ignore[no-untyped-call]

    def command(self, *words: str) -> object:
        """Send one command and read its reply; raise redis errors (see the module docstring)."""
        self._connection.send_command(*words)  # type: ignore[no-untyped-call]
        return self._connection.read_response()

    def close(self) -> None:
        self._connection.disconnect()  # type: ignore[no-untyped-call]
