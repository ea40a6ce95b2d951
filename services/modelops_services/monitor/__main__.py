"""python -m modelops_services.monitor: run the sidecar, configured by environment."""

from __future__ import annotations

import logging
import sys

from aiohttp import web

from .app import make_app
from .config import MonitorConfig


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        config = MonitorConfig.from_env()
        app = make_app(config)
    except (ValueError, OSError) as exc:
        print(f"modelops monitor: {exc}", file=sys.stderr)
        return 2
    # With a socket path: the TCP port for the cluster and the Unix socket for the pod.
    web.run_app(app, host=config.host, port=config.port, path=config.socket_path, access_log=None, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
