"""Real processes for the data-plane tests: `bentoml serve` and the monitor.

Each process runs in its own session, so teardown can stop it and its workers
by process group, also when a test fails.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples"
VENV_BIN = Path(sys.executable).parent
sys.path.insert(0, str(EXAMPLES))


from ...prom import free_port  # noqa: E402,F401 - shared with the operator tests


class Proc:
    def __init__(self, args: list[str], env: dict[str, str], log: Path, cwd: Path):
        self.log = log
        self._f = open(log, "wb")
        self.p = subprocess.Popen(args, env={**os.environ, **env}, stdout=self._f, stderr=subprocess.STDOUT,
                                  cwd=cwd, start_new_session=True)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.p.pid, sig)
            try:
                self.p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait(timeout=15)
        self._f.close()

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def wait_http(url: str, proc: Proc, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.p.poll() is not None:
            raise RuntimeError(f"process exited ({proc.p.returncode}):\n{proc.tail()}")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} not ready after {timeout}s:\n{proc.tail()}")


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    from train_churn import train_all

    out = tmp_path_factory.mktemp("models")
    train_all(out, rows=8000, seed=7, training_date="2026-01-01")
    return out


@pytest.fixture
def start(tmp_path):
    """start.monitor(profile) / start.server(model_dir, monitor_url, env=...) -> (proc, url)."""
    procs: list[Proc] = []

    class Starter:
        def monitor(self, profile: Path, window: str = "10m", track: str = "canary") -> tuple[Proc, str]:
            port = free_port()
            env = {"MODELOPS_PROFILE_PATH": str(profile), "MODELOPS_WINDOW": window,
                   "MODELOPS_MONITOR_HOST": "127.0.0.1", "MODELOPS_MONITOR_PORT": str(port),
                   "MODELOPS_MODELDEPLOYMENT": "churn", "MODELOPS_NAMESPACE": "ml",
                   "MODELOPS_TRACK": track, "MODELOPS_REVISION": "r1"}
            proc = Proc([sys.executable, "-m", "modelops_services.monitor"], env, tmp_path / f"monitor-{port}.log", tmp_path)
            procs.append(proc)
            url = f"http://127.0.0.1:{port}"
            wait_http(url + "/healthz", proc)
            return proc, url

        def server(self, model_dir: Path, monitor_url: str | None, queue: int = 10_000,
                   env: dict[str, str] | None = None) -> tuple[Proc, str]:
            port = free_port()
            env = {"MODELOPS_MODEL_DIR": str(model_dir), "MODELOPS_MONITOR_QUEUE": str(queue),
                   "BENTOML_HOME": str(tmp_path / "bentoml"), **(env or {})}
            if monitor_url:
                env["MODELOPS_MONITOR_URL"] = monitor_url
            args = [str(VENV_BIN / "bentoml"), "serve", "modelops_services.model_server:ModelService",
                    "--host", "127.0.0.1", "--port", str(port)]
            proc = Proc(args, env, tmp_path / f"server-{port}.log", tmp_path)
            procs.append(proc)
            url = f"http://127.0.0.1:{port}"
            wait_http(url + "/readyz", proc)
            return proc, url

    yield Starter()
    for p in reversed(procs):
        p.stop()
