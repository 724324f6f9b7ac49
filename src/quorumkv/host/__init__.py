"""The multi-Raft host: every shard replica of one node, driven by one Ready loop.

It owns no sockets and no clock of its own: the shell (server/ for real processes, sim/ for the
simulator) hands it ticks, peer messages, client commands and a `clock_ms` callable, and gives
it a transport to send through. The same code therefore runs in production and in the
simulator. See host/host.py for the Ready driver.
"""
