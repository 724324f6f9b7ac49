"""One verify run, from an empty directory to `results.json`.

Theory of operation. `run_verify` does, in order:

1. make the run directory, draw the seed, build the private network (or loopback addresses);
2. start the nodes and wait until they agree on a leader for every shard and answer reads;
3. run the clients for the duration while the scheduler injects faults;
4. stop the clients (operations in flight finish or time out and are recorded), end the
   current fault, heal everything, wait for the cluster to recover, make the final reads;
5. stop the nodes and remove the network (so the checkers get the CPU), check the history,
   write `results.json` and the plot.

Everything created in 1-2 is removed in a `finally`, also on Ctrl-C, SIGTERM and SIGHUP
(interruption.py) and on the harness's own errors; a harness killed with
SIGKILL leaves a claim that the next run's stale cleanup removes (namespaces.py).

Verdicts: the workload's checker, `recovery` (every node up, agreeing on leaders and
answering reads within
`limits.verify_recovery_timeout_ms` after the last heal; a cluster that does not recover fails
the run), `final-reads` (unknown if they could not complete), and `crashes` (a node process
that exited by itself, a broken invariant for instance, fails the run). The run is valid only
if every verdict is; exit status 0 then, 1 if a verdict is false, 2 if one is unknown.
"""

from __future__ import annotations

import datetime
import json
import os
import random
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from quorumkv import limits
from quorumkv.errors import VerifySetupFailed
from quorumkv.history import History
from quorumkv.verify import interruption
from quorumkv.verify.checking import check_history
from quorumkv.verify.client import Client, Outcomes, final_reads
from quorumkv.verify.hosts import NodeHost, loopback_hosts
from quorumkv.verify.namespaces import PrivateNetwork, require_namespaces
from quorumkv.verify.nemesis import NEMESES, Context, heal_everything
from quorumkv.verify.network_faults import NetworkFaults
from quorumkv.verify.plot import plot_run
from quorumkv.verify.processes import NodeProcesses
from quorumkv.verify.recorder import Recorder
from quorumkv.verify.schedule import FaultLog, Scheduler
from quorumkv.verify.workloads import WORKLOADS

FINAL_READ_PROCESS = 10_000
"""The history's process id of the final reads (clients are 0 .. clients-1)."""

SERVER_REQUEST_TIMEOUT_MS = 2_000
"""The nodes' request_timeout_ms in a run: below the clients' own timeout, so that a node
answers -TRYAGAIN or -UNKNOWN before a client gives up on it."""

EXIT_VALID, EXIT_INVALID, EXIT_UNKNOWN = 0, 1, 2


@dataclass(frozen=True)
class RunOptions:
    """What to run; `quorumkv verify --help` explains each."""

    workload: str = "register"
    nemeses: tuple[str, ...] = ("partition",)
    nodes: int = 5
    duration_s: float = 60.0
    clients: int = 10
    rate: float = 100.0
    fault_s: float = 5.0
    quiet_s: float = 5.0
    seed: int | None = None
    loopback: bool = False
    output: Path = Path("verify-runs")
    name: str | None = None
    server_arguments: tuple[str, ...] = ()
    keep_data: bool = False
    checker_seconds_max: float = float(limits.verify_checker_seconds_max)


@dataclass
class RunResult:
    directory: Path
    results: dict[str, Any] = field(default_factory=dict)

    @property
    def valid(self) -> bool | None:
        value = self.results.get("valid")
        return value if isinstance(value, bool) else None

    @property
    def exit_code(self) -> int:
        return {True: EXIT_VALID, False: EXIT_INVALID}.get(self.valid, EXIT_UNKNOWN)  # type: ignore[arg-type]


def check_options(options: RunOptions) -> None:
    """Raise ValueError for options that cannot make a run (names, counts, modes)."""
    if options.workload not in WORKLOADS:
        raise ValueError(f"unknown workload {options.workload!r}; one of {sorted(WORKLOADS)}")
    unknown = [name for name in options.nemeses if name not in NEMESES]
    if unknown:
        raise ValueError(f"unknown nemesis {unknown}; any of {sorted(NEMESES)}")
    if not 1 <= options.nodes <= limits.verify_nodes_max:
        raise ValueError(f"--nodes must be 1..{limits.verify_nodes_max}, got {options.nodes}")
    if options.clients < 1 or options.rate <= 0 or options.duration_s <= 0:
        raise ValueError("--clients, --rate and --duration must be positive")
    network = [name for name in options.nemeses if NEMESES[name].needs_network]
    if options.loopback and network:
        raise ValueError(f"nemeses {network} need network namespaces; --loopback allows only "
                         f"{sorted(n for n, k in NEMESES.items() if not k.needs_network)}")


def run_directory(options: RunOptions) -> Path:
    """A new directory for the run: OUTPUT/NAME, or OUTPUT/<timestamp>, suffixed -2, -3...
    when taken."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = options.output / (options.name or stamp)
    base.parent.mkdir(parents=True, exist_ok=True)
    for number in range(1, 1000):
        directory = base if number == 1 else base.with_name(f"{base.name}-{number}")
        try:
            directory.mkdir()  # fails if another run took the name in the meantime
        except FileExistsError:
            continue
        return directory
    raise VerifySetupFailed("making the run directory", f"{base}-N exist for N up to 999")


def run_verify(options: RunOptions, say: Callable[[str], None] = print) -> RunResult:
    """Run one verify run (see the module docstring); raise ValueError for bad options,
    VerifyUnavailable when namespaces are needed and missing, VerifySetupFailed when the
    cluster could not be built (everything created is removed first)."""
    check_options(options)
    if not options.loopback:
        require_namespaces()
    seed = options.seed if options.seed is not None else int.from_bytes(os.urandom(4), "big")
    directory = run_directory(options)
    result = RunResult(directory)
    with interruption.interrupts_raise():
        _Run(options, seed, directory, say).execute(result)
    return result


class _Run:
    """The state of one run while it executes."""

    def __init__(self, options: RunOptions, seed: int, directory: Path,
                 say: Callable[[str], None]) -> None:
        self.options = options
        self.seed = seed
        self.directory = directory
        self.say = say
        self.rng = random.Random(seed)
        self.network: PrivateNetwork | None = None
        self.processes: NodeProcesses | None = None

    def execute(self, result: RunResult) -> None:
        try:
            hosts = self._hosts()
            faults = NetworkFaults(hosts)
            faults.prepare()
            processes = self.processes = NodeProcesses(
                hosts, self.directory, f"verify-{self.directory.name}",
                ("--request-timeout-ms", str(SERVER_REQUEST_TIMEOUT_MS),
                 *self.options.server_arguments))
            processes.start_all()
            if not processes.wait_healthy(limits.verify_recovery_timeout_ms / 1000):
                raise VerifySetupFailed("starting the cluster", "the nodes did not agree on "
                                        "a leader for every shard, or answer reads, in time")
            self.say(f"verify: {len(hosts)} nodes up ({self._mode()}); running "
                     f"{self.options.workload} with {','.join(self.options.nemeses) or 'no'} "
                     f"faults for {self.options.duration_s:g} s (seed {self.seed}) -> "
                     f"{self.directory}")
            observed = self._observe(hosts, faults, processes)
        finally:
            self._tear_down()
        result.results = self._judge(observed)
        _write_results(self.directory / "results.json", result.results)
        self._plot(observed, result.results)
        if not self.options.keep_data:
            shutil.rmtree(self.directory / "data", ignore_errors=True)

    def _mode(self) -> str:
        return "loopback" if self.options.loopback else (
            f"namespaces qkv-{self.network.run_id}-*" if self.network else "?")

    def _hosts(self) -> list[NodeHost]:
        if self.options.loopback:
            return loopback_hosts(self.options.nodes)
        self.network = PrivateNetwork(self.options.nodes)
        return self.network.create()

    def _tear_down(self) -> None:
        with interruption.signals_deferred():
            if self.processes is not None:
                self.processes.close()
            if self.network is not None:
                self.network.destroy()

    # ---- the workload under faults -----------------------------------------------------------

    def _observe(self, hosts: list[NodeHost], faults: NetworkFaults,
                 processes: NodeProcesses) -> dict[str, Any]:
        options = self.options
        workload = WORKLOADS[options.workload]()
        recorder = Recorder(self.directory / "history.jsonl", time.monotonic_ns())
        fault_log = FaultLog(self.directory / "faults.jsonl", recorder)
        outcomes = Outcomes()
        stop = threading.Event()
        context = Context(processes, faults, random.Random(self.rng.getrandbits(64)))
        interval_s = options.clients / options.rate
        clients = [Client(process, hosts[process % len(hosts)], workload, recorder, outcomes,
                          self.rng.getrandbits(64), interval_s, stop)
                   for process in range(options.clients)]
        started = time.monotonic()
        scheduler = Scheduler([NEMESES[name]() for name in options.nemeses], context, fault_log,
                              options.fault_s, options.quiet_s,
                              started + options.duration_s - options.quiet_s / 2, stop)
        threads: list[threading.Thread] = []
        try:
            for thread in [*clients, scheduler]:
                thread.start()
                threads.append(thread)
            interruption.wait(options.duration_s)
        finally:
            stop.set()  # clients finish the operation in flight; the scheduler ends its fault
            for thread in threads:
                thread.join(None if thread is scheduler
                            else limits.verify_client_timeout_ms / 1000 + 5)
        workload_s = time.monotonic() - started
        healed = heal_everything(context)
        fault_log.note("heal", "all", {"restarted": healed})
        recovery_started = time.monotonic()
        recovered = processes.wait_healthy(limits.verify_recovery_timeout_ms / 1000)
        recovery_s = time.monotonic() - recovery_started
        read = final_reads(hosts, workload, recorder, outcomes, FINAL_READ_PROCESS)
        recorder.close()
        fault_log.close()
        return {"workload_s": workload_s, "recovered": recovered, "recovery_s": recovery_s,
                "final_reads": read, "outcomes": outcomes.counts(),
                "scheduler_error": scheduler.error, "windows": fault_log.windows,
                "history": recorder.history(), "crashes": processes.crashes(),
                "end_s": recorder.now() / 1e9, "checker": workload.checker}

    # ---- verdicts ----------------------------------------------------------------------------

    def _judge(self, observed: dict[str, Any]) -> dict[str, Any]:
        options = self.options
        checker = check_history(observed["checker"], self.directory / "history.jsonl",
                                options.checker_seconds_max)
        verdicts = {
            observed["checker"]: checker,
            "recovery": {"valid": observed["recovered"],
                         "message": (f"every node up, agreeing on leaders and serving reads "
                                     f"{observed['recovery_s']:.1f} s after the last heal")
                         if observed["recovered"] else
                         (f"the cluster did not recover within "
                          f"{limits.verify_recovery_timeout_ms / 1000:g} s of the last heal")},
            "final-reads": {"valid": True if observed["final_reads"] else None,
                            "message": "every final read completed" if observed["final_reads"]
                            else "a final read never completed: the checker lacks it"},
            "crashes": _crash_verdict(observed["crashes"]),
        }
        if observed["scheduler_error"]:
            verdicts["nemesis"] = {"valid": None, "message": "the nemesis failed: "
                                   + observed["scheduler_error"].strip().splitlines()[-1]}
        values = [v["valid"] for v in verdicts.values()]
        valid = False if False in values else (None if None in values else True)
        return {
            "directory": str(self.directory), "valid": valid, "seed": self.seed,
            "mode": "loopback" if options.loopback else "namespaces",
            "options": {**asdict(options), "output": str(options.output)},
            "workload_seconds": round(observed["workload_s"], 3),
            "operations": _operation_counts(observed["history"], observed["outcomes"]),
            "faults": [_window_record(window) for window in observed["windows"]],
            "verdicts": verdicts,
        }

    def _plot(self, observed: dict[str, Any], results: dict[str, Any]) -> None:
        verdict = {True: "valid", False: "INVALID", None: "unknown"}[results["valid"]]
        title = (f"{self.options.workload} / {','.join(self.options.nemeses) or 'no faults'}"
                 f" - {self.options.nodes} nodes, seed {self.seed}: {verdict}")
        plot_run(observed["history"].events, observed["windows"], observed["end_s"], title,
                 self.directory / "plot.png")


def _crash_verdict(crashes: list[Any]) -> dict[str, Any]:
    if not crashes:
        return {"valid": True, "message": "no node exited by itself"}
    described = [f"node {c.node_id} exited with code {c.exit_code} at {c.time_s:.1f} s"
                 for c in crashes]
    return {"valid": False, "message": "; ".join(described),
            "log_tails": {str(c.node_id): c.log_tail[-1500:] for c in crashes}}


def _operation_counts(history: History, outcomes: dict[str, int]) -> dict[str, Any]:
    operations = history.operations()
    by_function: Counter[str] = Counter()
    by_status: Counter[str] = Counter()
    for operation in operations:
        by_function[f"{operation.function} {operation.status}"] += 1
        by_status[operation.status] += 1
    return {"total": len(operations), **{s: by_status.get(s, 0) for s in ("ok", "fail", "info")},
            "by_function": dict(sorted(by_function.items())), "outcomes": outcomes}


def _window_record(window: Any) -> dict[str, Any]:
    return {"nemesis": window.nemesis, "start_s": round(window.start_s, 3),
            "end_s": None if window.end_s is None else round(window.end_s, 3),
            "detail": window.detail, "healed": window.healed}


def _write_results(path: Path, results: dict[str, Any]) -> None:
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
