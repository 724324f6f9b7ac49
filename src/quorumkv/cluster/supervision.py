"""What the supervisor of a local cluster (`quorumkv up`) does when one node process exits.

Theory of operation. `up` keeps N node processes running; when one exits without being asked
to, `after_exit` decides, from the exit and the node's recent history alone, between three
answers (pure: the driver in server/supervisor.py measures time and acts):

- `LeaveStopped`: the node exited 0. A node exits 0 only after a graceful stop (SIGTERM or
  SIGINT sent to it on purpose), so, like systemd's `Restart=on-failure`, it stays stopped.
- `Restart(delay_ms)`: any other exit (an error status, or a signal such as SIGKILL). The
  delay is a bounded exponential back-off: `backoff_ms_min` after a stable run (the node had
  listened for clients and run at least `stable_run_ms`), doubled for each quick failure in a
  row (a death before listening, or sooner after the start), at most `backoff_ms_max`. A node
  killed once comes back at once; one that keeps failing is not restarted in a tight loop,
  however slowly it fails (a start that dies before listening is a failed start).
- `GiveUp`: the node failed quickly `quick_failures_max` times in a row (a crash loop: a bad
  data directory, a port taken, a bug at start), or at once when it exited with a status the
  policy names final (a node that found its storage lost exits 78: no restart can change
  that). Restarting it again would not help; the operator must look at its log. The other
  nodes keep running.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RestartPolicy:
    backoff_ms_min: int
    backoff_ms_max: int
    stable_run_ms: int
    quick_failures_max: int
    final_exit_statuses: frozenset[int] = frozenset()  # exits no restart can mend


@dataclass(frozen=True)
class LeaveStopped:
    """The node stopped cleanly (exit status 0): it was stopped on purpose."""


@dataclass(frozen=True)
class Restart:
    """Start the node again after `delay_ms`; `quick_failures` in a row so far."""

    delay_ms: int
    quick_failures: int


@dataclass(frozen=True)
class GiveUp:
    """Stop restarting the node: it failed quickly `quick_failures` times in a row, or
    (`final`) it exited with a status no restart can mend."""

    quick_failures: int
    final: bool = False


Decision = LeaveStopped | Restart | GiveUp


def after_exit(policy: RestartPolicy, quick_failures: int, exit_status: int,
               ran_ms: int, listened: bool) -> Decision:
    """What to do with a node that exited with `exit_status` (negative: killed by that signal,
    as subprocess reports it) after running `ran_ms` (and answering clients, if `listened`),
    having failed quickly `quick_failures` times in a row before this run."""
    if exit_status == 0:
        return LeaveStopped()
    if exit_status in policy.final_exit_statuses:
        return GiveUp(quick_failures + 1, final=True)
    stable = listened and ran_ms >= policy.stable_run_ms
    failures = 0 if stable else quick_failures + 1
    if failures >= policy.quick_failures_max:
        return GiveUp(failures)
    delay_ms = min(policy.backoff_ms_max, policy.backoff_ms_min << failures)
    return Restart(delay_ms, failures)
