#!/usr/bin/env bash
# The demo on the local cluster (hack/demo.py): model 1.0.0 serving, 2.0.0 rolled out
# as a canary, the inputs drift mid-canary, the operator rolls it back by itself; a
# live view while it runs, then build/demo/timeline.png and build/demo/summary.txt.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
exec "${VENV:-$REPO_ROOT/.venv}/bin/python" hack/demo.py "$@"
