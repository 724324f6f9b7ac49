"""Numbers as Redis reads and writes them inside strings.

Redis is strict about integers: `string2ll` accepts an optional minus sign and decimal digits
without leading zeros, no plus sign, no spaces, and only values that fit in a signed 64-bit
integer. Every integer argument (expiry times, increments, offsets) and every stored value that
INCR reads goes through `parse_integer`, so the same inputs are accepted and refused as in Redis.

INCRBYFLOAT works in C `long double` in Redis and prints the result with "%.17Lf" minus its
trailing zeros. Here the arithmetic is exact decimal arithmetic rounded to 17 fractional
digits, which gives the same text for every value with fewer than about 19 significant digits
(all the usual cases: 10.5 + 0.1 is 10.6 in both) and is identical on every replica and
platform; beyond that precision Redis's binary rounding shows and the two may differ.
"""

from __future__ import annotations

import math
import re
from decimal import Context, Decimal, InvalidOperation

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
UINT64_MAX = (1 << 64) - 1

_LONG_DOUBLE_TEXT_MAX = 5 * 1024  # Redis's MAX_LONG_DOUBLE_CHARS
_LONG_DOUBLE_MAX = Decimal("1.18973149535723176502e+4932")
_LONG_DOUBLE_TINY = Decimal("3.6e-4951")  # below the smallest subnormal: strtold gives ERANGE
_FRACTION_DIGITS = Decimal(1).scaleb(-17)
_EXACT = Context(prec=24_000, Emax=999_999, Emin=-999_999)
_DECIMAL_FLOAT = re.compile(rb"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INFINITY = re.compile(rb"([+-]?)(?:inf|infinity)", re.IGNORECASE)
_HEX_FLOAT = re.compile(rb"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?")
_SPACE = b" \t\n\v\f\r"


def parse_integer(text: bytes) -> int | None:
    """The signed 64-bit integer `text` spells exactly as Redis's string2ll reads it, or None."""
    if 0 < len(text) <= 20:
        if text.isdigit():
            if text[0] != 48 or len(text) == 1:  # no leading zero, except "0" itself
                value = int(text)
                return value if value <= INT64_MAX else None
        elif text[0] == 45 and text[1:].isdigit() and text[1] != 48:  # "-" then 1-9...
            value = -int(text[1:])
            return value if value >= INT64_MIN else None
    return None


def parse_cursor(text: bytes) -> int | None:
    """An unsigned 64-bit SCAN cursor as Redis's string2ull reads it (strtoull after the strict
    path: leading spaces and a plus sign pass, a negative number does not), or None."""
    strict = parse_integer(text)
    if strict is not None:
        return strict if strict >= 0 else None
    body = text.lstrip(_SPACE)
    negative = body[:1] == b"-"
    if body[:1] in (b"+", b"-"):
        body = body[1:]
    if not body.isdigit():
        return None
    value = int(body)
    if value > UINT64_MAX:
        return None
    return (-value) % (1 << 64) if negative else value


def parse_long_double(text: bytes) -> Decimal | None:
    """The number `text` spells as Redis's string2ld reads it (decimal, hexadecimal or
    infinite; never NaN), or None when Redis would refuse it."""
    if not 0 < len(text) < _LONG_DOUBLE_TEXT_MAX or text[0] in _SPACE:
        return None
    if _DECIMAL_FLOAT.fullmatch(text):
        value = Decimal(text.decode("ascii"))
    elif (infinite := _INFINITY.fullmatch(text)) is not None:
        return Decimal("-Infinity" if infinite.group(1) == b"-" else "Infinity")
    elif _HEX_FLOAT.fullmatch(text):
        try:
            value = Decimal(float.fromhex(text.decode("ascii")))
        except OverflowError:
            return None
    else:
        return None
    magnitude = abs(value)
    if magnitude > _LONG_DOUBLE_MAX or (magnitude and magnitude < _LONG_DOUBLE_TINY):
        return None  # strtold reports ERANGE: overflow, or underflow to zero
    return value


def add_long_doubles(left: Decimal, right: Decimal) -> Decimal | None:
    """left + right, or None when the sum is not a finite long double (Redis's error
    "increment would produce NaN or Infinity")."""
    if not (left.is_finite() and right.is_finite()):
        return None
    try:
        total = _EXACT.add(left, right)
    except InvalidOperation:
        return None
    return total if abs(total) <= _LONG_DOUBLE_MAX else None


def format_long_double(value: Decimal) -> bytes:
    """`value` as Redis prints INCRBYFLOAT results: 17 fractional digits, trailing zeros and a
    trailing point removed, and "-0" written "0"."""
    text = format(_EXACT.quantize(value, _FRACTION_DIGITS), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text == "-0":
        text = "0"
    return text.encode("ascii")


def format_double(value: float) -> bytes:
    """A double as a reply shows it: integral values without a fraction, inf, -inf and nan
    spelled as Redis does, otherwise the shortest text that reads back as the same double."""
    if value != value:
        return b"nan"
    if value in (float("inf"), float("-inf")):
        return b"inf" if value > 0 else b"-inf"
    if value == 0:
        return b"-0" if math.copysign(1.0, value) < 0 else b"0"
    if value.is_integer() and abs(value) < 1e17:
        return b"%d" % int(value)
    return repr(value).encode("ascii")
