"""bench/loadgen.py against a real 3-node quorumkv cluster: bulk loading, each workload, the
figures it reports; and its hand-encoded etcd messages, byte for byte."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from quorumkv.server.local_cluster import LocalCluster, resp_command

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))  # spawned workers inherit sys.path and import loadgen by name

import loadgen  # noqa: E402


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    base = tmp_path_factory.mktemp("loadgen")
    with LocalCluster(base, nodes=3, server_args=["--shards", "3"]) as local:
        local.start()
        local.wait_for_leader()
        local.wait_for_preferred_leaders()
        yield local


def endpoints(cluster: LocalCluster) -> list[tuple[str, int]]:
    return [("127.0.0.1", cluster.client_ports[n]) for n in cluster.node_ids]


def test_bulk_load_writes_every_key_grouped_by_shard(cluster: LocalCluster) -> None:
    loadgen.bulk_load("resp", endpoints(cluster), "range", 0, 3_000, value_bytes=10)
    port = cluster.client_ports[1]
    for index in (0, 1, 1_499, 2_999):
        key = loadgen.key_name(index)
        assert resp_command(port, b"GET", key) == b"$10\r\nvvvvvvvvvv\r\n"
    assert resp_command(port, b"EXISTS", loadgen.key_name(3_000)) == b":0\r\n"


@pytest.mark.parametrize("workload", ["write", "read", "mix"])
@pytest.mark.parametrize("pipeline", [1, 8])
def test_a_run_counts_what_it_measured(cluster: LocalCluster, workload: str,
                                       pipeline: int) -> None:
    marks: list[str] = []
    spec = loadgen.LoadSpec(protocol="resp", endpoints=endpoints(cluster), workload=workload,
                            clients=4, pipeline=pipeline, warmup_s=0.2, duration_s=1.0,
                            keys=3_000, processes=2, cluster_routing=True)
    result = loadgen.run_load(spec, on_window_start=lambda: marks.append("start"),
                              on_window_end=lambda: marks.append("end"))
    assert marks == ["start", "end"]
    assert result["errors"] == 0, result["error_samples"]
    assert result["ops"] > 0
    assert sum(count for _, count in result["histogram"]) == result["ops"]
    assert result["ops"] % pipeline == 0
    assert 0 < result["p50_ms"] <= result["p99_ms"]
    assert result["loadgen_cpu_s"] > 0


def test_percentiles_read_from_the_merged_histogram() -> None:
    histogram: dict[int, int] = {}
    for millis in [1.0] * 98 + [50.0, 100.0]:
        bucket = loadgen.bucket_of(millis / 1000)
        histogram[bucket] = histogram.get(bucket, 0) + 1
    assert loadgen.percentile_ms(histogram, 0.5) == pytest.approx(1.0, rel=0.03)
    assert loadgen.percentile_ms(histogram, 0.99) == pytest.approx(50.0, rel=0.03)
    assert loadgen.percentile_ms(histogram, 1.0) == pytest.approx(100.0, rel=0.03)


def test_etcd_messages_are_the_protobuf_encoding() -> None:
    # PutRequest{key: "k", value: "vv"}: field 1 (0x0a) and field 2 (0x12), length-delimited.
    assert loadgen.etcd_put(b"k", b"vv") == b"\x0a\x01k\x12\x02vv"
    # RangeRequest{key: "k"}; serializable (field 7) absent: a linearizable read.
    assert loadgen.etcd_range(b"k") == b"\x0a\x01k"
    # TxnRequest{success: [RequestOp{request_put: PutRequest}]}: fields 2 and 2, nested.
    put = b"\x0a\x01k\x12\x02vv"
    assert loadgen.etcd_txn_puts([(b"k", b"vv")]) == b"\x12\x09\x12\x07" + put
    # Lengths past 127 take two varint bytes.
    assert loadgen.etcd_range(b"x" * 200)[:3] == b"\x0a\xc8\x01"
