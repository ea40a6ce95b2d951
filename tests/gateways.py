"""Real Gateway API implementations for tests, run as local processes against the local
cluster (tests/kube.py): Envoy Gateway in host mode (its Envoy a child process) and
Traefik's Kubernetes Gateway provider, both built by hack/build-gateways.sh.

Each start_* makes one GatewayClass and one Gateway (namespace modelops-gateways) with a
single HTTP listener on a fixed port of its own that admits HTTPRoutes from every
namespace, starts the processes, and returns only once a throwaway HTTPRoute has carried
a request through the listener to a loopback backend. Both may run at once.

A route attaches with `parentRefs: [impl.parent_ref]`; clients send requests to impl.url
with the route's hostname in the Host header (impl.get / impl.wait_ok).

Backends are real processes (or in-process HTTP servers, HttpBackend) bound to loopback
"pod" IPs (127.1.0.0/16), behind a selector-less Service and a hand-written EndpointSlice
(backend_objects): both implementations route to EndpointSlice addresses, never to the
Service's ClusterIP.

Plain standard library: fixtures are the caller's business.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

from tests import kube

GATEWAY_NAMESPACE = "modelops-gateways"
GATEWAY_API = "gateway.networking.k8s.io/v1"

ENVOY_GATEWAY = "envoy-gateway"
ENVOY_GATEWAY_CONTROLLER = "gateway.envoyproxy.io/gatewayclass-controller"
# The Gateway listener's port; host-mode Envoy binds it on all interfaces.
ENVOY_GATEWAY_PORT = 10080
# Envoy Gateway's control plane ports are fixed in v1.9.1 (all interfaces): 8080
# controller-runtime metrics, 8081 health, 9443 webhook, 18000 xDS, 18002 wasm; 19000
# admin (configurable, bound to loopback here); its own Prometheus server (19001) is
# switched off. Envoy: 19003 readiness (all interfaces) and an ephemeral loopback admin
# port. So one instance per machine.
ENVOY_GATEWAY_ADMIN_PORT = 19000
# Envoy Gateway reads its xDS server's TLS files from this fixed path when its resource
# provider is Kubernetes; it sees them through a bind mount in a private mount namespace.
ENVOY_GATEWAY_CERTS = Path("/certs")
ENVOY_GATEWAY_SYSTEM_NAMESPACE = "envoy-gateway-system"

TRAEFIK = "traefik"
TRAEFIK_CONTROLLER = "traefik.io/gateway-controller"  # fixed by Traefik
# Traefik's entryPoint; the Gateway listener must have the same port. Traefik opens no
# other port (no api, ping or metrics).
TRAEFIK_PORT = 10180

# Loopback "pod" IPs of the start-up probes' backends: high in kwok's pod pool
# 127.1.0.0/16, far from the addresses it hands out first (tests use 127.1.250.x).
PROBE_BACKEND_IPS = {ENVOY_GATEWAY: "127.1.251.1", TRAEFIK: "127.1.251.2"}


# --- binaries ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GatewayBinaries:
    """Where hack/build-gateways.sh puts things."""

    envoy_gateway: Path
    traefik: Path
    envoy: Path  # <envoy_data_home>/envoy-versions/<envoy_version>/bin/envoy
    envoy_data_home: Path  # Envoy Gateway's host-mode dataHome (func-e finds Envoy there)
    envoy_version: str


def gateway_binaries() -> GatewayBinaries:
    v = kube._lib_vars("GATEWAY_BIN_DIR", "ENVOY_DATA_HOME", "ENVOY_VERSION")
    bin_dir, data_home, version = Path(v["GATEWAY_BIN_DIR"]), Path(v["ENVOY_DATA_HOME"]), v["ENVOY_VERSION"]
    return GatewayBinaries(envoy_gateway=bin_dir / "envoy-gateway", traefik=bin_dir / "traefik",
                           envoy=data_home / "envoy-versions" / version / "bin" / "envoy",
                           envoy_data_home=data_home, envoy_version=version)


def ensure_gateway_binaries(timeout: float = 3600) -> GatewayBinaries:
    """hack/build-gateways.sh (builds what is missing or stale: minutes when cold, ~0.05 s
    otherwise), then where the binaries are."""
    kube._hack("build-gateways.sh", timeout=timeout)
    return gateway_binaries()


# --- a running implementation ------------------------------------------------------------


@dataclass
class GatewayImpl:
    """One running implementation: its processes, one GatewayClass and one Gateway."""

    name: str  # "envoy-gateway" | "traefik"
    url: str  # http://127.0.0.1:<listener port>
    port: int
    parent_ref: dict  # {"name": ..., "namespace": ...} for an HTTPRoute's parentRefs
    controller_name: str
    gateway_class: str
    cluster: kube.Cluster = field(repr=False)
    workdir: Path = field(repr=False)
    logs: list[Path] = field(default_factory=list, repr=False)
    startup_seconds: float = 0.0  # process start to the first 200 through the listener
    _procs: list[subprocess.Popen] = field(default_factory=list, repr=False)
    _cleanup: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def stop(self) -> None:
        """Stops the processes (children included) and deletes the Gateway and GatewayClass."""
        for proc in reversed(self._procs):
            _stop_tree(proc)
        self._procs.clear()
        _remove_gateway_objects(self.cluster, self.parent_ref["name"], self.gateway_class, wait=False)
        while self._cleanup:
            self._cleanup.pop()()

    def log(self, chars: int = 6000) -> str:
        """The tail of each log file, for failure messages."""
        parts = []
        for path in self.logs:
            text = path.read_text(errors="replace") if path.exists() else "(no log)"
            parts.append(f"--- {path.name} ---\n{text[-chars:]}")
        return "\n".join(parts)

    def alive(self) -> bool:
        return bool(self._procs) and all(p.poll() is None for p in self._procs)

    def get(self, path: str = "/", host: str | None = None, headers: dict[str, str] | None = None,
            method: str = "GET", body: bytes | None = None, timeout: float = 5) -> tuple[int, dict[str, str], bytes]:
        """One request through the listener: (status, headers (lower-case names), body)."""
        return http_request(self.url, path, host=host, headers=headers, method=method, body=body, timeout=timeout)

    def wait_ok(self, host: str, path: str = "/", timeout: float = 30,
                check: Callable[[bytes], bool] | None = None) -> bytes:
        """Waits until a request for host/path gets 200 (and check(body) holds); returns the body."""
        last: list[Any] = [None]

        def ok():
            try:
                status, _, body = self.get(path, host=host, timeout=2)
            except OSError as e:
                last[0] = e
                return None
            last[0] = status
            return body if status == 200 and (check is None or check(body)) else None

        try:
            return kube.wait_for(ok, timeout, 0.1, f"200 from {self.name} for {host}{path}")
        except TimeoutError as e:
            raise TimeoutError(f"{e} (last: {last[0]})\n{self.log()}") from None


def http_request(url: str, path: str = "/", host: str | None = None, headers: dict[str, str] | None = None,
                 method: str = "GET", body: bytes | None = None,
                 timeout: float = 5) -> tuple[int, dict[str, str], bytes]:
    """A single plain HTTP/1.1 request (no redirects, no proxies from the environment)."""
    hostport = url.removeprefix("http://").rstrip("/")
    conn = http.client.HTTPConnection(hostport, timeout=timeout)
    try:
        hdrs = dict(headers or {})
        if host:
            hdrs["Host"] = host
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def _descendants(pid: int) -> list[int]:
    """Every live descendant of pid (from /proc), children first."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _stop_tree(proc: subprocess.Popen, timeout: float = 10) -> None:
    """SIGTERM to proc, SIGKILL after timeout; then SIGKILL to whatever it had started."""
    if proc.poll() is not None:
        return
    family = _descendants(proc.pid)
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    for pid in family:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))
            return True
        except OSError:
            return False


def _check_ports(name: str, ports: list[int]) -> None:
    busy = [p for p in ports if not _port_free(p)]
    if busy:
        raise RuntimeError(f"{name} needs ports {busy}, which are in use (another instance still running?)")


def _popen(cmd: list[str], log: Path, env: dict[str, str], cwd: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                env=env, cwd=cwd, start_new_session=True)


# --- Gateway objects ----------------------------------------------------------------------


def _ensure_namespace(cluster: kube.Cluster, name: str) -> None:
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


def _gateway_objects(name: str, gateway_class: str, controller: str, port: int) -> list[dict]:
    return [
        {"apiVersion": GATEWAY_API, "kind": "GatewayClass", "metadata": {"name": gateway_class},
         "spec": {"controllerName": controller}},
        {"apiVersion": GATEWAY_API, "kind": "Gateway", "metadata": {"name": name, "namespace": GATEWAY_NAMESPACE},
         "spec": {"gatewayClassName": gateway_class,
                  "listeners": [{"name": "http", "protocol": "HTTP", "port": port,
                                 "allowedRoutes": {"namespaces": {"from": "All"}}}]}},
    ]


def _remove_gateway_objects(cluster: kube.Cluster, gateway: str, gateway_class: str, wait: bool) -> None:
    """Deletes the Gateway and GatewayClass, dropping their finalizers: the controller that
    would remove them (Envoy Gateway's gateway-exists finalizer) is no longer running."""
    for kind, ns in (("gateway", ["-n", GATEWAY_NAMESPACE]), ("gatewayclass", [])):
        name = gateway if kind == "gateway" else gateway_class
        cluster.kubectl("delete", kind, name, *ns, "--ignore-not-found", "--wait=false", check=False)
        cluster.kubectl("patch", kind, name, *ns, "--type=merge", "-p", '{"metadata":{"finalizers":null}}',
                        check=False)
        if wait:
            kube.wait_for(lambda: cluster.kubectl("get", kind, name, *ns, "--ignore-not-found", "-o", "name")
                          .stdout.strip() == "", 30, 0.2, f"{kind} {name} to be gone")


def _condition(obj: dict, type_: str, conditions: list | None = None) -> dict | None:
    for c in conditions if conditions is not None else obj.get("status", {}).get("conditions", []):
        if c.get("type") == type_:
            return c
    return None


def _gateway_ready(cluster: kube.Cluster, name: str) -> bool:
    """Accepted=True for the Gateway's generation, and its listener Programmed=True.

    (Envoy Gateway in host mode leaves the Gateway itself Programmed=False with
    AddressNotAssigned: there is no Service to take an address from.)"""
    gw = cluster.get_json("gateway", name, namespace=GATEWAY_NAMESPACE)
    accepted = _condition(gw, "Accepted")
    generation = gw["metadata"]["generation"]
    if not accepted or accepted["status"] != "True" or accepted.get("observedGeneration") != generation:
        return False
    listeners = gw.get("status", {}).get("listeners", [])
    return bool(listeners) and all(
        (_condition(gw, "Programmed", listener.get("conditions", [])) or {}).get("status") == "True"
        for listener in listeners)


def gateway_class_status(cluster: kube.Cluster, impl: GatewayImpl) -> dict:
    """The GatewayClass' status (conditions, supportedFeatures if the implementation publishes them)."""
    return cluster.get_json("gatewayclass", impl.gateway_class).get("status", {})


def route_status(route: dict, impl: GatewayImpl) -> dict | None:
    """The HTTPRoute's status.parents entry written by impl's controller for impl's Gateway."""
    for parent in route.get("status", {}).get("parents", []):
        ref = parent.get("parentRef", {})
        if (parent.get("controllerName") == impl.controller_name and ref.get("name") == impl.parent_ref["name"]
                and ref.get("namespace", route["metadata"]["namespace"]) == impl.parent_ref["namespace"]):
            return parent
    return None


def wait_route_accepted(cluster: kube.Cluster, namespace: str, name: str, impl: GatewayImpl,
                        timeout: float = 30) -> dict:
    """Waits until impl's controller reports the HTTPRoute Accepted=True and ResolvedRefs=True
    for its current generation; returns the route. A False condition is reported at the end."""
    last: list[Any] = [None]

    def accepted():
        route = cluster.get_json("httproute", name, namespace=namespace)
        parent = route_status(route, impl)
        last[0] = parent
        if parent is None:
            return None
        gen = route["metadata"]["generation"]
        conds = [_condition(route, t, parent.get("conditions", [])) for t in ("Accepted", "ResolvedRefs")]
        if all(c and c["status"] == "True" and c.get("observedGeneration", gen) == gen for c in conds):
            return route
        return None

    try:
        return kube.wait_for(accepted, timeout, 0.2, f"HTTPRoute {namespace}/{name} accepted by {impl.name}")
    except TimeoutError as e:
        raise TimeoutError(f"{e}; its status for {impl.name}: {json.dumps(last[0])}") from None


# --- backends ------------------------------------------------------------------------------


class HttpBackend:
    """An in-process HTTP server on a loopback "pod" IP that answers every request with 200,
    body = its name and header X-Backend = its name; it records each request's
    (method, path, headers) in .requests."""

    def __init__(self, name: str, ip: str, port: int = 0):
        self.name = name
        self.ip = ip
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self._connections: set[socket.socket] = set()
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body in one write, sent at once: otherwise the proxy's delayed
            # ACK holds the body back ~40 ms on a kept-alive connection (Nagle).
            wbufsize = 65536
            disable_nagle_algorithm = True

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                backend.requests.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
                body = backend.name.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("X-Backend", backend.name)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _answer

            def setup(self):
                super().setup()
                backend._connections.add(self.connection)

            def finish(self):
                backend._connections.discard(self.connection)
                super().finish()

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer((ip, port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"backend-{name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stops listening and closes the connections proxies keep alive (so nothing answers)."""
        self._server.shutdown()
        self._server.server_close()
        for conn in list(self._connections):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> HttpBackend:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def backend_objects(name: str, namespace: str, ip: str, port: int, service_port: int = 80) -> list[dict]:
    """A selector-less Service `name` (port service_port, named http) and its hand-written
    EndpointSlice with one ready endpoint ip:port."""
    return [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
         "spec": {"ports": [{"name": "http", "port": service_port, "targetPort": port, "protocol": "TCP"}]}},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {"name": f"{name}-manual", "namespace": namespace,
                      "labels": {"kubernetes.io/service-name": name,
                                 "endpointslice.kubernetes.io/managed-by": "modelops-tests"}},
         "addressType": "IPv4",
         "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
         "endpoints": [{"addresses": [ip], "conditions": {"ready": True, "serving": True, "terminating": False}}]},
    ]


def http_route(name: str, namespace: str, impl: GatewayImpl, hostname: str,
               backends: list[tuple[str, int]], port: int = 80) -> dict:
    """An HTTPRoute on impl's Gateway for hostname: one rule, backends [(service, weight)]."""
    return {"apiVersion": GATEWAY_API, "kind": "HTTPRoute", "metadata": {"name": name, "namespace": namespace},
            "spec": {"parentRefs": [impl.parent_ref], "hostnames": [hostname],
                     "rules": [{"backendRefs": [{"name": svc, "port": port, "weight": weight}
                                                for svc, weight in backends]}]}}


def _probe(impl: GatewayImpl, started: float) -> None:
    """Proves traffic flows: a throwaway route to a loopback backend answers 200; then removes it."""
    cluster = impl.cluster
    name = f"probe-{impl.name}"
    with HttpBackend(name, PROBE_BACKEND_IPS[impl.name]) as backend:
        objects = backend_objects(name, GATEWAY_NAMESPACE, backend.ip, backend.port)
        route = http_route(name, GATEWAY_NAMESPACE, impl, f"{name}.gateways.test", [(name, 1)])
        cluster.apply([*objects, route])
        try:
            impl.wait_ok(f"{name}.gateways.test", timeout=60, check=lambda body: body == name.encode())
            impl.startup_seconds = time.monotonic() - started
        finally:
            for kind, obj_name in (("httproute", name), ("endpointslice", f"{name}-manual"), ("service", name)):
                cluster.kubectl("delete", kind, obj_name, "-n", GATEWAY_NAMESPACE, "--ignore-not-found",
                                "--wait=false", check=False)


def _wait_gateway(impl: GatewayImpl, timeout: float = 60) -> None:
    def ready():
        if not impl.alive():
            raise RuntimeError(f"{impl.name} exited:\n{impl.log()}")
        return _gateway_ready(impl.cluster, impl.parent_ref["name"])

    try:
        kube.wait_for(ready, timeout, 0.2, f"Gateway {GATEWAY_NAMESPACE}/{impl.parent_ref['name']} "
                                           f"accepted and its listener programmed")
    except TimeoutError as e:
        gw = impl.cluster.get_json("gateway", impl.parent_ref["name"], namespace=GATEWAY_NAMESPACE)
        raise TimeoutError(f"{e}\nstatus: {json.dumps(gw.get('status'))}\n{impl.log()}") from None


def _start(impl: GatewayImpl, launch: Callable[[], None]) -> GatewayImpl:
    """Applies the Gateway objects, launches, waits for the Gateway and the probe; stops on failure."""
    try:
        _ensure_namespace(impl.cluster, GATEWAY_NAMESPACE)
        # A clean slate: what an earlier run that did not stop left behind goes first.
        _remove_gateway_objects(impl.cluster, impl.parent_ref["name"], impl.gateway_class, wait=True)
        impl.cluster.apply(_gateway_objects(impl.parent_ref["name"], impl.gateway_class, impl.controller_name,
                                            impl.port))
        started = time.monotonic()
        launch()
        _wait_gateway(impl)
        _probe(impl, started)
        return impl
    except BaseException:
        impl.stop()
        raise


# --- Envoy Gateway -----------------------------------------------------------------------


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def start_envoy_gateway(cluster: kube.Cluster, workdir: Path) -> GatewayImpl:
    """Envoy Gateway in host mode: Kubernetes resource provider (out of cluster, KUBECONFIG),
    Host infrastructure (it runs Envoy as its child, from the build cache, never downloads)."""
    paths = ensure_gateway_binaries()
    _check_ports(ENVOY_GATEWAY, [ENVOY_GATEWAY_PORT, 8080, 8081, 9443, 18000, 18002, ENVOY_GATEWAY_ADMIN_PORT, 19003])
    work = Path(workdir) / ENVOY_GATEWAY
    if work.exists():
        shutil.rmtree(work)
    dirs = {d: work / d for d in ("config", "state", "run")}
    for d in dirs.values():
        d.mkdir(parents=True)
    env = cluster.env
    env.pop("KUBERNETES_SERVICE_HOST", None)
    # func-e would otherwise look up the version of Envoy over the network: v1.9.1 cannot
    # parse it from its default image name (the tag ends in a digest).
    env["ENVOY_VERSION"] = paths.envoy_version

    # One CA for both ends of xDS: certs/envoy-gateway (the server; the Kubernetes provider
    # reads it at /certs), certs/envoy (Envoy's client cert, found under configHome).
    kube.run([str(paths.envoy_gateway), "certgen", "--local", "--config-home", str(dirs["config"])], env=env)
    certs = dirs["config"] / "certs"
    _ensure_namespace(cluster, ENVOY_GATEWAY_SYSTEM_NAMESPACE)
    cluster.apply([
        {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
         "metadata": {"name": "envoy-oidc-hmac", "namespace": ENVOY_GATEWAY_SYSTEM_NAMESPACE},
         "data": {"hmac-secret": _b64(certs / "envoy-oidc-hmac" / "hmac-secret")}},
        {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
         "metadata": {"name": "envoy", "namespace": ENVOY_GATEWAY_SYSTEM_NAMESPACE},
         "data": {f: _b64(certs / "envoy" / f) for f in ("ca.crt", "tls.crt", "tls.key")}},
    ])

    config = {
        "apiVersion": "gateway.envoyproxy.io/v1alpha1",
        "kind": "EnvoyGateway",
        "gateway": {"controllerName": ENVOY_GATEWAY_CONTROLLER},
        "provider": {"type": "Custom", "custom": {
            "resource": {"type": "Kubernetes", "kubernetes": {"leaderElection": {"disable": True}}},
            "infrastructure": {"type": "Host", "host": {
                "configHome": str(dirs["config"]),
                "dataHome": str(paths.envoy_data_home),  # read only: envoy-versions/V/bin/envoy
                "stateHome": str(dirs["state"]),
                "runtimeDir": str(dirs["run"]),
            }},
        }},
        "logging": {"level": {"default": "info"}},
        "admin": {"address": {"host": "127.0.0.1", "port": ENVOY_GATEWAY_ADMIN_PORT}},
        "telemetry": {"metrics": {"prometheus": {"disable": True}}},
    }
    config_path = work / "envoy-gateway.yaml"
    config_path.write_text(json.dumps(config, indent=2))  # JSON is YAML

    # /certs: the server's files bind-mounted in a private mount namespace (only this
    # process tree sees them); the host gets at most an empty mount point.
    ENVOY_GATEWAY_CERTS.mkdir(exist_ok=True)
    server = [str(paths.envoy_gateway), "server", "--config-path", str(config_path)]
    cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
           'mount --bind "$1" "$2" && shift 2 && exec "$@"', "sh",
           str(certs / "envoy-gateway"), str(ENVOY_GATEWAY_CERTS), *server]
    log = work / "envoy-gateway.log"
    impl = GatewayImpl(name=ENVOY_GATEWAY, url=f"http://127.0.0.1:{ENVOY_GATEWAY_PORT}", port=ENVOY_GATEWAY_PORT,
                       parent_ref={"name": ENVOY_GATEWAY, "namespace": GATEWAY_NAMESPACE},
                       controller_name=ENVOY_GATEWAY_CONTROLLER, gateway_class=f"modelops-{ENVOY_GATEWAY}",
                       cluster=cluster, workdir=work, logs=[log])
    return _start(impl, lambda: impl._procs.append(_popen(cmd, log, env, work)))


# --- Traefik -----------------------------------------------------------------------------


def start_traefik(cluster: kube.Cluster, workdir: Path) -> GatewayImpl:
    """Traefik's Kubernetes Gateway provider, out of cluster (KUBECONFIG), one entryPoint
    on the listener's port (loopback only)."""
    paths = ensure_gateway_binaries()
    _check_ports(TRAEFIK, [TRAEFIK_PORT])
    work = Path(workdir) / TRAEFIK
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    env = cluster.env
    # Out of cluster: without KUBERNETES_SERVICE_HOST it reads KUBECONFIG.
    env.pop("KUBERNETES_SERVICE_HOST", None)
    env.pop("KUBERNETES_SERVICE_PORT", None)
    log = work / "traefik.log"
    cmd = [str(paths.traefik),
           f"--entryPoints.web.address=127.0.0.1:{TRAEFIK_PORT}",
           "--providers.kubernetesGateway=true",
           # Apply each configuration change at once (default: at most one per 2 s).
           "--providers.providersThrottleDuration=100ms",
           "--log.level=INFO", "--log.noColor=true",
           "--global.checkNewVersion=false", "--global.sendAnonymousUsage=false"]
    impl = GatewayImpl(name=TRAEFIK, url=f"http://127.0.0.1:{TRAEFIK_PORT}", port=TRAEFIK_PORT,
                       parent_ref={"name": TRAEFIK, "namespace": GATEWAY_NAMESPACE},
                       controller_name=TRAEFIK_CONTROLLER, gateway_class=f"modelops-{TRAEFIK}",
                       cluster=cluster, workdir=work, logs=[log])
    return _start(impl, lambda: impl._procs.append(_popen(cmd, log, env, work)))
