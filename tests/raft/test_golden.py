"""The golden scripts of tests/raft/golden: each command's trace matches the recorded one."""

from __future__ import annotations

from pathlib import Path

import pytest

from .golden_runner import run_script

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("path", sorted(GOLDEN.glob("*.txt")), ids=lambda path: path.stem)
def test_golden_script(path: Path, rewrite: bool) -> None:
    """Replaying a golden script yields exactly its recorded trace."""
    run_script(path, rewrite)
