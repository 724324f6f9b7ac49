"""The checkers catch a server that acknowledges writes before they are replicated."""

from __future__ import annotations

from pathlib import Path

import pytest

from quorumkv.verify.report import describe_run
from quorumkv.verify.run import RunOptions, run_verify

from .environment import NAMESPACES


@pytest.mark.slow
def test_acknowledging_on_receipt_loses_acknowledged_adds_under_kill(tmp_path: Path) -> None:
    """With SET answered +OK on receipt, killing nodes (the leader, a majority, all) loses
    acknowledged adds, and the set checker names them."""
    options = RunOptions(workload="set", nemeses=("kill",), duration_s=30.0, fault_s=4.0,
                         quiet_s=3.0, seed=6, output=tmp_path, name="run",
                         loopback=not NAMESPACES,
                         server_arguments=("--unsafe-testing-ack-on-receipt",))
    result = run_verify(options, say=lambda line: None)
    verdict = result.results["verdicts"]["set"]
    assert verdict["valid"] is False, describe_run(result.results)
    assert "acknowledged" in verdict["message"]
    assert result.exit_code == 1
