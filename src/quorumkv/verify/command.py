"""The `quorumkv verify` command: options in, one run (or the matrix) out, verdict as exit status.

Theory of operation. The command turns its flags into `RunOptions` and calls `run_verify`
(or `run_matrix` with `--matrix`); it prints where the run went and its verdicts. Exit status:
0 every verdict valid, 1 one invalid, 2 one unknown, 3 the run could not be made (no root for
namespaces, a node that would not start: the message says what to do). Options after `--` go
to every `quorumkv server`, e.g. the `--unsafe-testing-*` flags that break the server on
purpose to show that the checkers catch it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

EXIT_NOT_RUN = 3


@click.command(context_settings={"show_default": True})
@click.option("--workload", type=click.Choice(["register", "set", "counter"]),
              default="register", help="What the clients do (docs/verify.md).")
@click.option("--nemesis", default="partition",
              help="Faults, comma-separated, taking turns: partition, kill, pause, link, "
                   "handover; 'none' for no faults.")
@click.option("--nodes", type=int, default=5, help="Nodes in the cluster.")
@click.option("--duration", type=float, default=60.0, help="Seconds of workload under faults.")
@click.option("--clients", type=int, default=10, help="Client threads (one connection each).")
@click.option("--rate", type=float, default=100.0, help="Operations per second, all clients.")
@click.option("--fault-seconds", type=float, default=5.0, help="Length of each fault window.")
@click.option("--quiet-seconds", type=float, default=5.0, help="Healthy time between faults.")
@click.option("--seed", type=int, help="Seed of every random choice [default: random].")
@click.option("--loopback", is_flag=True,
              help="No namespaces (no root needed): nodes on 127.0.0.1, process faults only.")
@click.option("--output", type=click.Path(file_okay=False), default="verify-runs",
              help="Each run writes OUTPUT/<timestamp>/.")
@click.option("--keep-data", is_flag=True, help="Keep the nodes' data directories.")
@click.option("--matrix", is_flag=True,
              help="Run every fault kind with the register and set workloads (make verify).")
@click.argument("server_options", nargs=-1, type=click.UNPROCESSED)
def verify(workload: str, nemesis: str, nodes: int, duration: float, clients: int, rate: float,
           fault_seconds: float, quiet_seconds: float, seed: int | None, loopback: bool,
           output: str, keep_data: bool, matrix: bool, server_options: tuple[str, ...]) -> None:
    """Jepsen-style test: a real cluster under faults, every operation's history checked.

    Needs root for network namespaces (else use --loopback). Writes history.jsonl,
    faults.jsonl, nodes/*.log, results.json and plot.png to the run directory; exit status 0
    only if every checker passed."""
    from quorumkv.errors import VerifyError, VerifyUnavailable
    from quorumkv.verify.matrix import run_matrix
    from quorumkv.verify.run import RunOptions, run_verify

    nemeses = tuple(n.strip() for n in nemesis.split(",") if n.strip() and n.strip() != "none")
    options = RunOptions(workload=workload, nemeses=nemeses, nodes=nodes, duration_s=duration,
                         clients=clients, rate=rate, fault_s=fault_seconds,
                         quiet_s=quiet_seconds, seed=seed, loopback=loopback,
                         output=Path(output), server_arguments=server_options,
                         keep_data=keep_data)
    try:
        if matrix:
            sys.exit(run_matrix(options, say=click.echo))
        result = run_verify(options, say=click.echo)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    except VerifyUnavailable as error:
        click.echo(f"quorumkv verify: {error}", err=True)
        sys.exit(EXIT_NOT_RUN)
    except VerifyError as error:
        click.echo(f"quorumkv verify: {error}", err=True)
        sys.exit(EXIT_NOT_RUN)
    except KeyboardInterrupt:
        click.echo("quorumkv verify: interrupted; every process, namespace and rule it "
                   "created was removed", err=True)
        sys.exit(130)
    from quorumkv.verify.report import describe_run

    click.echo(describe_run(result.results))
    sys.exit(result.exit_code)
