"""Each real Gateway API implementation, started as local processes against the local
cluster (tests/gateways.py), splits an HTTPRoute's traffic by its weights, and takes up
the operator's route through whole rollouts without failing a request."""

import http.client
import math
import threading
import time
from collections import Counter

import pytest

from modelops_operator.routers import Traffic
from modelops_operator.routers.gateway import GatewayAPIRouter
from modelops_operator.spec import parse
from tests import gateways, kube

from ..conftest import gateway_routing


@pytest.fixture(params=["envoy_gateway", "traefik_gateway"])
def gateway(request, cluster):
    """The session's instance (tests/conftest.py): Envoy Gateway's ports allow one per machine."""
    impl = request.getfixturevalue(request.param)
    print(f"{impl.name}: first routed 200 {impl.startup_seconds:.2f}s after start; GatewayClass status: "
          f"{gateways.gateway_class_status(cluster, impl)}")
    return impl


def test_weighted_split(cluster, namespace, gateway):
    n, weights = 400, {"stable": 80, "canary": 20}
    backends = [gateways.HttpBackend(name, f"127.1.250.{i + 1}") for i, name in enumerate(weights)]
    try:
        for b in backends:
            cluster.apply(gateways.backend_objects(b.name, namespace, b.ip, b.port))
        host = f"split.{namespace}.test"
        route = gateways.http_route("split", namespace, gateway, host, list(weights.items()))
        cluster.apply(route)
        gateways.wait_route_accepted(cluster, namespace, "split", gateway)
        # Both backends in the data plane before counting.
        for b in backends:
            gateway.wait_ok(host, check=lambda body, name=b.name: body == name.encode())

        counts = dict.fromkeys(weights, 0)
        for _ in range(n):
            status, headers, body = gateway.get("/", host=host)
            assert status == 200, (status, body, gateway.log())
            counts[body.decode()] += 1
        p = weights["canary"] / sum(weights.values())
        tolerance = 4 * math.sqrt(n * p * (1 - p))  # 4 sigma of the binomial: 32 of 400
        print(f"{gateway.name}: {counts}")
        assert abs(counts["canary"] - n * p) <= tolerance, (counts, gateway.name)
    finally:
        for b in backends:
            b.stop()


# The shapes the operator's route takes in a rollout of each strategy, in the order the
# rollout writes them, from the stable alone back to the stable alone ("r2" promoted, or
# rolled back to "r1": the same shapes).
AB_DECISION = {"baselineRate": 0.1, "minimumDetectableEffect": 0.1}
ROLLOUT_ROUTES = {
    "ab-split": ({"type": "ABTest", "abTest": {"split": {"candidateWeight": 50}, "decision": AB_DECISION}},
                 [Traffic("r1", None), Traffic("r1", "r2"), Traffic("r1", "r2", experiment=True),
                  Traffic("r1", "r2", weight=100), Traffic("r2", None)]),
    "ab-match": ({"type": "ABTest", "abTest": {"match": {"headers": [{"name": "x-cohort", "value": "beta"}]},
                                               "decision": AB_DECISION}},
                 [Traffic("r1", None), Traffic("r1", "r2"), Traffic("r1", "r2", experiment=True), Traffic("r1", None)]),
    "canary": ({"type": "Canary", "canary": {"steps": [{"weight": 10}, {"weight": 50}]}},
               [Traffic("r1", None), Traffic("r1", "r2", weight=10), Traffic("r1", "r2", weight=50),
                Traffic("r1", "r2", weight=100), Traffic("r2", None)]),
}
# Clients: new sessions, the A/B test's cohort, and sessions holding either variant's cookie.
CLIENTS = [{}, {}, {"x-cohort": "beta"}, {"Cookie": "shop=1; modelops-variant=r1"},
           {"Cookie": "modelops-variant=r2"}]


class Hammer:
    """Clients on kept-alive connections sending requests through the gateway as fast as
    they can, each with its own headers; every answer is kept: (time, status, body)."""

    def __init__(self, impl, host: str, clients: list[dict[str, str]]):
        self.impl, self.host = impl, host
        self.answers: list[tuple[float, int, str]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(h,), daemon=True) for h in clients]

    def _run(self, headers: dict[str, str]) -> None:
        conn = http.client.HTTPConnection(self.impl.url.removeprefix("http://"), timeout=5)
        headers = {"Host": self.host, **headers}
        while not self._stop.is_set():
            try:
                conn.request("GET", "/", headers=headers)
                resp = conn.getresponse()
                body = resp.read()
                self.answers.append((time.time(), resp.status, body[:200].decode(errors="replace")))
            except (OSError, http.client.HTTPException) as e:
                self.answers.append((time.time(), 0, repr(e)))
                conn.close()

    def __enter__(self) -> "Hammer":
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(10)


@pytest.mark.parametrize("strategy", list(ROLLOUT_ROUTES))
def test_rollout_route_changes_fail_no_request(cluster, namespace, gateway, strategy):
    """Each route change of a rollout is taken up by the gateway without failing a
    request, three rollouts in a row, under a steady stream of new and returning sessions.
    (On Envoy Gateway a rule added or removed fails requests for a moment: see
    GatewayAPIRouter._held_rules.)"""
    spec_strategy, shapes = ROLLOUT_ROUTES[strategy]
    meta = {"name": "churn", "namespace": namespace, "uid": "none"}
    backends = [gateways.HttpBackend(f"churn-{role}", f"127.1.251.{i + 1}")
                for i, role in enumerate(("stable", "canary"))]
    router = GatewayAPIRouter()
    try:
        for b in backends:
            cluster.apply(gateways.backend_objects(b.name, namespace, b.ip, b.port))
        routing = gateway_routing(gateway, namespace)
        host = routing["gatewayAPI"]["hostnames"][0]
        spec = parse({"model": {"name": "churn", "version": "2.0.0", "image": "reg/churn:2"}, "replicas": 1,
                      "strategy": {**spec_strategy, "trafficRouting": routing}})
        changes: list[tuple[float, str]] = []

        def write(traffic: Traffic) -> None:
            route = router.route(meta, spec, traffic)
            route["metadata"].pop("ownerReferences")  # no ModelDeployment owns it here
            changes.append((time.time(), str(traffic)))
            cluster.apply(route)
            gateways.wait_route_accepted(cluster, namespace, "churn", gateway)
            time.sleep(0.5)  # the data plane takes it up after the status
            if traffic.experiment:  # the experiment's rules take precedence over the first rule
                for client, backend in [(CLIENTS[3], b"churn-stable"), (CLIENTS[4], b"churn-canary"),
                                        *([(CLIENTS[2], b"churn-canary")] if "match" in spec.ab_test else [])]:
                    kube.wait_for(lambda c=client, b=backend: gateway.get("/", host=host, headers=c)[2] == b, 10, 0.1,
                                  f"{client} served by {backend}")

        write(shapes[0])
        gateway.wait_ok(host, check=lambda body: body == b"churn-stable")
        with Hammer(gateway, host, CLIENTS) as hammer:
            for _ in range(3):
                for traffic in shapes[1:] + shapes[:1]:
                    write(traffic)
        # Failed requests by the route change they followed.
        failed = Counter(next(c for at, c in reversed(changes) if at <= t) for t, status, _ in hammer.answers
                         if status != 200)
        served = {body for _, status, body in hammer.answers if status == 200}
        print(f"{gateway.name} {strategy}: {len(hammer.answers)} requests over {len(changes)} route changes; "
              f"failed after: {dict(failed)}")
        assert served == {"churn-stable", "churn-canary"}, served
        assert len(hammer.answers) > 20 * len(changes) and not failed, (failed, gateway.log(1500))
    finally:
        for b in backends:
            b.stop()
