"""The verify smoke (make test): a real 5-node cluster survives a partition run and a kill run
with every verdict valid, and the harness catches a deliberately broken server."""

from __future__ import annotations

import json
from pathlib import Path

from quorumkv.verify.report import describe_run
from quorumkv.verify.run import RunOptions, RunResult, run_verify

from .environment import NAMESPACES, needs_namespaces

SMOKE_SECONDS = 20.0


def smoke(tmp_path: Path, **options: object) -> RunResult:
    settings: dict[str, object] = {
        "duration_s": SMOKE_SECONDS, "fault_s": 4.0, "quiet_s": 3.0, "output": tmp_path,
        "name": "run", "loopback": not NAMESPACES, **options}
    return run_verify(RunOptions(**settings), say=lambda line: None)  # type: ignore[arg-type]


def assert_run_directory(result: RunResult) -> None:
    for name in ("history.jsonl", "faults.jsonl", "results.json", "plot.png"):
        assert (result.directory / name).stat().st_size > 0, name
    assert sorted(p.name for p in (result.directory / "nodes").iterdir()) == [
        f"node{n}.log" for n in range(1, 6)]
    assert not (result.directory / "data").exists()
    assert json.loads((result.directory / "results.json").read_text())["valid"] is result.valid


@needs_namespaces
def test_partition_run_is_valid(tmp_path: Path) -> None:
    """Register workload under partitions: linearizable, recovered, nothing crashed."""
    result = smoke(tmp_path, workload="register", nemeses=("partition",), seed=11)
    assert result.valid is True, describe_run(result.results)
    assert result.exit_code == 0
    assert result.results["faults"] and result.results["operations"]["ok"] > 100
    assert_run_directory(result)


def test_kill_run_is_valid(tmp_path: Path) -> None:
    """Set workload under kill -9 and restarts: no acknowledged add lost, none invented."""
    result = smoke(tmp_path, workload="set", nemeses=("kill",), seed=12)
    assert result.valid is True, describe_run(result.results)
    assert [w["nemesis"] for w in result.results["faults"]] == ["kill", "kill"]
    assert_run_directory(result)


@needs_namespaces
def test_stale_follower_reads_are_caught_under_partitions(tmp_path: Path) -> None:
    """With followers answering reads from local state, a partition makes the register
    workload non-linearizable, and the run says so (exit status 1)."""
    result = smoke(tmp_path, workload="register", nemeses=("partition",), seed=13,
                   duration_s=14.0, server_arguments=("--unsafe-testing-stale-follower-reads",))
    verdict = result.results["verdicts"]["linearizability"]
    assert verdict["valid"] is False, describe_run(result.results)
    assert "not linearizable" in verdict["message"] and verdict["counterexample"]
    assert result.exit_code == 1
