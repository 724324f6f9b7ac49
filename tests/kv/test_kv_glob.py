"""Glob matching decides exactly as Redis's stringmatchlen, quirks included."""

from __future__ import annotations

import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quorumkv.kv.glob import compile_pattern, match


def reference_match(pattern: bytes, subject: bytes) -> bool:
    """A line-by-line port of Redis 7's recursive stringmatchlen_impl (util.c), with C's
    NUL-terminated reads and signed chars, used as the oracle."""
    skip = [False]

    def signed(byte: int) -> int:
        return byte - 256 if byte >= 128 else byte

    def at(text: bytes, index: int) -> int:
        return text[index] if index < len(text) else 0  # the C string's NUL terminator

    def impl(p: int, s: int, nesting: int) -> bool:
        if nesting > 1000:
            return False
        plen, slen = len(pattern) - p, len(subject) - s
        while plen and slen:
            c = pattern[p]
            if c == ord("*"):
                while plen and at(pattern, p + 1) == ord("*"):
                    p += 1
                    plen -= 1
                if plen == 1:
                    return True
                while slen:
                    if impl(p + 1, s, nesting + 1):
                        return True
                    if skip[0]:
                        return False
                    s += 1
                    slen -= 1
                skip[0] = True
                return False
            if c == ord("?"):
                s += 1
                slen -= 1
            elif c == ord("["):
                p += 1
                plen -= 1
                negate = at(pattern, p) == ord("^")
                if negate:
                    p += 1
                    plen -= 1
                matched = False
                while True:
                    if at(pattern, p) == ord("\\") and plen >= 2:
                        p += 1
                        plen -= 1
                        if pattern[p] == subject[s]:
                            matched = True
                    elif at(pattern, p) == ord("]"):
                        break
                    elif plen == 0:
                        p -= 1
                        plen += 1
                        break
                    elif plen >= 3 and pattern[p + 1] == ord("-"):
                        start, end = signed(pattern[p]), signed(pattern[p + 2])
                        if start > end:
                            start, end = end, start
                        p += 2
                        plen -= 2
                        if start <= signed(subject[s]) <= end:
                            matched = True
                    elif pattern[p] == subject[s]:
                        matched = True
                    p += 1
                    plen -= 1
                if negate:
                    matched = not matched
                if not matched:
                    return False
                s += 1
                slen -= 1
            else:
                if c == ord("\\") and plen >= 2:
                    p += 1
                    plen -= 1
                if pattern[p] != subject[s]:
                    return False
                s += 1
                slen -= 1
            p += 1
            plen -= 1
            if slen == 0:
                while at(pattern, p) == ord("*"):
                    p += 1
                    plen -= 1
                break
        return plen == 0 and slen == 0

    return impl(0, 0, 0)


CASES = [
    (b"*", b"anything", True), (b"h?llo", b"hello", True), (b"h?llo", b"hllo", False),
    (b"h*llo", b"hllo", True), (b"h*llo", b"heeeello", True), (b"h[ae]llo", b"hello", True),
    (b"h[ae]llo", b"hillo", False), (b"h[^e]llo", b"hallo", True), (b"h[^e]llo", b"hello", False),
    (b"h[a-b]llo", b"hbllo", True), (b"h[b-a]llo", b"hallo", True), (b"h\\*llo", b"h*llo", True),
    (b"h\\*llo", b"hello", False), (b"a*", b"", False), (b"", b"", True), (b"*", b"", False),
    (b"[", b"a", False), (b"[a", b"a", True), (b"[^", b"z", True), (b"a\\", b"a\\", True),
    (b"[\\]]", b"]", True), (b"*a*b*c", b"xxaxxbxxc", True), (b"*a*b*c", b"xxaxxcxxb", False),
    (b"[\x80-\xff]", b"a", False), (b"[\xff-a]", b"\x90", False), (b"[\x80-a]", b"\x90", True), (b"**", b"x", True),
    (b"?*", b"", False), (b"a*", b"a", True), (b"a**", b"abc", True), (b"*\\", b"x\\", True),
]


@pytest.mark.parametrize(("pattern", "subject", "expected"), CASES)
def test_known_cases(pattern: bytes, subject: bytes, expected: bool) -> None:
    """Documented behaviour and Redis's quirks (unterminated sets, signed ranges)."""
    assert reference_match(pattern, subject) is expected
    assert match(pattern, subject) is expected
    if pattern != b"*":  # `*` is KEYS' and SCAN's match-all shortcut, also for b""
        assert compile_pattern(pattern)(subject) is expected


ALPHABET = st.sampled_from(list(b"ab*?[]^-\\\x80\xff"))


@settings(max_examples=1000, deadline=None)
@given(pattern=st.lists(ALPHABET, max_size=10).map(bytes),
       subject=st.lists(st.sampled_from(list(b"ab-]^*?\\\x80\xff")), max_size=10).map(bytes))
def test_matches_the_recursive_reference(pattern: bytes, subject: bytes) -> None:
    """The iterative matcher and the compiled fast paths agree with the C port."""
    expected = reference_match(pattern, subject)
    assert match(pattern, subject) is expected
    if pattern != b"*":
        assert compile_pattern(pattern)(subject) is expected


def test_star_nesting_limit() -> None:
    """More than 1000 stars that must each be tried never match, as in Redis."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(10_000)
    try:
        subject = b"a" * 1100 + b"b"
        many = b"*a" * 1001 + b"b"
        assert reference_match(many, subject) is False
        assert match(many, subject) is False
        fewer = b"*a" * 999 + b"b"
        assert reference_match(fewer, subject) is True
        assert match(fewer, subject) is True
    finally:
        sys.setrecursionlimit(limit)


def test_long_subject_does_not_recurse() -> None:
    """A pattern with many stars against a long subject runs without deep recursion."""
    assert match(b"*a" * 900 + b"*", b"a" * 100_000) is True
    assert match(b"*x*y*z", b"ab" * 50_000) is False


@settings(max_examples=1000, deadline=None)
@given(pattern=st.lists(st.sampled_from(list(b"ab*")), max_size=12).map(bytes),
       subject=st.lists(st.sampled_from(list(b"ab")), max_size=12).map(bytes))
def test_literal_and_star_patterns_match_like_the_reference(pattern: bytes,
                                                            subject: bytes) -> None:
    """The find-based matcher for literals and stars agrees with the C port."""
    if pattern != b"*":
        assert compile_pattern(pattern)(subject) is reference_match(pattern, subject)
