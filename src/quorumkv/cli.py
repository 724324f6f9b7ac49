"""The `quorumkv` command: run one node (`server`) or a local cluster of real processes (`up`).

Theory of operation. `quorumkv server` turns flags into a settings layer (config.py merges it
with the TOML file and the environment) and runs one node until SIGTERM or SIGINT.

`quorumkv up --nodes N` is the quickest way to a working cluster: it starts N `server`
processes on this machine (client ports 7001.., peer ports 17001.., data and log under
./data/nodeI) and supervises them (server/supervisor.py): it prints which node is which PID,
prints the redis-cli command once every node serves, restarts a node that dies, and on Ctrl-C
(or SIGTERM) stops them all gracefully. Running it again restarts the same cluster from its
data directories.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import Any

import click


@click.group()
@click.version_option(package_name="quorumkv")
def main() -> None:
    """quorumkv: a replicated key-value database that speaks the Redis protocol."""


@main.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="TOML file of settings (flags override it, and the environment).")
@click.option("--node-id", type=int, help="This node's id (positive; first start only).")
@click.option("--cluster-id", help="Name of the cluster; nodes of other clusters are refused.")
@click.option("--listen", help="Client (RESP) address host:port [default: own peers entry].")
@click.option("--peer-listen", help="Peer address host:port [default: own peers entry].")
@click.option("--peers", help="Initial cluster: ID=PEER_ADDR[/CLIENT_ADDR],... (first start).")
@click.option("--data-dir", help="Data directory [default: ./data].")
@click.option("--tick-ms", type=int, help="Milliseconds per Raft tick [default: 50].")
@click.option("--election-timeout-ticks", type=int, help="Election timeout [default: 10].")
@click.option("--heartbeat-interval-ticks", type=int, help="Heartbeat interval [default: 1].")
@click.option("--read-only", type=click.Choice(["safe", "lease"]),
              help="Linearizable reads by ReadIndex (safe) or leader lease [default: safe].")
@click.option("--request-timeout-ms", type=int, help="Answer -UNKNOWN/-TRYAGAIN after this.")
@click.option("--max-clients", "client_connections_max", type=int,
              help="Client connections accepted at once [default: 10000].")
@click.option("--sync/--no-sync", default=None,
              help="fsync every group commit (default) or never (experiments only).")
@click.option("--ready-thread/--no-ready-thread", default=None,
              help="Run Ready cycles (and their fsync) on a worker thread [default: on].")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]))
@click.option("--shards", type=int,
              help="Data shards at bootstrap [default: 4 per node] (first start only).")
@click.option("--replication-factor", type=int,
              help="Replicas of each shard at bootstrap [default: 3, at most the nodes].")
@click.option("--client-routing", type=click.Choice(["auto", "redirect"]),
              help="auto: forward plain clients' commands, MOVED for cluster clients; "
                   "redirect: MOVED for every client [default: auto].")
@click.option("--unsafe-testing-stale-follower-reads", is_flag=True, default=None, hidden=True,
              help="NEVER FOR PRODUCTION: followers answer reads from local state (verify tests).")
@click.option("--unsafe-testing-ack-on-receipt", is_flag=True, default=None, hidden=True,
              help="NEVER FOR PRODUCTION: SET answered OK before it is replicated (verify tests).")
def server(**flags: Any) -> None:
    """Run one quorumkv node until SIGTERM or SIGINT."""
    from quorumkv.errors import QuorumKVError
    from quorumkv.server.config import ConfigError, load_config
    from quorumkv.server.node import run

    try:
        config = load_config(flags, os.environ)
    except ConfigError as error:
        raise click.UsageError(str(error)) from None
    logging.basicConfig(level=config.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    unsafe = [name for name in ("unsafe_testing_stale_follower_reads",
                                "unsafe_testing_ack_on_receipt") if getattr(config, name)]
    if unsafe:
        logging.getLogger("quorumkv").warning(
            "UNSAFE TESTING SETTINGS ON: %s; this node breaks its guarantees on purpose "
            "(server/unsafe_testing.py); never use it for data", ", ".join(unsafe))
    try:
        code = run(config)
    except ConfigError as error:
        click.echo(f"error: {error}", err=True)
        code = 2
    except QuorumKVError as error:  # storage refused to open: corrupt, full, wrong format
        click.echo(f"error: {error}", err=True)
        code = 1
    except OSError as error:
        click.echo(f"error: {error}", err=True)
        code = 1
    sys.exit(code)


# ---- up: a local cluster of real processes, supervised (server/supervisor.py) ---------------


def _say(text: str, error: bool) -> None:
    click.echo(text, err=error)


@main.command()
@click.option("--nodes", type=click.IntRange(1, 99), default=3, show_default=True)
@click.option("--data-dir", type=click.Path(file_okay=False), default="data",
              show_default=True,
              help="Node I keeps its data and its log (node.log) in DATA_DIR/nodeI.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--client-port", type=int, default=7001, show_default=True,
              help="Client port of node 1 (node I listens on CLIENT_PORT + I - 1).")
@click.option("--peer-port", type=int, default=17001, show_default=True,
              help="Peer port of node 1 (node I listens on PEER_PORT + I - 1).")
@click.option("--follow-logs", is_flag=True,
              help="Also print every line of every node's log, prefixed [node I].")
@click.argument("server_options", nargs=-1, type=click.UNPROCESSED)
def up(nodes: int, data_dir: str, host: str, client_port: int, peer_port: int,
       follow_logs: bool, server_options: tuple[str, ...]) -> None:
    """Start a local cluster of NODES real processes and keep it running; Ctrl-C stops it.

    Prints each node's PID and log file, then "connect with" once every node serves. A node
    that dies is reported and restarted with a bounded back-off (one that keeps dying right
    after start is given up on, with the end of its log); one stopped on purpose (SIGTERM,
    exit 0) stays stopped. Ctrl-C or SIGTERM stops every node gracefully; the exit status is 0
    if every node stopped cleanly.

    Options after `--` go to every `quorumkv server`, e.g. `quorumkv up -- --tick-ms 20`."""
    from quorumkv.server.supervisor import Supervisor, UpSettings

    settings = UpSettings(nodes, host, client_port, peer_port, Path(data_dir), server_options,
                          follow_logs)

    async def supervise() -> int:
        return await Supervisor(settings, _say).run()

    sys.exit(asyncio.run(supervise()))


@main.command()
@click.option("-h", "--host", default="127.0.0.1", show_default=True,
              help="Host of any node of the cluster.")
@click.option("-p", "--port", type=int, default=7001, show_default=True,
              help="Client port of that node.")
@click.option("--address", help="host:port of any node (instead of --host and --port).")
def status(host: str, port: int, address: str | None) -> None:
    """Show the cluster: nodes (with their process ids), shards, leaders, terms and applied
    indexes (INFO server and quorumkv of every node)."""
    from rich.console import Console

    from quorumkv.server.status import read_cluster, render

    address = address or f"{host}:{port}"
    try:
        report = read_cluster(address)
    except (OSError, ValueError) as error:
        click.echo(f"error: cannot read the cluster from {address}: {error}", err=True)
        sys.exit(1)
    render(report, Console())


# `quorumkv verify` (Jepsen-style fault injection) lives with its package.
from quorumkv.verify.command import verify as _verify  # noqa: E402

main.add_command(_verify)


if __name__ == "__main__":
    main()
