"""The controllers every Kubernetes API server has, run by the hub and by simulated members alike: namespace deletion
and ownerReference garbage collection."""
