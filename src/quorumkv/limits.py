"""Every bound in quorumkv, in one place, each named with its unit (STYLE.md: Limits).

A queue, batch, message, bulk string or loop without a bound here is a bug. Modules import the
constant they need rather than repeating a number. Tick-based values are in units of the Raft
core's logical time; the server maps one tick to `tick_ms` milliseconds.
"""

from __future__ import annotations

# ---- Raft core (logical time) ---------------------------------------------------------------

election_timeout_ticks = 10
"""Minimum election timeout; each follower draws its timeout in [this, 2 * this)."""

heartbeat_interval_ticks = 1
"""A leader sends heartbeats every this many ticks."""

inflight_messages_max = 256
"""Append messages in flight to one follower before the leader waits for acknowledgements."""

append_entries_max = 64
"""Entries carried by one append message at most."""

append_bytes_max = 1024 * 1024
"""Bytes of entry data carried by one append message at most (one entry may exceed it alone)."""

uncommitted_bytes_max = 64 * 1024 * 1024
"""Bytes of proposed but uncommitted entry data a leader accepts before dropping proposals."""

committed_entries_bytes_max = 4 * 1024 * 1024
"""Bytes of committed entries handed to the host in one Ready for applying."""

proposal_bytes_max = 9 * 1024 * 1024
"""Bytes of one proposal's data at most: room for a command carrying the largest value a client
may send (`string_bytes_max`), its key (`key_bytes_max`) and small arguments beside them.
A command that is larger still (MSET of several large values) is refused before proposing."""

read_index_pending_max = 10_000
"""Read-index requests a leader queues while waiting for its first commit in its term."""

lease_drift_ticks = 1
"""Ticks subtracted from a leader lease to cover clock drift between replicas (lease reads)."""

# ---- Snapshots -----------------------------------------------------------------------------

snapshot_chunk_bytes_max = 1024 * 1024
"""Bytes of shard data in one snapshot chunk."""

snapshot_chunks_inflight_max = 4
"""Snapshot chunks sent to one receiver before waiting for its acknowledgement."""

log_compaction_entries_min = 10_000
"""The host compacts a shard's log once this many applied entries precede the applied index."""

# ---- Host -----------------------------------------------------------------------------------

ready_entries_max = 4096
"""Entries the host persists for all shards in one group-commit batch at most."""

# ---- Simulator ----------------------------------------------------------------------------

sim_ticks_max = 200_000
"""Logical ticks a single simulator run may take before it is declared stuck."""

sim_liveness_ticks_max = 2_000
"""Ticks after healing within which the simulated cluster must elect a leader and commit."""

sim_events_max = 3_000_000
"""Events one simulator run may handle (a typical run handles 20,000-150,000); past it the run
is reported as a livelock, with its seed, instead of stalling a sweep."""

sim_run_seconds_max = 300
"""Wall-clock seconds one simulator run may take (a typical run takes under 2 s of CPU);
past it the run is reported as a livelock. Only bounds the run: it never steers it."""

linearizability_search_steps_max = 2_000_000
"""States the linearizability checker explores per key before answering `unknown`."""

# ---- Host timers (logical time) -----------------------------------------------------------

snapshot_transfer_timeout_ticks = 50
"""A snapshot transfer with no acknowledgement (sender) or chunk (receiver) for this long is
abandoned; the leader's core then probes the follower again."""

snapshot_resend_ticks = 5
"""A snapshot sender resends its unacknowledged chunks after this many ticks without progress."""

read_timeout_ticks = 30
"""A read waiting for its read index longer than this fails (definitely: reads change nothing)."""

expire_interval_ticks = 10
"""A leader looks for expired keys to delete every this many ticks."""

expire_deletions_per_round_max = 64
"""Expired keys a leader proposes to delete per round at most."""

# ---- History checkers -----------------------------------------------------------------------

counterexample_operations_max = 16
"""Operations a checker's verdict quotes as its counterexample at most."""

# ---- Server (wall-clock time, connections, queues) -------------------------------------------

request_timeout_ms = 5_000
"""A client command not completed in this time is answered: -TRYAGAIN if it was never proposed
(or is a read), -UNKNOWN (outcome unknown) if it may have been proposed."""

leader_wait_election_timeouts = 3
"""A command arriving while no leader is known waits this many election timeouts for one to be
elected before it is answered -TRYAGAIN."""

client_connections_max = 10_000
"""Client connections a node accepts at once (Redis's maxclients default); more are refused."""

client_connections_settable_max = 1_000_000
"""The largest maxclients CONFIG SET accepts (the open-file limit must allow it too)."""

reserved_file_descriptors = 256
"""Open files a node keeps for itself beyond its client connections (store, peers, logs): the
open-file limit it asks for is maxclients plus this."""

client_tcp_keepalive_s = 300
"""Idle seconds before a client socket's first TCP keepalive probe (Redis's tcp-keepalive
default; CONFIG SET tcp-keepalive changes it for new connections, 0 turns keepalive off)."""

client_tcp_keepalive_s_max = 32_767
"""The largest tcp-keepalive CONFIG SET accepts (Linux's bound on TCP_KEEPIDLE)."""

client_pending_commands_max = 1_024
"""Commands of one client connection parsed but not yet answered before the node stops reading
from it (pipelining back-pressure)."""

client_write_buffer_bytes_max = 4 * 1024 * 1024
"""Bytes of replies buffered for one client before the node stops reading its commands."""

forward_requests_pending_max = 100_000
"""Commands this node has forwarded to leaders and awaits answers for, over all connections."""

driver_cycles_per_iteration_max = 64
"""Ready cycles the driver runs back to back before yielding to the event loop."""

peer_frame_bytes_max = 64 * 1024 * 1024
"""Bytes of one peer frame body at most; a longer frame closes the connection."""

peer_send_queue_frames_max = 16_384
"""Frames queued for one peer connection while it is down or slow; more are dropped (and
counted): Raft tolerates lost messages."""

peer_write_buffer_bytes_max = 8 * 1024 * 1024
"""Bytes buffered in one peer socket's transport before the node queues instead of writing."""

peer_reconnect_backoff_ms_min = 20
"""First wait before redialing a peer after a failed or lost connection; doubles each time."""

peer_reconnect_backoff_ms_max = 1_000
"""Longest wait between two dials of the same peer."""

peer_handshake_timeout_ms = 5_000
"""A peer connection that has not completed its handshake in this time is closed."""

ready_cycle_stall_ms = 1_000
"""A Ready cycle running longer than this is a disk stall (its synced write has not returned):
logged when noticed and when it ends (server/host_gate.py)."""

peer_reachability_log_lines_max = 4
"""Log lines about one peer becoming unreachable or reachable within
`peer_reachability_log_interval_ms`; further changes are summed up in the next line
(server/reachability_log.py)."""

peer_reachability_log_interval_ms = 10_000
"""The window of `peer_reachability_log_lines_max`."""

shutdown_transfer_timeout_ms = 2_000
"""On graceful shutdown, how long a leader waits for leadership to move to another node."""

stats_sample_interval_ms = 100
"""Period of the node's client cron: it samples the statistics for INFO's instantaneous rates
and closes connections idle longer than CONFIG SET timeout (Redis's serverCron runs at 10 Hz)."""

stats_samples_max = 16
"""Samples the instantaneous rates of INFO stats average over (Redis's STATS_METRIC_SAMPLES)."""

error_codes_tracked_max = 128
"""Distinct error codes INFO errorstats counts (Redis's ERRORSTATS_LIMIT); more are counted
only in total_error_replies."""

command_spellings_tracked_max = 4_096
"""Spellings of command names (GET, get, Get...) INFO commandstats remembers the entry of;
others are looked up each time."""

gil_switch_interval_us = 500
"""With Ready cycles on a worker thread, how long a thread that wants the GIL (the worker back
from fsync, or the event loop with bytes to read) waits for the other to yield it (Python's
default is 5,000 µs, which adds up to 5 ms to a commit)."""

# ---- Redis data model and RESP (kv/, codec/resp.py) -----------------------------------------

string_bytes_max = 8 * 1024 * 1024
"""Bytes of one string value at most, as Redis's proto-max-bulk-len bounds both: the bulk
strings of a request (longer ones are a protocol error, from their header) and the value a
command builds (APPEND, SETRANGE answer "string exceeds maximum allowed size"). CONFIG GET
proto-max-bulk-len reports it. One stored value must fit in one proposal and in one snapshot
chunk, which is why it is far below Redis's 512 MB."""

bulk_bytes_max = string_bytes_max
"""Bytes of one bulk string a client may send (proto-max-bulk-len: `string_bytes_max`)."""

key_bytes_max = 64 * 1024
"""Bytes of one key; a longer key is refused before anything is proposed."""

command_arguments_max = 1024 * 1024
"""Arguments (the command name included) of one command a client may send."""

inline_bytes_max = 64 * 1024
"""Bytes of an inline command line, or of a RESP header line, without its newline (Redis's
PROTO_INLINE_MAX_SIZE)."""

query_buffer_bytes_max = 1024 * 1024 * 1024
"""Bytes of one client's received but not yet parsed input (Redis's client-query-buffer-limit)."""

scan_records_max = 10_000
"""Stored keys one SCAN call visits at most, whatever COUNT asks for."""

keys_reply_max = 1_000_000
"""Keys one KEYS command answers at most; a larger answer fails and points to SCAN."""

store_page_records_max = 1_024
"""Records the state machine asks the store for in one scan call when it walks a range."""

random_key_records_max = 1_000
"""Stored keys RANDOMKEY looks at, skipping expired ones, before answering nil."""

collection_members_max = 2**32 - 1
"""Members (fields, elements) one collection holds at most, as in Redis; a write that would
add more is refused."""

collection_read_members_max = 1_000_000
"""Members one command reads from one collection at most in one go (HGETALL, SMEMBERS, SINTER,
a cross-slot RENAME...), and elements one reply carries (HRANDFIELD/SRANDMEMBER with a count):
beyond it the command fails and names HSCAN/SSCAN. Random picks are exactly uniform up to
this size, close to uniform beyond it (kv/collection.py)."""

collection_inline_release_members_max = 64
"""Members of a deleted or overwritten collection deleted in the same entry; a bigger one
leaves a garbage record for QKV.SWEEP entries (kv/members.py)."""

sweep_records_per_entry_max = 4_096
"""Member records of released collections one QKV.SWEEP entry deletes at most."""

set_operation_keys_max = 1_024
"""Keys one SINTER/SUNION/SDIFF (and STORE, SINTERCARD) names at most."""

# ---- Storage (RocksDB) ----------------------------------------------------------------------

log_tail_entries_max = 4_096
"""Entries of one shard's log the RocksDB store keeps in memory after appending them, to
serve the reads of committed entries (apply) and of recent ones (replication) without RocksDB."""

log_tail_bytes_max = 8 * 1024 * 1024
"""Bytes (Entry.size_bytes) of one shard's in-memory log tail at most."""

apply_cache_entries_max = 32_768
"""Slot key counts and collection version counters one shard's apply cache keeps in memory
(host/shard_view.py): one of each per hash slot, so it holds all of them; past the bound it
starts over."""

rocksdb_block_cache_bytes = 64 * 1024 * 1024
"""Bytes of the block cache shared by all column families (data, index and filter blocks)."""

rocksdb_write_buffer_bytes = 16 * 1024 * 1024
"""Bytes of one memtable of one column family before it is switched and flushed."""

rocksdb_write_buffers_total_bytes = 64 * 1024 * 1024
"""Bytes of all memtables of all column families together (db_write_buffer_size)."""

rocksdb_wal_total_bytes_max = 256 * 1024 * 1024
"""Bytes of write-ahead logs kept before the oldest memtables are flushed (bounds recovery)."""

snapshot_sst_file_bytes_max = 256 * 1024 * 1024
"""Bytes of one SST file a received snapshot is staged into; bigger images use several."""

# ---- Verify harness (quorumkv verify) ----------------------------------------------------------

verify_nodes_max = 9
"""Nodes one verify run may start (one private /24 holds them, with room for the gateway)."""

verify_client_timeout_ms = 3_000
"""Milliseconds a verify client waits for one reply before it records the operation as info."""

verify_connect_timeout_ms = 1_000
"""Milliseconds a verify client waits to connect before it counts the node as unreachable."""

verify_node_start_timeout_ms = 30_000
"""Milliseconds a node process of a verify run may take to answer PING after it starts."""

verify_node_stop_timeout_ms = 10_000
"""Milliseconds a node of a verify run may take to exit after SIGTERM before it is killed."""

verify_recovery_timeout_ms = 60_000
"""Milliseconds a verify run waits, once every fault is healed, for a leader every node knows."""

verify_final_read_attempts_max = 100
"""Attempts of each final read of a verify run before the run gives up (verdict unknown)."""

verify_checker_seconds_max = 300
"""Seconds a checker of a verify run may take; past it, its verdict is unknown."""

verify_register_operations_per_key_max = 200
"""Operations of the register workload on one key before clients move to a fresh key (keeps
each key's linearizability search small)."""

# ---- Cluster metadata, placement and routing (cluster/) -------------------------------------

shards_per_node_default = 4
"""Data shards created per node at bootstrap when --shards is not given."""

replication_factor_default = 3
"""Replicas of each shard at bootstrap when not given (never more than the nodes available)."""

leader_balance_interval_ticks = 20
"""Ticks between two rounds of leadership transfers toward the preferred leaders (the first
round waits this long after start, so that the first elections settle)."""

leader_transfers_per_round_max = 4
"""Leadership transfers one node starts in one round (bounds the elections they cause)."""

shard_statistics_interval_ticks = 100
"""Ticks between two samples of the statistics (keys, reads/s, writes/s) of the shards a node
leads."""

metadata_poll_interval_ticks = 20
"""Ticks between two attempts to learn or bootstrap the cluster metadata while the node does
not know it (or, hosting no replica of shard 0, to refresh it)."""

cluster_members_max = 1_000
"""Members the cluster metadata holds at most."""

shard_id_max = (1 << 17) - 1
"""Largest shard id: a cluster-wide SCAN cursor is shard_id << 46 | the shard's own cursor, and
must stay below 2**63 for clients that read cursors as signed 64-bit integers."""

get_keys_in_slot_max = 100_000
"""Keys one CLUSTER GETKEYSINSLOT answers at most, whatever count asks for."""

# ---- quorumkv up: the supervisor of a local cluster (server/supervisor.py) ------------------

up_restart_backoff_ms_min = 250
"""Milliseconds `up` waits before restarting a node that died after a stable run; each quick
failure in a row doubles the wait."""

up_restart_backoff_ms_max = 8_000
"""Longest wait, in milliseconds, before `up` restarts a node that died."""

up_stable_run_ms = 10_000
"""Milliseconds a node must have run before it died for its death not to count as a quick
failure (a crash right after start); a stable run starts the back-off over."""

up_quick_failures_max = 5
"""Quick failures in a row (deaths within up_stable_run_ms of starting) after which `up` gives
up on a node, reports it with the tail of its log, and keeps the other nodes running."""

up_serve_timeout_ms = 60_000
"""Milliseconds `up` waits at start for every node to serve (answer DBSIZE, a linearizable
count over every shard) before it stops them all and exits 1."""

up_stop_timeout_ms = 10_000
"""Milliseconds `up` waits for its nodes to exit after SIGTERM before it kills them."""

up_log_tail_lines_max = 20
"""Lines of a node's log `up` prints when the node exits with an error or is given up on."""

up_node_log_bytes_max = 64 * 1024 * 1024
"""Bytes of one node's log file under `up`; past it, the file is copied to node.log.1 and
emptied (the node keeps appending to the same open file)."""
