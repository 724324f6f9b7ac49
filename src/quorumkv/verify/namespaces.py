"""The private network of a verify run: one network namespace per node on a bridge of its own.

Theory of operation. Each run claims a run id R (1..250) by creating a state file in
`STATE_DIRECTORY` that records the harness's PID and start time (atomically: a hard link to a
complete file, which fails if the claim exists); only then does it create anything, so every
resource of the run is covered by a claim. It then builds, with one `ip -batch` call:

    bridge qkvbrR (10.77.R.254/24, the clients' side, in the root namespace)
      veth qkvRhN  <->  eth0 (10.77.R.N/24) in namespace qkv-R-N, for N = 1..nodes

so node N is a host of its own at 10.77.R.N, reached by clients through the bridge and by its
peers across it, exactly as separate machines on one switch. Faults are rules inside the
namespaces (network_faults.py); deleting a namespace deletes its rules, its qdiscs and its end
of the veth pair (which takes the other end with it).

`destroy()` kills what still runs inside the namespaces (the run's own node processes), deletes
the veth pairs, the namespaces and the bridge, and releases the claim. The veths go explicitly:
a deleted namespace lives on, with its veth pair, while orphaned TCP sockets in it still
retransmit (minutes), which would block the next run's use of the names. A run that crashed without doing so
leaves a claim whose owner is dead: `remove_stale_runs()`, called before every new run, removes
such leftovers, and leftovers with no claim at all; it never touches a run whose owner lives.

Only addresses in 10.77.R.0/24 are used, and only on interfaces created here.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from quorumkv.errors import VerifySetupFailed, VerifyUnavailable
from quorumkv.verify.hosts import CLIENT_PORT, PEER_PORT, NodeHost

STATE_DIRECTORY = Path("/run/quorumkv-verify")
"""Where runs record their claims (a tmpfs: a reboot, which removes namespaces, clears it)."""

SUBNET_PREFIX = "10.77"
"""The project's private range: run R uses 10.77.R.0/24, nothing outside it."""

GATEWAY_HOST = 254
"""The bridge's own address in each run's /24: where clients and the harness sit."""

RUN_IDS = range(1, 251)
"""Run ids a run may claim (the third octet of its subnet)."""

IP_COMMAND_TIMEOUT_S = 30.0
"""Seconds one `ip` invocation may take before the harness gives up on it."""

_NAMESPACE = re.compile(r"^qkv-(\d+)-(\d+)\b")
_BRIDGE = re.compile(r"^\d+:\s+qkvbr(\d+)[:@]")
_VETH = re.compile(r"^\d+:\s+(qkv(\d+)h\d+)[:@]")


def namespace_name(run_id: int, node_id: int) -> str:
    return f"qkv-{run_id}-{node_id}"


def bridge_name(run_id: int) -> str:
    return f"qkvbr{run_id}"


def veth_name(run_id: int, node_id: int) -> str:
    return f"qkv{run_id}h{node_id}"


def node_address(run_id: int, node_id: int) -> str:
    return f"{SUBNET_PREFIX}.{run_id}.{node_id}"


def gateway_address(run_id: int) -> str:
    return f"{SUBNET_PREFIX}.{run_id}.{GATEWAY_HOST}"


def require_namespaces() -> None:
    """Raise VerifyUnavailable unless this process can create namespaces (root, `ip` found)."""
    if os.geteuid() != 0:
        raise VerifyUnavailable("they need root (this process runs as uid "
                                f"{os.geteuid()})")
    if shutil.which("ip") is None:
        raise VerifyUnavailable("the `ip` command (iproute2) is not installed")


def run_ip(arguments: list[str], what: str, stdin: str | None = None,
           check: bool = True) -> str:
    """Run `ip ARGUMENTS`; raise VerifySetupFailed (naming `what`) if it fails and `check`."""
    try:
        result = subprocess.run(["ip", *arguments], input=stdin, capture_output=True,
                                text=True, timeout=IP_COMMAND_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise VerifySetupFailed(what, str(error)) from error
    if check and result.returncode != 0:
        raise VerifySetupFailed(what, f"ip {' '.join(arguments)}: {result.stderr.strip()}")
    return result.stdout


class PrivateNetwork:
    """The namespaces, veth pairs and bridge of one run; see the module docstring."""

    def __init__(self, nodes: int, state_directory: Path = STATE_DIRECTORY) -> None:
        self.nodes = nodes
        self.state_directory = state_directory
        self.run_id = 0
        self.created = False

    @property
    def gateway(self) -> str:
        return gateway_address(self.run_id)

    def namespaces(self) -> list[str]:
        return [namespace_name(self.run_id, n) for n in range(1, self.nodes + 1)]

    def create(self) -> list[NodeHost]:
        """Claim a run id and build the network; raise VerifySetupFailed (after undoing what
        was built) if a step fails."""
        require_namespaces()
        remove_stale_runs(self.state_directory)
        self.run_id = _claim_run_id(self.state_directory)
        self.created = True
        try:
            run_ip(["-batch", "-"], "building the private network", stdin=self._build_script())
            for node_id in range(1, self.nodes + 1):
                run_ip(["-n", namespace_name(self.run_id, node_id), "-batch", "-"],
                       f"configuring node {node_id}'s namespace",
                       stdin=self._inside_script(node_id))
        except BaseException:
            self.destroy()
            raise
        return [self.host(n) for n in range(1, self.nodes + 1)]

    def host(self, node_id: int) -> NodeHost:
        namespace = namespace_name(self.run_id, node_id)
        address = node_address(self.run_id, node_id)
        return NodeHost(node_id, address, CLIENT_PORT, address, PEER_PORT,
                        ("ip", "netns", "exec", namespace), namespace)

    def _build_script(self) -> str:
        """The root namespace's side: the bridge, the namespaces, the veth pairs."""
        run = self.run_id
        bridge = bridge_name(run)
        lines = [f"link add {bridge} type bridge",
                 f"addr add {gateway_address(run)}/24 dev {bridge}",
                 f"link set {bridge} up"]
        for node_id in range(1, self.nodes + 1):
            namespace, veth = namespace_name(run, node_id), veth_name(run, node_id)
            lines += [f"netns add {namespace}",
                      f"link add {veth} type veth peer name eth0 netns {namespace}",
                      f"link set {veth} master {bridge} up"]
        return "\n".join(lines) + "\n"

    def _inside_script(self, node_id: int) -> str:
        """A node's side, run inside its namespace: loopback up, its address on eth0."""
        return (f"link set lo up\naddr add {node_address(self.run_id, node_id)}/24 dev eth0\n"
                "link set eth0 up\n")

    def destroy(self) -> None:
        """Remove everything this run created (safe to call twice, and after a partial build)."""
        if not self.created:
            return
        _remove_run(self.run_id, self.state_directory)
        self.created = False


def _claim_path(state_directory: Path, run_id: int) -> Path:
    return state_directory / f"run-{run_id}.json"


def _claim_run_id(state_directory: Path) -> int:
    """Claim the first free run id. The claim appears with its content in one step (a hard
    link to a complete file), so another run's stale cleanup never reads a half-written claim
    and takes a live run for a dead one."""
    state_directory.mkdir(parents=True, exist_ok=True)
    taken = _bridges() | {run for run, _ in _namespaces()} | set(_veths().values())
    owner = {"owner_pid": os.getpid(), "owner_start": _start_time(os.getpid())}
    with tempfile.NamedTemporaryFile("w", dir=state_directory, prefix="draft-", suffix=".json",
                                     delete=False) as handle:
        json.dump(owner, handle)
    draft = Path(handle.name)
    try:
        for run_id in RUN_IDS:
            if run_id in taken:
                continue
            try:
                os.link(draft, _claim_path(state_directory, run_id))
            except FileExistsError:
                continue
            return run_id
    finally:
        draft.unlink()
    raise VerifySetupFailed("claiming a run id", f"all of {len(RUN_IDS)} run ids are in use; "
                            f"see {state_directory}")


def _namespaces() -> set[tuple[int, int]]:
    listing = run_ip(["netns", "list"], "listing namespaces", check=False)
    found = set()
    for line in listing.splitlines():
        match = _NAMESPACE.match(line.strip())
        if match:
            found.add((int(match.group(1)), int(match.group(2))))
    return found


def _bridges() -> set[int]:
    listing = run_ip(["-o", "link", "show", "type", "bridge"], "listing bridges", check=False)
    return {int(m.group(1)) for m in map(_BRIDGE.match, listing.splitlines()) if m}


def _veths() -> dict[str, int]:
    """Root-side veth ends of any run, name -> run id. A deleted namespace can outlive its
    name for minutes (its orphaned TCP sockets keep it), and its veth pair with it."""
    listing = run_ip(["-o", "link", "show", "type", "veth"], "listing veth links", check=False)
    return {m.group(1): int(m.group(2)) for m in map(_VETH.match, listing.splitlines()) if m}


def _owner_alive(state_directory: Path, run_id: int) -> bool:
    """Whether the process that claimed the run still runs (the same process: its start time
    is in the claim, so a reused PID does not count)."""
    try:
        claim = json.loads(_claim_path(state_directory, run_id).read_text())
        owner, started = int(claim["owner_pid"]), claim.get("owner_start")
    except (OSError, ValueError, KeyError, TypeError):
        return False
    now = _start_time(owner)
    return now is not None and (started is None or now == started) and not _is_zombie(owner)


def _process_status(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name ([] if there is no such process)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return []


def _start_time(pid: int) -> int | None:
    """When the process started, in clock ticks since boot (None if it does not exist)."""
    fields = _process_status(pid)
    return int(fields[19]) if len(fields) > 19 else None


def _is_zombie(pid: int) -> bool:
    return _process_status(pid)[:1] == ["Z"]


def remove_stale_runs(state_directory: Path = STATE_DIRECTORY) -> list[int]:
    """Remove the namespaces, bridges and claims of runs whose harness is gone; return their
    run ids. Runs whose owner still lives are left alone."""
    claims = set()
    if state_directory.is_dir():
        for path in state_directory.glob("run-*.json"):
            with contextlib.suppress(ValueError):
                claims.add(int(path.stem.removeprefix("run-")))
    seen = claims | _bridges() | {run for run, _ in _namespaces()} | set(_veths().values())
    stale = sorted(run for run in seen if not _owner_alive(state_directory, run))
    for run_id in stale:
        _remove_run(run_id, state_directory)
    return stale


def _remove_run(run_id: int, state_directory: Path) -> None:
    """Kill what runs in the run's namespaces, delete their veth pairs, the namespaces and the
    bridge, drop the claim."""
    for veth, run in _veths().items():
        if run == run_id:  # deleting one end deletes the pair, even if the namespace lingers
            run_ip(["link", "del", veth], f"deleting {veth}", check=False)
    for run, node_id in sorted(_namespaces()):
        if run != run_id:
            continue
        namespace = namespace_name(run, node_id)
        for pid in run_ip(["netns", "pids", namespace], "listing processes", check=False).split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        run_ip(["netns", "del", namespace], f"deleting namespace {namespace}", check=False)
    if run_id in _bridges():
        run_ip(["link", "del", bridge_name(run_id)], "deleting the bridge", check=False)
    with contextlib.suppress(FileNotFoundError):
        _claim_path(state_directory, run_id).unlink()
