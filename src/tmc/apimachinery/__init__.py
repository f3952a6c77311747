"""Kubernetes object rules without I/O: metadata, label and field selectors, quantities, JSON/merge/strategic merge
patch, schemas and validation of built-in kinds and CRDs, Status errors, Table printing and the protobuf codec. Shared
by the hub, the simulated cluster and the syncer."""
