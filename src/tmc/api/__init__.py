"""The TMC API types: kcp v0.11's `workload.kcp.io` SyncTarget, `scheduling.kcp.io` Location and Placement and
`tenancy.kcp.io` Workspace, with their schemas, the label/annotation protocol names and semantic validation. Data and
pure functions only; the registry serves them."""
