"""`tmcctl`: the operators' tool (clusters, placements, workloads)."""
