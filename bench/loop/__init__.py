"""The closed loop's benchmarks (rollback delay, false rollbacks).

The drift engine's small matrix products run fastest on one BLAS thread: several
threads on a 2-core machine only contend. Set before numpy is first imported."""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
