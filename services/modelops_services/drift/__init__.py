"""Drift engine: reference profiles, binning, sliding windows and two-sample scores.

Pure numpy and scipy, no I/O: the monitor, the operator's analysis and the
benchmarks import it directly.
"""

from .engine import DriftConfig, DriftEngine, DriftReport
from .profile import PREDICTION, PREDICTION_LABEL, Profile, fit_profile

__all__ = ["DriftConfig", "DriftEngine", "DriftReport", "PREDICTION", "PREDICTION_LABEL", "Profile", "fit_profile"]
