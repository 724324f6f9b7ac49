"""The `quorumkv` command: run one node (`server`) or a local cluster of real processes (`up`).

Theory of operation. `quorumkv server` turns flags into a settings layer (config.py merges it
with the TOML file and the environment) and runs one node until SIGTERM or SIGINT.

`quorumkv up --nodes N` is the quickest way to a working cluster: it starts N `server`
processes on this machine (client ports 7001.., peer ports 17001.., data under ./data/nodeI),
prefixes every log line of node I with `[node I]`, prints the redis-cli command to connect once
every node listens, and on Ctrl-C (or SIGTERM) stops them all with SIGTERM, waiting for each to
shut down gracefully (SIGKILL only if one has not stopped in time). Running it again restarts
the same cluster from its data directories.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import click

UP_STOP_TIMEOUT_S = 10.0
"""How long `up` waits for its nodes to stop after SIGTERM before it kills them."""

UP_START_TIMEOUT_S = 30.0
"""How long `up` waits for every node to listen before it reports a failed start."""


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


# ---- up: a local cluster of real processes -------------------------------------------------


def local_peers(nodes: int, host: str, client_port: int, peer_port: int) -> str:
    return ",".join(f"{i}={host}:{peer_port + i - 1}/{host}:{client_port + i - 1}"
                    for i in range(1, nodes + 1))


def node_command(node_id: int, peers: str, data_dir: Path, extra: tuple[str, ...]) -> list[str]:
    return [sys.executable, "-m", "quorumkv.cli", "server", "--node-id", str(node_id),
            "--peers", peers, "--data-dir", str(data_dir / f"node{node_id}"), *extra]


async def _relay(prefix: str, stream: asyncio.StreamReader) -> None:
    while line := await stream.readline():
        click.echo(f"{prefix} {line.decode(errors='replace').rstrip()}")


def _listening(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
        return True
    return False


async def _run_cluster(nodes: int, host: str, client_port: int, peer_port: int,
                       data_dir: Path, extra: tuple[str, ...]) -> int:
    peers = local_peers(nodes, host, client_port, peer_port)
    processes: dict[int, asyncio.subprocess.Process] = {}
    relays = []
    for node_id in range(1, nodes + 1):
        process = await asyncio.create_subprocess_exec(
            *node_command(node_id, peers, data_dir, extra),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        processes[node_id] = process
        if process.stdout is not None:
            relays.append(asyncio.ensure_future(_relay(f"[node {node_id}]", process.stdout)))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stop.set)
    code = await _wait_listening(processes, host, client_port, stop)
    if code == 0:
        click.echo(f"quorumkv: {nodes} nodes up; connect with:  redis-cli -p {client_port}"
                   f"   (any of ports {client_port}..{client_port + nodes - 1}); "
                   "Ctrl-C stops them all")
        waits = [asyncio.ensure_future(p.wait()) for p in processes.values()]
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait([stopper, *waits], return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
    await _stop_all(processes)
    await asyncio.gather(*relays, return_exceptions=True)
    return code


async def _wait_listening(processes: dict[int, asyncio.subprocess.Process], host: str,
                          client_port: int, stop: asyncio.Event) -> int:
    deadline = asyncio.get_running_loop().time() + UP_START_TIMEOUT_S
    waiting = set(processes)
    while waiting:
        for node_id in list(waiting):
            if processes[node_id].returncode is not None:
                click.echo(f"quorumkv: node {node_id} exited with code "
                           f"{processes[node_id].returncode}", err=True)
                return 1
            if _listening(host, client_port + node_id - 1):
                waiting.discard(node_id)
        if stop.is_set():
            return 0
        if asyncio.get_running_loop().time() > deadline:
            click.echo(f"quorumkv: nodes {sorted(waiting)} did not start listening", err=True)
            return 1
        await asyncio.sleep(0.1)
    return 0


async def _stop_all(processes: dict[int, asyncio.subprocess.Process]) -> None:
    for process in processes.values():
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
    for node_id, process in processes.items():
        try:
            await asyncio.wait_for(process.wait(), UP_STOP_TIMEOUT_S)
        except TimeoutError:
            click.echo(f"quorumkv: node {node_id} did not stop in time; killing it", err=True)
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


@main.command()
@click.option("--nodes", type=click.IntRange(1, 99), default=3, show_default=True)
@click.option("--data-dir", type=click.Path(file_okay=False), default="data",
              show_default=True, help="Each node's data goes under DATA_DIR/nodeI.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--client-port", type=int, default=7001, show_default=True,
              help="Client port of node 1 (node I listens on CLIENT_PORT + I - 1).")
@click.option("--peer-port", type=int, default=17001, show_default=True,
              help="Peer port of node 1 (node I listens on PEER_PORT + I - 1).")
@click.argument("server_options", nargs=-1, type=click.UNPROCESSED)
def up(nodes: int, data_dir: str, host: str, client_port: int, peer_port: int,
       server_options: tuple[str, ...]) -> None:
    """Start a local cluster of NODES real processes; Ctrl-C stops them all.

    Options after `--` go to every `quorumkv server`, e.g. `quorumkv up -- --tick-ms 20`."""
    code = asyncio.run(_run_cluster(nodes, host, client_port, peer_port, Path(data_dir),
                                    server_options))
    sys.exit(code)


@main.command()
@click.option("--address", default="127.0.0.1:7001", show_default=True,
              help="Client address (host:port) of any node of the cluster.")
def status(address: str) -> None:
    """Show the cluster: nodes, shards, leaders, terms and applied indexes (INFO quorumkv of
    every node)."""
    from rich.console import Console

    from quorumkv.server.status import read_cluster, render

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
