"""The drift-monitor sidecar: an aiohttp service beside the model server."""

from .app import make_app
from .config import MonitorConfig

__all__ = ["MonitorConfig", "make_app"]
