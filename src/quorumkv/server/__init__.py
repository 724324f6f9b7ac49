"""The node process: the asyncio shell around the multi-Raft host.

It is the only layer that awaits; it owns the sockets (client RESP connections, peer
connections), the data directory and the clock. `node.py` runs one node; `resp_server.py`
and `commands.py` are the Redis front end; `peer_transport.py` carries peer records;
`forwarding.py` proxies commands to shard leaders; `config.py` reads the settings.
"""
