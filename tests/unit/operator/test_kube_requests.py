"""What the operator's requests say on the wire, against a small HTTP server that
records them: the same verbs, paths, content types and query parameters the API
server expects, a child already gone is no error, and any other failure is raised."""

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from modelops_operator.kube import KubeApi, MissingApi


class Recorder(BaseHTTPRequestHandler):
    answers: dict = {}  # (method, path) -> (status, body)
    seen: list = []

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        url = urlsplit(self.path)
        self.seen.append({"method": self.command, "path": url.path, "query": parse_qs(url.query),
                          "type": self.headers.get("Content-Type"), "body": self.rfile.read(length).decode()})
        status, body = self.answers.get((self.command, url.path), (200, {"kind": "Status"}))
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    Recorder.answers, Recorder.seen = {}, []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    cfg = client.Configuration(host=f"http://127.0.0.1:{srv.server_address[1]}")
    cfg.retries = False
    yield Recorder, KubeApi(client.ApiClient(cfg), threads=2)
    srv.shutdown()
    srv.server_close()


def run(coro):
    return asyncio.run(coro)


def test_apply_sends_the_callers_json_as_a_forced_server_side_apply(server):
    rec, api = server
    obj = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "churn", "namespace": "ml"}, "spec": {}}
    encoded = json.dumps(obj, sort_keys=True)
    assert run(api.apply(obj, encoded)) is None
    [req] = rec.seen
    assert (req["method"], req["path"], req["type"]) == ("PATCH", "/api/v1/namespaces/ml/services/churn",
                                                        "application/apply-patch+yaml")
    assert req["query"] == {"fieldManager": ["modelops-operator"], "force": ["true"]}
    assert req["body"] == encoded
    run(api.apply(obj))  # without the caller's JSON, the object is encoded here
    assert json.loads(rec.seen[1]["body"]) == obj


def test_apply_of_a_kind_the_cluster_lacks_is_missing_api(server):
    rec, api = server
    route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
             "metadata": {"name": "churn", "namespace": "ml"}}
    rec.answers[("PATCH", "/apis/gateway.networking.k8s.io/v1/namespaces/ml/httproutes/churn")] = (404, {})
    with pytest.raises(MissingApi, match="HTTPRoute"):
        run(api.apply(route))
    with pytest.raises(MissingApi, match="does not manage"):
        run(api.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "ml"}}))


def test_scale_is_a_merge_patch_of_replicas_and_a_deployment_gone_is_fine(server):
    rec, api = server
    path = "/apis/apps/v1/namespaces/ml/deployments/churn-abc"
    run(api.scale("ml", "churn-abc", 3))
    req = rec.seen[0]
    assert (req["method"], req["path"], req["type"]) == ("PATCH", path, "application/merge-patch+json")
    assert json.loads(req["body"]) == {"spec": {"replicas": 3}}
    assert req["query"] == {"fieldManager": ["modelops-operator"]}
    rec.answers[("PATCH", path)] = (404, {"kind": "Status", "code": 404})
    run(api.scale("ml", "churn-abc", 0))  # deleted meanwhile: nothing to scale
    rec.answers[("PATCH", path)] = (500, {"kind": "Status", "code": 500})
    with pytest.raises(ApiException) as err:
        run(api.scale("ml", "churn-abc", 0))
    assert err.value.status == 500


@pytest.mark.parametrize("call,method_path,query", [
    (lambda api: api.delete_deployment("ml", "churn-abc"), "/apis/apps/v1/namespaces/ml/deployments/churn-abc",
     {"propagationPolicy": ["Background"]}),
    (lambda api: api.delete_pod("ml", "churn-resolve"), "/api/v1/namespaces/ml/pods/churn-resolve",
     {"gracePeriodSeconds": ["0"]}),
    (lambda api: api.delete_configmap("ml", "churn-profile"), "/api/v1/namespaces/ml/configmaps/churn-profile", {}),
    (lambda api: api.delete_autoscaler("ml", "churn-hpa"),
     "/apis/autoscaling/v2/namespaces/ml/horizontalpodautoscalers/churn-hpa", {}),
], ids=["deployment", "pod", "configmap", "autoscaler"])
def test_deletes_say_how_and_a_child_already_gone_is_fine(server, call, method_path, query):
    rec, api = server
    run(call(api))
    assert (rec.seen[0]["method"], rec.seen[0]["path"], rec.seen[0]["query"]) == ("DELETE", method_path, query)
    rec.answers[("DELETE", method_path)] = (404, {"kind": "Status", "code": 404})
    run(call(api))
    rec.answers[("DELETE", method_path)] = (403, {"kind": "Status", "code": 403})
    with pytest.raises(ApiException) as err:
        run(call(api))
    assert err.value.status == 403


def test_status_write_returns_the_new_resource_version(server):
    rec, api = server
    path = "/apis/modelops.io/v1alpha1/namespaces/ml/modeldeployments/churn/status"
    rec.answers[("PUT", path)] = (200, {"metadata": {"name": "churn", "resourceVersion": "42"}})
    body = {"metadata": {"name": "churn", "namespace": "ml", "resourceVersion": "41"}, "spec": {"replicas": 1}}
    written = run(api.write_status(body, {"phase": "Progressing"}))
    assert written["metadata"]["resourceVersion"] == "42"
    sent = json.loads(rec.seen[0]["body"])
    assert sent["metadata"]["resourceVersion"] == "41" and sent["status"] == {"phase": "Progressing"}
