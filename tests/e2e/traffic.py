"""Live traffic for a ModelDeployment, routed as the cluster would route it.

Replica-ratio routing: every request picks one ready endpoint of the entry Service's
EndpointSlices uniformly at random, as kube-proxy does (the local cluster runs no
kube-proxy), so the candidate's share is its share of endpoints. Gateway API routing:
every request goes to a real gateway's listener (tests/gateways.py) with the route's
hostname, and the gateway alone decides which backend serves it; the answer names the
revision that served it (the model server's X-Modelops-Revision header).
Routing state is re-read in the background every `refresh` seconds.

The rows are synthetic churn customers (examples/churn_data.py). The traffic can turn
drifted at any moment (`drift("mean", "monthly_charges", 2.0)`), and every row sent is
counted per track (the track the endpoint's revision had in the ModelDeployment's
status when the request was sent) and per revision.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples"))

from churn_data import FEATURES, customers, shift  # noqa: E402

LABEL_REVISION = "modelops.io/revision"


def to_rows(df) -> list[dict]:
    """JSON rows in the model's schema (NaN and None as null)."""
    out = []
    for rec in df[FEATURES].to_dict("records"):
        row = {}
        for k, v in rec.items():
            if v is None or (isinstance(v, float) and v != v):
                row[k] = None
            else:
                row[k] = v.item() if hasattr(v, "item") else v
        out.append(row)
    return out


@dataclass
class Endpoint:
    ip: str
    port: int
    pod: str
    revision: str | None


@dataclass
class Routing:
    """The entry Service's ready endpoints (replica routing), and the revisions."""

    endpoints: list[Endpoint] = field(default_factory=list)
    stable: str | None = None
    candidate: str | None = None

    def pick(self, rng: random.Random, serving=lambda ip: True) -> Endpoint | None:
        """One live endpoint, uniformly, as kube-proxy picks one per connection."""
        live = [e for e in self.endpoints if serving(e.ip)]
        return rng.choice(live) if live else None

    def track(self, revision: str | None) -> str:
        if revision and revision == self.candidate:
            return "candidate"
        if revision and revision == self.stable:
            return "stable"
        return "other"


def served_by(resp: httpx.Response | None) -> str | None:
    """The revision whose model server answered (None: no answer from a model server)."""
    return resp.headers.get("x-modelops-revision") if resp is not None else None


class TrafficDriver:
    """Sends POST /predict at `rate` requests/s with `rows` rows each, from a thread."""

    def __init__(self, cluster, namespace: str, name: str, rate: float = 10.0, rows: int = 5,
                 serving=None, seed: int = 1, refresh: float = 0.5, pool: int = 20_000, service: str | None = None,
                 gateway=None, host: str | None = None):
        from kubernetes import client, config

        api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
        self.core, self.disco = client.CoreV1Api(api), client.DiscoveryV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.namespace, self.name = namespace, name
        self.service = service or name  # e.g. NAME-preview, for smoke traffic to a blue-green preview
        self.rate, self.rows = rate, rows
        # A running gateway (tests/gateways.py) and the route's hostname: requests go there.
        self.gateway, self.host = gateway, host
        # Every answered request through the gateway: its latency in seconds.
        self.latencies: list[tuple[float, float]] = []  # (time sent, seconds)
        # Stands in for readiness probes kwok does not run: skip endpoints whose
        # processes do not answer yet (a real kubelet keeps them out of the slices).
        self.serving = serving or (lambda ip: True)
        self.rng = random.Random(seed)
        self.refresh = refresh
        self._normal = customers(pool, seed)
        self._pool = to_rows(self._normal)
        self._cursor = 0
        self.routing = Routing()
        self.rows_by_track: Counter = Counter()
        self.rows_by_revision: Counter = Counter()
        self.status_by_track: Counter = Counter()  # (track, http status) -> requests
        self.unroutable = 0
        # Every request: (time.time() when sent, track, revision, HTTP status or 0, rows).
        self.requests: list[tuple[float, str, str | None, int, int]] = []
        self.drift_started: float | None = None
        self.rows_since_drift: Counter = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._route_loop, daemon=True),
                         threading.Thread(target=self._send_loop, daemon=True)]

    # --- control ---------------------------------------------------------------------

    def start(self) -> "TrafficDriver":
        self._refresh_routing()
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(15)

    def drift(self, kind: str = "mean", feature: str = "monthly_charges", amount: float = 2.0) -> None:
        """From now on, send shifted rows."""
        rows = to_rows(shift(self._normal, kind, feature, amount, seed=3))
        with self._lock:
            self._pool, self._cursor = rows, 0
            self.drift_started = time.time()
            self.rows_since_drift = Counter()

    def snapshot(self) -> dict:
        with self._lock:
            return {"rows_by_track": dict(self.rows_by_track), "rows_by_revision": dict(self.rows_by_revision),
                    "status_by_track": {f"{t}/{s}": n for (t, s), n in self.status_by_track.items()},
                    "unroutable": self.unroutable, "rows_since_drift": dict(self.rows_since_drift)}

    def between(self, start: float, end: float | None = None) -> list[tuple[float, str, str | None, int, int]]:
        """The requests sent in [start, end)."""
        with self._lock:
            return [r for r in self.requests if r[0] >= start and (end is None or r[0] < end)]

    # --- routing ------------------------------------------------------------------------

    def _endpoints(self, service: str) -> list[Endpoint]:
        slices = self.disco.list_namespaced_endpoint_slice(
            self.namespace, label_selector=f"kubernetes.io/service-name={service}", _request_timeout=10).items
        pods = {p.metadata.name: (p.metadata.labels or {}).get(LABEL_REVISION)
                for p in self.core.list_namespaced_pod(self.namespace, _request_timeout=10,
                                                       label_selector="modelops.io/modeldeployment").items}
        out = []
        for s in slices:
            port = next((p.port for p in s.ports or [] if p.name == "http"), None)
            if port is None:
                continue
            for ep in s.endpoints or []:
                if not (ep.conditions and ep.conditions.ready):
                    continue
                pod = ep.target_ref.name if ep.target_ref else ""
                for ip in ep.addresses:
                    if self.serving(ip):
                        out.append(Endpoint(ip, port, pod, pods.get(pod)))
        return out

    def _refresh_routing(self) -> None:
        md = self.custom.get_namespaced_custom_object("modelops.io", "v1alpha1", self.namespace, "modeldeployments",
                                                      self.name, _request_timeout=10)
        st = md.get("status") or {}
        routing = Routing(stable=(st.get("stable") or {}).get("revision"),
                          candidate=(st.get("candidate") or {}).get("revision"))
        if self.gateway is None:
            routing.endpoints = self._endpoints(self.service)
        with self._lock:
            self.routing = routing

    def _route_loop(self) -> None:
        while not self._stop.wait(self.refresh):
            try:
                self._refresh_routing()
            except Exception:  # noqa: BLE001 - keep the last routing; the API server may hiccup
                pass

    # --- sending -------------------------------------------------------------------------

    def _next_rows(self) -> list[dict]:
        with self._lock:
            pool, i = self._pool, self._cursor
            self._cursor = (i + self.rows) % len(pool)
        return [pool[(i + k) % len(pool)] for k in range(self.rows)]

    def _send_loop(self) -> None:
        period = 1.0 / self.rate
        next_at = time.monotonic()
        with httpx.Client(timeout=10.0) as http:
            while not self._stop.is_set():
                next_at += period
                self._send_one(http)
                delay = next_at - time.monotonic()
                if delay > 0:
                    self._stop.wait(delay)
                else:
                    next_at = time.monotonic()  # behind: do not burst to catch up

    def _send_one(self, http: httpx.Client) -> None:
        if self.gateway is not None:
            rows = self._next_rows()
            sent, status, resp = self._through_gateway(http, rows)
            with self._lock:
                routing = self.routing
            revision = served_by(resp)
            self._record(sent, routing.track(revision), revision, status, len(rows))
            return
        with self._lock:
            routing = self.routing
            # Readiness is re-checked per request: a real kubelet and kube-proxy take
            # an endpoint out before its processes stop (see PodRunner.drain).
            ep = routing.pick(self.rng, self.serving)
        if ep is None:
            with self._lock:
                self.unroutable += 1
            return
        rows = self._next_rows()
        sent, status = self._post(http, ep, rows)
        self._record(sent, routing.track(ep.revision), ep.revision, status, len(rows))

    def _post(self, http: httpx.Client, ep: Endpoint, rows: list[dict], headers: dict | None = None) -> tuple[float, int]:
        """(time sent, HTTP status, or 0 when the endpoint went away)."""
        sent = time.time()
        try:
            status = http.post(f"http://{ep.ip}:{ep.port}/predict", content=json.dumps({"rows": rows}),
                               headers={"content-type": "application/json", **(headers or {})}).status_code
        except httpx.HTTPError:
            status = 0  # connection refused or reset: the endpoint went away
        return sent, status

    def _through_gateway(self, http: httpx.Client, rows: list[dict], headers: dict | None = None
                         ) -> tuple[float, int, httpx.Response | None]:
        """POST /predict to the gateway's listener: (time sent, HTTP status or 0 when the
        gateway could not be reached, the response)."""
        sent, t0 = time.time(), time.perf_counter()
        try:
            resp = http.post(f"{self.gateway.url}/predict", content=json.dumps({"rows": rows}),
                             headers={"content-type": "application/json", "host": self.host, **(headers or {})})
        except httpx.HTTPError:
            return sent, 0, None
        with self._lock:
            self.latencies.append((sent, time.perf_counter() - t0))
        return sent, resp.status_code, resp

    def _record(self, sent: float, track: str, revision: str | None, status: int, rows: int) -> None:
        with self._lock:
            self.requests.append((sent, track, revision, status, rows))
            self.status_by_track[(track, status)] += 1
            if status == 200:
                self.rows_by_track[track] += rows
                self.rows_by_revision[revision] += rows
                if self.drift_started is not None:
                    self.rows_since_drift[track] += rows
