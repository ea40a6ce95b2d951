"""A connection to the API server that goes silent (a dropped NAT entry, a peer gone
without a FIN) fails the request after the client's timeout, so the object's worker is
free to retry it, instead of holding that object's rollout for ever."""

import asyncio
import socket
import threading

import pytest
from kubernetes import client
from urllib3.exceptions import MaxRetryError, ReadTimeoutError

from modelops_operator.config import OperatorConfig
from modelops_operator.controller import Controller
from modelops_operator.kube import KubeApi


@pytest.fixture
def silent_server():
    """A server that accepts connections and reads requests but never answers."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    conns: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                conns.append(srv.accept()[0])
            except OSError:
                continue
    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    stop.set()
    t.join(5)
    for c in conns:
        c.close()
    srv.close()


def api_at(url: str) -> KubeApi:
    cfg = client.Configuration(host=url)
    cfg.retries = False  # one attempt: the controller retries, with back-off
    return KubeApi(client.ApiClient(cfg), threads=2, timeout=(1.0, 0.2))


@pytest.mark.parametrize("call", ["read", "apply", "write_status", "scale", "delete_deployment"])
def test_a_silent_api_server_fails_the_request(silent_server, call):
    api = api_at(silent_server)
    body = {"metadata": {"name": "churn", "namespace": "ml", "resourceVersion": "1"}, "spec": {}}
    calls = {
        "read": lambda: api.read("/api/v1/namespaces/ml/configmaps/churn"),
        "apply": lambda: api.apply({"apiVersion": "v1", "kind": "ConfigMap", **body}),
        "write_status": lambda: api.write_status(body, {"phase": "Progressing"}),
        "scale": lambda: api.scale("ml", "churn", 2),
        "delete_deployment": lambda: api.delete_deployment("ml", "churn"),
    }
    try:
        with pytest.raises((ReadTimeoutError, MaxRetryError)):
            asyncio.run(calls[call]())
    finally:
        api.close()


def test_the_worker_retries_the_object_instead_of_hanging_on_it(silent_server):
    """The reconcile fails like any API error: counted, logged and queued again."""
    api = api_at(silent_server)
    key = ("ml", "churn")

    async def run() -> Controller:
        controller = Controller(api, OperatorConfig(), workers=1)
        controller.observe_model_deployment("ADDED", {
            "apiVersion": "modelops.io/v1alpha1", "kind": "ModelDeployment",
            "metadata": {"name": "churn", "namespace": "ml", "uid": "u1", "generation": 1, "resourceVersion": "1"},
            "spec": {"model": {"name": "churn", "version": "1.0.0", "image": "registry.example/churn:1.0.0"},
                     "replicas": 1, "strategy": {"type": "Canary", "canary": {"steps": [{"weight": 50}]}}}})
        controller.start()
        try:
            while controller.failures[key] < 2:
                await asyncio.sleep(0.05)
        finally:
            await controller.stop()
        return controller
    try:
        controller = asyncio.run(run())
    finally:
        api.close()
    assert controller.failures[key] >= 2  # failed, and was taken up again
