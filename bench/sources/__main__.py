"""python -m bench.sources [--quick]: fetch times of the example models from each source."""

from __future__ import annotations

import sys

from . import fetch

if __name__ == "__main__":
    raise SystemExit(fetch.main(sys.argv[1:]))
