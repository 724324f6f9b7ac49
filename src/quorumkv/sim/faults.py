"""The fault schedule: when each kind of fault strikes, and what shape it takes.

Each fault kind the run's options enable (partition, crash, membership, transfer) has its own
next due time, drawn from the fault Random as an interval in [interval / 2, 3 * interval / 2):
kinds strike independently, so they overlap (a crash during a partition during a membership
change). The simulator asks for the next due time of each kind and, when one comes, asks here
for the fault's shape, then applies it to the cluster.

Partition shapes (Jepsen's nemeses): `split` (two sides, both directions blocked), `isolate`
(one node cut off), `one-way` (a group cannot send to the rest, which can still send to it),
`bridge` (two sides that cannot talk, and one node that talks to both).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

PARTITION_SHAPES = ("split", "isolate", "one-way", "bridge")


@dataclass(frozen=True, slots=True)
class Partition:
    """Directed links blocked, and a name for the trace."""

    shape: str
    blocked: frozenset[tuple[int, int]]
    side_a: tuple[int, ...] = ()
    side_b: tuple[int, ...] = ()

    def describe(self) -> str:
        """e.g. `split {1,2} | {3,4,5}`, `one-way {4} -/-> {1,2,3}` (the links blocked)."""
        left = "{" + ",".join(map(str, sorted(self.side_a))) + "}"
        right = "{" + ",".join(map(str, sorted(self.side_b))) + "}"
        separator = " -/-> " if self.shape == "one-way" else " | "
        return f"{self.shape} {left}{separator}{right}"


def next_interval_us(rng: random.Random, mean_us: int) -> int:
    """Time until the next fault of a kind whose mean interval is `mean_us`."""
    return rng.randint(mean_us // 2, mean_us + mean_us // 2)


def choose_partition(rng: random.Random, nodes: list[int]) -> Partition:
    """A partition of `nodes` (ascending), of a shape drawn at random."""
    shape = rng.choice(PARTITION_SHAPES)
    order = list(nodes)
    rng.shuffle(order)
    if len(order) < 3 and shape == "bridge":
        shape = "split"
    cut = 1 if shape == "isolate" else rng.randint(1, len(order) - 1)
    side_a, side_b = order[:cut], order[cut:]
    if shape == "bridge":
        (side_b if len(side_b) > 1 else side_a).pop()  # that node talks to both sides
        blocked = _both_ways(side_a, side_b)
    elif shape == "one-way":
        blocked = {(a, b) for a in side_a for b in side_b}
    else:
        blocked = _both_ways(side_a, side_b)
    return Partition(shape, frozenset(blocked), tuple(side_a), tuple(side_b))


def _both_ways(side_a: list[int], side_b: list[int]) -> set[tuple[int, int]]:
    return {(a, b) for a in side_a for b in side_b} | {(b, a) for a in side_a for b in side_b}


def choose_duration_us(rng: random.Random, duration_max_us: int) -> int:
    return rng.randint(max(1, duration_max_us // 5), max(1, duration_max_us))


def choose_crash_victim(rng: random.Random, up: list[int], leaders: list[int]) -> int | None:
    """A node to crash among those up: a leader a third of the time, when there is one."""
    if not up:
        return None
    candidates = [node for node in leaders if node in up]
    if candidates and rng.random() < 0.33:
        return rng.choice(candidates)
    return rng.choice(up)


@dataclass(frozen=True, slots=True)
class MembershipChoice:
    """A change to propose: `action` is add-learner, promote, remove-voter or remove-learner."""

    action: str
    node_id: int


def choose_membership_change(
    rng: random.Random,
    voters: list[int],
    learners: list[int],
    candidates: list[int],
    voters_min: int = 3,
) -> MembershipChoice | None:
    """A valid change for a shard with these voters and learners; `candidates` are nodes that
    may join as new learners (never members before: replica ids are not reused)."""
    options: list[MembershipChoice] = []
    options.extend(MembershipChoice("add-learner", node) for node in candidates)
    options.extend(MembershipChoice("promote", node) for node in learners)
    options.extend(MembershipChoice("remove-learner", node) for node in learners)
    if len(voters) > voters_min:
        options.extend(MembershipChoice("remove-voter", node) for node in voters)
    if not options:
        return None
    return rng.choice(options)


@dataclass(frozen=True, slots=True)
class JointChoice:
    """A multi-replica change: `singles` lists (action, node) with action add-voter,
    add-learner, promote, demote or remove; `transition` is auto, implicit or explicit
    (how the joint configuration is left: ConfChangeTransition)."""

    shape: str
    singles: tuple[tuple[str, int], ...]
    transition: str


JOINT_TRANSITIONS = ("auto", "implicit", "explicit")


def choose_joint_change(
    rng: random.Random,
    voters: list[int],
    learners: list[int],
    candidates: list[int],
    voters_min: int = 3,
    leader: int = 0,
) -> JointChoice | None:
    """A change of several replicas at once for a shard with these voters and learners
    (`candidates`: nodes never members before, which may join). Every shape but
    `add-learners` changes two or more voters, so the group goes through a joint
    configuration; any shape does under the implicit and explicit transitions. `replace`
    keeps the leader and, half the time, replaces as many voters as there are learners (up
    to all but the leader): then the voters left of the old configuration are no majority
    of it, the case where a commit must count both halves."""
    shapes: list[tuple[str, tuple[tuple[str, int], ...]]] = []
    if len(candidates) >= 1:
        added = rng.sample(candidates, min(2, len(candidates)))
        shapes.append(("add-learners", tuple(("add-learner", n) for n in added)))
    if len(candidates) >= 2:
        shapes.append(("add-two-voters", tuple(("add-voter", n)
                                               for n in rng.sample(candidates, 2))))
    if len(learners) >= 2:
        shapes.append(("promote-two", tuple(("promote", n) for n in rng.sample(learners, 2))))
    removable = [v for v in voters if v != leader]
    if learners and removable:
        most = min(len(learners), len(removable))
        count = most if rng.random() < 0.5 else rng.randint(1, most)
        promoted = rng.sample(learners, count)
        removed = rng.sample(removable, count)
        shapes.append((f"replace-{count}", tuple(("promote", n) for n in promoted)
                       + tuple(("remove", n) for n in removed)))
        shapes.append(("demote-promote", (("demote", rng.choice(voters)),
                                          ("promote", rng.choice(learners)))))
    if len(voters) - 2 >= voters_min:
        shapes.append(("remove-two", tuple(("remove", n) for n in rng.sample(voters, 2))))
    transition = rng.choice(JOINT_TRANSITIONS)
    if not shapes:
        return None
    # Half the time, work toward the telling case: learners enough to replace all voters but
    # the leader, then that replacement.
    wanted = f"replace-{len(removable)}" if len(learners) >= len(removable) else "add-learners"
    favoured = [shape for shape in shapes if shape[0] == wanted]
    shape, singles = favoured[0] if favoured and rng.random() < 0.5 else rng.choice(shapes)
    return JointChoice(shape, singles, transition)
