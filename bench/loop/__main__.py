"""python -m bench.loop [--quick] [--seeds N]: the closed loop's benchmarks (rollback delay, false rollbacks)."""

from __future__ import annotations

import sys

from . import rollback_delay

if __name__ == "__main__":
    raise SystemExit(rollback_delay.main(sys.argv[1:]))
