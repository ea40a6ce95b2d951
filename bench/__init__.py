"""Benchmarks for modelops (python -m bench.<area>.<name>)."""
