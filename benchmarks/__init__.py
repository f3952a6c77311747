"""Benchmarks of the TMC hub. `python -m benchmarks.run` (or `make bench`) runs them all; see docs/performance.md."""
