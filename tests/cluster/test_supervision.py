"""The restart policy of `quorumkv up` (cluster/supervision.py): restart, back-off, give up."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from quorumkv.cluster.supervision import GiveUp, LeaveStopped, Restart, RestartPolicy, after_exit

POLICY = RestartPolicy(backoff_ms_min=250, backoff_ms_max=8_000, stable_run_ms=10_000,
                       quick_failures_max=5)
SIGKILL = -9


def test_a_clean_exit_is_left_stopped() -> None:
    """A node that exited 0 (stopped gracefully on purpose) is not restarted."""
    assert after_exit(POLICY, 0, 0, 60_000, True) == LeaveStopped()
    assert after_exit(POLICY, 3, 0, 100, False) == LeaveStopped()


def test_a_node_killed_after_a_stable_run_comes_back_after_the_shortest_wait() -> None:
    """SIGKILL (or an error exit) after a stable run: restart after backoff_ms_min, and the
    count of quick failures starts over."""
    assert after_exit(POLICY, 0, SIGKILL, 60_000, True) == Restart(250, 0)
    assert after_exit(POLICY, 4, 70, 10_000, True) == Restart(250, 0)


def test_quick_failures_double_the_wait_up_to_the_bound_then_give_up() -> None:
    """Deaths right after start in a row: 500, 1000, 2000, 4000 ms, then give up at the fifth."""
    failures, delays = 0, []
    while True:
        decision = after_exit(POLICY, failures, 1, 800, True)
        if isinstance(decision, GiveUp):
            break
        assert isinstance(decision, Restart)
        delays.append(decision.delay_ms)
        failures = decision.quick_failures
    assert delays == [500, 1000, 2000, 4000]
    assert decision == GiveUp(5)


def test_a_node_that_dies_before_listening_fails_quickly_however_long_it_took() -> None:
    """A start that dies before the node listens is a quick failure even if it took longer
    than stable_run_ms (a slow machine): the crash loop is still given up on."""
    assert after_exit(POLICY, 0, 1, 60_000, False) == Restart(500, 1)
    assert after_exit(POLICY, 4, 1, 60_000, False) == GiveUp(5)


@given(st.integers(0, 100), st.integers(-64, 255), st.integers(0, 10**9), st.booleans(),
       st.integers(1, 20))
def test_every_restart_waits_within_the_bounds(failures: int, status: int, ran_ms: int,
                                               listened: bool, quick_failures_max: int) -> None:
    """Whatever the history, a restart waits between the two bounds, and a node is given up
    on only after quick_failures_max quick failures in a row."""
    policy = RestartPolicy(250, 8_000, 10_000, quick_failures_max)
    decision = after_exit(policy, failures, status, ran_ms, listened)
    if status == 0:
        assert decision == LeaveStopped()
    elif isinstance(decision, Restart):
        assert 250 <= decision.delay_ms <= 8_000
        assert decision.quick_failures < quick_failures_max
    else:
        assert isinstance(decision, GiveUp)
        assert (ran_ms < 10_000 or not listened) and (
            decision.quick_failures >= quick_failures_max)


def test_a_final_exit_status_is_given_up_on_at_once() -> None:
    """A node exiting with a status the policy names final (78: its storage was lost) is not
    restarted, even on its first failure after a long, stable run."""
    policy = RestartPolicy(250, 8_000, 10_000, 5, final_exit_statuses=frozenset({78}))
    assert after_exit(policy, 0, 78, 60_000, True) == GiveUp(1, final=True)
    assert after_exit(policy, 0, 70, 60_000, True) == Restart(250, 0)
