"""Glob-style pattern matching exactly as Redis's stringmatchlen (KEYS, SCAN MATCH).

    *        any run of bytes, also empty        ?        exactly one byte
    [abc]    one of a, b, c                      [^abc]   one byte not a, b or c
    [a-z]    one byte in the range (either order) \\x      the byte x itself

Redis's quirks are kept, since clients may depend on them: an unterminated `[` matches the
set read so far; a range compares bytes as C's signed `char` (so bytes >= 0x80 sort below
ASCII); nesting of `*` deeper than 1000 never matches; and once the rest of a pattern fails to
match after some `*` at every position, longer matches of earlier stars are not tried.

`compile_pattern` matches patterns made only of literals and stars with C-level bytes
operations and leaves the rest to the faithful matcher, whose worst case is the product of
the pattern's and the key's lengths, as in Redis.
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
    """A function telling whether a subject matches `pattern`. Patterns made only of literal
    bytes and stars (the usual `user:*`, `*:session:*`) match with C-level startswith,
    endswith and find, in linear time; the rest go through `match`."""
    if pattern == b"*":
        return lambda subject: True  # KEYS' and SCAN's shortcut: matches even b""
    if any(byte in _SPECIAL for byte in pattern.replace(b"*", b"")):
        return lambda subject: match(pattern, subject)
    if b"*" not in pattern:
        return lambda subject: subject == pattern
    segments = pattern.split(b"*")
    if sum(1 for segment in segments[1:] if segment) > _NESTING_MAX:
        return lambda subject: match(pattern, subject)
    return _literal_segments_matcher(segments[0], [s for s in segments[1:-1] if s], segments[-1])


def _literal_segments_matcher(first: bytes, middle: list[bytes],
                              last: bytes) -> Callable[[bytes], bool]:
    """first*middle[0]*...*last: anchored ends, middle parts found leftmost (which decides
    exactly as backtracking would, since every byte of a part must match literally)."""
    fixed = len(first) + len(last)

    def matches(subject: bytes) -> bool:
        if not subject or len(subject) < fixed:
            return False  # an empty subject matches only the empty pattern in Redis
        if not (subject.startswith(first) and subject.endswith(last)):
            return False
        position, end = len(first), len(subject) - len(last)
        for part in middle:
            found = subject.find(part, position, end)
            if found < 0:
                return False
            position = found + len(part)
        return True

    return matches


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
