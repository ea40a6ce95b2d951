"""Metric providers: one file each, all with the MetricProvider interface."""
