"""PySyncObj as a system under test: three `pysyncobj_server.py` nodes on loopback.

Theory of operation. PySyncObj is a library, not a server, so `pysyncobj_server.py` wraps one
node in a small RESP server (see its docstring for what each reply means, read from PySyncObj's
source). The servers run with the python of a separate virtual environment,
`bench/.venv-pysyncobj`, holding only pysyncobj, so neither project's dependencies leak into the
other. Create it with:

    python3 -m venv bench/.venv-pysyncobj && bench/.venv-pysyncobj/bin/pip install pysyncobj

PySyncObj forwards writes from followers to the leader itself, so clients may send to any node
(`cluster_routing` is False). A node is the leader when its INFO says `role:leader`. By default
PySyncObj runs with its own defaults (batched append_entries every 0.1 s); `batch=False` passes
`--no-batch`, faster per write but see the server's docstring for what it does to followers.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from systems import HOST, System, await_condition, free_port, resp_ping

from quorumkv.server.local_cluster import resp_command

NODES = 3
DEFAULT_PYTHON = Path(__file__).resolve().parent / ".venv-pysyncobj" / "bin" / "python"
SERVER_SCRIPT = Path(__file__).resolve().parent / "pysyncobj_server.py"


class PySyncObjSystem(System):
    name = "pysyncobj"
    label = "PySyncObj 3 nodes (reads local, not linearizable)"
    protocol = "resp"
    cluster_routing = False
    routing = "client i to node i mod 3; followers forward writes to the leader (PySyncObj does)"
    durability = ("journal file written through mmap, never fsynced (msync only on graceful "
                  "stop); a write is acknowledged once committed by a majority and applied on "
                  "the node that took it")

    def __init__(self, base_dir: Path, python: Path = DEFAULT_PYTHON, batch: bool = True) -> None:
        super().__init__(base_dir)
        self.python = Path(python)
        self.batch = batch
        self.raft_ports: list[int] = []
        self.client_ports: list[int] = []

    def start(self) -> None:
        if not self.python.exists():
            raise FileNotFoundError(
                f"{self.python} not found: create it with `python3 -m venv "
                f"{self.python.parents[1]} && {self.python.parent}/pip install pysyncobj`")
        self.raft_ports = [free_port() for _ in range(NODES)]
        self.client_ports = [free_port() for _ in range(NODES)]
        raft_addresses = [f"{HOST}:{port}" for port in self.raft_ports]
        for index in range(NODES):
            node_dir = self.base_dir / f"node{index + 1}"
            node_dir.mkdir(parents=True, exist_ok=True)
            partners = [a for i, a in enumerate(raft_addresses) if i != index]
            self.spawn([str(self.python), str(SERVER_SCRIPT),
                        "--self", raft_addresses[index],
                        "--partners", ",".join(partners),
                        "--listen", f"{HOST}:{self.client_ports[index]}",
                        "--journal", str(node_dir / "journal"),
                        *([] if self.batch else ["--no-batch"])],
                       f"node{index + 1}.log")
        for port in self.client_ports:
            await_condition(lambda port=port: self._alive_and(resp_ping(port)),
                            f"pysyncobj node on port {port} to answer PING")
        await_condition(lambda: self._alive_and(self._leader_index() is not None),
                        "a pysyncobj node to report role:leader")
        for port in self.client_ports:
            await_condition(lambda port=port: self._alive_and(
                resp_command(port, b"SET", b"pysyncobj-start", b"%d" % port) == b"+OK\r\n"),
                f"a SET through pysyncobj node on port {port} to succeed")

    def endpoints(self) -> list[tuple[str, int]]:
        return [(HOST, port) for port in self.client_ports]

    def version(self) -> str:
        try:
            return subprocess.run(
                [str(self.python), "-c", "from pysyncobj.version import VERSION; print(VERSION)"],
                capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return "unknown"

    def _leader_index(self) -> int | None:
        """The node whose INFO says role:leader; None if no running node says so."""
        for index, port in enumerate(self.client_ports):
            if self.processes[index].poll() is not None:
                continue
            try:
                if b"role:leader\r\n" in resp_command(port, b"INFO"):
                    return index
            except OSError:
                continue
        return None

    def _alive_and(self, condition: bool) -> bool:
        self.check_alive()
        return condition
