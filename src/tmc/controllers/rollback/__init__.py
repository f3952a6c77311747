"""Revision history, undo and automatic rollback of placed workloads (docs/rollback.md)."""
