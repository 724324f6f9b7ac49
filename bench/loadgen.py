"""The load generator every system in `make bench` is measured with, so that ratios are fair.

Theory of operation. `run_load(spec)` starts `spec.processes` worker processes (spawned, so
that no event loop or gRPC state is inherited) and divides `spec.clients` among them. Each
worker runs an event loop (uvloop for RESP; the standard loop for etcd, which gRPC's asyncio
support needs) with one coroutine per client; a client keeps `spec.pipeline`
requests in flight as one batch: for RESP the batch is written at once and its replies read in
order (Redis pipelining); for etcd, which speaks gRPC over HTTP/2, the batch is that many
concurrent unary calls on the client's channel (HTTP/2 multiplexing, etcd's pipelining).

Every worker, once imported and ready, waits at a barrier; the parent then sets one common
start time a moment ahead, so a slow start cannot eat into the window. Each worker runs
`warmup_s` unmeasured, then counts the requests completed within the next `duration_s`. A request's latency is the time from sending
its batch to its batch's last reply. Latencies go into a log-bucketed histogram (buckets 2%
wide), which the workers' results merge exactly; p50 and p99 are read from it. Each worker
reports its own CPU time (all threads) over the window, so a saturated load generator is
visible in the results (`loadgen_cpu_s_per_1k_ops`, and `loadgen_worker_busiest`: the busiest
worker's CPU seconds per second, near 1.0 when a worker process saturates its core); the caller samples the servers' CPU over the same window through the
`on_window_start`/`on_window_end` callbacks.

Protocols:
- resp: any Redis-protocol server. With `cluster_routing` the client reads CLUSTER SLOTS and
  sends each key to its slot's node (one connection per node per client), and follows MOVED by
  reloading the slot map; without it, client i connects to endpoint i mod n.
- etcd: etcd's v3 gRPC API (KV/Put, KV/Range with serializable=false, i.e. linearizable reads;
  KV/Txn for bulk loading), messages encoded by hand (two fields each), so no generated code
  is needed; client i connects to endpoint i mod n, as etcd's own client balances, on its own
  HTTP/2 connection (a local subchannel pool: gRPC would otherwise share one connection among
  a process's channels to the same member, where each RESP client has its own).

Workloads over keys `key:%012d` drawn uniformly from [0, keys): write (SET / Put of a value of
`value_bytes`), read (GET / linearizable Range), mix (50/50). A reply that is an error counts in
`errors`, not in throughput.

Usage as a command: `python bench/loadgen.py --protocol resp --endpoints 127.0.0.1:6379
--workload write --clients 64 --duration 10`; prints the result as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import random
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass, field
from queue import Empty
from typing import Any

from quorumkv.server.status import encode_command

SLOT_COUNT = 16384
BUCKET_GROWTH = 1.02
"""Each latency bucket is 2% wider than the one below it."""

START_DELAY_S = 0.5
"""Time between every worker being ready (imported) and the common start."""

READY_TIMEOUT_S = 60.0
"""How long the workers may take to start and import."""

CONNECT_TIMEOUT_S = 10.0
REQUEST_TIMEOUT_S = 10.0
"""A batch without its replies after this long counts as errors and the client reconnects."""

WORKER_JOIN_TIMEOUT_S = 60.0
"""How long after the window the workers may take to report."""

LOAD_PIPELINE = 16
LOAD_BATCH_KEYS_RESP = 200
LOAD_BATCH_KEYS_ETCD = 128
"""Bulk loading: keys per MSET (per slot with cluster routing) and per etcd Txn (etcd's default
--max-txn-ops is 128)."""

LOAD_RETRIES_MAX = 50
LOAD_RETRY_PAUSE_S = 0.2
RETRIED_ERRORS = ("TRYAGAIN", "CLUSTERDOWN", "UNKNOWN")
"""Bulk loading sends an MSET again (at most 50 times, 0.2 s apart) after these replies."""


@dataclass
class LoadSpec:
    protocol: str
    endpoints: list[tuple[str, int]]
    workload: str = "write"
    clients: int = 16
    pipeline: int = 1
    warmup_s: float = 2.0
    duration_s: float = 10.0
    keys: int = 100_000
    value_bytes: int = 100
    processes: int = 2
    cluster_routing: bool = False
    seed: int = 1


@dataclass
class WorkerResult:
    ops: int = 0
    errors: int = 0
    redirects: int = 0
    histogram: dict[int, int] = field(default_factory=dict)
    cpu_s: float = 0.0
    error_samples: list[str] = field(default_factory=list)


def key_name(index: int) -> bytes:
    return b"key:%012d" % index


def bucket_of(seconds: float) -> int:
    micros = max(seconds * 1e6, 1.0)
    return int(math.log(micros) / math.log(BUCKET_GROWTH))


def bucket_upper_ms(bucket: int) -> float:
    return BUCKET_GROWTH ** (bucket + 1) / 1000.0


def percentile_ms(histogram: dict[int, int], fraction: float) -> float:
    total = sum(histogram.values())
    if total == 0:
        return float("nan")
    rank = fraction * total
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= rank:
            return bucket_upper_ms(bucket)
    return bucket_upper_ms(max(histogram))


# ---- RESP ---------------------------------------------------------------------------------------


class RespConnection(asyncio.Protocol):
    """One RESP connection; `request` writes a batch of commands and awaits all their replies."""

    def __init__(self) -> None:
        import hiredis

        self._reader = hiredis.Reader()
        self._waiting: deque[tuple[asyncio.Future[list[Any]], int, list[Any]]] = deque()
        self._transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while True:
            reply = self._reader.gets()
            if reply is False:
                return
            future, count, replies = self._waiting[0]
            replies.append(reply)
            if len(replies) == count:
                self._waiting.popleft()
                if not future.done():
                    future.set_result(replies)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        while self._waiting:
            future, _, _ = self._waiting.popleft()
            if not future.done():
                future.set_exception(ConnectionError("connection lost"))

    def request(self, payload: bytes, count: int) -> asyncio.Future[list[Any]]:
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        if self.closed or self._transport is None:
            future.set_exception(ConnectionError("connection closed"))
            return future
        self._waiting.append((future, count, []))
        self._transport.write(payload)
        return future

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


async def resp_connect(host: str, port: int) -> RespConnection:
    loop = asyncio.get_running_loop()
    _, protocol = await asyncio.wait_for(
        loop.create_connection(RespConnection, host, port), CONNECT_TIMEOUT_S)
    return protocol


def is_error(reply: Any) -> bool:
    return isinstance(reply, Exception)


class SlotMap:
    """Slot -> endpoint, read from CLUSTER SLOTS (the endpoints a system announces)."""

    def __init__(self) -> None:
        self.owner: list[tuple[str, int]] = []
        self.range_of: list[int] = []  # slot -> index of its CLUSTER SLOTS range

    async def load(self, endpoints: Sequence[tuple[str, int]]) -> None:
        last: Exception | None = None
        for host, port in endpoints:
            try:
                connection = await resp_connect(host, port)
            except OSError as error:
                last = error
                continue
            try:
                (reply,) = await asyncio.wait_for(
                    connection.request(encode_command(b"CLUSTER", b"SLOTS"), 1), REQUEST_TIMEOUT_S)
            except (TimeoutError, OSError) as error:
                last = error
                continue
            finally:
                connection.close()
            if is_error(reply) or not reply:
                last = RuntimeError(f"CLUSTER SLOTS from {host}:{port}: {reply!r}")
                continue
            owner: list[tuple[str, int]] = [(host, port)] * SLOT_COUNT
            range_of = [-1] * SLOT_COUNT
            for number, (start, end, primary, *_) in enumerate(reply):
                address = (primary[0].decode() or host, int(primary[1]))
                for slot in range(int(start), int(end) + 1):
                    owner[slot] = address
                    range_of[slot] = number
            self.owner, self.range_of = owner, range_of
            return
        raise RuntimeError(f"no node answered CLUSTER SLOTS: {last}")


class RespClient:
    """A client of one load-generator worker: plain (one endpoint) or routing by slot."""

    def __init__(self, endpoints: Sequence[tuple[str, int]], index: int,
                 slots: SlotMap | None) -> None:
        self.endpoints = list(endpoints)
        self.home = self.endpoints[index % len(self.endpoints)]
        self.slots = slots
        self.connections: dict[tuple[str, int], RespConnection] = {}
        self.redirects = 0

    async def connection(self, address: tuple[str, int]) -> RespConnection:
        connection = self.connections.get(address)
        if connection is None or connection.closed:
            connection = await resp_connect(*address)
            self.connections[address] = connection
        return connection

    def route(self, key: bytes) -> tuple[str, int]:
        if self.slots is None:
            return self.home
        from quorumkv.cluster.slots import key_slot

        return self.slots.owner[key_slot(key)]

    async def batch(self, commands: list[tuple[bytes, list[bytes]]]) -> list[Any]:
        """Send (key, words) commands, grouped by node, and return the replies in order."""
        groups: dict[tuple[str, int], list[int]] = {}
        for position, (key, _) in enumerate(commands):
            groups.setdefault(self.route(key), []).append(position)
        replies: list[Any] = [None] * len(commands)

        async def one(address: tuple[str, int], positions: list[int]) -> None:
            connection = await self.connection(address)
            payload = b"".join(encode_command(*commands[p][1]) for p in positions)
            answers = await asyncio.wait_for(connection.request(payload, len(positions)),
                                             REQUEST_TIMEOUT_S)
            for p, answer in zip(positions, answers, strict=True):
                replies[p] = answer

        if len(groups) == 1:
            ((address, positions),) = groups.items()
            await one(address, positions)
        else:
            await asyncio.gather(*(one(a, p) for a, p in groups.items()))
        if self.slots is not None and any(is_error(r) and str(r).startswith("MOVED")
                                          for r in replies):
            self.redirects += 1
            await self.slots.load(self.endpoints)
        return replies

    def close(self) -> None:
        for connection in self.connections.values():
            connection.close()


# ---- etcd v3 gRPC ---------------------------------------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _bytes_field(number: int, data: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def etcd_put(key: bytes, value: bytes) -> bytes:
    """etcdserverpb.PutRequest{key=1, value=2}."""
    return _bytes_field(1, key) + _bytes_field(2, value)


def etcd_range(key: bytes) -> bytes:
    """etcdserverpb.RangeRequest{key=1}; serializable (7) left false: a linearizable read."""
    return _bytes_field(1, key)


def etcd_txn_puts(pairs: Sequence[tuple[bytes, bytes]]) -> bytes:
    """etcdserverpb.TxnRequest{success=2: RequestOp{request_put=2}} with no compares."""
    return b"".join(_bytes_field(2, _bytes_field(2, etcd_put(k, v))) for k, v in pairs)


ETCD_PUT = "/etcdserverpb.KV/Put"
ETCD_RANGE = "/etcdserverpb.KV/Range"
ETCD_TXN = "/etcdserverpb.KV/Txn"


class EtcdClient:
    """One gRPC channel to one member; requests are raw encoded protobuf messages."""

    def __init__(self, endpoints: Sequence[tuple[str, int]], index: int) -> None:
        import grpc

        host, port = endpoints[index % len(endpoints)]
        self._grpc = grpc
        self.channel = grpc.aio.insecure_channel(
            f"{host}:{port}", options=[("grpc.use_local_subchannel_pool", 1)])
        self.calls = {path: self.channel.unary_unary(path) for path in
                      (ETCD_PUT, ETCD_RANGE, ETCD_TXN)}

    async def batch(self, requests: list[tuple[str, bytes]]) -> list[Any]:
        async def one(path: str, payload: bytes) -> Any:
            try:
                return await self.calls[path](payload, timeout=REQUEST_TIMEOUT_S)
            except self._grpc.aio.AioRpcError as error:
                return RuntimeError(f"{error.code().name}: {error.details()}")

        if len(requests) == 1:
            return [await one(*requests[0])]
        return list(await asyncio.gather(*(one(p, d) for p, d in requests)))

    async def close(self) -> None:
        await self.channel.close()


# ---- workers ------------------------------------------------------------------------------------


def _make_batch(spec: LoadSpec, rng: random.Random, value: bytes) -> list[Any]:
    batch: list[Any] = []
    for _ in range(spec.pipeline):
        key = key_name(rng.randrange(spec.keys))
        write = spec.workload == "write" or (spec.workload == "mix" and rng.random() < 0.5)
        if spec.protocol == "etcd":
            batch.append((ETCD_PUT, etcd_put(key, value)) if write else
                         (ETCD_RANGE, etcd_range(key)))
        else:
            batch.append((key, [b"SET", key, value] if write else [b"GET", key]))
    return batch


async def _client_loop(spec: LoadSpec, index: int, slots: SlotMap | None, start_at: float,
                       result: WorkerResult) -> None:
    rng = random.Random(spec.seed * 1_000_003 + index)
    value = bytes(rng.randrange(97, 123) for _ in range(spec.value_bytes))
    window_start = start_at + spec.warmup_s
    window_end = window_start + spec.duration_s
    client: Any = (EtcdClient(spec.endpoints, index) if spec.protocol == "etcd"
                   else RespClient(spec.endpoints, index, slots))
    histogram = result.histogram
    clock = time.time
    await asyncio.sleep(max(0.0, start_at - clock()))
    try:
        while True:
            batch = _make_batch(spec, rng, value)
            sent = clock()
            if sent >= window_end:
                break
            try:
                replies = await client.batch(batch)
            except (TimeoutError, OSError, ConnectionError) as error:
                replies = [error] * len(batch)
                if isinstance(client, RespClient):
                    client.close()
                    client.connections.clear()
            done = clock()
            if done < window_start or done > window_end:
                continue
            failed = sum(1 for r in replies if is_error(r))
            if failed and len(result.error_samples) < 5:
                result.error_samples.append(str(next(r for r in replies if is_error(r)))[:200])
            result.errors += failed
            good = len(replies) - failed
            if good:
                result.ops += good
                bucket = bucket_of(done - sent)
                histogram[bucket] = histogram.get(bucket, 0) + good
    finally:
        if isinstance(client, RespClient):
            result.redirects += client.redirects
            client.close()
        else:
            await client.close()


async def _worker_main(spec: LoadSpec, indexes: list[int], ready: Any,
                       start: Any) -> WorkerResult:
    result = WorkerResult()
    slots: SlotMap | None = None
    if spec.protocol == "resp" and spec.cluster_routing:
        slots = SlotMap()
        await slots.load(spec.endpoints)
    ready.wait(READY_TIMEOUT_S)  # every worker imported and routed: the parent sets the start
    ready.wait(READY_TIMEOUT_S)  # ... and has set it
    start_at = start.value
    loop = asyncio.get_running_loop()
    window_start = start_at + spec.warmup_s
    cpu: dict[str, float] = {}

    def sample(name: str) -> None:
        cpu[name] = time.process_time()

    loop.call_later(max(0.0, window_start - time.time()), sample, "start")
    loop.call_later(max(0.0, window_start + spec.duration_s - time.time()), sample, "end")
    await asyncio.gather(*(_client_loop(spec, i, slots, start_at, result) for i in indexes))
    cpu.setdefault("start", time.process_time())
    cpu.setdefault("end", time.process_time())
    result.cpu_s = cpu["end"] - cpu["start"]
    return result


def _install_loop(protocol: str) -> None:
    # gRPC's asyncio support runs on the standard event loop; RESP workers use uvloop.
    if protocol == "resp":
        import uvloop

        uvloop.install()


def _worker(spec: LoadSpec, indexes: list[int], ready: Any, start: Any,
            queue: multiprocessing.Queue[Any]) -> None:
    _install_loop(spec.protocol)
    try:
        result = asyncio.run(_worker_main(spec, indexes, ready, start))
        queue.put(("ok", asdict(result)))
    except BaseException as error:  # reported to the parent, which raises it
        queue.put(("error", f"{type(error).__name__}: {error}"))


def run_load(spec: LoadSpec, on_window_start: Callable[[], None] | None = None,
             on_window_end: Callable[[], None] | None = None) -> dict[str, Any]:
    """Run the load described by `spec`; see the module docstring. Returns the figures."""
    context = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[Any] = context.Queue()
    processes = max(1, min(spec.processes, spec.clients))
    shares = [list(range(w, spec.clients, processes)) for w in range(processes)]
    ready = context.Barrier(processes + 1)
    start = context.Value("d", 0.0)
    workers = [context.Process(target=_worker, args=(spec, share, ready, start, queue),
                               daemon=True) for share in shares]
    for worker in workers:
        worker.start()
    try:
        try:
            ready.wait(READY_TIMEOUT_S)
        except threading.BrokenBarrierError:
            status, payload = queue.get(timeout=1.0)
            raise RuntimeError(f"load generator workers did not start: {payload}") from None
        start_at = start.value = time.time() + START_DELAY_S
        ready.wait(READY_TIMEOUT_S)
        window_start = start_at + spec.warmup_s
        time.sleep(max(0.0, window_start - time.time()))
        if on_window_start:
            on_window_start()
        time.sleep(max(0.0, window_start + spec.duration_s - time.time()))
        if on_window_end:
            on_window_end()
        merged = WorkerResult()
        histogram: Counter[int] = Counter()
        busiest = 0.0
        for _ in workers:
            status, payload = queue.get(timeout=WORKER_JOIN_TIMEOUT_S + REQUEST_TIMEOUT_S)
            if status != "ok":
                raise RuntimeError(f"load generator worker failed: {payload}")
            merged.ops += payload["ops"]
            merged.errors += payload["errors"]
            merged.redirects += payload["redirects"]
            merged.cpu_s += payload["cpu_s"]
            busiest = max(busiest, payload["cpu_s"] / spec.duration_s)
            merged.error_samples += payload["error_samples"]
            histogram.update(payload["histogram"])
    finally:
        for worker in workers:
            worker.join(WORKER_JOIN_TIMEOUT_S)
            if worker.is_alive():
                worker.kill()
    hist = dict(histogram)
    return {
        "workload": spec.workload, "clients": spec.clients, "pipeline": spec.pipeline,
        "ops": merged.ops, "errors": merged.errors, "redirects": merged.redirects,
        "error_samples": merged.error_samples[:5],
        "ops_per_second": merged.ops / spec.duration_s,
        "p50_ms": percentile_ms(hist, 0.50), "p99_ms": percentile_ms(hist, 0.99),
        "loadgen_cpu_s": merged.cpu_s,
        "loadgen_cpu_share": merged.cpu_s / spec.duration_s / (multiprocessing.cpu_count() or 1),
        "loadgen_cpu_s_per_1k_ops": merged.cpu_s / merged.ops * 1000 if merged.ops else None,
        "loadgen_worker_busiest": busiest,
        "histogram": [[bucket_upper_ms(b), hist[b]] for b in sorted(hist)],
    }


# ---- bulk loading -------------------------------------------------------------------------------


class _InFlight:
    """Bulk-load requests in flight, at most LOAD_PIPELINE; a failed one raises on the next
    `add` or in `drain`."""

    def __init__(self) -> None:
        self.pending: set[asyncio.Task[Any]] = set()

    async def add(self, request: Coroutine[Any, Any, None]) -> None:
        while len(self.pending) >= LOAD_PIPELINE:
            done, _ = await asyncio.wait(self.pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                self.pending.discard(task)
                task.result()
        self.pending.add(asyncio.ensure_future(request))

    async def drain(self) -> None:
        for task in list(self.pending):
            await task


async def _load_resp(endpoints: list[tuple[str, int]], group_by: str, first: int,
                     last: int, step: int, value: bytes) -> int:
    """MSET keys first, first+step, ... < last, one MSET per hash slot (group_by "slot": Redis
    Cluster refuses keys of several slots) or per CLUSTER SLOTS range ("range": quorumkv
    accepts any keys of one shard on a plain connection), or in any order ("none")."""
    slots: SlotMap | None = None
    if group_by != "none":
        slots = SlotMap()
        await slots.load(endpoints)
    client = RespClient(endpoints, first, slots)
    from quorumkv.cluster.slots import key_slot

    in_flight = _InFlight()
    groups: dict[int, list[bytes]] = {}
    retried = [0]

    async def send(words: list[bytes]) -> None:
        # MSET is idempotent: a definite refusal (TRYAGAIN, CLUSTERDOWN: not applied) or an
        # unknown outcome (UNKNOWN, a lost connection) is sent again, a bounded number of times.
        for attempt in range(LOAD_RETRIES_MAX + 1):
            try:
                (reply,) = await client.batch([(words[1], words)])
            except (TimeoutError, OSError) as error:
                reply = error
                client.close()
                client.connections.clear()
            if not is_error(reply):
                return
            if not (isinstance(reply, (OSError, asyncio.TimeoutError))
                    or str(reply).startswith(RETRIED_ERRORS)) or attempt == LOAD_RETRIES_MAX:
                raise RuntimeError(f"bulk load: {reply}")
            retried[0] += 1
            await asyncio.sleep(LOAD_RETRY_PAUSE_S)

    for index in range(first, last, step):
        key = key_name(index)
        group = 0
        if slots is not None:
            group = key_slot(key)
            if group_by == "range":
                group = slots.range_of[group]
        words = groups.setdefault(group, [b"MSET"])
        words += [key, value]
        if len(words) > 2 * LOAD_BATCH_KEYS_RESP:
            await in_flight.add(send(groups.pop(group)))
    for words in groups.values():
        await in_flight.add(send(words))
    await in_flight.drain()
    client.close()
    return retried[0]


async def _load_etcd(endpoints: list[tuple[str, int]], first: int, last: int, step: int,
                     value: bytes) -> None:
    client = EtcdClient(endpoints, first)
    in_flight = _InFlight()

    async def send(pairs: list[tuple[bytes, bytes]]) -> None:
        (reply,) = await client.batch([(ETCD_TXN, etcd_txn_puts(pairs))])
        if is_error(reply):
            raise RuntimeError(f"bulk load: {reply}")

    pairs: list[tuple[bytes, bytes]] = []
    indexes = range(first, last, step)
    for position, index in enumerate(indexes):
        pairs.append((key_name(index), value))
        if len(pairs) == LOAD_BATCH_KEYS_ETCD or position == len(indexes) - 1:
            await in_flight.add(send(pairs))
            pairs = []
    await in_flight.drain()
    await client.close()


def _load_worker(protocol: str, endpoints: list[tuple[str, int]], group_by: str,
                 first: int, last: int, step: int, value_bytes: int,
                 queue: multiprocessing.Queue[Any]) -> None:
    _install_loop(protocol)
    value = b"v" * value_bytes
    try:
        if protocol == "etcd":
            asyncio.run(_load_etcd(endpoints, first, last, step, value))
        else:
            retried = asyncio.run(_load_resp(endpoints, group_by, first, last, step, value))
            if retried:
                print(f"bulk load: {retried} MSETs sent again (TRYAGAIN/UNKNOWN/connection)",
                      file=sys.stderr, flush=True)
        queue.put(("ok", ""))
    except BaseException as error:
        queue.put(("error", f"{type(error).__name__}: {error}"))


def bulk_load(protocol: str, endpoints: list[tuple[str, int]], group_by: str,
              first: int, last: int, value_bytes: int = 100, processes: int = 2,
              timeout_s: float = 3600.0) -> float:
    """Write keys [first, last) with batched writes (MSET / Txn); returns the seconds taken."""
    context = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[Any] = context.Queue()
    began = time.monotonic()
    workers = [context.Process(target=_load_worker, daemon=True,
                               args=(protocol, endpoints, group_by, first + w, last,
                                     processes, value_bytes, queue))
               for w in range(processes)]
    for worker in workers:
        worker.start()
    try:
        for _ in workers:
            try:
                status, message = queue.get(timeout=max(0.0, began + timeout_s
                                                        - time.monotonic()))
            except Empty:
                raise TimeoutError(f"bulk load of keys {first:,} to {last:,} did not finish "
                                   f"within {timeout_s:.0f} s") from None
            if status != "ok":
                raise RuntimeError(f"bulk load failed: {message}")
    finally:
        for worker in workers:
            worker.join(WORKER_JOIN_TIMEOUT_S)
            if worker.is_alive():
                worker.kill()
    return time.monotonic() - began


def parse_endpoints(text: str) -> list[tuple[str, int]]:
    out = []
    for item in text.split(","):
        host, _, port = item.rpartition(":")
        out.append((host or "127.0.0.1", int(port)))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", choices=["resp", "etcd"], default="resp")
    parser.add_argument("--endpoints", required=True, help="host:port,host:port,...")
    parser.add_argument("--cluster", action="store_true", help="route keys by CLUSTER SLOTS")
    parser.add_argument("--workload", choices=["write", "read", "mix"], default="write")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--pipeline", type=int, default=1)
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds")
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--value-bytes", type=int, default=100)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--load", choices=["none", "slot", "range"],
                        help="bulk-load the keys first, MSETs grouped by slot, range or not")
    arguments = parser.parse_args(argv)
    endpoints = parse_endpoints(arguments.endpoints)
    if arguments.load:
        seconds = bulk_load(arguments.protocol, endpoints, arguments.load, 0, arguments.keys,
                            arguments.value_bytes, arguments.processes)
        print(f"loaded {arguments.keys} keys in {seconds:.1f} s", file=sys.stderr)
    spec = LoadSpec(protocol=arguments.protocol, endpoints=endpoints,
                    workload=arguments.workload, clients=arguments.clients,
                    pipeline=arguments.pipeline, warmup_s=arguments.warmup,
                    duration_s=arguments.duration, keys=arguments.keys,
                    value_bytes=arguments.value_bytes, processes=arguments.processes,
                    cluster_routing=arguments.cluster)
    result = run_load(spec)
    result.pop("histogram")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
