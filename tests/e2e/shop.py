"""An application that A/B tests two model versions behind the ModelDeployment's
HTTPRoute, for the end-to-end A/B scenarios.

Sessions arrive at a real gateway's listener (tests/gateways.py): new ones, or returning
ones that send the cookies they were given. The gateway alone decides where a session
goes, and the model server that answers a new session sets the variant cookie naming
its revision. The shop counts what an A/B decision needs, as a real application would:
a session's exposure when it is assigned a variant (a Set-Cookie it did not hold), and
its conversion, drawn once per session with that variant's conversion rate. The
counters are served at /metrics, labelled with namespace, modeldeployment and track,
and Prometheus scrapes them. Every session also holds a cookie of the shop's own, as
real clients do: a cookie match that only works on a lone cookie fails here.
"""

from __future__ import annotations

from collections import Counter as Tally
from dataclasses import dataclass, field
from http.cookies import SimpleCookie

import httpx
from prometheus_client import CollectorRegistry, Counter, start_http_server

from ..prom import free_port
from .traffic import TrafficDriver, served_by

TRACK_VARIANT = {"stable": "control", "candidate": "candidate"}


@dataclass
class Session:
    cookies: dict[str, str] = field(default_factory=dict)
    variant: str | None = None
    assigned_at: float | None = None
    converted: bool = False


class Shop(TrafficDriver):
    """Sessions at `rate` requests/s through `gateway` to the route's `host`; a share
    `new_sessions` of the requests start a session, the others continue a recent one.
    `conversion` is the true conversion rate per variant (`control`, `candidate`);
    `headers(session index)` gives extra request headers (A/B by header match)."""

    def __init__(self, cluster, namespace: str, name: str, conversion: dict[str, float], rate: float = 40.0,
                 new_sessions: float = 0.75, headers=None, **kw):
        super().__init__(cluster, namespace, name, rate=rate, rows=1, **kw)
        assert self.gateway is not None, "the shop's sessions go through a gateway"
        self.conversion, self.new_sessions = conversion, new_sessions
        self.headers = headers or (lambda index: {})
        self.sessions: list[Session] = []
        # Every answered request: (time.time(), session index, revision).
        self.visits: list[tuple[float, int, str | None]] = []
        self.assigned: Tally = Tally()  # variant -> sessions
        self.converted: Tally = Tally()
        self.registry = CollectorRegistry()
        labels = ("namespace", "modeldeployment", "track")
        self._exposures = Counter("shop_sessions", "Sessions assigned to a variant", labels, registry=self.registry)
        self._conversions = Counter("shop_conversions", "Sessions that bought", labels, registry=self.registry)
        for track in TRACK_VARIANT:  # a counter's first sample is its baseline for increase()
            self._exposures.labels(namespace, name, track)
            self._conversions.labels(namespace, name, track)
        self.port = free_port()
        self._server, _ = start_http_server(self.port, addr="127.0.0.1", registry=self.registry)

    @property
    def metrics_target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        super().stop()
        self._server.shutdown()

    def _send_one(self, http: httpx.Client) -> None:
        with self._lock:
            if not self.sessions or self.rng.random() < self.new_sessions:
                self.sessions.append(Session(cookies={"shop-session": f"s{len(self.sessions)}"}))
                index = len(self.sessions) - 1
            else:  # a returning session, from the recent ones
                index = self.rng.randrange(max(0, len(self.sessions) - 300), len(self.sessions))
            session = self.sessions[index]
            headers = {"cookie": "; ".join(f"{k}={v}" for k, v in session.cookies.items()), **self.headers(index)}
        rows = self._next_rows()
        sent, status, resp = self._through_gateway(http, rows, headers)
        with self._lock:
            routing = self.routing
        revision = served_by(resp)
        track = routing.track(revision)
        self._record(sent, track, revision, status, len(rows))
        if status != 200:
            return
        given = SimpleCookie()
        for header in resp.headers.get_list("set-cookie"):
            given.load(header)
        with self._lock:
            self.visits.append((sent, index, revision))
            new = {k: m.value for k, m in given.items() if session.cookies.get(k) != m.value}
            if not new:
                return
            session.cookies.update(new)
            variant = TRACK_VARIANT.get(track)
            if variant is None:
                return
            # The server that answered assigned this session a variant: an exposure, and
            # its one chance to convert.
            session.variant, session.assigned_at = variant, sent
            session.converted = self.rng.random() < self.conversion[variant]
            self.assigned[variant] += 1
            self._exposures.labels(self.namespace, self.name, track).inc()
            if session.converted:
                self.converted[variant] += 1
                self._conversions.labels(self.namespace, self.name, track).inc()

    def split(self) -> Tally:
        """Sessions per variant, counted from the first assignment to the candidate (before
        it serves, every new session goes to the control)."""
        with self._lock:
            first = min((x.assigned_at for x in self.sessions if x.variant == "candidate"), default=None)
            return Tally(x.variant for x in self.sessions if x.variant and first and x.assigned_at >= first)

    def revisions_by_session(self, end: float) -> dict[int, list[str | None]]:
        """The revisions that served each assigned session from its assignment until `end`."""
        out: dict[int, list[str | None]] = {}
        with self._lock:
            for t, index, revision in self.visits:
                at = self.sessions[index].assigned_at
                if at is not None and at <= t < end:
                    out.setdefault(index, []).append(revision)
        return out


def start_shop(stack, conversion: dict[str, float], name: str = "churn", **kw) -> Shop:
    """The shop's traffic through the stack's gateway, its counters scraped by the
    stack's Prometheus."""
    shop = Shop(stack.cluster, stack.namespace, name, conversion, serving=stack.runner.serving,
                gateway=stack.gateway, host=stack.host, **kw).start()
    stack.drivers.append(shop)
    stack.prometheus.add_static_job("shop", shop.metrics_target)
    return shop
