"""Composition roots: the top of the house, where a process is assembled from the layers below it. `hub` is
`tmc server` (API server, syncer virtual workspace and every hub controller); `member` is `tmc sim-cluster` (the same
API server on the plain Kubernetes layout, with the simulated cluster's controllers). Only `cli/` imports this."""
