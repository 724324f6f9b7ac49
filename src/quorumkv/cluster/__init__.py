"""Pure cluster logic: hash slots, the slot map, placement and routing (no I/O)."""
