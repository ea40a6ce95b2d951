"""python -m bench.operator [--quick]: every operator benchmark."""

import sys

from . import convergence

if __name__ == "__main__":
    raise SystemExit(convergence.main([a for a in sys.argv[1:] if a == "--quick"]))
