"""The metadata model: consistency checks and its checksummed, versioned encoding."""

from __future__ import annotations

import contextlib

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from quorumkv.cluster.metadata import (
    ClusterMetadata,
    MemberState,
    Replica,
    ReplicaRole,
    decode_metadata,
    decode_record,
    encode_metadata,
    encode_record,
    make_member,
    make_shard,
    parse_address,
    problems,
)
from quorumkv.cluster.slot_ranges import SlotRange
from quorumkv.errors import CorruptStorage

from .cluster_harness import metadata_for

labels = st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3)


@st.composite
def metadata_values(draw: st.DrawFn) -> ClusterMetadata:
    node_ids = draw(st.sets(st.integers(1, 50), min_size=1, max_size=6))
    members = {n: make_member(n, f"h{n}:{7000 + n}", f"h{n}:{17000 + n}", draw(labels),
                              draw(st.sampled_from(MemberState))) for n in node_ids}
    shards = {}
    for shard_id in draw(st.sets(st.integers(0, 40), max_size=5)):
        hosts = draw(st.lists(st.sampled_from(sorted(node_ids)), min_size=1, unique=True))
        replicas = [Replica(n, n * 10, draw(st.sampled_from(ReplicaRole))) for n in hosts]
        start = draw(st.integers(0, 16383))
        shards[shard_id] = make_shard(shard_id, [SlotRange(start, start)], replicas,
                                      draw(st.integers(1, 99)), hosts[0])
    return ClusterMetadata(draw(st.text(max_size=12)), draw(st.integers(0, 1 << 40)),
                           members, shards)


@given(metadata_values())
def test_metadata_survives_encoding(metadata: ClusterMetadata) -> None:
    """decode_metadata(encode_metadata(m)) == m, and the encoding is deterministic."""
    data = encode_metadata(metadata)
    assert decode_metadata(data) == metadata
    assert encode_metadata(decode_metadata(data)) == data


def test_a_flipped_byte_is_refused() -> None:
    """Every single-byte corruption of an encoded metadata is refused, never misread."""
    metadata = metadata_for(3)
    data = encode_metadata(metadata)
    for index in range(0, len(data), 7):
        damaged = data[:index] + bytes([data[index] ^ 0x40]) + data[index + 1 :]
        with contextlib.suppress(CorruptStorage):
            assert decode_metadata(damaged) == metadata


def test_wrong_version_and_garbage_are_refused() -> None:
    """A record of another format version, or not a record at all, raises CorruptStorage."""
    body = msgpack.packb([1, 2], use_bin_type=True)
    with pytest.raises(CorruptStorage, match="format version 2"):
        decode_record(msgpack.packb([2, 0, body], use_bin_type=True), "test")
    with pytest.raises(CorruptStorage, match="not a framed record"):
        decode_record(b"\xc1garbage", "test")
    with pytest.raises(CorruptStorage, match="metadata"):
        decode_metadata(encode_record(["only", "two"]))
    assert decode_record(encode_record([1, "x"]), "test") == [1, "x"]


def test_placed_metadata_is_sound() -> None:
    """Metadata built by placement has no problems."""
    assert problems(metadata_for(5)) == []


def test_problems_name_what_is_wrong() -> None:
    """Each inconsistency is reported with the shard or node it concerns."""
    metadata = metadata_for(3, shards=3)
    shards = dict(metadata.shards)
    first = shards[1]
    shards[2] = make_shard(2, [SlotRange(first.slot_ranges[0].end, 9000)], shards[2].replicas)
    shards[3] = make_shard(3, shards[3].slot_ranges, [Replica(9, 9)])
    shards[4] = make_shard(4, [], [Replica(1, 1), Replica(1, 2)])
    shards[5] = make_shard(5, [], [Replica(1, 1, ReplicaRole.LEARNER)])
    shards[0] = make_shard(0, [SlotRange(1, 1)], shards[0].replicas)
    members = dict(metadata.members)
    members[4] = make_member(4, "nohost", "h:1")
    found = "\n".join(problems(ClusterMetadata("c", 1, members, shards)))
    assert "slot 1 is owned by both shard 1 and shard 0" in found
    del shards[0]
    assert "owned by both shard 1 and shard 2" in "".join(
        problems(ClusterMetadata("c", 1, members, shards)))
    assert "shard 3: replicas on nodes [9] which are not members" in found
    assert "shard 4: a node hosts two of its replicas" in found
    assert "shard 5: no voter" in found
    assert "shard 0: the metadata shard owns no slots" in found
    assert "node 4: address 'nohost' is not host:port" in found


def test_addresses_parse_like_host_port() -> None:
    """host:port and [v6]:port parse; anything else does not."""
    assert parse_address("127.0.0.1:7001") == ("127.0.0.1", 7001)
    assert parse_address("[::1]:7001") == ("::1", 7001)
    assert parse_address("example.org:6379") == ("example.org", 6379)
    for bad in ("7001", ":7001", "h:0", "h:70000", "h:x", ""):
        assert parse_address(bad) is None, bad
