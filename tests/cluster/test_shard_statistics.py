"""Shard statistics: rates from two samples, restarts tolerated, versioned encoding."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from quorumkv.cluster.shard_statistics import (
    ShardSample,
    ShardStatistics,
    decode_statistics,
    encode_statistics,
    statistics_between,
)
from quorumkv.errors import InvalidCommand


def test_rates_come_from_two_samples() -> None:
    """Reads and writes per second are the totals' growth over the interval."""
    earlier = ShardSample(3, 10_000, 5, 500, 1_000, 200)
    later = ShardSample(3, 12_000, 8, 800, 3_000, 600)
    assert statistics_between(earlier, later) == ShardStatistics(3, 8, 800, 1000.0, 200.0)


def test_first_sample_and_restarted_totals() -> None:
    """One sample gives rates of zero; totals that went backwards count from zero."""
    later = ShardSample(3, 12_000, 8, 800, 40, 10)
    assert statistics_between(None, later) == ShardStatistics(3, 8, 800, 0.0, 0.0)
    earlier = ShardSample(3, 11_000, 8, 800, 5_000, 5_000)
    assert statistics_between(earlier, later) == ShardStatistics(3, 8, 800, 40.0, 10.0)
    assert statistics_between(later, earlier).reads_per_second == 0.0  # time went backwards


@given(st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 1 << 40), st.integers(0, 1 << 40),
                          st.floats(0, 1e9), st.floats(0, 1e9)), max_size=10))
def test_statistics_survive_encoding(rows: list[tuple[int, int, int, float, float]]) -> None:
    """decode_statistics(encode_statistics(s)) == s."""
    statistics = [ShardStatistics(*row) for row in rows]
    assert decode_statistics(encode_statistics(statistics)) == statistics


def test_foreign_records_are_refused() -> None:
    """Another version, a malformed row or garbage raise InvalidCommand."""
    for data in (msgpack.packb([2, []]), msgpack.packb([1, [[1, 2]]]),
                 msgpack.packb([1, [["a", 1, 1, 1.0, 1.0]]]), b"\xc1"):
        with pytest.raises(InvalidCommand):
            decode_statistics(data)
