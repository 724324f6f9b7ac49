"""Numbers are read and printed as Redis reads and prints them."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quorumkv.kv.numbers import (
    INT64_MAX,
    INT64_MIN,
    add_long_doubles,
    format_double,
    format_long_double,
    parse_cursor,
    parse_integer,
    parse_long_double,
)


@pytest.mark.parametrize(("text", "value"), [
    (b"0", 0), (b"1", 1), (b"-1", -1), (b"9223372036854775807", INT64_MAX),
    (b"-9223372036854775808", INT64_MIN), (b"9223372036854775808", None),
    (b"-9223372036854775809", None), (b"-0", None), (b"01", None), (b"+1", None),
    (b" 1", None), (b"1 ", None), (b"", None), (b"-", None), (b"1.0", None), (b"1e3", None),
    (b"\xd9\xa3", None), (b"00", None), (b"123456789012345678901", None),
])
def test_parse_integer_is_string2ll(text: bytes, value: int | None) -> None:
    """Only canonical decimal integers within 64 bits are integers, as in string2ll."""
    assert parse_integer(text) == value


@given(st.integers(INT64_MIN, INT64_MAX))
def test_parse_integer_reads_every_int64(value: int) -> None:
    """Every signed 64-bit integer round-trips through its decimal text."""
    assert parse_integer(str(value).encode()) == value


@pytest.mark.parametrize(("text", "value"), [
    (b"0", 0), (b"42", 42), (b"+5", 5), (b" 7", 7), (b"007", 7), (b"-1", None),
    (b"-0", 0), (b"", None), (b"abc", None), (b"18446744073709551615", 2**64 - 1),
    (b"18446744073709551616", None), (b"1 ", None),
])
def test_parse_cursor_is_string2ull(text: bytes, value: int | None) -> None:
    """SCAN cursors are read as Redis's string2ull reads them."""
    assert parse_cursor(text) == value


@pytest.mark.parametrize(("text", "accepted"), [
    (b"1", True), (b"1.5", True), (b".5", True), (b"5.", True), (b"-1e3", True),
    (b"+2.5E-3", True), (b"inf", True), (b"-Infinity", True), (b"0x1p3", True),
    (b"nan", False), (b"", False), (b" 1", False), (b"1 ", False), (b"1e", False),
    (b"abc", False), (b"1e5000", False), (b"1e-5000", False), (b"1" * 5200, False),
])
def test_parse_long_double_is_string2ld(text: bytes, accepted: bool) -> None:
    """What INCRBYFLOAT accepts as a number follows string2ld."""
    assert (parse_long_double(text) is not None) is accepted


@pytest.mark.parametrize(("left", "right", "printed"), [
    ("10.5", "0.1", b"10.6"), ("5.6", "-5", b"0.6"), ("5.0e3", "2.0e2", b"5200"),
    ("0.1", "0.2", b"0.3"), ("0", "-0", b"0"), ("-1", "0.5", b"-0.5"),
    ("1", "1e-18", b"1"), ("0", "1e-17", b"0.00000000000000001"),
    ("3.0", "0", b"3"), ("1e20", "0", b"100000000000000000000"),
])
def test_incrbyfloat_text(left: str, right: str, printed: bytes) -> None:
    """Sums print with at most 17 decimals, no trailing zeros, and "-0" as "0"."""
    total = add_long_doubles(Decimal(left), Decimal(right))
    assert total is not None and format_long_double(total) == printed


def test_infinite_sums_are_refused() -> None:
    """A sum that is infinite or beyond long double range is refused."""
    huge = parse_long_double(b"1e4932")
    assert huge is not None and add_long_doubles(huge, huge) is None
    infinite = parse_long_double(b"inf")
    assert infinite is not None and add_long_doubles(infinite, Decimal(1)) is None


@pytest.mark.parametrize(("value", "text"), [
    (1.5, b"1.5"), (3.0, b"3"), (-0.25, b"-0.25"), (float("inf"), b"inf"),
    (float("-inf"), b"-inf"), (float("nan"), b"nan"), (1e20, b"1e+20"), (0.1, b"0.1"),
    (0.0, b"0"), (-0.0, b"-0"),
])
def test_format_double(value: float, text: bytes) -> None:
    """Doubles in replies: integral values without a fraction, shortest text otherwise."""
    assert format_double(value) == text
