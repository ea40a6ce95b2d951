"""Flux, a real GitOps tool, for tests: its source-controller and kustomize-controller
(built from their Go modules by hack/build-flux.sh) as local processes against the local
cluster, and a Git repository served over smart HTTP (`git http-backend` behind a WSGI
server on a thread of the test process).

- GitServer(workdir): a bare repository at server.url and a working clone;
  server.commit({path: text or None}, message) writes (None: deletes) files, commits,
  pushes and returns the commit's SHA.
- start_flux(cluster, workdir) -> Flux: Flux's CRDs applied server-side from each
  controller module's config/crd/bases, both controllers started (leader election off,
  free metrics/health/storage ports, RUNTIME_NAMESPACE flux-system) and healthy;
  flux.stop() ends them.
- flux.reconcile(kind, namespace, name): forces a reconcile (annotation
  reconcile.fluxcd.io/requestedAt) and waits until it is handled and Ready.
- flux.applies(namespace, name): every "server-side apply completed" the
  kustomize-controller logged for that Kustomization: {object id: action} per reconcile,
  action one of created, configured, unchanged, ... (kustomize-controller also emits an
  Event for an apply that changed something, never for one that did not).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from tests.kube import wait_for

ROOT = Path(__file__).resolve().parents[1]
CONTROLLERS = ("source-controller", "kustomize-controller")
RUNTIME_NAMESPACE = "flux-system"
START_TIMEOUT = 60  # seconds until a controller must answer its health probe
KUSTOMIZE_MANAGER = "kustomize-controller"  # the field manager of Flux's server-side apply
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def flux_binaries(timeout: float = 3600) -> dict[str, Path]:
    """hack/build-flux.sh (builds the controllers when missing: ~7 min cold on 2 cores,
    ~0.05 s otherwise); returns {controller: binary path}."""
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.run(["bash", str(ROOT / "hack" / "build-flux.sh")], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=err, text=True, timeout=timeout, check=False)
        if proc.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"hack/build-flux.sh failed ({proc.returncode}):\n{err.read()[-4000:]}")
    paths = {Path(line).name: Path(line) for line in proc.stdout.split()}
    for name in CONTROLLERS:
        if name not in paths or not os.access(paths[name], os.X_OK):
            raise RuntimeError(f"hack/build-flux.sh printed no executable {name}: {proc.stdout!r}")
    return paths


def crd_dir(controller: str) -> Path:
    """config/crd/bases of the controller's module, in the Go module cache (the version its
    tool module hack/flux/<controller> requires)."""
    out = subprocess.run(["go", "list", "-m", "-json", f"github.com/fluxcd/{controller}"],
                         cwd=ROOT / "hack" / "flux" / controller, capture_output=True, text=True, check=True,
                         env={**os.environ, "GOFLAGS": "-mod=mod"}, timeout=600)
    module = json.loads(out.stdout)
    if not module.get("Dir"):  # not downloaded yet
        subprocess.run(["go", "mod", "download", f"github.com/fluxcd/{controller}"],
                       cwd=ROOT / "hack" / "flux" / controller, check=True, capture_output=True, timeout=600)
        return crd_dir(controller)
    return Path(module["Dir"]) / "config" / "crd" / "bases"


# --- Git over smart HTTP ------------------------------------------------------------------


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


def _http_backend_app(project_root: Path):
    """A WSGI app that runs `git http-backend` (CGI) for every request."""
    def app(environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(project_root), "GIT_HTTP_EXPORT_ALL": "1",
            "GATEWAY_INTERFACE": "CGI/1.1", "SERVER_PROTOCOL": environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
            "REQUEST_METHOD": environ["REQUEST_METHOD"], "PATH_INFO": environ.get("PATH_INFO", ""),
            "QUERY_STRING": environ.get("QUERY_STRING", ""), "CONTENT_TYPE": environ.get("CONTENT_TYPE", ""),
            "CONTENT_LENGTH": str(len(body)), "REMOTE_ADDR": environ.get("REMOTE_ADDR", "127.0.0.1"),
        }
        env.update({k: v for k, v in environ.items() if k.startswith("HTTP_")})
        proc = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, check=False)
        head, _, payload = proc.stdout.partition(b"\r\n\r\n")
        if not _:
            head, _, payload = proc.stdout.partition(b"\n\n")
        status, headers = "200 OK", []
        for line in head.decode("latin-1").splitlines():
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = value.strip()
            elif key:
                headers.append((key.strip(), value.strip()))
        if proc.returncode != 0 and not head:
            status, headers, payload = "500 Internal Server Error", [("Content-Type", "text/plain")], proc.stderr
        start_response(status, headers)
        return [payload]
    return app


class GitServer:
    """A bare repository served read-only over smart HTTP at self.url, and a working clone
    that commit() pushes to (over the file system)."""

    def __init__(self, workdir: Path, name: str = "config"):
        self.root = Path(workdir) / "git"
        self.bare = self.root / f"{name}.git"
        self.work = Path(workdir) / "work"
        self.root.mkdir(parents=True, exist_ok=True)
        self._git("init", "--bare", "--initial-branch=main", str(self.bare), cwd=workdir)
        self._git("init", "--initial-branch=main", str(self.work), cwd=workdir)
        self._git("remote", "add", "origin", str(self.bare))
        self.port = free_port()
        self._server = make_server("127.0.0.1", self.port, _http_backend_app(self.root),
                                   server_class=_ThreadingWSGIServer, handler_class=_QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="git-http", daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self.port}/{name}.git"

    def _git(self, *args: str, cwd: Path | None = None) -> str:
        env = {**os.environ, "GIT_AUTHOR_NAME": "modelops", "GIT_AUTHOR_EMAIL": "modelops@example.com",
               "GIT_COMMITTER_NAME": "modelops", "GIT_COMMITTER_EMAIL": "modelops@example.com",
               "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
        proc = subprocess.run(["git", *args], cwd=cwd or self.work, env=env, capture_output=True, text=True,
                              check=False, timeout=60)
        if proc.returncode != 0:
            raise RuntimeError(f"git {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
        return proc.stdout.strip()

    def commit(self, files: dict[str, str | None], message: str) -> str:
        """Writes (None: deletes) files in the clone, commits, pushes; returns the SHA."""
        for path, text in files.items():
            target = self.work / path
            if text is None:
                target.unlink(missing_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
        self._git("add", "-A", ".")
        self._git("commit", "-q", "-m", message)
        self._git("push", "-q", "origin", "main")
        return self._git("rev-parse", "HEAD")

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# --- the controllers ----------------------------------------------------------------------


@dataclass
class Controller:
    name: str
    health_port: int
    log_file: Path
    proc: subprocess.Popen = field(repr=False)

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/readyz", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def log(self, chars: int = 20000) -> str:
        return self.log_file.read_text(errors="replace")[-chars:] if self.log_file.exists() else "(no log)"


@dataclass
class Flux:
    cluster: object
    workdir: Path
    controllers: dict[str, Controller] = field(default_factory=dict)

    def start(self) -> None:
        binaries = flux_binaries()
        self.cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": RUNTIME_NAMESPACE}})
        crds = []
        for name in CONTROLLERS:
            files = sorted(crd_dir(name).glob("*.yaml"))
            self.cluster.kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=modelops-tests",
                                 *[a for f in files for a in ("-f", str(f))])
            crds += [json.loads(self.cluster.kubectl("create", "--dry-run=client", "-o", "json", "-f", str(f)).stdout)
                     ["metadata"]["name"] for f in files]
        for crd in crds:
            wait_for(lambda crd=crd: self.cluster.kubectl(
                "get", "crd", crd, "-o", 'jsonpath={.status.conditions[?(@.type=="Established")].status}',
                check=False).stdout == "True", 60, message=f"CRD {crd} to be established")
        storage_port = free_port()
        storage = self.workdir / "artifacts"
        storage.mkdir(parents=True, exist_ok=True)
        extra = {
            "source-controller": [f"--storage-path={storage}", f"--storage-addr=127.0.0.1:{storage_port}",
                                  f"--storage-adv-addr=127.0.0.1:{storage_port}"],
            "kustomize-controller": [],
        }
        env = {**self.cluster.env, "RUNTIME_NAMESPACE": RUNTIME_NAMESPACE}
        for name in CONTROLLERS:
            health_port = free_port()
            args = [str(binaries[name]), "--enable-leader-election=false", "--log-level=debug",
                    f"--metrics-addr=127.0.0.1:{free_port()}", f"--health-addr=127.0.0.1:{health_port}",
                    *extra[name]]
            log_file = self.workdir / f"{name}.log"
            with open(log_file, "ab") as log:
                proc = subprocess.Popen(args, env=env, cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=subprocess.STDOUT)
            self.controllers[name] = Controller(name, health_port, log_file, proc)
        for c in self.controllers.values():
            def up(c=c):
                if c.proc.poll() is not None:
                    raise RuntimeError(f"{c.name} exited ({c.proc.returncode}):\n{c.log(4000)}")
                return c.healthy()
            try:
                wait_for(up, START_TIMEOUT, message=f"{c.name} to be ready")
            except TimeoutError:
                self.stop()
                raise

    def stop(self) -> None:
        for c in self.controllers.values():
            if c.proc.poll() is None:
                c.proc.terminate()
                try:
                    c.proc.wait(15)
                except subprocess.TimeoutExpired:
                    c.proc.kill()
                    c.proc.wait(5)

    def alive(self) -> bool:
        return all(c.proc.poll() is None for c in self.controllers.values())

    def logs(self, chars: int = 20000) -> str:
        return "\n".join(f"===== {c.name} =====\n{c.log(chars)}" for c in self.controllers.values())

    # --- objects --------------------------------------------------------------------------

    def get(self, kind: str, namespace: str, name: str) -> dict:
        return json.loads(self.cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json").stdout)

    @staticmethod
    def ready(obj: dict) -> dict | None:
        """The Ready condition when it is True for the object's current generation."""
        st = obj.get("status") or {}
        cond = next((c for c in st.get("conditions", []) if c["type"] == "Ready"), None)
        if cond and cond["status"] == "True" and st.get("observedGeneration") == obj["metadata"]["generation"]:
            return cond
        return None

    def reconcile(self, kind: str, namespace: str, name: str, timeout: float = 120) -> dict:
        """Annotates reconcile.fluxcd.io/requestedAt and waits until the controller has
        handled that request (status.lastHandledReconcileAt) and the object is Ready;
        returns the object."""
        token = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ") + secrets.token_hex(2)
        self.cluster.kubectl("annotate", kind, name, "-n", namespace, f"{REQUESTED_AT}={token}", "--overwrite")

        def handled():
            obj = self.get(kind, namespace, name)
            if (obj.get("status") or {}).get("lastHandledReconcileAt") == token and self.ready(obj):
                return obj
            return None
        return wait_for(handled, timeout, message=f"{kind} {namespace}/{name} to handle reconcile {token}")

    def wait_applied(self, namespace: str, name: str, revision_sha: str, timeout: float = 120) -> dict:
        """Waits until the Kustomization has applied the commit (status.lastAppliedRevision
        ends with the SHA) and is Ready; returns it."""
        def applied():
            obj = self.get("kustomization", namespace, name)
            if (obj.get("status") or {}).get("lastAppliedRevision", "").endswith(revision_sha) and self.ready(obj):
                return obj
            return None
        return wait_for(applied, timeout, message=f"Kustomization {namespace}/{name} to apply {revision_sha[:10]}")

    def applies(self, namespace: str, name: str) -> list[dict]:
        """Each "server-side apply completed" of the Kustomization, oldest first:
        {"revision": ..., "output": {"Kind/namespace/name": action}} (kustomize-controller's log)."""
        log = self.controllers["kustomize-controller"].log_file
        out = []
        for line in log.read_text(errors="replace").splitlines():
            if "server-side apply completed" not in line:
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            ks = entry.get("Kustomization") or {}
            if (ks.get("namespace"), ks.get("name")) == (namespace, name) or \
                    (entry.get("namespace"), entry.get("name")) == (namespace, name):
                out.append({"revision": entry.get("revision"), "output": entry.get("output") or {}})
        return out

    def events(self, namespace: str, name: str) -> list[dict]:
        """The Kustomization's Events (kustomize-controller emits one for an apply that changed
        something: its message lists "Kind/namespace/name configured" lines)."""
        out = self.cluster.kubectl("get", "events", "-n", namespace, "--field-selector",
                                   f"involvedObject.kind=Kustomization,involvedObject.name={name}",
                                   "-o", "json").stdout
        return json.loads(out)["items"]


def start_flux(cluster, workdir: Path) -> Flux:
    flux = Flux(cluster, Path(workdir))
    flux.start()
    return flux


def git_available() -> bool:
    return shutil.which("git") is not None


def wait_quiet(seconds: float) -> None:
    """Lets controllers run (resyncs, status writes) before checking that nothing moved."""
    time.sleep(seconds)
