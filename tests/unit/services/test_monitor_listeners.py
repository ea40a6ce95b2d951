"""The monitor's two listeners: the pod's Unix socket takes the model server's records
and relayed labels; the TCP port (what other pods reach) serves reads, refuses
observations and takes only labels whose ids carry this ModelDeployment's signature."""

import asyncio
import tempfile
from pathlib import Path

import aiohttp
import numpy as np
from aiohttp import web

from modelops_services.drift import fit_profile
from modelops_services.feedback_routing import Owner
from modelops_services.monitor.app import make_app
from modelops_services.monitor.config import MonitorConfig

KEY = "f" * 64
OWNER = Owner.from_env({"MODELOPS_POD_IP": "10.1.2.3", "MODELOPS_FEEDBACK_KEY": KEY})
STRANGER = Owner.from_env({"MODELOPS_POD_IP": "10.1.2.3", "MODELOPS_FEEDBACK_KEY": "another ModelDeployment"})


def profile():
    rng = np.random.default_rng(0)
    return fit_profile({"x": rng.normal(size=500)}, prediction={"__prediction__": rng.uniform(size=500)},
                       info={"task": "classification", "positive_class": 1})


def records(owner: Owner, n: int) -> tuple[list[dict], list[str]]:
    recs, ids = [], []
    for i in range(n):
        rid = owner.new_request_id()
        ids.append(f"{rid}-0")
        recs.append({"id": rid, "status": 200, "latency_ms": 1.0, "features": [{"x": 0.1}], "predictions": [i % 2],
                     "scores": [0.7], "ids": [f"{rid}-0"], "key": f"req-{i}"})
    return recs, ids


async def serve(config: MonitorConfig):
    runner = web.AppRunner(make_app(config, profile()))
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    sites = [tcp]
    if config.socket_path:
        unix = web.UnixSite(runner, config.socket_path)
        await unix.start()
        sites.append(unix)
    port = tcp._server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}"


def run_pod(fn, key: str | None = KEY):
    with tempfile.TemporaryDirectory(prefix="mo-") as d:
        sock = str(Path(d) / "monitor.sock")
        config = MonitorConfig(profile_path="-", socket_path=sock, feedback_key=key.encode() if key else None)

        async def main():
            runner, url = await serve(config)
            try:
                async with aiohttp.ClientSession() as cluster, \
                        aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=sock)) as pod:
                    return await fn(cluster, url, pod, "http://localhost")
            finally:
                await runner.cleanup()

        return asyncio.run(main())


async def answer(request):
    async with request as resp:
        return resp.status, await resp.json()


def test_observations_come_only_through_the_socket():
    recs, _ = records(OWNER, 5)

    async def fn(cluster, url, pod, local):
        refused = await answer(cluster.post(url + "/observe", json={"records": recs}))
        after_refusal = (await answer(cluster.get(url + "/drift")))[1]["window"]["rows"]
        taken = await answer(pod.post(local + "/observe", json={"records": recs}))
        drift = (await answer(cluster.get(url + "/drift")))[1]
        # What the operator and Prometheus read stays on the cluster port.
        reads = [(await answer(cluster.get(url + path)))[0] for path in ("/healthz", "/predictions?since=0",
                                                                          "/predictions/lookup?key=req-1")]
        lookup = await answer(cluster.post(url + "/predictions/lookup", json={"keys": ["req-1"]}))
        async with cluster.get(url + "/metrics") as m:
            metrics = m.status
        return refused, after_refusal, taken, drift, reads, lookup, metrics

    refused, after_refusal, taken, drift, reads, lookup, metrics = run_pod(fn)
    assert refused[0] == 403 and "socket" in refused[1]["error"]
    assert after_refusal == 0
    assert taken == (200, {"accepted": 5, "malformed": 0})
    assert drift["window"]["rows"] == 5 and drift["counters"]["malformed_observations"] == 0
    assert reads == [200, 200, 200] and metrics == 200
    assert lookup == (200, {"predictions": {"req-1": [1]}})


def test_labels_on_the_cluster_port_need_signed_ids():
    recs, ids = records(OWNER, 6)
    forged_ids = [f"{STRANGER.new_request_id()}-0", "0123456789abcdef0123456789abcdef-0",
                  ids[0].replace(ids[0].split(".")[2][:4], "0000")]

    async def fn(cluster, url, pod, local):
        await answer(pod.post(local + "/observe", json={"records": recs}))
        out = {}
        for i, forged in enumerate(forged_ids):
            # One forged id spoils the body: nothing in it is kept, not even a good label.
            out[f"forged{i}"] = await answer(cluster.post(url + "/feedback", json={
                "labels": [{"id": ids[1], "label": 1}, {"id": forged, "label": 0}]}))
        out["signed"] = await answer(cluster.post(url + "/feedback", json={
            "labels": [{"id": ids[1], "label": 1}, {"id": ids[2], "label": 0}]}))
        out["not json"] = await answer(cluster.post(url + "/feedback", data=b"{"))
        out["relayed"] = await answer(pod.post(local + "/feedback", json={
            "labels": [{"id": ids[3], "label": 1}, {"id": forged_ids[0], "label": 1}, {"label": 1}]}))
        out["drift"] = (await answer(cluster.get(url + "/drift")))[1]
        async with cluster.get(url + "/metrics") as m:
            out["metrics"] = await m.text()
        return out

    out = run_pod(fn)
    for i in range(len(forged_ids)):
        status, body = out[f"forged{i}"]
        assert status == 403 and body["field"] == "labels[1].id" and body["unverified"] == 1, body
    assert out["signed"] == (200, {"matched": 2, "unmatched": 0, "malformed": 0, "unverified": 0})
    assert out["not json"][0] == 400
    # In the pod, labels are taken one by one: the server relays a client's batch.
    assert out["relayed"] == (200, {"matched": 1, "unmatched": 0, "malformed": 1, "unverified": 1})
    assert out["drift"]["counters"]["feedback"] == {"matched": 3, "unmatched": 0, "malformed": 2, "unverified": 4}
    assert 'namespace="",revision="",status="unverified",track=""} 4.0' in out["metrics"]


def test_without_a_key_the_cluster_port_takes_no_labels():
    recs, ids = records(Owner(), 2)

    async def fn(cluster, url, pod, local):
        await answer(pod.post(local + "/observe", json={"records": recs}))
        refused = await answer(cluster.post(url + "/feedback", json={"labels": [{"id": ids[0], "label": 1}]}))
        relayed = await answer(pod.post(local + "/feedback", json={"labels": [{"id": ids[0], "label": 1}]}))
        return refused, relayed

    refused, relayed = run_pod(fn, key=None)
    assert refused[0] == 403 and "feedback key" in refused[1]["error"]
    assert relayed == (200, {"matched": 1, "unmatched": 0, "malformed": 0, "unverified": 0})


def test_a_monitor_without_a_socket_serves_everything_on_its_port():
    recs, ids = records(Owner(), 2)

    async def main():
        runner, url = await serve(MonitorConfig(profile_path="-"))
        try:
            async with aiohttp.ClientSession() as http:
                observed = await answer(http.post(url + "/observe", json={"records": recs}))
                labelled = await answer(http.post(url + "/feedback", json={"labels": [{"id": ids[0], "label": 1}]}))
                return observed, labelled
        finally:
            await runner.cleanup()

    observed, labelled = asyncio.run(main())
    assert observed == (200, {"accepted": 2, "malformed": 0})
    assert labelled[1]["matched"] == 1


def test_the_key_is_read_from_its_file(tmp_path):
    from modelops_services.feedback_routing import read_key

    (tmp_path / "key").write_text(KEY + "\n")
    env = {"MODELOPS_FEEDBACK_KEY_FILE": str(tmp_path / "key"), "MODELOPS_MONITOR_SOCKET": "/run/m.sock",
           "MODELOPS_PROFILE_PATH": "p.json"}
    assert read_key(env) == KEY.encode()
    config = MonitorConfig.from_env(env)
    assert config.feedback_key == KEY.encode() and config.socket_path == "/run/m.sock"
    assert KEY not in repr(config)
    assert Owner.from_env({**env, "MODELOPS_POD_IP": "10.1.2.3"}).owner_of(f"{OWNER.new_request_id()}-0") == "10.1.2.3"
    assert read_key({}) is None and MonitorConfig.from_env({"MODELOPS_PROFILE_PATH": "p"}).socket_path is None
