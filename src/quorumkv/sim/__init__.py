"""The deterministic whole-cluster simulator: production hosts, Raft and KV code on a simulated
network, disk and clock, driven by one seed. See docs/simulator.md and sim/simulator.py."""
