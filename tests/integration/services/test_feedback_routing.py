"""Labels posted to any replica reach the monitor that saw the prediction.

Two "pods", each a real model server and monitor bound to its own loopback address
(the same ports in both, as in a Deployment), configured as the operator configures
them (MODELOPS_POD_IP, MODELOPS_FEEDBACK_KEY). Predictions go to both; every label is
then posted to one of them, as a Service would deliver it."""

from __future__ import annotations

import socket
import sys
import threading

import httpx

from churn_data import LABEL, customers
from traffic import to_rows

from .conftest import VENV_BIN, Proc, free_port, wait_http

KEY = "0123456789abcdef0123456789abcdef"
PODS = ("127.0.5.1", "127.0.5.2")


def start_pod(tmp_path, models_dir, ip: str, ports: tuple[int, int], procs: list) -> str:
    server_port, monitor_port = ports
    profile = models_dir / "churn-sklearn-v1" / "profile.json"
    monitor = Proc([sys.executable, "-m", "modelops_services.monitor"],
                   {"MODELOPS_PROFILE_PATH": str(profile), "MODELOPS_MONITOR_HOST": ip,
                    "MODELOPS_MONITOR_PORT": str(monitor_port), "MODELOPS_MODELDEPLOYMENT": "churn",
                    "MODELOPS_NAMESPACE": "ml", "MODELOPS_TRACK": "stable", "MODELOPS_REVISION": "r1"},
                   tmp_path / f"monitor-{ip}.log", tmp_path)
    procs.append(monitor)
    server = Proc([str(VENV_BIN / "bentoml"), "serve", "modelops_services.model_server:ModelService",
                   "--host", ip, "--port", str(server_port)],
                  {"MODELOPS_MODEL_DIR": str(models_dir / "churn-sklearn-v1"), "BENTOML_HOME": str(tmp_path / f"bento-{ip}"),
                   "MODELOPS_MONITOR_URL": f"http://{ip}:{monitor_port}", "MODELOPS_POD_IP": ip,
                   "MODELOPS_FEEDBACK_KEY": KEY},
                  tmp_path / f"server-{ip}.log", tmp_path)
    procs.append(server)
    wait_http(f"http://{ip}:{monitor_port}/healthz", monitor)
    wait_http(f"http://{ip}:{server_port}/readyz", server)
    return f"http://{ip}:{server_port}"


def matched(ip: str, monitor_port: int) -> int:
    return httpx.get(f"http://{ip}:{monitor_port}/drift", timeout=10).json()["counters"]["feedback"]["matched"]


def test_a_label_posted_to_any_replica_reaches_the_monitor_that_saw_the_prediction(models_dir, tmp_path):
    ports = (free_port(), free_port())
    procs: list[Proc] = []
    try:
        servers = [start_pod(tmp_path, models_dir, ip, ports, procs) for ip in PODS]
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
            listener.bind(("127.0.5.9", ports[1]))
            listener.listen()
            listener.settimeout(1)
            token, owner, sig = labels[1]["id"].rsplit("-", 1)[0].split(".")
            forged = f"{token}.{socket.inet_aton('127.0.5.9').hex()}.{sig}-0"
            answer = http.post(servers[1] + "/feedback", json={"labels": [{"id": forged, "label": 1}]})
            assert answer.json() == {"matched": 0, "unmatched": 1, "malformed": 0, "unverified": 0, "undelivered": 0}
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
