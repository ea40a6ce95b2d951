"""Drift engine and data-plane benchmarks; results go to bench/results/drift_*."""
