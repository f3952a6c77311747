"""The placement scheduler (Placement -> status.decisions) and assignment (decisions -> per-target labels)."""
