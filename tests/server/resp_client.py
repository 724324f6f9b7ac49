"""A raw RESP client for tests: exact reply bytes, and the parsed value beside them."""

from __future__ import annotations

import socket
from typing import Any

import hiredis

from quorumkv.codec.resp import encode_reply
from quorumkv.kv.reply import Reply


def encode_command(words: tuple[bytes, ...]) -> bytes:
    return b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%b\r\n" % (len(w), w) for w in words)


def words_of(command: str | tuple[str | bytes | int, ...]) -> tuple[bytes, ...]:
    if isinstance(command, str):
        return tuple(word.encode() for word in command.split(" "))
    return tuple(w if isinstance(w, bytes) else str(w).encode() for w in command)


class RawClient:
    """One connection; `call` sends a command and returns the raw bytes of its reply."""

    def __init__(self, port: int, timeout_s: float = 10.0) -> None:
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
        self.reader = hiredis.Reader()

    def send(self, data: bytes) -> None:
        self.socket.sendall(data)

    def read_reply(self) -> tuple[bytes, Any]:
        raw = b""
        while True:
            value = self.reader.gets()
            if value is not False:
                return raw, value
            chunk = self.socket.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed by the server after {raw!r}")
            raw += chunk
            self.reader.feed(chunk)

    def call(self, command: str | tuple[str | bytes | int, ...]) -> bytes:
        self.send(encode_command(words_of(command)))
        return self.read_reply()[0]

    def read_all(self) -> bytes:
        """Everything the server sends until it closes the connection."""
        data = b""
        while chunk := self.socket.recv(65536):
            data += chunk
        return data

    def closed_by_server(self) -> bool:
        """Whether the server has closed the connection (reads EOF, bounded by the timeout)."""
        try:
            return self.socket.recv(65536) == b""
        except (ConnectionResetError, BrokenPipeError):
            return True

    def close(self) -> None:
        self.socket.close()


def wire(reply: Reply, protocol: int = 2) -> bytes:
    return encode_reply(reply, protocol)
