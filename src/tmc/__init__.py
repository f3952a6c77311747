"""TMC, a transparent multi-cluster control plane: a Kubernetes-compatible hub that places workloads on member clusters.
Its packages form layers, lowest first; docs/architecture.md lists them."""

__version__ = "0.1.0"
