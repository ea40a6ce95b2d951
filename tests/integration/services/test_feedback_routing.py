"""Labels posted to any replica reach the monitor that saw the prediction, and only
the pod's own model server moves its monitor's windows.

Two "pods", each a real model server and monitor bound to its own loopback address
(the same ports in both, as in a Deployment), configured as the operator configures
them: MODELOPS_POD_IP, the feedback key in a file (the mounted Secret) and the monitor's
Unix socket in a directory only the pod's two processes are given (the emptyDir).
Predictions go to both; every label is then posted to one of them, as a Service would
deliver it. A third address plays another pod of the cluster."""

from __future__ import annotations

import socket
import sys
import tempfile
import threading
from pathlib import Path

import httpx
import pytest

from churn_data import LABEL, customers
from traffic import to_rows

from .conftest import VENV_BIN, Proc, free_port, wait_http

KEY = "0123456789abcdef0123456789abcdef"
PODS = ("127.0.5.1", "127.0.5.2")
INTRUDER = "127.0.5.9"


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / "feedback-key"
    path.write_text(KEY + "\n")
    return path


def start_pod(tmp_path, models_dir, ip: str, ports: tuple[int, int], procs: list, key_file: Path) -> str:
    server_port, monitor_port = ports
    profile = models_dir / "churn-sklearn-v1" / "profile.json"
    # The pod's emptyDir: a short path (a socket address holds 107 bytes).
    sock = str(Path(tempfile.mkdtemp(prefix="mo-sock-")) / "monitor.sock")
    pod = {"MODELOPS_FEEDBACK_KEY_FILE": str(key_file), "MODELOPS_MONITOR_SOCKET": sock}
    monitor = Proc([sys.executable, "-m", "modelops_services.monitor"],
                   {"MODELOPS_PROFILE_PATH": str(profile), "MODELOPS_MONITOR_HOST": ip,
                    "MODELOPS_MONITOR_PORT": str(monitor_port), "MODELOPS_MODELDEPLOYMENT": "churn",
                    "MODELOPS_NAMESPACE": "ml", "MODELOPS_TRACK": "stable", "MODELOPS_REVISION": "r1", **pod},
                   tmp_path / f"monitor-{ip}.log", tmp_path)
    procs.append(monitor)
    server = Proc([str(VENV_BIN / "bentoml"), "serve", "modelops_services.model_server:ModelService",
                   "--host", ip, "--port", str(server_port)],
                  {"MODELOPS_MODEL_DIR": str(models_dir / "churn-sklearn-v1"), "BENTOML_HOME": str(tmp_path / f"bento-{ip}"),
                   "MODELOPS_MONITOR_URL": f"http://{ip}:{monitor_port}", "MODELOPS_POD_IP": ip, **pod},
                  tmp_path / f"server-{ip}.log", tmp_path)
    procs.append(server)
    wait_http(f"http://{ip}:{monitor_port}/healthz", monitor)
    wait_http(f"http://{ip}:{server_port}/readyz", server)
    return f"http://{ip}:{server_port}"


def matched(ip: str, monitor_port: int) -> int:
    return httpx.get(f"http://{ip}:{monitor_port}/drift", timeout=10).json()["counters"]["feedback"]["matched"]


def test_a_label_posted_to_any_replica_reaches_the_monitor_that_saw_the_prediction(models_dir, tmp_path, key_file):
    ports = (free_port(), free_port())
    procs: list[Proc] = []
    try:
        servers = [start_pod(tmp_path, models_dir, ip, ports, procs, key_file) for ip in PODS]
        df = customers(200, seed=11)
        rows, truth = to_rows(df), df[LABEL].tolist()
        labels = []
        with httpx.Client(timeout=30) as http:
            for i in range(0, len(rows), 10):
                out = http.post(servers[(i // 10) % 2] + "/predict", json={"rows": rows[i:i + 10]}).json()
                labels += [{"id": pid, "label": y} for pid, y in zip(out["ids"], truth[i:i + 10])]
            # Predictions are forwarded to the monitors asynchronously.
            for ip in PODS:
                wait = f"http://{ip}:{ports[1]}/drift"
                for _ in range(100):
                    if http.get(wait).json()["window"]["rows"] >= 100:
                        break
                    threading.Event().wait(0.1)

            # Every label goes to the first replica, as a Service might deliver them.
            answer = http.post(servers[0] + "/feedback", json={"labels": labels})
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"matched": 200, "unmatched": 0, "malformed": 0, "unverified": 0, "undelivered": 0}
            assert matched(PODS[0], ports[1]) == matched(PODS[1], ports[1]) == 100

            # A forged owner is never contacted: the label stays with the local monitor.
            listener = socket.socket()
            listener.bind((INTRUDER, ports[1]))
            listener.listen()
            listener.settimeout(1)
            token, owner, sig = labels[1]["id"].rsplit("-", 1)[0].split(".")
            forged = f"{token}.{socket.inet_aton(INTRUDER).hex()}.{sig}-0"
            answer = http.post(servers[1] + "/feedback", json={"labels": [{"id": forged, "label": 1}]})
            assert answer.json() == {"matched": 0, "unmatched": 0, "malformed": 0, "unverified": 1, "undelivered": 0}
            try:
                listener.accept()
                raise AssertionError("the server posted to an address named by a forged id")
            except TimeoutError:
                pass
            finally:
                listener.close()

            # A body that is not a list of labels is the client's error.
            bad = http.post(servers[0] + "/feedback", json={"labels": "yes"})
            assert bad.status_code == 400 and "labels" in bad.text

            # An owner that is gone: its labels are reported undelivered, the rest still land.
            procs[0].stop()  # the first pod's monitor
            fresh = http.post(servers[1] + "/predict", json={"rows": rows[:2]}).json()["ids"]
            answer = http.post(servers[1] + "/feedback", json={"labels": [labels[0], {"id": fresh[0], "label": 0}]})
            assert answer.status_code == 200
            assert answer.json()["undelivered"] == 1 and answer.json()["malformed"] == 0
    finally:
        for p in reversed(procs):
            p.stop()


def test_a_server_without_a_monitor_says_labels_are_not_kept(models_dir, start):
    _, server = start.server(models_dir / "churn-sklearn-v1", None)
    r = httpx.post(server + "/feedback", json={"labels": [{"id": "x-0", "label": 1}]}, timeout=30)
    assert r.status_code == 404 and "MODELOPS_MONITOR_URL" in r.text


def test_another_pod_cannot_change_a_monitors_windows_or_labels(models_dir, tmp_path, key_file):
    """A process at another pod's IP reaches the monitor's port: it may read what
    Prometheus and the operator read, but its observations and its labels with forged
    ids are refused and change nothing; the model server's own records still arrive."""
    ports = (free_port(), free_port())
    procs: list[Proc] = []
    ip, monitor = PODS[0], f"http://{PODS[0]}:{ports[1]}"
    try:
        server = start_pod(tmp_path, models_dir, ip, ports, procs, key_file)
        df = customers(300, seed=12)
        rows, truth = to_rows(df), df[LABEL].tolist()
        # The intruder's traffic leaves from another pod's address.
        with httpx.Client(timeout=30) as http, \
                httpx.Client(timeout=30, transport=httpx.HTTPTransport(local_address=INTRUDER)) as intruder:
            ids = []
            for i in range(0, 100, 10):
                ids += http.post(server + "/predict", json={"rows": rows[i:i + 10]}).json()["ids"]
            for _ in range(200):
                if http.get(monitor + "/drift").json()["window"]["rows"] >= 100:
                    break
                threading.Event().wait(0.1)
            before = intruder.get(monitor + "/drift").json()  # reads are the cluster's
            assert before["window"]["rows"] == 100 and before["counters"]["malformed_observations"] == 0

            # Drifted observations, as a rollback-forcing intruder would post them.
            fake = [{"id": f"x{i}", "status": 500, "latency_ms": 9000.0,
                     "features": [{**rows[i], "monthly_charges": 1e6}], "predictions": [1], "ids": [f"x{i}-0"]}
                    for i in range(200)]
            refused = intruder.post(monitor + "/observe", json={"records": fake})
            assert refused.status_code == 403, refused.text
            # Labels for real predictions, their ids re-signed with a guessed key, or unsigned.
            token, owner, _ = ids[0].rsplit("-", 1)[0].split(".")
            forged = [{"id": f"{token}.{owner}.{'0' * 32}-0", "label": 1}, {"id": f"{token}-0", "label": 1}]
            for label in forged:
                answer = intruder.post(monitor + "/feedback", json={"labels": [label]})
                assert answer.status_code == 403 and answer.json()["field"] == "labels[0].id", answer.text
            after = intruder.get(monitor + "/drift").json()
            assert after["window"]["rows"] == 100 and after["health"] == before["health"]
            assert after["drift"]["features"] == before["drift"]["features"]
            assert after["counters"]["requests"] == before["counters"]["requests"]
            assert after["counters"]["feedback"] == {"matched": 0, "unmatched": 0, "malformed": 0, "unverified": 2}
            metrics = intruder.get(monitor + "/metrics").text
            assert 'status="unverified"' in metrics

            # The model server's own records still arrive, through the socket, and move the window.
            drifted = [{**r, "monthly_charges": None if r["monthly_charges"] is None else r["monthly_charges"] * 100}
                       for r in rows[100:300]]
            for i in range(0, len(drifted), 20):
                ids += http.post(server + "/predict", json={"rows": drifted[i:i + 20]}).json()["ids"]
            for _ in range(200):
                now = http.get(monitor + "/drift").json()
                if now["window"]["rows"] >= 300:
                    break
                threading.Event().wait(0.1)
            assert now["window"]["rows"] == 300
            assert "monthly_charges" in now["drift"]["drifted_features"], now["drift"]["drifted_features"]
            # ... and labels with the ids the server answered, posted to the server.
            labels = [{"id": i, "label": y} for i, y in zip(ids, truth, strict=True)]
            answer = http.post(server + "/feedback", json={"labels": labels})
            assert answer.json() == {"matched": 300, "unmatched": 0, "malformed": 0, "unverified": 0,
                                     "undelivered": 0}
    finally:
        for p in reversed(procs):
            p.stop()
