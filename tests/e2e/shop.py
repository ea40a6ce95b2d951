"""An application that A/B tests two model versions behind the ModelDeployment's
HTTPRoute, for the end-to-end A/B scenario.

Two roles, both real code paths rather than stand-ins for the operator's:
- the gateway: each request is matched against the HTTPRoute the operator wrote, rule by
  rule as Gateway API orders them (header and cookie matches first, the default split
  last), a backend is drawn by the rule's weights and one of its ready endpoints
  uniformly, and the backend's ResponseHeaderModifier filter sets the variant cookie
  that keeps the session on its variant;
- the shop: sessions arrive (new ones, or returning ones that send their cookies), and
  the shop counts what an A/B decision needs, as a real application would: a session's
  exposure when the gateway assigns it a variant, and its conversion, drawn once per
  session with that variant's conversion rate. The counters are served at /metrics,
  labelled with namespace, modeldeployment and track (the variant cookie `control` is
  the stable track), and Prometheus scrapes them.
"""

from __future__ import annotations

import re
from collections import Counter as Tally
from dataclasses import dataclass, field

import httpx
from prometheus_client import CollectorRegistry, Counter, start_http_server

from ..prom import free_port
from .traffic import Endpoint, TrafficDriver, weighted_pick

VARIANT_TRACK = {"control": "stable", "candidate": "candidate"}


@dataclass
class Backend:
    weight: int
    endpoints: list[Endpoint]
    set_cookie: tuple[str, str] | None  # (name, value) the gateway adds to the response


@dataclass
class Rule:
    matches: list[list[dict]]  # any of these header-match lists; [] matches every request
    backends: list[Backend]

    def applies(self, headers: dict[str, str]) -> bool:
        return not self.matches or any(all(_header_matches(h, headers) for h in m) for m in self.matches)


def _header_matches(match: dict, headers: dict[str, str]) -> bool:
    value = headers.get(match["name"].lower())
    if value is None:
        return False
    if match.get("type", "Exact") == "RegularExpression":
        return re.search(match["value"], value) is not None
    return value == match["value"]


def _set_cookie(ref: dict) -> tuple[str, str] | None:
    for f in ref.get("filters") or []:
        for h in ((f.get("responseHeaderModifier") or {}).get("add") or []):
            if h["name"].lower() == "set-cookie":
                name, _, rest = h["value"].partition("=")
                return name.strip(), rest.split(";", 1)[0].strip()
    return None


@dataclass
class Session:
    cookies: dict[str, str] = field(default_factory=dict)
    variant: str | None = None
    assigned_at: float | None = None
    converted: bool = False


class Shop(TrafficDriver):
    """Sessions at `rate` requests/s through the ModelDeployment's HTTPRoute; a share
    `new_sessions` of the requests start a session, the others continue a recent one.
    `conversion` is the true conversion rate per variant (`control`, `candidate`)."""

    def __init__(self, cluster, namespace: str, name: str, conversion: dict[str, float], rate: float = 40.0,
                 new_sessions: float = 0.75, **kw):
        super().__init__(cluster, namespace, name, rate=rate, rows=1, **kw)
        self.conversion, self.new_sessions = conversion, new_sessions
        self.rules: list[Rule] = []
        self.sessions: list[Session] = []
        # Every answered request: (time.time(), session index, revision).
        self.visits: list[tuple[float, int, str | None]] = []
        self.assigned: Tally = Tally()  # variant -> sessions
        self.converted: Tally = Tally()
        self.registry = CollectorRegistry()
        labels = ("namespace", "modeldeployment", "track")
        self._exposures = Counter("shop_sessions", "Sessions assigned to a variant", labels, registry=self.registry)
        self._conversions = Counter("shop_conversions", "Sessions that bought", labels, registry=self.registry)
        for track in VARIANT_TRACK.values():  # a counter's first sample is its baseline for increase()
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

    # --- the gateway ------------------------------------------------------------------

    def _follow_route(self, route: dict, routing) -> None:
        endpoints: dict[str, list[Endpoint]] = {}
        rules = []
        for rule in route["spec"]["rules"]:
            backends = []
            for ref in rule["backendRefs"]:
                if ref["name"] not in endpoints:
                    endpoints[ref["name"]] = self._endpoints(ref["name"])
                backends.append(Backend(int(ref.get("weight", 1)), endpoints[ref["name"]], _set_cookie(ref)))
            matches = [list(m.get("headers") or []) for m in rule.get("matches") or []]
            rules.append(Rule(matches, backends))
        routing.backends = [(b.weight, b.endpoints) for b in rules[-1].backends]  # the default split
        with self._lock:
            self.rules = rules

    def _route(self, headers: dict[str, str]) -> tuple[Endpoint, Backend] | None:
        rule = next((r for r in self.rules if r.applies(headers)), None)
        if rule is None:
            return None
        return weighted_pick(self.rng, [(b.weight, [e for e in b.endpoints if self.serving(e.ip)], b)
                                        for b in rule.backends])

    # --- the shop ---------------------------------------------------------------------

    def _send_one(self, http: httpx.Client) -> None:
        with self._lock:
            if not self.sessions or self.rng.random() < self.new_sessions:
                self.sessions.append(Session())
                index = len(self.sessions) - 1
            else:  # a returning session, from the recent ones
                index = self.rng.randrange(max(0, len(self.sessions) - 300), len(self.sessions))
            session = self.sessions[index]
            headers = {"cookie": "; ".join(f"{k}={v}" for k, v in session.cookies.items())} if session.cookies else {}
            picked = self._route(headers)
            routing = self.routing
        if picked is None:
            with self._lock:
                self.unroutable += 1
            return
        ep, backend = picked
        rows = self._next_rows()
        sent, status = self._post(http, ep, rows, headers)
        self._record(sent, routing.track(ep.revision), ep.revision, status, len(rows))
        if status != 200:
            return
        with self._lock:
            self.visits.append((sent, index, ep.revision))
            if backend.set_cookie is None:
                return
            cookie, variant = backend.set_cookie
            if session.cookies.get(cookie) == variant:
                return
            # The gateway assigned this session a variant: an exposure, and its one
            # chance to convert.
            session.cookies[cookie] = variant
            session.variant, session.assigned_at = variant, sent
            session.converted = self.rng.random() < self.conversion[variant]
            self.assigned[variant] += 1
            self._exposures.labels(self.namespace, self.name, VARIANT_TRACK[variant]).inc()
            if session.converted:
                self.converted[variant] += 1
                self._conversions.labels(self.namespace, self.name, VARIANT_TRACK[variant]).inc()

    def split(self) -> Tally:
        """Sessions per variant, counted from the first assignment to the candidate (before
        it serves, the gateway sends every new session to the control)."""
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
    """The shop's traffic, with its counters scraped by the stack's Prometheus."""
    shop = Shop(stack.cluster, stack.namespace, name, conversion, serving=stack.runner.serving, **kw).start()
    stack.drivers.append(shop)
    stack.prometheus.add_static_job("shop", shop.metrics_target)
    return shop
