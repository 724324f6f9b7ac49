"""Operation histories and their checkers: linearizable registers, sets, counters.

Shared by the deterministic simulator (quorumkv.sim) and the Jepsen-style harness
(quorumkv verify). A harness records `Event`s into a `History` (or JSON lines, see json_lines);
checkers pair them into `Operation`s, split them by key and answer a `Verdict`: valid, invalid
with a counterexample, or unknown when a search bound was hit. The package is pure: no I/O, no
clock, no randomness.
"""

from quorumkv.history.counter_checker import check_counter_history
from quorumkv.history.json_lines import from_json_lines, to_json_lines
from quorumkv.history.linearizability import (
    check_linearizable,
    check_register_history,
    check_register_keys,
)
from quorumkv.history.operation import Event, History, Operation, OpType
from quorumkv.history.register_model import RegisterModel
from quorumkv.history.set_checker import check_set_history
from quorumkv.history.verdict import Verdict

__all__ = [
    "Event",
    "History",
    "OpType",
    "Operation",
    "RegisterModel",
    "Verdict",
    "check_counter_history",
    "check_linearizable",
    "check_register_history",
    "check_register_keys",
    "check_set_history",
    "from_json_lines",
    "to_json_lines",
]
