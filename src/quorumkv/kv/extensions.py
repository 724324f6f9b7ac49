"""quorumkv's own commands: compare-and-set and compare-and-delete.

    CAS key expected new   sets key to new if it holds exactly expected: 1, else 0
    CAD key expected       deletes key if it holds exactly expected: 1, else 0

A missing (or expired) key never matches, and a key of another type answers WRONGTYPE. CAS
keeps the key's expiry, like the other commands that change a value in place: a lock taken
with `SET lock token NX PX 30000` is handed over with CAS and released with CAD, without ever
deleting a lock someone else holds. Both are single Raft entries, hence linearizable; the
history checkers use them as register operations.
"""

from __future__ import annotations

from quorumkv.kv.keyspace import Keyspace
from quorumkv.kv.reply import ErrorReply, Reply
from quorumkv.kv.spec import Arguments, CommandDefinition, define
from quorumkv.kv.strings import STRING, string_record


def _compare_and_set(keyspace: Keyspace, args: Arguments) -> Reply:
    key, expected, new = args
    record = string_record(keyspace, key)
    if isinstance(record, ErrorReply):
        return record
    if record is None or record.payload != expected:
        return 0
    keyspace.write(key, STRING, new, record.expiry_ms)
    return 1


def _compare_and_delete(keyspace: Keyspace, args: Arguments) -> Reply:
    key, expected = args
    record = string_record(keyspace, key)
    if isinstance(record, ErrorReply):
        return record
    if record is None or record.payload != expected:
        return 0
    keyspace.remove(key)
    return 1


DEFINITIONS: list[CommandDefinition] = [
    define(b"CAS", 4, "write denyoom fast", (1, 1, 1), "@write @string @fast", _compare_and_set),
    define(b"CAD", 3, "write fast", (1, 1, 1), "@write @string @fast", _compare_and_delete),
]
