"""A node whose storage fails stops (exit 1) instead of acknowledging what is not durable."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from quorumkv import errors
from quorumkv.server.config import load_config
from quorumkv.server.local_cluster import free_port
from quorumkv.server.node import EXIT_STORAGE, ServerNode
from quorumkv.storage.memory import MemoryStore
from quorumkv.storage.protocols import WriteBatch


class BreakingStore:
    """A memory store whose writes fail with CorruptStorage once armed."""

    def __init__(self) -> None:
        self.store = MemoryStore()
        self.armed = False

    def write(self, batch: WriteBatch, sync: bool) -> None:
        if self.armed:
            raise errors.CorruptStorage("/fake/store", "checksum mismatch in the WAL")
        self.store.write(batch, sync)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


async def wait_for(condition: Any, timeout_s: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_a_storage_failure_in_a_ready_cycle_stops_the_node(tmp_path: Path) -> None:
    """CorruptStorage raised by the worker's synced write stops the node with exit code 1,
    and the client's write is not acknowledged."""
    client_port, peer_port = free_port(), free_port()
    config = load_config({"node_id": 1, "data_dir": str(tmp_path),
                          "peers": f"1=127.0.0.1:{peer_port}/127.0.0.1:{client_port}"}, {})
    store = BreakingStore()
    node = ServerNode(config, open_store=lambda path: store)  # type: ignore[arg-type,return-value]
    await node.start()
    await wait_for(lambda: node.host.is_leader(1) and node.cluster.view is not None)
    store.armed = True
    reader, writer = await asyncio.open_connection("127.0.0.1", client_port)
    writer.write(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n")
    await writer.drain()
    code = await asyncio.wait_for(node.wait_stopped(), 30)
    assert code == EXIT_STORAGE
    try:
        reply = await asyncio.wait_for(reader.read(), 10)
    except ConnectionResetError:  # the stopping node closed with the command unread: no reply
        reply = b""
    assert not reply.startswith(b"+OK")
    writer.close()
