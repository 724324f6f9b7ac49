"""`quorumkv verify` as a command: its refusals, and its cleanup when interrupted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from quorumkv.verify import namespaces
from quorumkv.verify.command import EXIT_NOT_RUN, verify

from .environment import needs_namespaces


def test_without_root_it_says_so_and_offers_loopback(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    """Not root: namespaces are refused with the reason and --loopback named; nothing made."""
    monkeypatch.setattr(namespaces.os, "geteuid", lambda: 1000)
    result = CliRunner().invoke(verify, ["--output", str(tmp_path / "runs")])
    assert result.exit_code == EXIT_NOT_RUN
    assert "need root" in result.output and "--loopback" in result.output
    assert not (tmp_path / "runs").exists()


def test_loopback_refuses_network_nemeses(tmp_path: Path) -> None:
    """--loopback with a partition nemesis is a usage error naming what loopback allows."""
    result = CliRunner().invoke(verify, ["--loopback", "--nemesis", "kill,partition",
                                         "--output", str(tmp_path)])
    assert result.exit_code == 2
    assert "need network namespaces" in result.output and "kill" in result.output


def node_processes(marker: str) -> list[int]:
    """PIDs of live processes whose command line mentions `marker` (a run's directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                command = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if marker in command and "server" in command:
                found.append(int(entry.name))
    return found


@needs_namespaces
def test_ctrl_c_removes_every_process_namespace_and_claim(tmp_path: Path) -> None:
    """SIGINT during a run: the nodes are killed, the namespaces and bridge deleted, the
    claim released, and the command exits 130."""
    output = tmp_path / "runs"
    command = [sys.executable, "-m", "quorumkv.cli", "verify", "--duration", "120",
               "--output", str(output), "--nemesis", "none", "--seed", "1"]
    harness = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    try:
        assert harness.stdout is not None
        line = harness.stdout.readline()
        assert "nodes up" in line, line + harness.stdout.read()
        run_id = int(line.split("qkv-")[1].split("-")[0])
        assert len(node_processes(str(output))) == 5
        harness.send_signal(signal.SIGINT)
        remaining = harness.communicate(timeout=60)[0]
    finally:
        if harness.poll() is None:  # it did not stop: kill it, and clean up as the next run would
            harness.kill()
            harness.wait()
            namespaces.remove_stale_runs()
    assert harness.returncode == 130, remaining
    assert "removed" in remaining
    assert node_processes(str(output)) == [], remaining
    listing = namespaces.run_ip(["netns", "list"], "listing", check=False)
    assert f"qkv-{run_id}-" not in listing, remaining
    links = namespaces.run_ip(["-o", "link"], "listing")
    assert namespaces.bridge_name(run_id) not in links and f"qkv{run_id}h" not in links
    assert not (namespaces.STATE_DIRECTORY / f"run-{run_id}.json").exists()
