"""python -m bench.drift [--quick]: every drift and data-plane benchmark in turn."""

from __future__ import annotations

import sys

from . import decision_quality, memory, overhead, speed


def main() -> int:
    args = [a for a in sys.argv[1:] if a == "--quick"]
    # Timing benchmarks first, while the machine is quiet; decision quality is not timed.
    for mod in (speed, overhead, memory, decision_quality):
        print(f"== {mod.__name__}", flush=True)
        rc = mod.main(args)
        if rc:
            return rc
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
