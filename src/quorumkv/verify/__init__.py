"""`quorumkv verify`: Jepsen-style fault injection on real node processes.

Theory of operation. A run starts a cluster of real `quorumkv server` processes, each in its
own network namespace with its own address on a private bridge (`namespaces.py`), or, without
root, on loopback ports (process faults only). Client threads (`client.py`) run a workload
(`workloads.py`: register, set, counter) against every node and record what they asked and were
told (`recorder.py`), while a nemesis (`nemesis.py`, scheduled by `schedule.py`) partitions the
network, kills, pauses or restarts nodes and slows links (`network_faults.py`,
`processes.py`). At the end every fault is healed, the cluster is given time to recover, final
reads are made, and the history goes to the shared checkers of `quorumkv.history`, each under
a time limit (`checking.py`). The run directory holds the history, the fault log, node logs,
`results.json` and a plot (`plot.py`). `run.py` ties it together; `matrix.py` runs every fault
kind with every workload and prints a summary table.

Nothing here knows how many shards the cluster has: clients talk to any node, the leader a
nemesis targets is the leader of one data shard, and the set workload keeps its keys in one
hash slot so its final read stays one linearizable read.
"""
