"""A real MLflow tracking server with its Model Registry for tests, run from the venv
hack/build-mlflow.sh builds (MLFLOW_VERSION in hack/versions.env): SQLite backend store
and the artifact proxy (`--serve-artifacts`, on by default in MLflow 3) over a local
directory, so model versions' download URIs are mlflow-artifacts:/... .

By default the server runs MLflow's basic-auth app: every request needs a user (401
otherwise), the admin is `server.username`/`server.password`, and other users (made with
`server.create_user`) have no permission on anything they did not create (403). So
modelops' client is tested with the credentials it sends in production.

MLflow 3's security middleware (allowed Host headers) admits localhost and 127.0.0.1 by
default, so it is left on. The first start after a build compiles MLflow's modules (~30 s
on 2 cores); later ones take ~10 s.

`mlflow_server` is the session fixture (one server per test session).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 120  # seconds to the first GET /health == 200


@dataclass
class MlflowServer:
    url: str  # http://127.0.0.1:PORT
    port: int
    workdir: Path
    username: str | None = None  # the basic-auth admin; None without basic auth
    password: str | None = None
    startup_seconds: float = 0.0  # process start to the first 200 from /health
    log: Path = field(default=Path("/dev/null"), repr=False)
    _proc: subprocess.Popen | None = field(default=None, repr=False)

    def env(self, username: str | None = None, password: str | None = None) -> dict[str, str]:
        """MLFLOW_TRACKING_* for a client of this server (the admin unless told)."""
        out = {"MLFLOW_TRACKING_URI": self.url}
        user, pw = (username, password) if username else (self.username, self.password)
        if user:
            out.update(MLFLOW_TRACKING_USERNAME=user, MLFLOW_TRACKING_PASSWORD=pw or "")
        return out

    def create_user(self, username: str, password: str) -> None:
        """A basic-auth user (not an admin), made by the admin."""
        self._admin_post("/api/2.0/mlflow/users/create", {"username": username, "password": password})

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else "(no log)"

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        """SIGTERM to the server's process group (mlflow, uvicorn and its workers), SIGKILL
        after 10 s."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        _signal_group(proc, signal.SIGKILL)  # stragglers of the group, if any
        if proc.poll() is None:
            proc.wait(5)

    def _admin_post(self, path: str, body: dict) -> dict:
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        if self.username:
            token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            req.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
        return json.loads(raw) if raw.strip() else {}


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)  # the server was started in a session (group) of its own
    except (ProcessLookupError, PermissionError):
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_venv(timeout: float = 1800) -> Path:
    """hack/build-mlflow.sh (skips a complete venv in ~0.05 s; minutes when cold): the venv."""
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.run(["bash", str(ROOT / "hack/build-mlflow.sh")], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=err, text=True, timeout=timeout)
        if proc.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"hack/build-mlflow.sh failed ({proc.returncode}):\n{err.read()[-4000:]}")
    return Path(proc.stdout.strip().splitlines()[-1])


def start_mlflow(workdir: Path, port: int | None = None, basic_auth: bool = True,
                 venv: Path | None = None) -> MlflowServer:
    """Starts `mlflow server` on 127.0.0.1:port (a free one when None) with its stores in
    workdir; returns once GET /health answers 200. RuntimeError with the log's tail when
    the server exits or is not healthy within START_TIMEOUT."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    venv = venv or ensure_venv()
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    log = workdir / "mlflow.log"
    cmd = [str(venv / "bin/mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
           "--backend-store-uri", f"sqlite:///{workdir / 'mlflow.db'}",
           "--artifacts-destination", str(workdir / "artifacts"), "--serve-artifacts", "--workers", "1"]
    # No telemetry; no job runner (its seven huey consumers serve GenAI features, not the
    # registry, and cost ~1 s of CPU and hundreds of MiB on a small machine).
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "PYTHONUNBUFFERED": "1",
           "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    for key in [k for k in env if k.startswith("MLFLOW_TRACKING_")]:
        del env[key]  # the server is no client of some other server
    username = password = None
    if basic_auth:
        username, password = "admin", secrets.token_urlsafe(16)
        config = workdir / "basic_auth.ini"
        # NO_PERMISSIONS: a non-admin user sees only what it made (so a 403 is testable).
        config.write_text("[mlflow]\ndefault_permission = NO_PERMISSIONS\n"
                          f"database_uri = sqlite:///{workdir / 'basic_auth.db'}\n"
                          f"admin_username = {username}\nadmin_password = {password}\n"
                          "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
                          # Checks a (user, password) once a minute, not per request (PBKDF2:
                          # publishing takes 0.3 s instead of 5 s). With the cache on, MLflow
                          # 3.17.2 answers a Bearer token with a 500 (it hashes the None
                          # password), not a 401: send this server basic auth only.
                          "auth_cache_ttl_seconds = 60\n")
        cmd += ["--app-name", "basic-auth"]
        # Flask-WTF's CSRF protection of the auth app's forms wants a fixed secret key.
        env.update(MLFLOW_AUTH_CONFIG_PATH=str(config), MLFLOW_FLASK_SERVER_SECRET_KEY=secrets.token_hex(16))
    started = time.monotonic()
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                                cwd=workdir, start_new_session=True)
    server = MlflowServer(url=url, port=port, workdir=workdir, username=username, password=password, log=log,
                          _proc=proc)
    try:
        deadline = started + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited ({proc.returncode}) before it was healthy; "
                                   f"log {log}:\n{server.log_tail()}")
            try:
                with urllib.request.urlopen(url + "/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server not healthy at {url}/health within {START_TIMEOUT}s; "
                                   f"log {log}:\n{server.log_tail()}")
            time.sleep(0.25)
    except BaseException:
        server.stop()
        raise
    server.startup_seconds = time.monotonic() - started
    return server


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """One MLflow tracking server + registry (basic auth on) for the whole session."""
    server = start_mlflow(tmp_path_factory.mktemp("mlflow"))
    yield server
    server.stop()
