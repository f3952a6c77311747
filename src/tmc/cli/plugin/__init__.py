"""`kubectl tmc`: the user-facing kubectl plugin (installed as `kubectl-tmc`)."""
