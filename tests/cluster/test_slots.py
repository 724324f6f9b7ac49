"""Hash slots are computed exactly as Redis Cluster computes them."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from quorumkv.cluster.slots import SLOT_COUNT, crc16, hash_tag, key_slot


def reference_crc16(data: bytes) -> int:
    """CRC16/XMODEM bit by bit: polynomial 0x1021, initial value 0, no reflection."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def test_crc16_check_value() -> None:
    """The Redis Cluster specification's check value: CRC16("123456789") is 0x31C3."""
    assert crc16(b"123456789") == 0x31C3
    assert key_slot(b"123456789") == 0x31C3 % SLOT_COUNT


def test_hash_tags_from_the_specification() -> None:
    """The examples of the Redis Cluster specification's hash tag rules."""
    assert key_slot(b"{user1000}.following") == key_slot(b"{user1000}.followers")
    assert key_slot(b"{user1000}.following") == key_slot(b"user1000")
    assert hash_tag(b"foo{}{bar}") == b"foo{}{bar}"
    assert hash_tag(b"foo{{bar}}zap") == b"{bar"
    assert hash_tag(b"foo{bar}{zap}") == b"bar"
    assert hash_tag(b"{}") == b"{}"
    assert hash_tag(b"no-brace}") == b"no-brace}"
    assert hash_tag(b"open{only") == b"open{only"


def test_known_slots() -> None:
    """Slots redis-cli CLUSTER KEYSLOT reports for well-known keys."""
    assert key_slot(b"foo") == 12182
    assert key_slot(b"bar") == 5061
    assert key_slot(b"") == 0


@given(st.binary(max_size=64))
def test_crc16_matches_the_bitwise_reference(data: bytes) -> None:
    """The C-backed CRC equals the straightforward bitwise CRC16/XMODEM."""
    assert crc16(data) == reference_crc16(data)


@given(st.binary(max_size=32), st.binary(min_size=1, max_size=8), st.binary(max_size=8))
def test_keys_sharing_a_tag_share_a_slot(prefix: bytes, tag: bytes, suffix: bytes) -> None:
    """Any key with a non-empty first tag hashes as the tag alone."""
    if b"{" in prefix or b"}" in tag or b"{" in tag:
        return
    key = prefix + b"{" + tag + b"}" + suffix
    assert key_slot(key) == reference_crc16(tag) % SLOT_COUNT
    assert 0 <= key_slot(prefix + suffix) < SLOT_COUNT
