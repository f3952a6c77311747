"""The kcp v0.11 sync protocol, shared by the hub and the syncer: the SyncTarget key and downstream namespace
formulas (`keys`), and what one SyncTarget's syncer sees of a hub object and how its writes land there, including
the per-target status diff encoding (`view`). Pure functions over plain objects; no I/O."""
