"""Hash slots: which of the 16384 slots a key belongs to, exactly as Redis Cluster computes it.

A key's slot is CRC16 (the XMODEM variant: polynomial 0x1021, initial value 0, no reflection)
of the key, modulo 16384. If the key contains a hash tag, a `{...}` with at least one byte
between the first `{` and the first `}` after it, only that part is hashed, so that keys like
`{user1000}.following` and `{user1000}.followers` land in the same slot and can be used
together by multi-key commands. The slot names the shard (ARCHITECTURE.md, a write end to end).

The CRC runs in C through `binascii.crc_hqx`, which computes exactly this CRC; a bitwise
reference lives in the tests.
"""

from __future__ import annotations

from binascii import crc_hqx

SLOT_COUNT = 16384
"""Hash slots in the keyspace, as in Redis Cluster."""

_SLOT_MASK = SLOT_COUNT - 1


def crc16(data: bytes) -> int:
    """CRC16/XMODEM of `data`, the checksum Redis Cluster hashes keys with."""
    return crc_hqx(data, 0)


def hash_tag(key: bytes) -> bytes:
    """The part of `key` that is hashed: the first non-empty `{tag}`, else the whole key."""
    start = key.find(b"{")
    if start < 0:
        return key
    end = key.find(b"}", start + 1)
    if end <= start + 1:  # no closing brace, or an empty tag "{}": hash the whole key
        return key
    return key[start + 1 : end]


def key_slot(key: bytes) -> int:
    """The hash slot of `key`, in [0, SLOT_COUNT)."""
    return crc_hqx(hash_tag(key), 0) & _SLOT_MASK
