"""Fixtures for the local Kubernetes cluster (the logic lives in tests/kube.py).

- `cluster` (session): hack/cluster.sh's cluster. MODELOPS_REUSE_CLUSTER=1 reuses a
  healthy running one (and leaves it running); otherwise a fresh one is made and removed
  at the end, unless MODELOPS_KEEP_CLUSTER=1.
- `namespace` (function): a fresh namespace t-<test>-<random>, deleted afterwards (the
  session waits, bounded, for all of them to be gone at its end).
- `envoy_gateway`, `traefik_gateway` (session): a real Gateway API implementation with
  one Gateway that admits routes from every namespace (tests/gateways.py), started on
  first use. `gateway_routing(impl, namespace)` is a ModelDeployment's trafficRouting
  through it, with a hostname of the namespace's own: routes left behind by an earlier
  test's namespace (still being deleted) never answer for this one.
Tests that use them are marked `cluster` automatically (`-m "not cluster"` skips them).
"""

import warnings

import pytest

from tests import gateways, kube


def pytest_configure(config):
    config.addinivalue_line("markers", "cluster: needs the local Kubernetes cluster (hack/cluster.sh)")


def pytest_collection_modifyitems(items):
    for item in items:
        if "cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.cluster)


def pytest_collection_finish(session):
    # A cold build of the cluster's binaries takes minutes: do it before the tests, so it
    # does not count against the first cluster test's timeout. Only when one will run.
    if session.config.option.collectonly or not any(i.get_closest_marker("cluster") for i in session.items):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter:
        reporter.write_line("modelops: hack/build-binaries.sh (builds missing cluster binaries)")
    kube.ensure_binaries()


@pytest.fixture(scope="session")
def cluster():
    c = kube.start_session_cluster()
    yield c
    left = kube.wait_namespaces_gone(c, c.deleting, timeout=60)
    if left:
        warnings.warn(f"test namespaces not deleted within 60s: {left}", stacklevel=1)
    kube.stop_session_cluster(c)


@pytest.fixture
def namespace(cluster, request):
    name = kube.create_namespace(cluster, kube.namespace_name(request.node.name))
    yield name
    # Deleting a namespace takes >= 5 s (kube-controller-manager's fixed grace period), so
    # tests do not wait for it one by one: the session waits for all of them at its end.
    kube.delete_namespace(cluster, name, wait=False)


@pytest.fixture(scope="session")
def envoy_gateway(cluster, tmp_path_factory):
    impl = gateways.start_envoy_gateway(cluster, tmp_path_factory.mktemp("envoy-gateway"))
    yield impl
    impl.stop()


@pytest.fixture(scope="session")
def traefik_gateway(cluster, tmp_path_factory):
    impl = gateways.start_traefik(cluster, tmp_path_factory.mktemp("traefik"))
    yield impl
    impl.stop()


def route_host(namespace: str) -> str:
    return f"{namespace}.modelops.test"


def gateway_routing(impl, namespace: str) -> dict:
    return {"gatewayAPI": {"parentRefs": [dict(impl.parent_ref)], "hostnames": [route_host(namespace)]}}
from tests.s3store import versity, versity_tls  # noqa: E402,F401
from tests.mlflowserver import mlflow_server  # noqa: E402,F401
