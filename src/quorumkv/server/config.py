"""A node's settings, from a TOML file, the environment and flags, in that order of precedence.

Theory of operation. Every setting has a default here; a TOML file (`--config`) overrides the
defaults, `QUORUMKV_<NAME>` environment variables override the file, and command-line flags
override the environment. `load_config` merges the three layers into one `ServerConfig`,
converting and checking each value; a bad value raises `ConfigError` naming the setting, the
layer it came from and what is expected.

The initial cluster (`peers`) names every node by id with its peer address and, optionally,
its client address: `1=127.0.0.1:17001/127.0.0.1:7001,2=...`. It is needed only on the first
start: the node then writes the membership into its data directory (see membership.py), and a
restart reads it from there.

Defaults are chosen for a LAN: a tick of 50 ms, an election timeout of 10 ticks (500 ms, drawn
in [500 ms, 1 s) by each follower) and a heartbeat every tick, so that a killed leader is
replaced and writes flow again in about a second.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from quorumkv import limits
from quorumkv.errors import QuorumKVError

ENVIRONMENT_PREFIX = "QUORUMKV_"
DEFAULT_CLIENT_PORT = 7001
DEFAULT_PEER_PORT = 17001


class ConfigError(QuorumKVError):
    """A setting is missing, malformed or inconsistent; the node does not start."""


@dataclass(frozen=True, slots=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class PeerEntry:
    """One member of the initial cluster: where its peers and its clients reach it."""

    node_id: int
    peer_address: Address
    client_address: Address | None = None


@dataclass(frozen=True)
class ServerConfig:
    node_id: int = 0
    cluster_id: str = "quorumkv"
    listen: Address | None = None  # client (RESP) address; default: this node's peers entry
    peer_listen: Address | None = None  # peer address; default: this node's peers entry
    peers: dict[int, PeerEntry] = field(default_factory=dict)
    data_dir: Path = Path("data")
    tick_ms: int = 50
    election_timeout_ticks: int = limits.election_timeout_ticks
    heartbeat_interval_ticks: int = limits.heartbeat_interval_ticks
    read_only: str = "safe"  # "safe" (ReadIndex) or "lease" (leader lease; see docs/server.md)
    request_timeout_ms: int = limits.request_timeout_ms
    client_connections_max: int = limits.client_connections_max
    shutdown_transfer_timeout_ms: int = limits.shutdown_transfer_timeout_ms
    sync: bool = True  # fsync every group-commit batch; off only for experiments
    ready_thread: bool = True  # Ready cycles (and their fsync) on a worker thread
    log_level: str = "info"
    shards: int = 0  # data shards at bootstrap; 0: limits.shards_per_node_default per node
    replication_factor: int = 0  # replicas per shard at bootstrap; 0: the default, capped
    client_routing: str = "auto"  # "auto" (forward for plain clients) or "redirect" (MOVED)
    # Deliberately broken behaviours for the verify harness's tests; NEVER FOR PRODUCTION
    # (server/unsafe_testing.py says what each breaks).
    unsafe_testing_stale_follower_reads: bool = False
    unsafe_testing_ack_on_receipt: bool = False
    config_file: Path | None = None
    given: frozenset[str] = frozenset()  # settings set by a layer (not defaults)

    def client_address(self) -> Address:
        if self.listen is not None:
            return self.listen
        entry = self.peers.get(self.node_id)
        if entry is not None and entry.client_address is not None:
            return entry.client_address
        return Address("127.0.0.1", DEFAULT_CLIENT_PORT)

    def peer_address(self) -> Address:
        if self.peer_listen is not None:
            return self.peer_listen
        entry = self.peers.get(self.node_id)
        if entry is not None:
            return entry.peer_address
        return Address("127.0.0.1", DEFAULT_PEER_PORT)


# ---- parsing of single values ----------------------------------------------------------------


def parse_address(text: str, setting: str) -> Address:
    """`host:port` (or `[v6]:port`, or `:port` for all interfaces)."""
    host, separator, port = text.strip().rpartition(":")
    if not separator or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{setting}: {text!r} is not an address; expected host:port, "
                          "for example 127.0.0.1:7001")
    host = host.strip("[]") or "0.0.0.0"
    return Address(host, int(port))


def parse_peers(text: str, setting: str = "peers") -> dict[int, PeerEntry]:
    """`1=peerhost:port/clienthost:port,2=...` (the client address is optional)."""
    peers: dict[int, PeerEntry] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        node, equals, addresses = item.partition("=")
        if not equals or not node.strip().isdigit() or int(node) <= 0:
            raise ConfigError(f"{setting}: {item!r} is not ID=PEER_ADDRESS[/CLIENT_ADDRESS] "
                              "with a positive node id, e.g. 1=127.0.0.1:17001/127.0.0.1:7001")
        node_id = int(node)
        if node_id in peers:
            raise ConfigError(f"{setting}: node {node_id} is listed twice")
        peer, _, client = addresses.partition("/")
        peers[node_id] = PeerEntry(node_id, parse_address(peer, setting),
                                   parse_address(client, setting) if client else None)
    return peers


def format_peers(peers: Mapping[int, PeerEntry]) -> str:
    """The inverse of parse_peers."""
    parts = []
    for node_id, entry in sorted(peers.items()):
        client = f"/{entry.client_address}" if entry.client_address else ""
        parts.append(f"{node_id}={entry.peer_address}{client}")
    return ",".join(parts)


def _peers_from_toml(value: Any, setting: str) -> dict[int, PeerEntry]:
    """A TOML `peers` is the flag's string, or a table {"1" = {peer = "...", client = "..."}}."""
    if isinstance(value, str):
        return parse_peers(value, setting)
    if not isinstance(value, dict):
        raise ConfigError(f"{setting}: expected a string or a table of node ids")
    text = []
    for node, entry in value.items():
        if isinstance(entry, str):
            text.append(f"{node}={entry}")
        elif isinstance(entry, dict) and "peer" in entry:
            client = f"/{entry['client']}" if entry.get("client") else ""
            text.append(f"{node}={entry['peer']}{client}")
        else:
            raise ConfigError(f"{setting}.{node}: expected \"host:port\" or "
                              "{peer = \"host:port\", client = \"host:port\"}")
    return parse_peers(",".join(text), setting)


def _as_int(value: Any, setting: str, minimum: int) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{setting}: expected an integer, got {value!r}")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{setting}: expected an integer, got {value!r}") from None
    if number < minimum:
        raise ConfigError(f"{setting}: must be at least {minimum}, got {number}")
    return number


def _as_bool(value: Any, setting: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{setting}: expected true or false, got {value!r}")


def _as_choice(value: Any, setting: str, choices: tuple[str, ...]) -> str:
    text = str(value).strip().lower()
    if text not in choices:
        raise ConfigError(f"{setting}: expected one of {', '.join(choices)}, got {value!r}")
    return text


_INTEGER_MINIMUMS = {
    "node_id": 1, "tick_ms": 1, "election_timeout_ticks": 2, "heartbeat_interval_ticks": 1,
    "request_timeout_ms": 1, "client_connections_max": 1, "shutdown_transfer_timeout_ms": 0,
    "shards": 0, "replication_factor": 0,
}


def _convert(name: str, value: Any, layer: str) -> Any:
    setting = f"{name} (from {layer})"
    if name in _INTEGER_MINIMUMS:
        return _as_int(value, setting, _INTEGER_MINIMUMS[name])
    if name in ("listen", "peer_listen"):
        return parse_address(str(value), setting)
    if name == "peers":
        return _peers_from_toml(value, setting)
    if name in ("data_dir", "config_file"):
        return Path(str(value)).expanduser()
    if name in ("sync", "ready_thread") or name.startswith("unsafe_testing_"):
        return _as_bool(value, setting)
    if name == "read_only":
        return _as_choice(value, setting, ("safe", "lease"))
    if name == "client_routing":
        return _as_choice(value, setting, ("auto", "redirect"))
    if name == "log_level":
        return _as_choice(value, setting, ("debug", "info", "warning", "error"))
    return str(value)


SETTINGS = tuple(f.name for f in fields(ServerConfig) if f.name not in ("config_file", "given"))


# ---- the layers ----------------------------------------------------------------------------


def _file_layer(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path} is not valid TOML: {error}") from None
    values = {}
    for key, value in document.items():
        name = key.replace("-", "_")
        if name not in SETTINGS:
            raise ConfigError(f"config file {path}: unknown setting {key!r}; known settings: "
                              f"{', '.join(SETTINGS)}")
        values[name] = value
    return values


def _environment_layer(environment: Mapping[str, str]) -> dict[str, Any]:
    values = {}
    for name in SETTINGS:
        text = environment.get(ENVIRONMENT_PREFIX + name.upper())
        if text is not None and text != "":
            values[name] = text
    return values


def load_config(flags: Mapping[str, Any], environment: Mapping[str, str]) -> ServerConfig:
    """Merge defaults < file < environment < flags (flags whose value is None are unset).

    Raises ConfigError for an unknown, malformed or inconsistent setting."""
    given_flags = {k: v for k, v in flags.items() if v is not None}
    config_path = given_flags.get("config_file") or environment.get(
        ENVIRONMENT_PREFIX + "CONFIG")
    layers: list[tuple[str, dict[str, Any]]] = []
    if config_path:
        layers.append((f"config file {config_path}", _file_layer(Path(str(config_path)))))
    layers.append(("environment", _environment_layer(environment)))
    layers.append(("flags", {k: v for k, v in given_flags.items() if k != "config_file"}))
    values: dict[str, Any] = {}
    for layer, settings in layers:
        for name, value in settings.items():
            if name not in SETTINGS:
                raise ConfigError(f"unknown setting {name!r} (from {layer})")
            values[name] = _convert(name, value, layer)
    config = replace(ServerConfig(), **values, given=frozenset(values))
    if config_path:
        config = replace(config, config_file=Path(str(config_path)))
    check_config(config)
    return config


def check_config(config: ServerConfig) -> None:
    """Raise ConfigError for settings that are well-formed alone but wrong together."""
    if config.election_timeout_ticks <= config.heartbeat_interval_ticks:
        raise ConfigError(
            f"election_timeout_ticks ({config.election_timeout_ticks}) must exceed "
            f"heartbeat_interval_ticks ({config.heartbeat_interval_ticks}), or followers "
            "would campaign against a healthy leader")
    if config.peers and config.node_id and config.node_id not in config.peers:
        raise ConfigError(f"node_id {config.node_id} is not among the peers "
                          f"({format_peers(config.peers)}); list this node too")
