"""A separate virtualenv for Evidently, created on first use.

Evidently 0.7 does not import with pandas 3 (which the services use), so the
comparison runs it in its own venv under ~/.cache/modelops/, in a subprocess
fed with the same data files.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EVIDENTLY_SPEC = ["evidently==0.7.23", "pandas>=2.2,<3", "numpy>=1.26,<2.3", "scipy>=1.13"]
VENV = Path(os.environ.get("MODELOPS_EVIDENTLY_VENV", Path.home() / ".cache" / "modelops" / "evidently-venv"))


def python() -> str:
    """Path to the venv's python, creating and filling the venv if needed."""
    py = VENV / "bin" / "python"
    marker = VENV / ".modelops-ready"
    if not marker.exists():
        VENV.parent.mkdir(parents=True, exist_ok=True)
        if not py.exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", *EVIDENTLY_SPEC], check=True)
        subprocess.run([str(py), "-c", "import evidently"], check=True)
        marker.write_text(" ".join(EVIDENTLY_SPEC))
    return str(py)


if __name__ == "__main__":
    print(python())
