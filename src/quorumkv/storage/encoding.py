"""Record encodings of the storage layer: versioned, checksummed, msgpack (never pickle).

Every record that reaches a disk (or the simulator's model of one) is framed the same way:

    version (1 byte) | crc32 (4 bytes, big-endian) | body

`crc32` is zlib's CRC-32 over the version byte and the body, so a flipped bit anywhere in the
record (version included) is caught on read. The body is msgpack of plain lists, except for log
entries, whose body is a fixed header (term, index, type) followed by the raw entry data: that
keeps the hot path (append, read a range) free of msgpack and lets `entry_term` read a term
without copying the data.

Decoders never trust their input: a short record, a wrong version, a checksum mismatch or a body
of the wrong shape raises `RecordCorrupt`, which the stores turn into errors.CorruptStorage
naming the database path and the shard/index (they know where the record came from; this
module does not).
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import msgpack  # type: ignore[import-untyped]

from quorumkv.invariant import invariant
from quorumkv.raft.types import ConfState, Entry, EntryType, HardState, SnapshotMeta
from quorumkv.storage import batch

RECORD_FORMAT_VERSION = 1
"""Version byte of every record this build writes and the only one it reads."""

_FRAME = struct.Struct(">BI")  # version, crc32
_ENTRY_HEADER = struct.Struct(">QQB")  # term, index, type
_VERSION_BYTE = bytes([RECORD_FORMAT_VERSION])


class RecordCorrupt(ValueError):
    """A record failed its checksum, version or shape check; `detail` says which."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(detail)


# ---- framing -------------------------------------------------------------------------------


_VERSION_CRC = zlib.crc32(_VERSION_BYTE)


def frame(body: bytes) -> bytes:
    """Prefix `body` with the format version and the checksum of both."""
    return _FRAME.pack(RECORD_FORMAT_VERSION, zlib.crc32(body, _VERSION_CRC)) + body


def unframe(record: bytes) -> memoryview:
    """The body of a framed record, after checking its version and checksum."""
    if len(record) < _FRAME.size:
        raise RecordCorrupt(f"record of {len(record)} bytes is shorter than its frame")
    version, checksum = _FRAME.unpack_from(record)
    view = memoryview(record)[_FRAME.size:]
    if zlib.crc32(view, zlib.crc32(record[:1])) != checksum:
        raise RecordCorrupt("checksum mismatch")
    if version != RECORD_FORMAT_VERSION:
        raise RecordCorrupt(f"unknown record format version {version}")
    return view


def pack(value: object) -> bytes:
    """A framed msgpack record of `value` (plain lists, ints, bytes, bools)."""
    return frame(msgpack.packb(value, use_bin_type=True))


def unpack(record: bytes) -> Any:
    """The value of a framed msgpack record; raises RecordCorrupt."""
    body = unframe(record)
    try:
        return msgpack.unpackb(body, raw=False, strict_map_key=False)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as error:
        raise RecordCorrupt(f"undecodable body: {error}") from error


# ---- log entries ---------------------------------------------------------------------------


def encode_entry(entry: Entry) -> bytes:
    return frame(_ENTRY_HEADER.pack(entry.term, entry.index, int(entry.type)) + entry.data)


def decode_entry(record: bytes) -> Entry:
    body = unframe(record)
    if len(body) < _ENTRY_HEADER.size:
        raise RecordCorrupt("entry record shorter than its header")
    term, index, entry_type = _ENTRY_HEADER.unpack_from(body)
    if entry_type not in (EntryType.NORMAL, EntryType.CONF_CHANGE):
        raise RecordCorrupt(f"unknown entry type {entry_type}")
    return Entry(term, index, EntryType(entry_type), bytes(body[_ENTRY_HEADER.size:]))


def entry_term(record: bytes) -> tuple[int, int]:
    """(term, index) of an encoded entry, checksum verified, without copying its data."""
    body = unframe(record)
    if len(body) < _ENTRY_HEADER.size:
        raise RecordCorrupt("entry record shorter than its header")
    term, index, _ = _ENTRY_HEADER.unpack_from(body)
    return term, index


# ---- states --------------------------------------------------------------------------------


def hard_state_fields(hard_state: HardState) -> list[int]:
    return [hard_state.term, hard_state.vote, hard_state.commit]


def hard_state_from(fields: Any) -> HardState:
    term, vote, commit = _ints(fields, 3, "hard state")
    return HardState(term, vote, commit)


def meta_fields(meta: SnapshotMeta) -> list[Any]:
    conf = meta.conf_state
    return [meta.index, meta.term, list(conf.voters), list(conf.learners),
            list(conf.voters_outgoing), list(conf.learners_next), conf.auto_leave]


def meta_from(fields: Any) -> SnapshotMeta:
    if not isinstance(fields, list) or len(fields) != 7:
        raise RecordCorrupt("snapshot meta is not a list of 7 fields")
    index, term = _ints(fields[:2], 2, "snapshot meta")
    members = [tuple(_int_list(group, "snapshot meta membership")) for group in fields[2:6]]
    if not isinstance(fields[6], bool):
        raise RecordCorrupt("snapshot meta auto_leave is not a boolean")
    conf = ConfState(members[0], members[1], members[2], members[3], fields[6])
    return SnapshotMeta(index, term, conf)


def encode_hard_state(hard_state: HardState) -> bytes:
    return pack(hard_state_fields(hard_state))


def decode_hard_state(record: bytes) -> HardState:
    return hard_state_from(unpack(record))


def encode_meta(meta: SnapshotMeta) -> bytes:
    return pack(meta_fields(meta))


def decode_meta(record: bytes) -> SnapshotMeta:
    return meta_from(unpack(record))


def _int_list(fields: Any, what: str) -> list[int]:
    if not isinstance(fields, list):
        raise RecordCorrupt(f"{what} is not a list")
    return _ints(fields, len(fields), what)


def _ints(fields: Any, count: int, what: str) -> list[int]:
    if not isinstance(fields, list) or len(fields) != count:
        raise RecordCorrupt(f"{what} is not a list of {count} integers")
    if not all(isinstance(value, int) and not isinstance(value, bool) for value in fields):
        raise RecordCorrupt(f"{what} holds a non-integer field")
    return fields


# ---- batches (the faulty disk's journal records) -------------------------------------------

_APPEND, _HARD_STATE, _COMPACT, _PUT, _DELETE, _APPLIED, _INSTALL, _DROP, _META = range(1, 10)


def encode_batch(operations: list[batch.Operation]) -> bytes:
    """One framed record holding every operation of a batch, in order."""
    return pack([_operation_fields(operation) for operation in operations])


def decode_batch(record: bytes) -> list[batch.Operation]:
    """The operations of a batch record; raises RecordCorrupt."""
    fields = unpack(record)
    if not isinstance(fields, list):
        raise RecordCorrupt("batch record is not a list of operations")
    try:
        return [_operation_from(operation) for operation in fields]
    except (TypeError, ValueError, IndexError, KeyError) as error:
        raise RecordCorrupt(f"malformed operation: {error!r}") from error


def _operation_fields(operation: batch.Operation) -> list[Any]:
    match operation:
        case batch.AppendEntries(shard_id, entries):
            return [_APPEND, shard_id,
                    [[e.term, e.index, int(e.type), e.data] for e in entries]]
        case batch.SetHardState(shard_id, hard_state):
            return [_HARD_STATE, shard_id, hard_state_fields(hard_state)]
        case batch.CompactLog(shard_id, meta):
            return [_COMPACT, shard_id, meta_fields(meta)]
        case batch.Put(shard_id, key, value):
            return [_PUT, shard_id, key, value]
        case batch.Delete(shard_id, key):
            return [_DELETE, shard_id, key]
        case batch.SetApplied(shard_id, meta):
            return [_APPLIED, shard_id, meta_fields(meta)]
        case batch.InstallSnapshot(shard_id, image):
            pairs = batch.in_memory_image(image).pairs
            return [_INSTALL, shard_id, meta_fields(image.meta),
                    [item for pair in pairs for item in pair]]
        case batch.DropShard(shard_id):
            return [_DROP, shard_id]
        case batch.PutMeta(name, value):
            return [_META, name, value]
    invariant(False, f"unknown operation {operation!r}")
    return []


def _operation_from(fields: list[Any]) -> batch.Operation:
    tag = fields[0]
    if tag == _APPEND:
        entries = tuple(Entry(term, index, EntryType(kind), bytes(data))
                        for term, index, kind, data in fields[2])
        return batch.AppendEntries(int(fields[1]), entries)
    if tag == _HARD_STATE:
        return batch.SetHardState(int(fields[1]), hard_state_from(fields[2]))
    if tag == _COMPACT:
        return batch.CompactLog(int(fields[1]), meta_from(fields[2]))
    if tag == _PUT:
        return batch.Put(int(fields[1]), bytes(fields[2]), bytes(fields[3]))
    if tag == _DELETE:
        return batch.Delete(int(fields[1]), bytes(fields[2]))
    if tag == _APPLIED:
        return batch.SetApplied(int(fields[1]), meta_from(fields[2]))
    if tag == _INSTALL:
        shard_id, meta, flat = int(fields[1]), meta_from(fields[2]), fields[3]
        pairs = tuple(zip(flat[0::2], flat[1::2], strict=True))
        return batch.InstallSnapshot(shard_id, batch.SnapshotImage(shard_id, meta, pairs))
    if tag == _DROP:
        return batch.DropShard(int(fields[1]))
    if tag == _META:
        return batch.PutMeta(str(fields[1]), bytes(fields[2]))
    raise RecordCorrupt(f"unknown operation tag {tag!r}")
