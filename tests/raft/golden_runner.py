"""The interpreter of the Raft core's golden scripts (tests/raft/golden/*.txt).

A script is a sequence of blocks: optional comment lines (starting with '#'), one command, a
line '----', then the trace the command produces, ending at a blank line. Running a script
executes each command against a harness Cluster and compares the trace; `--rewrite` writes the
actual traces back instead. Commands (ids are replica ids):

  add-nodes N [voters=(1,2,3)] [learners=(4)] [option=value...]
      options: pre_vote, check_quorum, read_only, election, heartbeat, inflight,
      inflight_bytes, max_entries, max_bytes, uncommitted
  campaign ID                      propose ID DATA
  conf-change ID CHANGE...         (add-voter N, remove N, add-learner N, promote-learner N,
                                    leave-joint; transition=implicit|explicit)
  transfer-leader ID TARGET        read-index ID CONTEXT
  tick ID [COUNT]                  tick-heartbeat ID
  process-ready ID...              deliver-msgs [ID...]       drop-msgs [ID...]
  stabilize [ID...]                partition 1 2 | 3          heal
  compact ID INDEX                 restart ID
  report-unreachable ID PEER       report-snapshot ID PEER ok|failed
  status ID...                     raft-log ID                applied ID...
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from quorumkv.errors import QuorumKVError
from quorumkv.raft.confchange import (
    ConfChange,
    ConfChangeSingle,
    ConfChangeTransition,
    ConfChangeType,
)

from .harness import Cluster

SEPARATOR = "----"


@dataclass
class Block:
    comments: list[str]
    command: str
    expected: list[str] = field(default_factory=list)
    line: int = 0


def parse(text: str) -> list[Block]:
    blocks: list[Block] = []
    lines = text.splitlines()
    position = 0
    comments: list[str] = []
    while position < len(lines):
        line = lines[position]
        if not line.strip():
            if comments:
                comments.append("")
            position += 1
            continue
        if line.startswith("#"):
            comments.append(line)
            position += 1
            continue
        block = Block(comments=_trim(comments), command=line.strip(), line=position + 1)
        comments = []
        position += 1
        if position >= len(lines) or lines[position] != SEPARATOR:
            raise ValueError(f"line {position}: expected '{SEPARATOR}' after '{block.command}'")
        position += 1
        while position < len(lines) and lines[position].strip():
            block.expected.append(lines[position])
            position += 1
        blocks.append(block)
    return blocks


def _trim(comments: list[str]) -> list[str]:
    while comments and not comments[-1]:
        comments.pop()
    return comments


def render(blocks: list[Block], outputs: list[list[str]]) -> str:
    parts = []
    for block, output in zip(blocks, outputs, strict=True):
        text = "\n".join([*block.comments, block.command, SEPARATOR, *(output or ["ok"])])
        parts.append(text)
    return "\n\n".join(parts) + "\n"


_CHANGE_TYPES = {
    "add-voter": ConfChangeType.ADD_VOTER,
    "remove": ConfChangeType.REMOVE,
    "add-learner": ConfChangeType.ADD_LEARNER,
    "promote-learner": ConfChangeType.PROMOTE_LEARNER,
}

_OPTIONS: dict[str, tuple[str, Callable[[str], object]]] = {
    "pre_vote": ("pre_vote", lambda value: value == "true"),
    "check_quorum": ("check_quorum", lambda value: value == "true"),
    "read_only": ("read_only", str),
    "election": ("election_timeout_ticks", int),
    "heartbeat": ("heartbeat_interval_ticks", int),
    "inflight": ("inflight_messages_max", int),
    "inflight_bytes": ("inflight_bytes_max", int),
    "max_entries": ("append_entries_max", int),
    "max_bytes": ("append_bytes_max", int),
    "uncommitted": ("uncommitted_bytes_max", int),
}


def parse_ids(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.strip("()").replace(",", " ").split())


def parse_conf_change(words: list[str]) -> ConfChange:
    changes = []
    transition = ConfChangeTransition.AUTO
    position = 0
    while position < len(words):
        word = words[position]
        if word == "leave-joint":
            position += 1
        elif word.startswith("transition="):
            transition = ConfChangeTransition[f"JOINT_{word.split('=')[1].upper()}"]
            position += 1
        else:
            changes.append(ConfChangeSingle(_CHANGE_TYPES[word], int(words[position + 1])))
            position += 2
    return ConfChange(tuple(changes), transition)


class Interpreter:
    """Runs golden commands against one Cluster."""

    def __init__(self) -> None:
        self.cluster = Cluster()

    def run(self, command: str) -> list[str]:
        words = command.split()
        name, arguments = words[0], words[1:]
        handler = getattr(self, "do_" + name.replace("-", "_"), None)
        if handler is None:
            raise ValueError(f"unknown golden command {name!r}")
        try:
            output: list[str] = handler(arguments)
        except QuorumKVError as error:
            return [f"error: {type(error).__name__}: {error}"]
        return output

    def _nodes(self, arguments: list[str]) -> list[int]:
        return [int(argument) for argument in arguments] or sorted(self.cluster.replicas)

    def do_add_nodes(self, arguments: list[str]) -> list[str]:
        count = int(arguments[0])
        voters: tuple[int, ...] = ()
        learners: tuple[int, ...] = ()
        overrides: dict[str, object] = {}
        for argument in arguments[1:]:
            key, value = argument.split("=", 1)
            if key == "voters":
                voters = parse_ids(value)
            elif key == "learners":
                learners = parse_ids(value)
            else:
                field_name, convert = _OPTIONS[key]
                overrides[field_name] = convert(value)
        return self.cluster.add_nodes(count, voters, learners, **overrides)

    def do_campaign(self, arguments: list[str]) -> list[str]:
        self.cluster.node(int(arguments[0])).campaign()
        return []

    def do_propose(self, arguments: list[str]) -> list[str]:
        term, index = self.cluster.node(int(arguments[0])).propose(arguments[1].encode())
        return [f"proposed at {term}/{index}"]

    def do_conf_change(self, arguments: list[str]) -> list[str]:
        change = parse_conf_change(arguments[1:])
        term, index = self.cluster.node(int(arguments[0])).propose_conf_change(change)
        return [f"proposed {change} at {term}/{index}"]

    def do_transfer_leader(self, arguments: list[str]) -> list[str]:
        self.cluster.node(int(arguments[0])).transfer_leader(int(arguments[1]))
        return []

    def do_read_index(self, arguments: list[str]) -> list[str]:
        self.cluster.node(int(arguments[0])).read_index(arguments[1].encode())
        return []

    def do_tick(self, arguments: list[str]) -> list[str]:
        count = int(arguments[1]) if len(arguments) > 1 else 1
        return self.cluster.tick(int(arguments[0]), count)

    def do_tick_heartbeat(self, arguments: list[str]) -> list[str]:
        node = self.cluster.node(int(arguments[0]))
        return self.cluster.tick(node.id, node.config.heartbeat_interval_ticks)

    def do_process_ready(self, arguments: list[str]) -> list[str]:
        lines: list[str] = []
        for replica in self._nodes(arguments):
            lines.extend(self.cluster.process_ready(replica))
        return lines

    def do_deliver_msgs(self, arguments: list[str]) -> list[str]:
        if not arguments:
            return self.cluster.deliver()
        lines: list[str] = []
        for replica in self._nodes(arguments):
            lines.extend(self.cluster.deliver(replica))
        return lines

    def do_drop_msgs(self, arguments: list[str]) -> list[str]:
        if not arguments:
            return self.cluster.deliver(drop=True)
        lines: list[str] = []
        for replica in self._nodes(arguments):
            lines.extend(self.cluster.deliver(replica, drop=True))
        return lines

    def do_stabilize(self, arguments: list[str]) -> list[str]:
        return self.cluster.stabilize([int(argument) for argument in arguments] or None)

    def do_partition(self, arguments: list[str]) -> list[str]:
        groups = [parse_ids(part) for part in " ".join(arguments).split("|")]
        self.cluster.partition(*groups)
        return []

    def do_heal(self, arguments: list[str]) -> list[str]:
        self.cluster.heal()
        return []

    def do_compact(self, arguments: list[str]) -> list[str]:
        return self.cluster.compact(int(arguments[0]), int(arguments[1]))

    def do_restart(self, arguments: list[str]) -> list[str]:
        return self.cluster.restart(int(arguments[0]))

    def do_report_unreachable(self, arguments: list[str]) -> list[str]:
        self.cluster.node(int(arguments[0])).report_unreachable(int(arguments[1]))
        return []

    def do_report_snapshot(self, arguments: list[str]) -> list[str]:
        succeeded = arguments[2] == "ok"
        self.cluster.node(int(arguments[0])).report_snapshot(int(arguments[1]), succeeded)
        return []

    def do_status(self, arguments: list[str]) -> list[str]:
        lines: list[str] = []
        for replica in self._nodes(arguments):
            lines.extend(self.cluster.status_lines(replica))
        return lines

    def do_raft_log(self, arguments: list[str]) -> list[str]:
        return self.cluster.log_lines(int(arguments[0]))

    def do_applied(self, arguments: list[str]) -> list[str]:
        lines = []
        for replica in self._nodes(arguments):
            data = b" ".join(self.cluster.applied_data(replica)).decode()
            reads = self.cluster.replicas[replica].read_states
            line = f"{replica}: applied=[{data}]"
            if reads:
                line += " reads=" + " ".join(f"{ctx.decode()}@{index}" for index, ctx in reads)
            lines.append(line)
        return lines


def run_script(path: Path, rewrite: bool) -> None:
    """Run one golden script; on mismatch fail with a diff (or rewrite the file)."""
    blocks = parse(path.read_text())
    interpreter = Interpreter()
    outputs = [interpreter.run(block.command) for block in blocks]
    if rewrite:
        path.write_text(render(blocks, outputs))
        return
    for block, output in zip(blocks, outputs, strict=True):
        actual = output or ["ok"]
        if actual != block.expected:
            import difflib

            diff = "\n".join(
                difflib.unified_diff(block.expected, actual, "expected", "actual", lineterm="")
            )
            raise AssertionError(
                f"{path.name}:{block.line}: '{block.command}' produced a different trace "
                f"(run `pytest tests/raft --rewrite` only if the change is understood):\n{diff}"
            )
