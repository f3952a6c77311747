"""TMC: transparent multi-cluster control plane."""

__version__ = "0.1.0"
