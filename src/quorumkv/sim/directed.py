"""Directed faults: the fault sequences that reach the states where single Raft rules matter.

Random partitions and crashes reach some histories only by luck. These faults aim at them,
each drawn per seed (sim/options.py) and struck during the fault phase like the others:

- `joint`: membership changes of several replicas at once (replace two voters, promote two
  learners, demote one voter while promoting another, add two voters, remove two), so the
  group passes through a joint configuration (thesis §4.3) and leaves it, automatically or
  by an explicit leave-joint the fault proposes later. Half the time, the moment the leader
  applies the entry that enters it, the leader is cut off from the outgoing-only voters for
  a few ticks, then cut off alone while they rejoin: they may still count the old voters
  alone, so entries committed meanwhile must have had both halves.
- `figure8`: the partition sequence of the Raft paper's Figure 8. The leader L is cut off
  with a minority, where clients keep sending it writes (entries of its term that reach only
  the minority); as soon as the majority elects M, M is cut off alone (its own entries stay
  with it) and L's side rejoins the rest; once someone else (L or its companion: their logs
  are the longest) is elected, its entries of its own term are lost for a few network delays
  (its appends arrive cut short before the first of them, as if sent in smaller messages
  whose later ones were lost: old entries pass, Figure 8 (c)), then it is cut off alone and
  M rejoins. A leader that commits an
  entry of an earlier term by counting replicas lets M overwrite a committed entry: state
  machine safety and linearizability see it. With `append_entries_max` drawn small, the new
  leader's appends carry old entries without its own, which is when counting goes wrong.
- `rejoin`: a follower is cut off for two to five election timeouts, from everyone (it
  rejoins behind; without pre-vote its term climbs) or from the leader only (it can canvass
  the other followers, which must ignore it while they hear the leader: stickiness). Should
  it win while cut off, its old leader is made deaf at once and clients with stale routing
  go to it: if the followers broke stickiness, that leader still trusts its lease and
  answers reads the new leader's writes have made stale. At the rejoin, half the time the
  leader is made deaf too.
- leases: a paused leader may also be cut off for the pause and a while after, and a leader
  asked to hand over may be made deaf; either way clients with stale routing (each with even
  odds) then send to it, which is how a lease that outlives a pause or a transfer shows.
- `ready-crash`: see simulator.MidReadyCrash; armed here, sprung inside a Ready cycle.

Each cut is a named partition (sim/network.py), so directed and random partitions overlap
without undoing each other; every cut heals by itself, and the liveness phase heals all.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from quorumkv.codec.peer import PeerMessage
from quorumkv.raft.confchange import (
    ConfChange,
    ConfChangeSingle,
    ConfChangeTransition,
    ConfChangeType,
    is_simple,
)
from quorumkv.raft.types import Message, MessageType
from quorumkv.sim import faults

if TYPE_CHECKING:
    from quorumkv.host.host import Host
    from quorumkv.sim.simulator import SimNode, Simulation

_SINGLE_TYPES = {"add-voter": ConfChangeType.ADD_VOTER, "add-learner": ConfChangeType.ADD_LEARNER,
                 "promote": ConfChangeType.PROMOTE_LEARNER, "demote": ConfChangeType.ADD_LEARNER,
                 "remove": ConfChangeType.REMOVE}
_TRANSITIONS = {"auto": ConfChangeTransition.AUTO,
                "implicit": ConfChangeTransition.JOINT_IMPLICIT,
                "explicit": ConfChangeTransition.JOINT_EXPLICIT}


def _ignore(result: object) -> None:
    """The reply to a write the Figure-8 fault made (no client waits for it)."""


@dataclass(slots=True)
class _Figure8:
    """One Figure-8 sequence in progress on a shard."""

    shard_id: int
    first: int  # the leader cut off with a minority
    first_term: int
    minority: frozenset[int]
    stage: str = "await-second"  # then await-third, then await-cut, then done
    second: int = 0
    number: int = 0
    third: int = 0
    third_term: int = 0


@dataclass(slots=True)
class DirectedFaults:
    """The directed faults of one run; `features` names what the run reached."""

    simulation: Simulation
    features: set[str] = field(default_factory=set)
    _figure8: _Figure8 | None = None
    _figure8_count: int = 0
    _cut_tokens: dict[str, int] = field(default_factory=dict)
    _rejoin: tuple[int, int, int] | None = None  # (shard, follower cut off, its leader)
    # (shard, old leader, transferee, when asked) of a watched hand-over
    transfer_watch: tuple[int, int, int, int] | None = None

    # ---- named cuts ----------------------------------------------------------------------

    def cut(self, name: str, links: set[tuple[int, int]], duration_us: int) -> None:
        """Block `links` under `name` (replacing that name's cut) for `duration_us`."""
        simulation = self.simulation
        token = self._cut_tokens.get(name, 0) + 1
        self._cut_tokens[name] = token
        simulation.network.partition(links, name)
        simulation.queue.push(simulation.queue.now_us + duration_us, "heal-cut", (name, token))

    def on_heal_cut(self, name: str, token: int) -> None:
        if self._cut_tokens.get(name) == token and self.simulation.network.is_partitioned(name):
            self.simulation.network.heal(name)
            self.simulation.trace.record(self.simulation.queue.now_us, f"heal {name}")

    def isolate_links(self, node_id: int) -> set[tuple[int, int]]:
        others = [n for n in self.simulation.nodes if n != node_id]
        return {(node_id, n) for n in others} | {(n, node_id) for n in others}

    def deaf_links(self, node_id: int) -> set[tuple[int, int]]:
        """Every link into `node_id`: it still sends, it hears nothing."""
        return {(n, node_id) for n in self.simulation.nodes if n != node_id}

    def election_timeout_us(self) -> int:
        options = self.simulation.options
        return options.election_timeout_ticks * options.tick_us

    def heal_all(self) -> None:
        """The liveness phase: every directed sequence stops."""
        self._figure8 = None
        self._rejoin = None
        self.transfer_watch = None
        self._cut_tokens.clear()
        self.simulation.network.rewrite = None

    def _random_leader(self) -> tuple[int, SimNode, Host] | None:
        """A shard drawn at random, its running leader and that one's host, if any."""
        simulation = self.simulation
        shard_id = simulation.fault_rng.choice(simulation.shard_ids)
        leader = simulation.leader_node(shard_id)
        if leader is None or leader.host is None:
            return None
        return shard_id, leader, leader.host

    # ---- joint consensus -----------------------------------------------------------------

    def joint(self) -> None:
        simulation = self.simulation
        rng = simulation.fault_rng
        chosen = self._random_leader()
        if chosen is None:
            return
        shard_id, leader, host = chosen
        conf = simulation.conf_state(leader, shard_id)
        if conf.voters_outgoing:
            if not conf.auto_leave:
                self._propose(leader, shard_id, ConfChange.leave_joint(), "leave-joint")
            return
        choice = faults.choose_joint_change(
            rng, sorted(conf.voters), sorted(conf.learners), simulation.join_candidates(shard_id),
            leader=leader.node_id)
        if choice is None:
            return
        for action, node_id in choice.singles:
            if action in ("add-voter", "add-learner"):
                simulation.members_ever[shard_id].add(node_id)
                if not simulation.prepare_replica(node_id, shard_id):
                    return
        change = ConfChange(tuple(ConfChangeSingle(_SINGLE_TYPES[action], node_id)
                                  for action, node_id in choice.singles),
                            _TRANSITIONS[choice.transition])
        shape = choice.shape if is_simple(conf, change) else f"{choice.shape} (joint)"
        self._propose(leader, shard_id, change, shape, enters_joint=not is_simple(conf, change))

    def _propose(self, leader: SimNode, shard_id: int, change: ConfChange, shape: str,
                 enters_joint: bool = False) -> None:
        simulation = self.simulation
        simulation.count_fault("joint", f"shard {shard_id} {shape}: {change} "
                               f"via node {leader.node_id}")

        def done(result: object) -> None:
            applied = not isinstance(result, BaseException)
            simulation.membership_done(shard_id, str(change), result)
            if applied and enters_joint:
                self.features.add("joint-consensus")
                self._maybe_split_joint(leader, shard_id)
            if applied and change.is_leave_joint():
                self.features.add("joint-left-explicitly")

        assert leader.host is not None
        leader.host.propose_conf_change(shard_id, change, done)
        simulation.wake(leader)

    def _maybe_split_joint(self, leader: SimNode, shard_id: int) -> None:
        """The leader just applied the entry entering a joint configuration: half the time,
        cut it off from the voters that only the outgoing half has (they may not know yet
        that the joint configuration holds, so they still count the old voters alone), let
        it go on for a few ticks (entries it commits now need both halves), then cut it off
        and let those voters rejoin. A leader that commits with the incoming majority only
        lets them elect one of themselves without those entries."""
        simulation = self.simulation
        if simulation.phase != "faults" or leader.host is None \
                or simulation.fault_rng.random() < 0.5:
            return
        conf = simulation.conf_state(leader, shard_id)
        leaving = sorted(set(conf.voters_outgoing) - set(conf.voters) - {leader.node_id})
        if not leaving:
            return
        links = {(leader.node_id, n) for n in leaving} | {(n, leader.node_id) for n in leaving}
        span = simulation.fault_rng.randint(1, 5) * simulation.options.tick_us
        simulation.count_fault("joint", f"shard {shard_id}: leader {leader.node_id} cut off "
                               f"from outgoing voters {leaving} for {span}us")
        self.cut("joint-split", links, span)
        simulation.queue.push(simulation.queue.now_us + span, "joint-split",
                              (leader.node_id, self._cut_tokens["joint-split"]))

    def on_joint_split(self, leader: int, token: int) -> None:
        """The second step: the leader is cut off alone, the outgoing voters rejoin."""
        simulation = self.simulation
        if self._cut_tokens.get("joint-split") != token or simulation.phase != "faults":
            return
        self.features.add("joint-split")
        duration = simulation.fault_rng.randint(2, 4) * self.election_timeout_us()
        simulation.count_fault("joint", f"leader {leader} cut off alone for {duration}us")
        self.cut("joint-split", self.isolate_links(leader), duration)

    # ---- Figure 8 ------------------------------------------------------------------------

    def figure8(self) -> None:
        simulation = self.simulation
        if self._figure8 is not None and simulation.network.is_partitioned("figure8"):
            return  # a sequence is under way (one whose cut healed unfinished is dropped)
        rng = simulation.fault_rng
        chosen = self._random_leader()
        if chosen is None:
            return
        shard_id, leader, host = chosen
        voters = sorted(simulation.conf_state(leader, shard_id).voters)
        others = [v for v in voters if v != leader.node_id]
        companions = rng.sample(others, max(0, (len(voters) - 1) // 2 - 1)) if others else []
        minority = frozenset([leader.node_id, *companions])
        self._figure8_count += 1
        term = host.replica(shard_id).node.term
        self._figure8 = _Figure8(shard_id, leader.node_id, term, minority,
                                 number=self._figure8_count)
        rest = [n for n in simulation.nodes if n not in minority]
        links = {(a, b) for a in minority for b in rest} | {(b, a) for a in minority for b in rest}
        writes = rng.randint(2, 6)
        simulation.count_fault("figure8", f"shard {shard_id}: leader {leader.node_id} (term "
                               f"{term}) cut off with {sorted(companions)}, given {writes} "
                               "writes")
        self.cut("figure8", links, 8 * self.election_timeout_us())
        # Entries of its term that only the minority will hold (Figure 8 (a)): writes of
        # keys outside the workload's (not in the checked history), as a client cut off
        # with it would send.
        for number in range(writes):
            key = f"figure8-{self._figure8_count}-{number}".encode()
            host.submit(shard_id, b"SET", (key, b"stale"), _ignore)
        simulation.wake(leader)

    def on_leader(self, node_id: int, shard_id: int, term: int) -> None:
        """A replica became leader: the next stage of a Figure-8 sequence may begin now, or
        a rejoining follower won while its old leader still runs."""
        self._on_rejoiner_won(node_id, shard_id)
        self._on_transferee_won(node_id, shard_id)
        sequence = self._figure8
        simulation = self.simulation
        if sequence is None or sequence.shard_id != shard_id or simulation.phase != "faults":
            return
        if sequence.stage == "await-second" and node_id not in sequence.minority \
                and term > sequence.first_term:
            sequence.stage, sequence.second = "await-third", node_id
            simulation.count_fault("figure8", f"shard {shard_id}: new leader {node_id} "
                                   f"(term {term}) cut off alone")
            self.cut("figure8", self.isolate_links(node_id), 8 * self.election_timeout_us())
        elif sequence.stage == "await-third" and node_id != sequence.second:
            # Its own entries are lost for a while, old ones pass: followers acknowledge
            # entries of earlier terms only. Then it is cut off.
            sequence.stage, sequence.third, sequence.third_term = "await-cut", node_id, term
            simulation.network.rewrite = self._without_own_entries
            span = simulation.fault_rng.randint(4, 8) * simulation.options.delay_max_us
            simulation.queue.push(simulation.queue.now_us + span, "figure8-cut",
                                  (sequence.number, node_id))

    def _without_own_entries(self, source: int, message: PeerMessage) -> PeerMessage:
        """An append of the third leader, cut short before its first entry of its own term
        (an append with fewer entries, or none: a probe, is one a leader may send)."""
        sequence = self._figure8
        if sequence is None or source != sequence.third or not isinstance(message, Message) \
                or message.type != MessageType.APPEND or message.group_id != sequence.shard_id:
            return message
        kept = list(itertools.takewhile(lambda entry: entry.term != sequence.third_term,
                                        message.entries))
        if len(kept) == len(message.entries):
            return message
        return dataclasses.replace(message, entries=kept)

    def on_figure8_cut(self, number: int, node_id: int) -> None:
        sequence = self._figure8
        simulation = self.simulation
        if sequence is None or sequence.number != number or simulation.phase != "faults" \
                or sequence.stage != "await-cut":
            return
        sequence.stage = "done"
        self._figure8 = None
        simulation.network.rewrite = None
        self.features.add("figure8")
        simulation.count_fault("figure8", f"shard {sequence.shard_id}: third leader {node_id} "
                               f"cut off alone, {sequence.second} rejoins")
        duration = simulation.fault_rng.randint(2, 6) * self.election_timeout_us()
        self.cut("figure8", self.isolate_links(node_id), duration)

    # ---- disruptive rejoin ---------------------------------------------------------------

    def rejoin(self) -> None:
        simulation = self.simulation
        if self.simulation.network.is_partitioned("rejoin"):
            return
        rng = simulation.fault_rng
        chosen = self._random_leader()
        if chosen is None:
            return
        shard_id, leader, host = chosen
        voters = sorted(simulation.conf_state(leader, shard_id).voters)
        followers = [v for v in voters if v != leader.node_id and v in simulation.up()]
        if not followers:
            return
        follower = rng.choice(followers)
        duration = rng.randint(2, 5) * self.election_timeout_us()
        # Cut off from everyone (it rejoins behind, its term perhaps high), or from the
        # leader only: it stays up to date through nobody, but can canvass the followers,
        # which must ignore it while they hear the leader (stickiness).
        from_leader_only = rng.random() < 0.5
        links = ({(follower, leader.node_id), (leader.node_id, follower)} if from_leader_only
                 else self.isolate_links(follower))
        simulation.count_fault("rejoin", f"shard {shard_id}: follower {follower} cut off from "
                               f"{'the leader' if from_leader_only else 'all'} for {duration}us")
        self.cut("rejoin", links, duration)
        self._rejoin = (shard_id, follower, leader.node_id)
        simulation.queue.push(simulation.queue.now_us + duration, "rejoin",
                              (shard_id, follower, self._cut_tokens["rejoin"]))

    def _on_rejoiner_won(self, node_id: int, shard_id: int) -> None:
        """The cut-off follower was elected: its old leader is made deaf now (so nothing
        tells it), and clients with stale routing go to it. If the followers had kept to
        leader stickiness, the old leader had stepped down first; if not, it still trusts
        its lease and answers reads the new leader's writes have made stale."""
        rejoin = self._rejoin
        simulation = self.simulation
        if rejoin is None or rejoin[:2] != (shard_id, node_id) or simulation.phase != "faults":
            return
        old = rejoin[2]
        self._rejoin = None
        self.features.add("rejoiner-won")
        simulation.trace.record(simulation.queue.now_us, f"rejoining node {node_id} won: "
                                f"old leader {old} made deaf")
        duration = simulation.fault_rng.randint(1, 3) * self.election_timeout_us()
        self.cut(f"rejoin-deaf-{old}", self.deaf_links(old), duration)
        self.route_later(old, shard_id, duration)

    def on_rejoin(self, shard_id: int, follower: int, token: int) -> None:
        simulation = self.simulation
        if self._cut_tokens.get("rejoin") != token or simulation.phase != "faults":
            return
        self._rejoin = None
        node = simulation.nodes[follower]
        leader = simulation.leader_node(shard_id)
        term = node.host.replica(shard_id).node.term if node.host is not None \
            and shard_id in node.host.shard_ids() else 0
        leader_term = leader.host.replica(shard_id).node.term \
            if leader is not None and leader.host is not None else 0
        self.features.add("disruptive-rejoin")
        words = f"follower {follower} (term {term}) rejoins"
        if leader is not None and simulation.fault_rng.random() < 0.5:
            words += f"; leader {leader.node_id} (term {leader_term}) made deaf"
            self.cut("rejoin-deaf", self.deaf_links(leader.node_id),
                     simulation.fault_rng.randint(1, 3) * self.election_timeout_us())
        simulation.count_fault("rejoin", f"shard {shard_id}: {words}")

    # ---- leases: pauses and transfers that cut the old leader off --------------------------

    def stale_leader(self) -> None:
        """A leader that must stop serving reads: paused for 1.5-3 election timeouts and cut
        off until a while after it resumes, or asked to hand over and made deaf once the
        transferee wins. Its clients
        give up on it and find the new leader, which commits their writes; then clients with
        stale routing come back to the old one. A lease that outlives the pause (missed ticks
        not counted) or the transfer (not forfeited) answers them with stale values."""
        simulation = self.simulation
        rng = simulation.fault_rng
        chosen = self._random_leader()
        if chosen is None:
            return
        shard_id, leader, host = chosen
        node_id = leader.node_id
        timeout = self.election_timeout_us()
        lease = simulation.options.read_only == "lease"
        if rng.random() < 0.5:
            duration = rng.randint(3 * timeout // 2, 3 * timeout)
            simulation.count_fault("stale-leader", f"shard {shard_id}: leader {node_id} "
                                   f"paused for {duration}us and cut off")
            simulation.pause(node_id, duration)
            self.cut(f"pause-cut-{node_id}", self.isolate_links(node_id),
                     duration + rng.randint(1, 2) * timeout)
            simulation.abandon_operations_on(node_id)
            simulation.queue.push(simulation.queue.now_us + duration, "route-to",
                                  (node_id, (shard_id,), False))
            for _ in range(2):
                when = simulation.queue.now_us + duration + rng.randint(0, timeout)
                simulation.queue.push(when, "route-to", (node_id, (shard_id,), True))
            if lease:
                self.features.add("lease-pause")
            return
        voters = [v for v in simulation.conf_state(leader, shard_id).voters if v != node_id]
        if not voters:
            return
        target = rng.choice(sorted(voters))
        simulation.count_fault("stale-leader", f"shard {shard_id}: leader {node_id} hands "
                               f"over to {target}, deaf once {target} wins")
        host.transfer_leader(shard_id, target)
        simulation.wake(leader)
        self.transfer_watch = (shard_id, node_id, target, simulation.queue.now_us)
        simulation.queue.push(simulation.queue.now_us + 2 * timeout, "unwatch",
                              (shard_id, node_id))
        self.features.add("transfer")

    def unwatch(self, shard_id: int, node_id: int) -> None:
        """The hand-over did not finish in time: stop watching for it."""
        if self.transfer_watch is not None and self.transfer_watch[:2] == (shard_id, node_id):
            self.transfer_watch = None

    def _on_transferee_won(self, node_id: int, shard_id: int) -> None:
        """The transferee of a watched hand-over won: the old leader is made deaf now (it heard
        the acknowledgements of heartbeats sent until the others voted, which date its lease),
        and clients with stale routing come back to it, mostly around the moment the transfer
        is given up (an election timeout after it began): a lease kept after the hand-over
        answers reads from then on, until it runs out."""
        watch = self.transfer_watch
        simulation = self.simulation
        if watch is None or (watch[0], watch[2]) != (shard_id, node_id) \
                or simulation.phase != "faults":
            return
        self.transfer_watch = None
        _, old, _, started_us = watch
        timeout = self.election_timeout_us()
        rng = simulation.fault_rng
        duration = rng.randint(2, 3) * timeout
        simulation.trace.record(simulation.queue.now_us, f"old leader {old} made deaf "
                                f"for {duration}us")
        self.cut(f"transfer-deaf-{old}", self.deaf_links(old), duration)
        self.route_to(old, (shard_id,), True)
        for _ in range(6):
            when = max(simulation.queue.now_us,
                       started_us + rng.randint(timeout * 9 // 10, timeout * 3 // 2))
            simulation.queue.push(when, "route-to", (old, (shard_id,), True))
        if simulation.options.read_only == "lease":
            self.features.add("lease-transfer-deaf")

    def after_pause(self, node_id: int, duration_us: int, led_shards: list[int]) -> None:
        """A node was paused (leading `led_shards`): perhaps cut it off for the pause and a
        while after; then, when it resumes, clients with stale routing come to it."""
        simulation = self.simulation
        if led_shards and simulation.options.read_only == "lease":
            self.features.add("lease-pause")
        rate = simulation.options.pause_cut_rate
        if rate and simulation.fault_rng.random() < rate:
            extra = simulation.fault_rng.randint(0, 2 * self.election_timeout_us())
            simulation.trace.record(simulation.queue.now_us, f"cut node {node_id} for the "
                                    f"pause and {extra}us")
            self.cut(f"pause-cut-{node_id}", self.isolate_links(node_id), duration_us + extra)
            if led_shards:
                # Its clients give up on it and find the new leader; when it resumes, clients
                # with stale routing come back (what they sent meanwhile waits for it too).
                if simulation.options.read_only == "lease":
                    self.features.add("lease-pause-cut")
                simulation.abandon_operations_on(node_id)
                simulation.queue.push(simulation.queue.now_us + duration_us, "route-to",
                                      (node_id, tuple(led_shards), False))

    def after_transfer(self, shard_id: int, old_leader: int) -> None:
        """A leader was asked to hand over: perhaps make it deaf (it still sends, hears
        nothing) and send clients with stale routing to it."""
        simulation = self.simulation
        self.features.add("transfer")
        rate = simulation.options.transfer_cut_rate
        if rate and simulation.fault_rng.random() < rate:
            if simulation.options.read_only == "lease":
                self.features.add("lease-transfer-deaf")
            duration = simulation.fault_rng.randint(1, 3) * self.election_timeout_us()
            simulation.trace.record(simulation.queue.now_us, f"old leader {old_leader} made "
                                    f"deaf for {duration}us")
            self.cut(f"transfer-deaf-{old_leader}", self.deaf_links(old_leader), duration)
            self.route_later(old_leader, shard_id, duration)

    def route_later(self, node_id: int, shard_id: int, within_us: int, times: int = 2) -> None:
        """Clients with stale routing come to `node_id` now and at `times` drawn moments
        within `within_us` (each time, those stuck on it give up first)."""
        simulation = self.simulation
        self.route_to(node_id, (shard_id,), True)
        for _ in range(times):
            when = simulation.queue.now_us + simulation.fault_rng.randint(0, within_us)
            simulation.queue.push(when, "route-to", (node_id, (shard_id,), True))

    def route_to(self, node_id: int, shard_ids: tuple[int, ...], abandon: bool) -> None:
        """Clients with stale routing: each, with even odds, now believes `node_id` leads
        these shards (as a client that cached an old leader does) and sends there next;
        with `abandon`, those clients give up what they wait for first (a short client
        timeout), so they come at once."""
        simulation = self.simulation
        if simulation.phase != "faults":
            return
        routed = [client for client in simulation.workload.clients
                  if simulation.fault_rng.random() < 0.5]
        for client in routed:
            for shard_id in shard_ids:
                client.leader_guess[shard_id] = node_id
            if abandon:
                simulation.abandon_operation(client)
        simulation.trace.record(simulation.queue.now_us, f"clients {[c.client_id for c in routed]}"
                                f" route shards {list(shard_ids)} to node {node_id}")
