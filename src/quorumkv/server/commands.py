"""What the node does with one client command: answer it here, or send it to its shard.

Theory of operation. `execute` looks the command name up (case-insensitively) in two tables:

- the connection and server commands below (PING, ECHO, HELLO, AUTH, CLIENT, SELECT, QUIT,
  RESET, COMMAND, INFO, TIME, CONFIG): they concern this connection or this node, touch no
  replicated data and are answered at once;
- kv's command table (strings, keys, CAS/CAD...): the command's arity and syntax are checked
  here first (a definite error costs no round trip and no log entry), then the dispatcher runs
  it at its shard's leader and the reply comes back later.

Anything else is answered as Redis answers an unknown command. Replies are kv.reply values;
the connection encodes them in the client's RESP version.

Data commands and CLUSTER are routed over the shards by routed_commands.py
(cluster.routing.route: run here, forward, -MOVED, -CROSSSLOT, split and gather); each
connection keeps its `mode` (cluster.routing.mode_after: READONLY, READWRITE, ASKING, CLUSTER
SLOTS/SHARDS/NODES make it a cluster client).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from quorumkv.cluster.routing import PLAIN, mode_after
from quorumkv.kv import commands as kv_commands
from quorumkv.kv.reply import (
    NOT_AN_INTEGER,
    OK,
    PONG,
    SYNTAX_ERROR,
    ErrorReply,
    Map,
    Reply,
    SimpleString,
    VerbatimString,
    arity_error,
    unknown_command_error,
)
from quorumkv.kv.spec import CommandSpec
from quorumkv.server import config_command, info
from quorumkv.server.routed_commands import run_cluster_command, run_data_command

if TYPE_CHECKING:
    from quorumkv.server.resp_server import ClientConnection, ReplySlot

REDIS_VERSION = b"7.2.0"
"""The Redis version this node reports (HELLO, INFO): the command set it follows."""

Handler = Callable[["ClientConnection", tuple[bytes, ...]], Reply]


@dataclass(frozen=True, slots=True)
class ServerCommand:
    spec: CommandSpec
    handler: Handler


_SERVER_COMMANDS: dict[bytes, ServerCommand] = {}


def _command(name: bytes, arity: int, flags: str, categories: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        spec = CommandSpec(name=name, arity=arity,
                           flags=tuple(f.encode() for f in flags.split()), first_key=0,
                           last_key=0, key_step=0,
                           categories=tuple(c.encode() for c in categories.split()))
        _SERVER_COMMANDS[name] = ServerCommand(spec, handler)
        return handler
    return register


# ---- dispatch ----------------------------------------------------------------------------------


def execute(connection: ClientConnection, argv: list[bytes], slot: ReplySlot) -> None:
    """Answer `argv` into `slot`, now or once its shard has answered."""
    if not argv:
        connection.fill(slot, ErrorReply(b"ERR Protocol error: empty command"))
        return
    name = argv[0].upper()
    args = tuple(argv[1:])
    connection.last_command = name.lower()
    mode = connection.mode
    connection.mode = mode_after(mode, name, args)
    if name == b"CLUSTER" and args:
        run_cluster_command(connection, args, slot)
        return
    local = _SERVER_COMMANDS.get(name)
    if local is not None:
        if not local.spec.arity_ok(len(args)):
            connection.fill(slot, arity_error(name))
        else:
            connection.fill(slot, local.handler(connection, args))
        return
    if kv_commands.command_spec(name) is None:
        connection.fill(slot, unknown_command_error(argv[0], args))
        return
    # The dispatcher validates arguments (kv_commands.validate) before anything leaves this
    # node; on the leader the host validates them as it submits.
    run_data_command(connection, mode, name, args, slot)


def all_specs() -> list[CommandSpec]:
    """Every command a client may send, as COMMAND reports them."""
    specs = [c.spec for c in _SERVER_COMMANDS.values()]
    specs.extend(kv_commands.all_specs())
    return sorted(specs, key=lambda s: s.name)


def is_command(name: bytes) -> bool:
    """Whether `name` (any case) is a command this node knows (INFO commandstats)."""
    return _find_spec(name) is not None


def _find_spec(name: bytes) -> CommandSpec | None:
    upper = name.upper()
    local = _SERVER_COMMANDS.get(upper)
    if local is not None:
        return local.spec
    return kv_commands.command_spec(upper)


def _unknown_subcommand(command: bytes, subcommand: bytes) -> ErrorReply:
    return ErrorReply(b"ERR unknown subcommand '%b'. Try %b HELP." % (subcommand[:128],
                                                                      command.upper()))


def _parse_int(text: bytes) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


# ---- connection ---------------------------------------------------------------------------------


@_command(b"PING", -1, "fast", "@fast @connection")
def _ping(connection: ClientConnection, args: tuple[bytes, ...]) -> Reply:
    if len(args) > 1:
        return arity_error(b"ping")
    return args[0] if args else PONG


@_command(b"ECHO", 2, "fast", "@fast @connection")
def _echo(connection: ClientConnection, args: tuple[bytes, ...]) -> Reply:
    return args[0]


@_command(b"SELECT", 2, "loading stale fast", "@keyspace @fast @connection")
def _select(connection: ClientConnection, args: tuple[bytes, ...]) -> Reply:
    index = _parse_int(args[0])
    if index is None:
        return NOT_AN_INTEGER
    if index != 0:
        return ErrorReply(b"ERR DB index is out of range")
    return OK


@_command(b"QUIT", -1, "allow_busy fast no_auth", "@fast @connection")
def _quit(connection: ClientConnection, args: tuple[bytes, ...]) -> Reply:
    connection.close_after_replies()
    return OK


@_command(b"RESET", 1, "fast no_auth", "@fast @connection")
def _reset(connection: ClientConnection, args: tuple[bytes, ...]) -> Reply:
    connection.protocol = 2
    connection.name = b""
    connection.database = 0
    connection.mode = PLAIN  # as Redis, RESET leaves READONLY mode
    return SimpleString(b"RESET")


@_command(b"AUTH", -2, "no_auth fast", "@fast @connection")
def _auth(connection: ClientConnection, args: tuple[bytes, ...]) -> Reply:
    if len(args) > 2:
        return SYNTAX_ERROR
    if len(args) == 1:
        return ErrorReply(b"ERR AUTH <password> called without any password configured for "
                          b"the default user. Are you sure your configuration is correct?")
    return _check_user(args[0])


def _check_user(user: bytes) -> Reply:
    """Without security configured only the passwordless `default` user exists."""
    if user != b"default":
        return ErrorReply(b"WRONGPASS invalid username-password pair or user is disabled.")
    return OK


@_command(b"HELLO", -1, "no_auth fast", "@fast @connection")
def _hello(connection: ClientConnection, args: tuple[bytes, ...]) -> Reply:
    protocol = connection.protocol
    rest = args
    if args:
        version = _parse_int(args[0])
        if version is None:
            return ErrorReply(b"ERR Protocol version is not an integer or out of range")
        if version not in (2, 3):
            return ErrorReply(b"NOPROTO unsupported protocol version")
        protocol, rest = version, args[1:]
    name = None
    while rest:
        option = rest[0].upper()
        if option == b"AUTH" and len(rest) >= 3:
            checked = _check_user(rest[1])
            if checked is not OK:
                return checked
            rest = rest[3:]
        elif option == b"SETNAME" and len(rest) >= 2:
            if not _valid_client_name(rest[1]):
                return _BAD_CLIENT_NAME
            name, rest = rest[1], rest[2:]
        else:
            return ErrorReply(b"ERR Syntax error in HELLO option '%b'" % rest[0][:128])
    connection.protocol = protocol
    if name is not None:
        connection.name = name
    return Map([
        (b"server", b"redis"), (b"version", REDIS_VERSION), (b"proto", protocol),
        (b"id", connection.id), (b"mode", b"cluster"), (b"role", b"master"),
        (b"modules", []),
    ])


# ---- cluster connection modes (the mode itself changes in execute: routing.mode_after) ---------


@_command(b"READONLY", 1, "loading stale fast", "@fast @connection")
def _readonly(connection: ClientConnection, args: tuple[bytes, ...]) -> Reply:
    return OK


@_command(b"READWRITE", 1, "loading stale fast", "@fast @connection")
def _readwrite(connection: ClientConnection, args: tuple[bytes, ...]) -> Reply:
    return OK


@_command(b"ASKING", 1, "fast", "@fast @connection")
def _asking(connection: ClientConnection, args: tuple[bytes, ...]) -> Reply:
    return OK


@_command(b"CLUSTER", -2, "", "@slow")
def _cluster(connection: ClientConnection, args: tuple[bytes, ...]) -> Reply:
    return arity_error(b"cluster")  # with a subcommand, execute routes it (routed_commands)


# ---- CLIENT -------------------------------------------------------------------------------------

_BAD_CLIENT_NAME = ErrorReply(
    b"ERR Client names cannot contain spaces, newlines or special characters.")


def _valid_client_name(name: bytes) -> bool:
    return all(33 <= byte <= 126 for byte in name)


@_command(b"CLIENT", -2, "sentinel", "@slow @connection")
def _client(connection: ClientConnection, args: tuple[bytes, ...]) -> Reply:
    subcommand = args[0].upper()
    handler = _CLIENT_SUBCOMMANDS.get(subcommand)
    if handler is None:
        return _unknown_subcommand(b"CLIENT", args[0])
    return handler(connection, args[1:])


def _client_id(connection: ClientConnection, args: tuple[bytes, ...]) -> Reply:
    return connection.id if not args else arity_error(b"client|id")


def _client_setname(connection: ClientConnection, args: tuple[bytes, ...]) -> Reply:
    if len(args) != 1:
        return arity_error(b"client|setname")
    if not _valid_client_name(args[0]):
        return _BAD_CLIENT_NAME
    connection.name = args[0]
    return OK


def _client_getname(connection: ClientConnection, args: tuple[bytes, ...]) -> Reply:
    if args:
        return arity_error(b"client|getname")
    return connection.name or None


def _client_setinfo(connection: ClientConnection, args: tuple[bytes, ...]) -> Reply:
    if len(args) != 2:
        return arity_error(b"client|setinfo")
    attribute, value = args[0].upper(), args[1]
    if not all(32 < byte < 127 for byte in value):
        return ErrorReply(b"ERR %b cannot contain spaces, newlines or special characters."
                          % attribute.lower())
    if attribute == b"LIB-NAME":
        connection.library_name = value
    elif attribute == b"LIB-VER":
        connection.library_version = value
    else:
        return ErrorReply(b"ERR Unrecognized option '%b'" % args[0][:128])
    return OK


def client_line(connection: ClientConnection) -> bytes:
    """One line of CLIENT LIST / CLIENT INFO, with Redis's field names."""
    now = time.monotonic()
    return (
        f"id={connection.id} addr={connection.address} laddr={connection.local_address} "
        f"fd=-1 name={connection.name.decode(errors='replace')} "
        f"age={int(now - connection.created)} idle={int(now - connection.last_active)} "
        f"flags=N db={connection.database} sub=0 psub=0 ssub=0 multi=-1 qbuf=0 "
        f"qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 "
        f"oll={connection.pending_replies()} omem=0 tot-mem=0 events=r "
        f"cmd={connection.last_command.decode(errors='replace')} user=default redir=-1 "
        f"resp={connection.protocol} "
        f"lib-name={connection.library_name.decode(errors='replace')} "
        f"lib-ver={connection.library_version.decode(errors='replace')}"
    ).encode()


def _client_info(connection: ClientConnection, args: tuple[bytes, ...]) -> Reply:
    if args:
        return arity_error(b"client|info")
    return VerbatimString(b"txt", client_line(connection) + b"\n")


def _client_list(connection: ClientConnection, args: tuple[bytes, ...]) -> Reply:
    connections = list(connection.server.connections.values())
    rest = args
    while rest:
        option = rest[0].upper()
        if option == b"TYPE" and len(rest) >= 2:
            kind = rest[1].lower()
            if kind not in (b"normal", b"master", b"replica", b"pubsub"):
                return ErrorReply(b"ERR Unknown client type '%b'" % rest[1][:128])
            if kind != b"normal":
                connections = []
            rest = rest[2:]
        elif option == b"ID" and len(rest) >= 2:
            wanted = set()
            for text in rest[1:]:
                number = _parse_int(text)
                if number is None or number <= 0:
                    return ErrorReply(b"ERR Invalid client ID")
                wanted.add(number)
            connections = [c for c in connections if c.id in wanted]
            rest = ()
        else:
            return SYNTAX_ERROR
    lines = b"".join(client_line(c) + b"\n" for c in sorted(connections, key=lambda c: c.id))
    return VerbatimString(b"txt", lines)


def _client_kill(connection: ClientConnection, args: tuple[bytes, ...]) -> Reply:
    connections = list(connection.server.connections.values())
    if len(args) == 1:  # the old form: CLIENT KILL addr:port
        victims = [c for c in connections if c.address.encode() == args[0]]
        if not victims:
            return ErrorReply(b"ERR No such client")
        _kill(connection, victims)
        return OK
    if not args or len(args) % 2:
        return SYNTAX_ERROR
    skip_me = True
    for index in range(0, len(args), 2):
        option, value = args[index].upper(), args[index + 1]
        if option == b"ID":
            number = _parse_int(value)
            if number is None:
                return ErrorReply(b"ERR client-id should be greater than 0")
            connections = [c for c in connections if c.id == number]
        elif option == b"ADDR":
            connections = [c for c in connections if c.address.encode() == value]
        elif option == b"LADDR":
            connections = [c for c in connections if c.local_address.encode() == value]
        elif option == b"USER":
            connections = connections if value == b"default" else []
        elif option == b"SKIPME":
            if value.lower() not in (b"yes", b"no"):
                return SYNTAX_ERROR
            skip_me = value.lower() == b"yes"
        elif option == b"TYPE":
            connections = connections if value.lower() == b"normal" else []
        else:
            return SYNTAX_ERROR
    if skip_me:
        connections = [c for c in connections if c is not connection]
    _kill(connection, connections)
    return len(connections)


def _kill(killer: ClientConnection, victims: list[ClientConnection]) -> None:
    for victim in victims:
        if victim is killer:
            victim.close_after_replies()  # Redis answers the caller first, then closes it
        else:
            victim.close()


def _client_no_flag(connection: ClientConnection, args: tuple[bytes, ...]) -> Reply:
    if len(args) != 1 or args[0].upper() not in (b"ON", b"OFF"):
        return SYNTAX_ERROR
    return OK


def _client_help(connection: ClientConnection, args: tuple[bytes, ...]) -> Reply:
    return [SimpleString(line) for line in (
        b"CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        b"ID", b"    Return the ID of the current connection.",
        b"INFO", b"    Return information about the current client connection.",
        b"GETNAME", b"    Return the name of the current connection.",
        b"SETNAME <connection-name>", b"    Assign the name <connection-name> to the current "
        b"connection.",
        b"SETINFO <option> <value>", b"    Set client meta attr (LIB-NAME, LIB-VER).",
        b"LIST [TYPE <type>] [ID <id> [<id> ...]]", b"    Return information about client "
        b"connections.",
        b"KILL <ip:port> | KILL <option> <value> [<option> <value> [...]]",
        b"    Kill connections (options: ID, ADDR, LADDR, USER, SKIPME, TYPE).",
        b"HELP", b"    Print this help.",
    )]


_CLIENT_SUBCOMMANDS: dict[bytes, Handler] = {
    b"ID": _client_id, b"SETNAME": _client_setname, b"GETNAME": _client_getname,
    b"SETINFO": _client_setinfo, b"INFO": _client_info, b"LIST": _client_list,
    b"KILL": _client_kill, b"NO-EVICT": _client_no_flag, b"NO-TOUCH": _client_no_flag,
    b"HELP": _client_help,
}


# ---- COMMAND -------------------------------------------------------------------------------------


def command_info(spec: CommandSpec) -> Reply:
    """One command as COMMAND INFO describes it (Redis 7 layout)."""
    return [spec.name.lower(), spec.arity, [SimpleString(f) for f in spec.flags], spec.first_key,
            spec.last_key, spec.key_step, [SimpleString(c) for c in spec.categories], [], [], []]


def _command_docs(spec: CommandSpec) -> Reply:
    group = b"connection" if spec.name.upper() in _SERVER_COMMANDS else (
        b"string" if b"@string" in spec.categories else b"generic")
    return Map([(b"summary", b"See the Redis documentation of %b." % spec.name.upper()),
                (b"since", b"1.0.0"), (b"group", group),
                (b"complexity", b"O(1)" if b"fast" in spec.flags else b"O(N)")])


@_command(b"COMMAND", -1, "loading stale", "@slow @connection")
def _command_command(connection: ClientConnection, args: tuple[bytes, ...]) -> Reply:
    if not args:
        return [command_info(spec) for spec in all_specs()]
    subcommand = args[0].upper()
    if subcommand == b"COUNT":
        return len(all_specs()) if len(args) == 1 else arity_error(b"command|count")
    if subcommand == b"INFO":
        if len(args) == 1:
            return [command_info(spec) for spec in all_specs()]
        return [command_info(s) if (s := _find_spec(n)) is not None else None for n in args[1:]]
    if subcommand == b"DOCS":
        specs = all_specs() if len(args) == 1 else [
            s for n in args[1:] if (s := _find_spec(n)) is not None]
        return Map([(s.name.lower(), _command_docs(s)) for s in specs])
    if subcommand == b"LIST":
        return [spec.name.lower() for spec in all_specs()]
    if subcommand == b"GETKEYS":
        return _command_getkeys(args[1:])
    if subcommand == b"HELP":
        return [SimpleString(b"COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands "
                             b"are: COUNT, INFO, DOCS, LIST, GETKEYS, HELP")]
    return _unknown_subcommand(b"COMMAND", args[0])


def _command_getkeys(argv: tuple[bytes, ...]) -> Reply:
    if not argv:
        return arity_error(b"command|getkeys")
    spec = _find_spec(argv[0])
    if spec is None:
        return ErrorReply(b"ERR Invalid command specified")
    if not spec.arity_ok(len(argv) - 1):
        return ErrorReply(b"ERR Invalid number of arguments specified for command")
    keys = kv_commands.keys_of(argv[0].upper(), argv[1:]) \
        if spec.first_key or spec.numkeys_index else []
    if not keys:
        return ErrorReply(b"ERR The command has no key arguments")
    return list(keys)


# ---- server --------------------------------------------------------------------------------------


@_command(b"TIME", 1, "loading stale fast", "@fast")
def _time(connection: ClientConnection, args: tuple[bytes, ...]) -> Reply:
    now_us = time.time_ns() // 1000
    return [str(now_us // 1_000_000).encode(), str(now_us % 1_000_000).encode()]


@_command(b"INFO", -1, "loading stale", "@slow @dangerous")
def _info(connection: ClientConnection, args: tuple[bytes, ...]) -> Reply:
    return VerbatimString(b"txt", info.render(connection.server.node, connection.server,
                                              [a.lower() for a in args]))


@_command(b"CONFIG", -2, "admin noscript loading stale", "@admin @slow @dangerous")
def _config(connection: ClientConnection, args: tuple[bytes, ...]) -> Reply:
    subcommand = args[0].upper()
    if subcommand == b"GET":
        if len(args) < 2:
            return arity_error(b"config|get")
        return config_command.config_get(connection.server, args[1:])
    if subcommand == b"SET":
        return config_command.config_set(connection.server, args[1:])
    if subcommand == b"RESETSTAT":
        if len(args) != 1:
            return arity_error(b"config|resetstat")
        connection.server.stats.reset()
        return OK
    if subcommand == b"REWRITE":
        return ErrorReply(b"ERR CONFIG REWRITE is not supported: edit the node's TOML file")
    if subcommand == b"HELP":
        return [SimpleString(line) for line in (
            b"CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            b"GET <pattern>", b"    Return parameters matching the glob-like <pattern> and "
            b"their values.",
            b"SET <directive> <value>", b"    Set the configuration <directive> to <value> "
            b"(maxclients, timeout and tcp-keepalive change; see docs/server.md).",
            b"RESETSTAT", b"    Reset statistics reported by the INFO command.",
            b"HELP", b"    Print this help.",
        )]
    return _unknown_subcommand(b"CONFIG", args[0])


def process_id() -> int:
    return os.getpid()
