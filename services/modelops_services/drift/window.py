"""Exact sliding window of bin counts with memory fixed at construction.

The window is a ring of sub-window count vectors plus their running total: new
observations go into the newest slot; rotating subtracts the oldest slot from the
total and reuses it. Memory is n_sub x n_bins integers, whatever the traffic.
"""

from __future__ import annotations

import numpy as np


class SlidingCounts:
    def __init__(self, n_sub: int, n_bins: int):
        if n_sub < 1:
            raise ValueError("n_sub must be >= 1")
        self.n_sub = n_sub
        self.slots = np.zeros((n_sub, n_bins), dtype=np.int64)
        self.rows = np.zeros(n_sub, dtype=np.int64)
        self.total = np.zeros(n_bins, dtype=np.int64)
        self.total_rows = 0
        self.head = 0

    def add(self, counts: np.ndarray, n_rows: int) -> None:
        self.slots[self.head] += counts
        self.total += counts
        self.rows[self.head] += n_rows
        self.total_rows += int(n_rows)

    def rotate(self) -> None:
        """Start a new sub-window, expiring the oldest one."""
        self.head = (self.head + 1) % self.n_sub
        self.total -= self.slots[self.head]
        self.total_rows -= int(self.rows[self.head])
        self.slots[self.head] = 0
        self.rows[self.head] = 0

    def clear(self) -> None:
        self.slots[:] = 0
        self.rows[:] = 0
        self.total[:] = 0
        self.total_rows = 0
