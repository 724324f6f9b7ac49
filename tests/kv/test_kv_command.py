"""The command record survives encoding, and garbage is refused with a typed error."""

from __future__ import annotations

import contextlib

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from quorumkv.errors import InvalidCommand
from quorumkv.kv.command import COMMAND_FORMAT_VERSION, Command, decode_command, encode_command


@given(name=st.binary(max_size=20), args=st.lists(st.binary(max_size=50), max_size=10),
       timestamp=st.integers(0, 2**63 - 1))
def test_round_trip(name: bytes, args: list[bytes], timestamp: int) -> None:
    """decode_command(encode_command(c)) == c for every command."""
    command = Command(name, tuple(args), timestamp)
    assert decode_command(encode_command(command)) == command


def test_encoding_starts_with_the_format_version() -> None:
    """The record is a msgpack array whose first element is the format version."""
    record = msgpack.unpackb(encode_command(Command(b"SET", (b"k", b"v"), 5)))
    assert record[0] == COMMAND_FORMAT_VERSION


@pytest.mark.parametrize("data", [
    b"", b"\xc1", msgpack.packb([2, b"SET", [], 1]), msgpack.packb([1, b"SET", [], 1, 2]),
    msgpack.packb([1, "SET", [], 1]), msgpack.packb([1, b"SET", [1], 1]),
    msgpack.packb([1, b"SET", [], 1.5]), msgpack.packb([True, b"SET", [], 1]),
    msgpack.packb({"a": 1}), msgpack.packb([1, b"SET", [], True]),
])
def test_garbage_raises_invalid_command(data: bytes) -> None:
    """Anything that is not a version-1 command record raises InvalidCommand."""
    with pytest.raises(InvalidCommand):
        decode_command(data)


@given(st.binary(max_size=64))
def test_random_bytes_never_raise_anything_else(data: bytes) -> None:
    """Random bytes decode to a command or raise InvalidCommand, nothing else."""
    with contextlib.suppress(InvalidCommand):
        decode_command(data)
