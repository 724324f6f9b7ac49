"""Settings merge file < environment < flags, and bad values are refused with a clear reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from quorumkv.server.config import (
    Address,
    ConfigError,
    PeerEntry,
    format_peers,
    load_config,
    parse_peers,
)


def test_defaults_replace_a_killed_leader_in_about_a_second() -> None:
    """With no settings at all, the election timeout is 500 ms of ticks and heartbeats beat it."""
    config = load_config({}, {})
    assert config.tick_ms * config.election_timeout_ticks == 500
    assert config.heartbeat_interval_ticks < config.election_timeout_ticks
    assert config.sync is True


def test_flags_override_environment_which_overrides_the_file(tmp_path: Path) -> None:
    """A setting given in all three layers takes the flag's value; env beats the file."""
    path = tmp_path / "node.toml"
    path.write_text('node_id = 1\ntick_ms = 10\ndata_dir = "/from/file"\n'
                    'cluster_id = "file"\n')
    environment = {"QUORUMKV_TICK_MS": "20", "QUORUMKV_CLUSTER_ID": "env"}
    config = load_config({"config_file": str(path), "tick_ms": 30}, environment)
    assert config.tick_ms == 30
    assert config.cluster_id == "env"
    assert config.data_dir == Path("/from/file")
    assert config.node_id == 1


def test_peers_parse_with_and_without_client_addresses() -> None:
    """`ID=peer/client` entries round-trip; the client address is optional."""
    peers = parse_peers("1=127.0.0.1:17001/127.0.0.1:7001, 2=10.0.0.2:17002")
    assert peers[1] == PeerEntry(1, Address("127.0.0.1", 17001), Address("127.0.0.1", 7001))
    assert peers[2].client_address is None
    assert parse_peers(format_peers(peers)) == peers


def test_listen_addresses_default_to_this_nodes_peers_entry() -> None:
    """A node finds its own client and peer addresses in the initial cluster list."""
    config = load_config({"node_id": 2, "peers": "1=h:1/h:2,2=h:3/h:4"}, {})
    assert config.peer_address() == Address("h", 3)
    assert config.client_address() == Address("h", 4)


def test_toml_peers_table_is_accepted(tmp_path: Path) -> None:
    """A TOML table of peers reads like the flag."""
    path = tmp_path / "node.toml"
    path.write_text('node_id = 1\n[peers]\n1 = {peer = "a:1", client = "a:2"}\n2 = "b:1"\n')
    config = load_config({"config_file": str(path)}, {})
    assert config.peers[1].client_address == Address("a", 2)
    assert config.peers[2].peer_address == Address("b", 1)


@pytest.mark.parametrize("flags, fragment", [
    ({"tick_ms": "soon"}, "tick_ms"),
    ({"tick_ms": 0}, "at least 1"),
    ({"listen": "localhost"}, "host:port"),
    ({"peers": "x=1"}, "ID=PEER_ADDRESS"),
    ({"peers": "1=a:1,1=a:2"}, "listed twice"),
    ({"node_id": 3, "peers": "1=a:1"}, "not among the peers"),
    ({"election_timeout_ticks": 2, "heartbeat_interval_ticks": 2}, "must exceed"),
    ({"read_only": "maybe"}, "safe, lease"),
    ({"no_such_setting": 1}, "unknown setting"),
])
def test_bad_settings_are_refused_naming_the_setting(flags: dict[str, object],
                                                     fragment: str) -> None:
    """Each malformed or inconsistent value raises ConfigError that says what is wrong."""
    with pytest.raises(ConfigError, match=fragment):
        load_config(flags, {})


def test_unknown_key_in_file_is_refused(tmp_path: Path) -> None:
    """A typo in the TOML file is an error, not silently ignored."""
    path = tmp_path / "node.toml"
    path.write_text("tick_msec = 5\n")
    with pytest.raises(ConfigError, match="unknown setting 'tick_msec'"):
        load_config({"config_file": str(path)}, {})
