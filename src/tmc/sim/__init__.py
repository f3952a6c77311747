"""`tmc sim-cluster`: a simulated member cluster (the hub's API server on the plain Kubernetes URL layout plus
KWOK-like controllers: nodes, scheduler, kubelet, Deployment/ReplicaSet/StatefulSet/DaemonSet/Job)."""
