"""Helpers for tests that use the local Kubernetes cluster of hack/cluster.sh.

The cluster is kwokctl's binary runtime with our own builds of the control plane
(hack/build-binaries.sh): real etcd, kube-apiserver (TLS, RBAC, ServiceAccount tokens),
kube-controller-manager and kube-scheduler, plus fake kwok nodes that make pods
Running/Ready with loopback IPs from 127.1.0.0/16, so a test can bind a real process to
a pod's IP and reach it through Services/EndpointSlices.

Plain standard library: tests/conftest.py wraps this in pytest fixtures.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
CLUSTER_SH = ROOT / "hack" / "cluster.sh"


class CommandError(subprocess.CalledProcessError):
    """A failed kubectl/helm call; unlike CalledProcessError, its message has stderr."""

    def __str__(self) -> str:
        cmd = " ".join(str(a) for a in self.cmd)
        return f"`{cmd}` exited {self.returncode}:\n{(self.stderr or '').strip() or (self.stdout or '').strip()}"


def run(cmd: list[str], *, input: str | None = None, check: bool = True, timeout: float = 120,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Runs cmd in text mode, capturing output; raises CommandError when check fails."""
    result = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout, env=env)
    if check and result.returncode != 0:
        raise CommandError(result.returncode, cmd, result.stdout, result.stderr)
    return result


def _lib_vars(*names: str) -> dict[str, str]:
    """Values from hack/lib.sh (the single place that knows the cache layout)."""
    script = f'source "{ROOT}/hack/lib.sh" && ' + " && ".join(f'echo "${n}"' for n in names)
    out = run(["bash", "-c", script]).stdout.splitlines()
    return dict(zip(names, out))


def wait_for(predicate: Callable[[], Any], timeout: float = 60, interval: float = 0.5,
             message: str = "condition") -> Any:
    """Polls predicate until it returns something truthy (returned); TimeoutError after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


@dataclass
class Cluster:
    """A running local cluster: its kubeconfig and the directory of its tool binaries."""

    kubeconfig: Path
    bin_dir: Path
    reused: bool = False
    # Namespaces being deleted without waiting (see delete_namespace).
    deleting: list[str] = field(default_factory=list)
    _server: str | None = field(default=None, repr=False)

    @property
    def env(self) -> dict[str, str]:
        """Environment for subprocesses (e.g. the operator): KUBECONFIG set, tools first on PATH."""
        env = dict(os.environ)
        env["KUBECONFIG"] = str(self.kubeconfig)
        env["PATH"] = f"{self.bin_dir}{os.pathsep}{env.get('PATH', '')}"
        return env

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 120) -> subprocess.CompletedProcess:
        return run([str(self.bin_dir / "kubectl"), f"--kubeconfig={self.kubeconfig}", *map(str, args)],
                   input=input, check=check, timeout=timeout)

    def helm(self, *args: str, input: str | None = None, check: bool = True,
             timeout: float = 300) -> subprocess.CompletedProcess:
        return run([str(self.bin_dir / "helm"), f"--kubeconfig={self.kubeconfig}", *map(str, args)],
                   input=input, check=check, timeout=timeout)

    # --- small conveniences ------------------------------------------------------------

    def apply(self, manifest: str | dict | list, namespace: str | None = None) -> subprocess.CompletedProcess:
        """kubectl apply -f - of a YAML/JSON string, an object or a list of objects."""
        if isinstance(manifest, list):
            manifest = {"apiVersion": "v1", "kind": "List", "items": manifest}
        if not isinstance(manifest, str):
            manifest = json.dumps(manifest)
        ns = ["-n", namespace] if namespace else []
        return self.kubectl("apply", *ns, "-f", "-", input=manifest)

    def get_json(self, *args: str, namespace: str | None = None) -> Any:
        """kubectl get ARGS -o json, parsed."""
        ns = ["-n", namespace] if namespace else []
        return json.loads(self.kubectl("get", *args, *ns, "-o", "json").stdout)

    @property
    def server(self) -> str:
        """The API server's URL (https://127.0.0.1:PORT)."""
        if self._server is None:
            self._server = self.kubectl("config", "view", "--minify", "-o",
                                        "jsonpath={.clusters[0].cluster.server}").stdout.strip()
        return self._server

    def service_account_kubeconfig(self, namespace: str, name: str, path: Path,
                                   duration: str = "2h") -> Path:
        """Writes a kubeconfig at path that acts as ServiceAccount namespace/name (a bound token)."""
        token = self.kubectl("create", "token", name, "-n", namespace, f"--duration={duration}").stdout.strip()
        ca = self.kubectl("config", "view", "--minify", "--flatten", "-o",
                          "jsonpath={.clusters[0].cluster.certificate-authority-data}").stdout.strip()
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "modelops", "cluster": {"server": self.server,
                                                          "certificate-authority-data": ca}}],
            "users": [{"name": f"{namespace}:{name}", "user": {"token": token}}],
            "contexts": [{"name": "sa", "context": {"cluster": "modelops", "user": f"{namespace}:{name}",
                                                    "namespace": namespace}}],
            "current-context": "sa",
        }
        path.write_text(json.dumps(config))  # JSON is YAML
        path.chmod(0o600)
        return path


# --- the cluster's life cycle ------------------------------------------------------------


def cluster_paths() -> tuple[Path, Path]:
    """(kubeconfig path, binaries directory), whether or not the cluster runs."""
    v = _lib_vars("KUBECONFIG_PATH", "BIN_DIR")
    return Path(v["KUBECONFIG_PATH"]), Path(v["BIN_DIR"])


def models_dir(name: str) -> Path:
    """A directory for trained example models that file:// model URIs can name: in the
    cache, not the checkout, because the model container mounts an emptyDir on /tmp,
    which hides whatever lies below it (a clone under /tmp included), as in a real pod."""
    path = Path(_lib_vars("MODELOPS_CACHE")["MODELOPS_CACHE"]) / name
    if path.resolve().is_relative_to("/tmp"):
        raise RuntimeError(f"{path} is under /tmp, which model pods mount an emptyDir on; set MODELOPS_CACHE elsewhere")
    return path


def cluster_healthy() -> bool:
    return run(["bash", str(CLUSTER_SH), "status"], check=False, timeout=60).returncode == 0


def _hack(script: str, *args: str, timeout: float) -> None:
    """Runs a hack/ script; its output goes to a file, not a pipe (never wait on a pipe that
    a daemon started by the script may hold), and into the exception if it fails."""
    with tempfile.TemporaryFile("w+") as out:
        rc = subprocess.run(["bash", str(ROOT / "hack" / script), *args], stdin=subprocess.DEVNULL,
                            stdout=out, stderr=subprocess.STDOUT, timeout=timeout).returncode
        if rc != 0:
            out.seek(0)
            raise RuntimeError(f"hack/{script} {' '.join(args)} failed ({rc}):\n{out.read()[-4000:]}")


def ensure_binaries(timeout: float = 3600) -> None:
    """hack/build-binaries.sh: builds whatever binary is missing (minutes when cold)."""
    _hack("build-binaries.sh", timeout=timeout)


def _cluster_sh(action: str, timeout: float) -> None:
    _hack("cluster.sh", action, timeout=timeout)


def cluster_up(timeout: float = 3600) -> Cluster:
    """hack/cluster.sh up: reuses a healthy cluster, else (re)creates it (building binaries if missing)."""
    _cluster_sh("up", timeout)
    kubeconfig, bin_dir = cluster_paths()
    return Cluster(kubeconfig=kubeconfig, bin_dir=bin_dir)


def cluster_down(timeout: float = 300) -> None:
    _cluster_sh("down", timeout)


def start_session_cluster() -> Cluster:
    """The test session's cluster.

    MODELOPS_REUSE_CLUSTER=1 and a healthy cluster running: that one, as is (.reused).
    Otherwise a fresh one: whatever ran before is removed first.
    """
    if os.environ.get("MODELOPS_REUSE_CLUSTER") == "1" and cluster_healthy():
        kubeconfig, bin_dir = cluster_paths()
        return Cluster(kubeconfig=kubeconfig, bin_dir=bin_dir, reused=True)
    cluster_down()
    return cluster_up()


def stop_session_cluster(cluster: Cluster) -> None:
    """Removes the session's cluster unless it was reused or MODELOPS_KEEP_CLUSTER=1."""
    if cluster.reused or os.environ.get("MODELOPS_KEEP_CLUSTER") == "1":
        return
    cluster_down()


# --- namespaces ------------------------------------------------------------------------------

TEST_NAMESPACE_LABEL = "modelops.test/namespace"


def namespace_name(test_name: str) -> str:
    """t-<test-name-slug>-<random>: a valid DNS label (<= 63 chars) unique per call."""
    slug = re.sub(r"[^a-z0-9]+", "-", test_name.lower()).strip("-")
    suffix = secrets.token_hex(3)
    slug = slug[: 63 - len("t--") - len(suffix)].rstrip("-") or "test"
    return f"t-{slug}-{suffix}"


def create_namespace(cluster: Cluster, name: str) -> str:
    cluster.apply({"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": name, "labels": {TEST_NAMESPACE_LABEL: "true"}}})
    # Namespaced objects need the "default" ServiceAccount (made by kube-controller-manager).
    wait_for(lambda: cluster.kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode == 0,
             timeout=30, message=f"ServiceAccount default in namespace {name}")
    return name


def delete_namespace(cluster: Cluster, name: str, wait: bool = True, timeout: float = 60) -> bool:
    """Deletes the namespace; with wait, waits (at most timeout) until it is gone.

    Returns True if it is gone (always True without wait). Deleting takes >= 5 s:
    kube-controller-manager waits a fixed namespaceDeletionGracePeriod before it starts.
    Without wait the name is remembered in cluster.deleting for wait_namespaces_gone().
    """
    cluster.kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=false")
    if not wait:
        cluster.deleting.append(name)
        return True
    return not wait_namespaces_gone(cluster, [name], timeout)


def wait_namespaces_gone(cluster: Cluster, names: list[str], timeout: float = 60) -> list[str]:
    """Waits (at most timeout) until none of the namespaces exists; returns those left."""
    left = set(names)
    deadline = time.monotonic() + timeout
    while left:
        result = cluster.kubectl("get", "namespaces", "-o", "name", check=False)
        if result.returncode == 0:
            existing = {line.removeprefix("namespace/") for line in result.stdout.split()}
            left &= existing
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    return sorted(left)
