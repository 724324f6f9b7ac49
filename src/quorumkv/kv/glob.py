"""Glob-style pattern matching exactly as Redis's stringmatchlen (KEYS, SCAN MATCH).

    *        any run of bytes, also empty        ?        exactly one byte
    [abc]    one of a, b, c                      [^abc]   one byte not a, b or c
    [a-z]    one byte in the range (either order) \\x      the byte x itself

Redis's quirks are kept, since clients may depend on them: an unterminated `[` matches the
set read so far; a range compares bytes as C's signed `char` (so bytes >= 0x80 sort below
ASCII); nesting of `*` deeper than 1000 never matches; and once the rest of a pattern fails to
match after some `*` at every position, longer matches of earlier stars are not tried.

`compile_pattern` turns the frequent shapes (a literal, `*`, `prefix*`, `*suffix`,
`*infix*`) into one bytes operation and leaves the rest to the faithful matcher.
"""

from __future__ import annotations

from collections.abc import Callable

_STAR, _QUESTION, _OPEN, _CLOSE, _BACKSLASH, _CARET, _DASH = b"*?[]\\^-"
_NESTING_MAX = 1000
_SPECIAL = frozenset(b"*?[\\")


def match(pattern: bytes, subject: bytes) -> bool:
    """Whether `subject` matches the glob `pattern`, as Redis decides it.

    Redis recurses at each `*` and, once the rest of the pattern has failed at every position
    after a star, gives up on the earlier stars too; that is exactly the classic matcher that
    only ever backtracks to the latest star, which runs here without recursion.
    """
    pattern_end, subject_end = len(pattern), len(subject)
    if subject_end == 0:
        return pattern_end == 0  # Redis's loop never starts on an empty subject
    p = s = 0
    star_p, star_s, stars = -1, 0, 0
    while True:
        if s == subject_end:
            while p < pattern_end and pattern[p] == _STAR:
                p += 1
            if p == pattern_end:
                return True
        elif p < pattern_end:
            byte = pattern[p]
            if byte == _STAR:
                while p + 1 < pattern_end and pattern[p + 1] == _STAR:
                    p += 1
                if p + 1 == pattern_end:
                    return True
                stars += 1
                if stars > _NESTING_MAX:
                    return False
                p = star_p = p + 1
                star_s = s
                continue
            p, matched = _match_token(pattern, p, subject[s])
            if matched:
                p += 1
                s += 1
                continue
        if star_p < 0:
            return False
        star_s += 1
        if star_s >= subject_end:
            return False
        p, s = star_p, star_s


def compile_pattern(pattern: bytes) -> Callable[[bytes], bool]:
    """A function telling whether a subject matches `pattern` (fast for common shapes)."""
    if pattern == b"*":
        return lambda subject: True
    inner = pattern.strip(b"*")
    if any(byte in _SPECIAL for byte in inner):
        return lambda subject: match(pattern, subject)
    leading, trailing = pattern.startswith(b"*"), pattern.endswith(b"*")
    # An empty subject matches only the empty pattern (and `*`, by KEYS' and SCAN's shortcut).
    if leading and trailing:
        return lambda subject: bool(subject) and inner in subject
    if leading:
        return lambda subject: bool(subject) and subject.endswith(inner)
    if trailing:
        return lambda subject: bool(subject) and subject.startswith(inner)
    return lambda subject: subject == pattern


def literal_prefix(pattern: bytes) -> bytes:
    """The bytes every match of `pattern` starts with (up to its first special byte)."""
    for index, byte in enumerate(pattern):
        if byte in _SPECIAL:
            return pattern[:index]
    return pattern


def _signed(byte: int) -> int:
    return byte - 256 if byte >= 128 else byte


def _match_token(pattern: bytes, p: int, subject_byte: int) -> tuple[int, bool]:
    """Match one byte against the token at `p` (not a star); returns the index of the
    token's last byte and whether it matched."""
    byte = pattern[p]
    if byte == _QUESTION:
        return p, True
    if byte == _OPEN:
        return _match_set(pattern, p + 1, subject_byte)
    if byte == _BACKSLASH and p + 1 < len(pattern):
        p += 1
    return p, pattern[p] == subject_byte


def _match_set(pattern: bytes, p: int, subject_byte: int) -> tuple[int, bool]:
    """Match one byte against the set opening at `p` (just after `[`); returns the index of
    the set's last byte (its `]`, or the pattern's last byte if unterminated) and the result."""
    end = len(pattern)
    negate = p < end and pattern[p] == _CARET
    if negate:
        p += 1
    matched = False
    while True:
        if p < end and pattern[p] == _BACKSLASH and end - p >= 2:
            p += 1
            matched |= pattern[p] == subject_byte
        elif p < end and pattern[p] == _CLOSE:
            break
        elif p >= end:
            p -= 1
            break
        elif end - p >= 3 and pattern[p + 1] == _DASH:
            low, high = _signed(pattern[p]), _signed(pattern[p + 2])
            if low > high:
                low, high = high, low
            matched |= low <= _signed(subject_byte) <= high
            p += 2
        else:
            matched |= pattern[p] == subject_byte
        p += 1
    return p, matched != negate
