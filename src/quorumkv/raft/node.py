"""The Raft state machine of one replica (skeleton: the public surface; logic lands next)."""

from __future__ import annotations

from typing import Any, Protocol

from quorumkv.raft.confchange import ConfChange
from quorumkv.raft.config import Config
from quorumkv.raft.log_reader import LogReader
from quorumkv.raft.types import ConfState, Message, Ready, Role


class RandomSource(Protocol):
    """The part of random.Random the core uses (injected; the core never imports random)."""

    def randrange(self, start: int, stop: int) -> int: ...


class Node:
    """One replica's Raft core. See docs/raft.md for the contract."""

    def __init__(self, config: Config, log: LogReader, rng: RandomSource) -> None:
        self.config = config
        self.log = log
        self.rng = rng

    def step(self, message: Message) -> None:
        raise NotImplementedError

    def tick(self) -> None:
        raise NotImplementedError

    def campaign(self) -> None:
        raise NotImplementedError

    def propose(self, data: bytes) -> tuple[int, int]:
        raise NotImplementedError

    def propose_conf_change(self, change: ConfChange) -> tuple[int, int]:
        raise NotImplementedError

    def read_index(self, context: bytes) -> None:
        raise NotImplementedError

    def transfer_leader(self, target: int) -> None:
        raise NotImplementedError

    def report_unreachable(self, peer: int) -> None:
        raise NotImplementedError

    def report_snapshot(self, peer: int, succeeded: bool) -> None:
        raise NotImplementedError

    def apply_conf_change(self, change: ConfChange) -> ConfState:
        raise NotImplementedError

    def has_ready(self) -> bool:
        raise NotImplementedError

    def ready(self) -> Ready:
        raise NotImplementedError

    def advance(self, ready: Ready) -> None:
        raise NotImplementedError

    @property
    def id(self) -> int:
        return self.config.id

    @property
    def group_id(self) -> int:
        return self.config.group_id

    @property
    def term(self) -> int:
        raise NotImplementedError

    @property
    def role(self) -> Role:
        raise NotImplementedError

    @property
    def leader_id(self) -> int:
        raise NotImplementedError

    @property
    def commit_index(self) -> int:
        raise NotImplementedError

    @property
    def applied_index(self) -> int:
        raise NotImplementedError

    def status(self) -> dict[str, Any]:
        raise NotImplementedError
