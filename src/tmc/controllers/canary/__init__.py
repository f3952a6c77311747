"""Canary rollouts across clusters. `analysis` is the metric analysis engine the canary controller calls."""
