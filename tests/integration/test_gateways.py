"""Smoke test of tests/gateways.py: each real Gateway API implementation, started as local
processes against the local cluster, splits an HTTPRoute's traffic by its weights."""

import math

import pytest

from tests import gateways


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
