"""Hooks and notifications with the real operator process (as the chart's
ServiceAccount) on the local cluster: HTTP hooks and notifications go to real local
HTTP receivers, and Job hooks are real Jobs of the controller-manager whose pods the
pod runner runs on this machine, to completion or failure."""

import json
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ..e2e.podrunner import PodRunner
from ..kube import wait_for
from ..prom import free_port
from .operator_harness import chart_operator, event_reasons, get_md, wait_phase

pytestmark = pytest.mark.cluster

RELEASE = "modelops-hooks"
PASS = [{"name": "healthy", "query": "vector(1)", "min": 1}]


class Receiver:
    """A local HTTP endpoint: records every request; answers from a script per path
    (a list of (status, body)), then 200."""

    def __init__(self):
        self.requests: list[dict] = []
        self.script: dict[str, list[tuple[int, str]]] = {}
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                with lock:
                    outer.requests.append({"path": self.path, "id": self.headers.get("X-Modelops-Hook-Id"),
                                           "body": body, "time": time.time()})
                    answers = outer.script.get(self.path.split("?")[0]) or []
                    status, text = answers.pop(0) if answers else (200, "{}")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(text.encode())

            do_POST = do_GET = do_PUT = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def at(self, path: str) -> list[dict]:
        return [r for r in self.requests if r["path"].split("?")[0] == path]

    def close(self):
        self.server.shutdown()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def operator(cluster, crd, namespace, prometheus, tmp_path):
    port = free_port()
    with chart_operator(cluster, namespace, RELEASE, prometheus.url, tmp_path, MODELOPS_METRICS_PORT=str(port),
                        MODELOPS_METRICS_ADDRESS="127.0.0.1") as op:
        op.metrics_port = port
        yield op


@pytest.fixture
def job_pods(cluster, namespace, tmp_path):
    """Plays the kubelet for the hook Jobs' pods only (the model pods stay kwok's)."""
    with PodRunner(cluster.kubeconfig, namespace, tmp_path / "pods", selector="modelops.io/hook-id") as runner:
        yield runner


def md(name, hooks, notifications, version="1.0.0"):
    return {
        "apiVersion": "modelops.io/v1alpha1", "kind": "ModelDeployment", "metadata": {"name": name},
        "spec": {
            "model": {"name": name, "version": version, "image": f"registry.example/{name}:{version}"},
            "replicas": 2,
            "strategy": {"type": "Canary", "canary": {"steps": [{"weight": 50}]}},
            "analysis": {"interval": "2s", "drift": {"enabled": False}, "slo": {"enabled": False},
                         "customChecks": PASS},
            "progressDeadline": "2m", "hooks": hooks, "notifications": notifications,
        },
    }


def apply(cluster, namespace, doc):
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(doc))


def set_version(cluster, namespace, name, version):
    patch = {"spec": {"model": {"version": version, "image": f"registry.example/{name}:{version}"}}}
    cluster.kubectl("patch", "md", name, "-n", namespace, "--type=merge", "-p", json.dumps(patch))


def job(code: int) -> dict:
    # Runs on this machine through the pod runner (kwok leaves podrunner.local/job pods
    # to it: hack/kwok/pod-complete.yaml); it sees the rollout's context.
    script = f"import os, sys; assert os.environ['MODELOPS_AT'] == 'BeforePromotion'; sys.exit({code})"
    return {"image": "podrunner.local/job", "command": ["python3", "-c", script]}


def metric(op, name: str, **labels) -> float:
    """A counter from the operator's own /metrics."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{op.metrics_port}/metrics", timeout=5).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()))


def test_hooks_gate_the_rollout_and_every_transition_is_notified_once(cluster, namespace, operator, receiver,
                                                                       job_pods):
    # The load test answers "pending" twice before it passes; the report hook is down.
    receiver.script["/load"] = [(202, ""), (200, '{"status": "Pending", "message": "warming up"}')]
    hooks = [{"name": "load", "at": "BeforeStep", "http": {"url": f"{receiver.url}/load", "pollInterval": "1s"}},
             {"name": "eval", "at": "BeforePromotion", "job": job(0)},
             {"name": "report", "at": "AfterRollout", "http": {"url": f"{receiver.url}/report"}}]
    notifications = [{"name": "team", "url": f"{receiver.url}/notify"},
                     {"name": "chat", "url": f"{receiver.url}/slack", "format": "Slack", "events": ["Promoted"]},
                     {"name": "down", "url": "http://127.0.0.1:9/nobody", "events": ["Started"]}]
    apply(cluster, namespace, md("churn", hooks, notifications))
    wait_phase(cluster, namespace, "churn", "Succeeded", "1.0.0")
    set_version(cluster, namespace, "churn", "2.0.0")
    wait_for(lambda: (get_md(cluster, namespace, "churn").get("status") or {}).get("stage") == "Hooks", 60,
             message="the rollout to wait on its BeforeStep hook")
    st = get_md(cluster, namespace, "churn")["status"]
    assert st["weights"]["candidate"] == 0  # nothing moved before the hook passed
    st = wait_phase(cluster, namespace, "churn", "Succeeded", "2.0.0", timeout=180)
    wait_for(lambda: receiver.at("/report"), 30, message="the AfterRollout hook's call")

    # The load test was called until it passed, always as one run.
    load = receiver.at("/load")
    assert len(load) == 3 and len({r["id"] for r in load}) == 1
    assert load[0]["body"]["at"] == "BeforeStep" and load[0]["body"]["candidate_version"] == "2.0.0"
    # The Job ran for real and completed.
    jobs = json.loads(cluster.kubectl("get", "jobs", "-n", namespace, "-l", "modelops.io/hook=eval",
                                      "-o", "json").stdout)["items"]
    assert len(jobs) == 1 and jobs[0]["status"].get("succeeded") == 1
    assert jobs[0]["metadata"]["ownerReferences"][0]["name"] == "churn"
    final = wait_for(lambda: (s := get_md(cluster, namespace, "churn")["status"]) and
                     all(h["phase"] == "Succeeded" for h in s.get("hooks", [])) and s, 30,
                     message="every hook recorded as Succeeded")
    assert sorted((h["name"], h["at"]) for h in final["hooks"]) == [
        ("eval", "BeforePromotion"), ("load", "BeforeStep"), ("report", "AfterRollout")]
    assert "HooksPassed" in event_reasons(cluster, namespace, "churn")

    # Notifications: each transition once, in order, of the kinds asked for.
    def notified():
        kinds = [r["body"]["kind"] for r in receiver.at("/notify")]
        return kinds if "Promoted" in kinds else None
    kinds = wait_for(notified, 30, message="the Promoted notification")
    seqs = [r["body"]["seq"] for r in receiver.at("/notify")]
    assert len(seqs) == len(set(seqs)), f"a transition was notified twice: {seqs}"
    assert kinds[0] == "Started" and kinds[-1] == "Promoted" and "Step" in kinds
    (slack,) = receiver.at("/slack")
    assert "churn: Promoted" in slack["body"]["text"]
    # The receiver that is down was retried, then counted; the rollout did not wait for it.
    wait_for(lambda: metric(operator, "modelops_notifications_total", result="failed", kind="Started") >= 1, 60,
             message="the undelivered notification to be counted")


def test_a_failing_job_hook_rolls_back(cluster, namespace, operator, receiver, job_pods):
    hooks = [{"name": "eval", "at": "BeforePromotion", "job": job(3)}]
    apply(cluster, namespace, md("churn", hooks, [{"name": "team", "url": f"{receiver.url}/notify"}]))
    wait_phase(cluster, namespace, "churn", "Succeeded", "1.0.0")
    set_version(cluster, namespace, "churn", "2.0.0")
    st = wait_phase(cluster, namespace, "churn", "RolledBack", "1.0.0", timeout=180)
    assert st["history"][0]["reason"] == "HookFailed" and "hook eval (BeforePromotion) failed" in \
        st["history"][0]["message"]
    assert st["weights"]["candidate"] == 0
    wait_for(lambda: "RolledBack" in [r["body"]["kind"] for r in receiver.at("/notify")], 30,
             message="the RolledBack notification")


def test_a_restarted_operator_neither_repeats_a_hook_run_nor_a_notification(cluster, namespace, operator,
                                                                             receiver):
    receiver.script["/gate"] = [(200, '{"status": "Pending"}')] * 4
    hooks = [{"name": "gate", "at": "BeforeRollout", "http": {"url": f"{receiver.url}/gate", "pollInterval": "1s"}}]
    apply(cluster, namespace, md("churn", hooks, [{"name": "team", "url": f"{receiver.url}/notify"}]))
    wait_phase(cluster, namespace, "churn", "Succeeded", "1.0.0")
    set_version(cluster, namespace, "churn", "2.0.0")
    wait_for(lambda: len(receiver.at("/gate")) >= 2, 60, message="the gate hook to be called")
    operator.kill9()
    operator.start()
    wait_phase(cluster, namespace, "churn", "Succeeded", "2.0.0", timeout=180)
    gate = receiver.at("/gate")
    assert len({r["id"] for r in gate}) == 1  # the restarted operator carried on with the same run
    wait_for(lambda: "Promoted" in [r["body"]["kind"] for r in receiver.at("/notify")], 30,
             message="the Promoted notification")
    seqs = [r["body"]["seq"] for r in receiver.at("/notify")]
    assert len(seqs) == len(set(seqs)), f"a transition was notified twice: {seqs}"
