"""Shared fixtures of the server tests: async test functions, real clusters of node processes."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from quorumkv.server.local_cluster import LocalCluster


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run `async def` tests on a fresh event loop (no pytest-asyncio dependency)."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    arguments: dict[str, Any] = {name: pyfuncitem.funcargs[name] for name in names}
    asyncio.run(pyfuncitem.obj(**arguments))
    return True


def start_cluster(base: Path, nodes: int = 3, shards: int = 1) -> LocalCluster:
    """A cluster of `nodes` processes, its `shards` data shards led (tests of one node's
    commands use one data shard holding every slot; tests/server/test_cluster_* use more)."""
    cluster = LocalCluster(base, nodes=nodes, server_args=["--shards", str(shards)])
    try:
        cluster.start()
        cluster.wait_for_leader()
        cluster.wait_for_preferred_leaders()  # no leadership transfer during the test
    except BaseException:
        cluster.close()
        raise
    return cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A 3-node cluster shared by the tests of one module (killed by PID at the end)."""
    local = start_cluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield local
    finally:
        local.close()


@pytest.fixture
def fresh_cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    """A 3-node cluster of the test's own (for tests that kill, stop or restart nodes)."""
    local = start_cluster(tmp_path / "cluster")
    try:
        yield local
    finally:
        local.close()
