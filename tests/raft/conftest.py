"""Options of the Raft core tests: `pytest tests/raft --rewrite` regenerates golden traces."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--rewrite",
        action="store_true",
        default=False,
        help="rewrite the expected traces of tests/raft/golden/*.txt with the actual ones "
        "(only when the change in behaviour is understood)",
    )


@pytest.fixture
def rewrite(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--rewrite", default=False))
