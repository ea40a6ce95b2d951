"""Operator benchmarks."""
