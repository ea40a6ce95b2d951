"""Runs the processes of model pods on this machine, so kwok's fake pods serve for real.

kwok gives every pod a loopback IP (127.1.0.0/16) but runs no container. The pod
runner plays the kubelet for pods labelled `modelops.io/modeldeployment`: for each pod
with a `status.podIP` it starts the pod's own containers as local processes bound to
that IP, from the pod spec alone (env, ports, volumes, init containers):

- the `model` container: `bentoml serve modelops_services.model_server:ModelService
  --host <podIP> --port <its containerPort>`;
- the `monitor` container: `python -m modelops_services.monitor`, listening on
  <podIP>:<its containerPort>.

A pod is its own network namespace, so `127.0.0.1`/`localhost` in the pod's env means
the pod's IP here, and `0.0.0.0` binds the pod's IP only. The model server hands its
records to the monitor through a Unix socket in an emptyDir both mount, which no other
pod sees. Volumes are directories under the runner's workdir: ConfigMap volumes are
written from the ConfigMap, Secret volumes one file per key (as a kubelet mounts them),
emptyDirs start empty (under /tmp, linked from the pod's directory, so socket paths
stay short), and init containers run first with
their env and paths mapped the same way, so a profile copied out of the "image" by
`cp`, or a model fetched by `modelops fetch`, lands where the containers read it. A
failed init container is reported in the pod's initContainerStatuses (lastState with
its termination message, restartCount) and run again after a growing back-off. A
resolver pod (label modelops.io/resolver, restartPolicy Never) runs its one container
to completion and ends Succeeded or Failed with the termination message a kubelet
would report (the termination-log file, else the log's tail on failure). The image's filesystem is this
machine's: file:// model URIs (MODELOPS_MODEL_DIR) point at local directories such
as those examples/train_churn.py writes. A pod whose model is baked into an image can
be served by naming a directory for that image (`images=`).

The runner probes the containers' readiness endpoints itself (`serving()`), standing
in for the kubelet's readinessProbe. Pods whose first image is under `podrunner.local/`
start Running but not Ready (hack/kwok/pod-ready.yaml), and the runner writes their
Ready condition as a kubelet would: True once every container answers, False when one
dies. So their EndpointSlices, the gateways reading them and the operator all see real
readiness. (kwok marks any other pod Ready at once.) A container that exits after its pod
served is started again after a back-off (restartPolicy: Always), the pod not Ready
meanwhile. Deleting a pod stops its processes (SIGTERM to the process group, SIGKILL
after a grace period). `containers=("monitor",)` runs only the monitors, for tests that
play the model server themselves by handing records to the monitor's socket.

    python -m tests.e2e.podrunner --namespace ml [--image registry.example/churn:1.3.0=examples/models/churn-sklearn-v1]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
LABEL_MD = "modelops.io/modeldeployment"
READINESS_IMAGES = "podrunner.local/"  # images whose pods' readiness this runner reports
RESOLVER = "modelops.io/resolver"  # a run-to-completion pod: its container runs once, its result is its status
MESSAGE_BYTES, MESSAGE_LINES = 2048, 80  # what a kubelet keeps of logs for FallbackToLogsOnError
log = logging.getLogger("podrunner")


class Proc:
    """One container's process, in its own session so its workers stop with it."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], logfile: Path, cwd: Path):
        self.name, self.logfile = name, logfile
        self.args, self.env, self.cwd = args, env, cwd  # what a restart runs again
        self._out = open(logfile, "ab")
        self.p = subprocess.Popen(args, env=env, cwd=cwd, stdout=self._out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True)

    def alive(self) -> bool:
        return self.p.poll() is None

    def stop(self, grace: float = 10.0) -> None:
        if self.p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.p.pid, signal.SIGTERM)
            try:
                self.p.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait(10)
        # Workers left behind in the group (the arbiter died first) go too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.p.pid, signal.SIGKILL)
        self._out.close()

    def tail(self, chars: int = 3000) -> str:
        return self.logfile.read_text(errors="replace")[-chars:]

    def again(self) -> "Proc":
        """The same container started anew (its log goes on)."""
        self.stop(0)
        return Proc(self.name, self.args, self.env, self.logfile, self.cwd)


@dataclass
class RunningPod:
    name: str
    uid: str
    ip: str
    labels: dict
    dir: Path
    procs: dict[str, Proc] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)  # container -> readiness URL
    restarts: dict[str, int] = field(default_factory=dict)  # container -> times restarted
    died_at: dict[str, float] = field(default_factory=dict)  # container -> when its exit was seen
    error: str | None = None
    started: threading.Event = field(default_factory=threading.Event)
    started_at: float | None = None  # time.time() when every container answered
    stopping: bool = False
    reports_readiness: bool = False
    reported_ready: bool | None = None  # what the pod's Ready condition was last set to
    scratch: list[Path] = field(default_factory=list)  # emptyDir directories, removed with the pod

    @property
    def model_url(self) -> str | None:
        u = self.urls.get("model")
        return u.rsplit("/", 1)[0] if u else None

    @property
    def monitor_url(self) -> str | None:
        u = self.urls.get("monitor")
        return u.rsplit("/", 1)[0] if u else None


def _get(url: str, timeout: float = 1.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return 0


class PodRunner:
    """Watches one namespace's model pods and runs them; `close()` stops everything."""

    def __init__(self, kubeconfig: Path | str, namespace: str, workdir: Path | str,
                 images: dict[str, str] | None = None, poll: float = 0.5, grace: float = 10.0,
                 drain: float = 1.5, selector: str = LABEL_MD, containers: tuple[str, ...] | None = None,
                 restart_backoff: float = 10.0):
        from kubernetes import client, config

        self.namespace, self.workdir = namespace, Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.images = {k: str(Path(v).resolve()) for k, v in (images or {}).items()}
        # A deleted pod's endpoint leaves the EndpointSlices at once, but clients take
        # a moment to notice: like a preStop sleep, keep serving that long.
        self.poll, self.grace, self.drain = poll, grace, drain
        self.selector = selector  # the pods it plays the kubelet for (a label selector)
        # Which containers run (None: all). ("monitor",) runs only the sidecars, for tests
        # that play the model server themselves through the monitor's socket.
        self.containers = containers
        # A container that exits after its pod served is started again (restartPolicy:
        # Always) after this back-off, the kubelet's first one (10 s).
        self.restart_backoff = restart_backoff
        api_client = config.new_client_from_config(config_file=str(kubeconfig))
        self.core = client.CoreV1Api(api_client)
        self.pods: dict[str, RunningPod] = {}  # by uid
        self._ip_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._loop = threading.Thread(target=self._run, name=f"podrunner-{namespace}", daemon=True)
        self._loop.start()

    # --- what tests ask ----------------------------------------------------------------

    def running(self) -> list[RunningPod]:
        with self._lock:
            return [p for p in self.pods.values() if not p.stopping]

    def serving(self, ip: str) -> bool:
        """Whether the pod at ip answers its readiness endpoints (the readinessProbe)."""
        pod = next((p for p in self.running() if p.ip == ip), None)
        return bool(pod and pod.started.is_set() and not pod.error
                    and all(p.alive() for p in pod.procs.values()))

    def wait_serving(self, count: int, timeout: float = 120, **labels: str) -> list[RunningPod]:
        """Waits until `count` pods with these labels (label keys without the
        modelops.io/ prefix, e.g. revision="abc") serve; returns them."""
        deadline = time.monotonic() + timeout
        while True:
            pods = [p for p in self.running()
                    if all(p.labels.get(f"modelops.io/{k}") == v for k, v in labels.items())]
            broken = [p for p in pods if p.error]
            if broken:
                raise RuntimeError(f"pod {broken[0].name} failed: {broken[0].error}")
            ready = [p for p in pods if self.serving(p.ip)]
            if len(ready) >= count:
                return ready
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{len(ready)}/{count} pods with {labels} serving after {timeout}s")
            time.sleep(0.3)

    def close(self) -> None:
        self._stop.set()
        self._loop.join(10)
        with self._lock:
            pods = list(self.pods.values())
        for pod in pods:
            self._stop_pod(pod)
        for t in self._threads:
            t.join(30)

    def __enter__(self) -> "PodRunner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- the loop --------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                items = self.core.list_namespaced_pod(self.namespace, label_selector=self.selector,
                                                      _request_timeout=10).to_dict()["items"]
                self._sync(items)
                for rp in self.running():
                    self._restart_dead(rp)
                    self._report_readiness(rp)
            except Exception as err:  # noqa: BLE001 - the API server may hiccup; try again
                log.warning("listing pods in %s failed: %s", self.namespace, err)
            self._stop.wait(self.poll)

    def _sync(self, items: list[dict]) -> None:
        live = {}
        for pod in items:
            meta, status = pod["metadata"], pod.get("status") or {}
            if meta.get("deletion_timestamp") or status.get("phase") in ("Succeeded", "Failed"):
                continue
            if status.get("pod_ip"):
                live[meta["uid"]] = pod
        with self._lock:
            gone = [p for uid, p in self.pods.items() if uid not in live and not p.stopping]
            new = [pod for uid, pod in live.items() if uid not in self.pods]
            for p in gone:
                p.stopping = True
            for pod in new:
                meta = pod["metadata"]
                rp = RunningPod(meta["name"], meta["uid"], pod["status"]["pod_ip"], meta.get("labels") or {},
                                self.workdir / f"{meta['name']}-{meta['uid'][:8]}",
                                reports_readiness=pod["spec"]["containers"][0]["image"].startswith(READINESS_IMAGES))
                self.pods[rp.uid] = rp
        for p in gone:
            self._spawn(self._stop_pod, p, self.drain)
        for pod in new:
            self._spawn(self._start_pod, self.pods[pod["metadata"]["uid"]], pod)

    def _spawn(self, fn, *args) -> None:
        t = threading.Thread(target=fn, args=args, daemon=True)
        self._threads = [x for x in self._threads if x.is_alive()] + [t]
        t.start()

    def _ip_lock(self, ip: str) -> threading.Lock:
        with self._lock:
            return self._ip_locks.setdefault(ip, threading.Lock())

    # --- one pod -----------------------------------------------------------------------

    def _start_pod(self, rp: RunningPod, pod: dict) -> None:
        # kwok may hand a deleted pod's IP to a new pod: wait until the old one's
        # processes have released it.
        if RESOLVER in rp.labels or pod["spec"].get("restart_policy") == "Never":
            self._run_to_completion(rp, pod)
            return
        with self._ip_lock(rp.ip):
            if rp.stopping or self._stop.is_set():
                return
            try:
                self._start_containers(rp, pod)
            except Exception as err:  # noqa: BLE001 - reported through wait_serving
                rp.error = f"{type(err).__name__}: {err}"
                log.error("pod %s: %s", rp.name, rp.error)
                return
        deadline = time.monotonic() + 180
        while not rp.stopping and time.monotonic() < deadline:
            dead = [p for p in rp.procs.values() if not p.alive()]
            if dead:
                rp.error = f"container {dead[0].name} exited {dead[0].p.returncode}:\n{dead[0].tail()}"
                log.error("pod %s: %s", rp.name, rp.error)
                return
            if all(_get(url) == 200 for url in rp.urls.values()):
                rp.started_at = time.time()
                rp.started.set()
                log.info("pod %s serving at %s", rp.name, rp.ip)
                self._report_readiness(rp)
                return
            time.sleep(0.3)
        if not rp.stopping:
            rp.error = "containers did not become ready within 180s"

    def _report_readiness(self, rp: RunningPod) -> None:
        """Sets the pod's Ready condition to whether it serves, when that changed."""
        ready = self.serving(rp.ip)
        if not rp.reports_readiness or rp.stopping or rp.reported_ready == ready:
            return
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        value = "True" if ready else "False"
        conditions = [{"type": t, "status": value, "lastTransitionTime": now} for t in ("Ready", "ContainersReady")]
        try:
            self.core.patch_namespaced_pod_status(rp.name, self.namespace, {"status": {"conditions": conditions}},
                                                  _request_timeout=10)
        except Exception as err:  # noqa: BLE001 - the next pass tries again
            log.warning("pod %s: reporting Ready=%s failed: %s", rp.name, value, err)
            return
        rp.reported_ready = ready

    def _restart_dead(self, rp: RunningPod) -> None:
        """As a kubelet does for restartPolicy Always: a container of a serving pod that
        exited is started again after the back-off (the pod is not Ready meanwhile)."""
        if not rp.started.is_set() or rp.stopping:
            return
        now = time.monotonic()
        with self._ip_lock(rp.ip):
            for name, proc in list(rp.procs.items()):
                if proc.alive() or rp.stopping:
                    rp.died_at.pop(name, None)
                    continue
                died = rp.died_at.setdefault(name, now)
                if now - died >= self.restart_backoff:
                    log.warning("pod %s: container %s exited %s; restarting it", rp.name, name, proc.p.returncode)
                    rp.procs[name] = proc.again()
                    rp.restarts[name] = rp.restarts.get(name, 0) + 1
                    rp.died_at.pop(name, None)

    def _stop_pod(self, rp: RunningPod, drain: float = 0.0) -> None:
        rp.stopping = True
        if drain and not self._stop.is_set():
            self._stop.wait(drain)
        with self._ip_lock(rp.ip):
            for proc in list(rp.procs.values()):
                proc.stop(self.grace)
            rp.procs.clear()
            for scratch in rp.scratch:
                shutil.rmtree(scratch, ignore_errors=True)
        with self._lock:
            if self.pods.get(rp.uid) is rp:
                del self.pods[rp.uid]
        log.info("pod %s stopped", rp.name)

    def _exec(self, rp: RunningPod, pod: dict, container: dict, volumes: dict[str, Path],
              timeout: float) -> tuple[int, str, str]:
        """Runs a command container once: (exit code, termination message, output). The
        message is the termination-log file, else (FallbackToLogsOnError, on failure) the
        log's tail, as a kubelet reports it."""
        args = [self._map_path(a, container, volumes)
                for a in (container.get("command") or []) + (container.get("args") or [])]
        if args and args[0] == "modelops":
            args[0] = str(VENV_BIN / "modelops")  # the image's entry point is this venv's
        env = self._env(rp, pod, container, volumes)
        term = rp.dir / f"{container['name']}.termination-log"
        term.unlink(missing_ok=True)
        env["MODELOPS_TERMINATION_LOG"] = str(term)
        try:
            result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
            code, output = result.returncode, result.stdout + result.stderr
        except subprocess.TimeoutExpired as err:
            code, output = 137, f"{err.stdout or ''}{err.stderr or ''}\nDeadlineExceeded after {timeout:.0f}s"
        (rp.dir / f"{container['name']}.log").write_text(output)
        message = term.read_text() if term.exists() else ""
        if not message and code != 0 and container.get("termination_message_policy") == "FallbackToLogsOnError":
            message = "\n".join(output.splitlines()[-MESSAGE_LINES:])[-MESSAGE_BYTES:]
        return code, message, output

    @staticmethod
    def _terminated(code: int, message: str, started: str) -> dict:
        return {"exitCode": code, "reason": "Completed" if code == 0 else "Error", "message": message,
                "startedAt": started, "finishedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}

    def _patch_status(self, rp: RunningPod, status: dict) -> None:
        try:
            self.core.patch_namespaced_pod_status(rp.name, self.namespace, {"status": status}, _request_timeout=10)
        except Exception as err:  # noqa: BLE001 - reported in the log; the test sees the effect
            log.warning("pod %s: writing its status failed: %s", rp.name, err)

    def _run_to_completion(self, rp: RunningPod, pod: dict) -> None:
        """A restartPolicy: Never pod (the operator's resolver, a Job hook's pod): its one container runs,
        and the pod ends Succeeded or Failed with the container's termination message."""
        rp.dir.mkdir(parents=True, exist_ok=True)
        spec = pod["spec"]
        (container,) = spec["containers"]
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        volumes = self._volumes(rp, spec.get("volumes") or [])
        code, message, output = self._exec(rp, pod, container, volumes, float(spec.get("active_deadline_seconds") or 600))
        log.info("pod %s: %s exited %d", rp.name, container["name"], code)
        self._patch_status(rp, {"phase": "Succeeded" if code == 0 else "Failed", "containerStatuses": [{
            "name": container["name"], "image": container["image"], "imageID": "", "ready": False,
            "restartCount": 0, "state": {"terminated": self._terminated(code, message, started)}}]})

    def _run_inits(self, rp: RunningPod, pod: dict, volumes: dict[str, Path]) -> None:
        """Init containers in order, each until it succeeds: a failed one is reported in
        the pod's initContainerStatuses (lastState, restartCount) and run again after a
        growing back-off, as a kubelet does, until the pod goes."""
        inits = pod["spec"].get("init_containers") or []
        for init in inits:
            restarts, backoff = 0, 5.0
            while True:
                started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                code, message, output = self._exec(rp, pod, init, volumes, 300)
                if code == 0:
                    break
                restarts += 1
                log.warning("pod %s: init container %s exited %d: %s", rp.name, init["name"], code, message)
                statuses = [{"name": c["name"], "image": c["image"], "imageID": "", "ready": False,
                             "restartCount": restarts if c is init else 0,
                             "state": {"waiting": {"reason": "CrashLoopBackOff" if c is init else "PodInitializing"}},
                             **({"lastState": {"terminated": self._terminated(code, message, started)}}
                                if c is init else {})} for c in inits]
                self._patch_status(rp, {"initContainerStatuses": statuses})
                if self._stop.wait(0) or rp.stopping:
                    raise RuntimeError(f"init container {init['name']} failed: {message or output[-500:]}")
                deadline = time.monotonic() + backoff
                while time.monotonic() < deadline and not rp.stopping and not self._stop.is_set():
                    time.sleep(0.2)
                if rp.stopping or self._stop.is_set():
                    raise RuntimeError(f"init container {init['name']} failed: {message or output[-500:]}")
                backoff = min(backoff * 2, 300.0)

    def _start_containers(self, rp: RunningPod, pod: dict) -> None:
        spec = pod["spec"]
        rp.dir.mkdir(parents=True, exist_ok=True)
        volumes = self._volumes(rp, spec.get("volumes") or [])
        self._run_inits(rp, pod, volumes)
        containers = {c["name"]: c for c in spec["containers"]}
        model = containers.get("model")
        if model is None:
            raise RuntimeError("no container named model")
        model_env = self._env(rp, pod, model, volumes)
        model_dir = model_env.get("MODELOPS_MODEL_DIR") or self.images.get(model.get("image", ""))
        if not model_dir:
            raise RuntimeError(f"no MODELOPS_MODEL_DIR (file:// model URI) and no directory for image {model.get('image')}")
        model_env["MODELOPS_MODEL_DIR"] = model_dir
        if not (Path(model_dir) / "metadata.json").is_file():
            raise RuntimeError(f"no model directory at {model_dir} (a path under a volume mount is the volume's)")
        monitor = containers.get("monitor")
        if monitor is not None:
            env = self._env(rp, pod, monitor, volumes)
            port = _port(monitor, 9091)
            env["MODELOPS_MONITOR_HOST"], env["MODELOPS_MONITOR_PORT"] = rp.ip, str(port)
            # No profile volume: the monitor reads the model directory's own profile.
            env.setdefault("MODELOPS_PROFILE_PATH", str(Path(model_dir) / "profile.json"))
            rp.procs["monitor"] = Proc("monitor", [sys.executable, "-m", "modelops_services.monitor"], env,
                                       rp.dir / "monitor.log", ROOT)
            rp.urls["monitor"] = f"http://{rp.ip}:{port}/healthz"
        if self.containers is not None and "model" not in self.containers:
            log.info("pod %s: starting its monitor at %s (the model server is the test's)", rp.name, rp.ip)
            return
        port = _port(model, 3000)
        args = [str(VENV_BIN / "bentoml"), "serve", "modelops_services.model_server:ModelService",
                "--host", rp.ip, "--port", str(port)]
        rp.procs["model"] = Proc("model", args, model_env, rp.dir / "model.log", ROOT)
        rp.urls["model"] = f"http://{rp.ip}:{port}/readyz"
        log.info("pod %s: starting model (%s) and monitor at %s", rp.name, model_dir, rp.ip)

    def _volumes(self, rp: RunningPod, volumes: list[dict]) -> dict[str, Path]:
        out = {}
        for vol in volumes:
            path = rp.dir / "volumes" / vol["name"]
            if "empty_dir" in vol and vol["empty_dir"] is not None:
                # A short path, so that a Unix socket in it (the monitor's) fits the
                # 107 bytes an address holds; the pod's directory links to it.
                scratch = Path(tempfile.mkdtemp(prefix=f"mo-{vol['name'][:12]}-"))
                rp.scratch.append(scratch)
                path.parent.mkdir(parents=True, exist_ok=True)
                if not path.is_symlink() and not path.exists():
                    path.symlink_to(scratch)
                path = scratch
            path.mkdir(parents=True, exist_ok=True)
            cm = vol.get("config_map")
            if cm:
                data = self.core.read_namespaced_config_map(cm["name"], self.namespace).data or {}
                items = cm.get("items") or [{"key": k, "path": k} for k in data]
                for item in items:
                    (path / item["path"]).write_text(data[item["key"]])
            secret = vol.get("secret")
            if secret:
                # As the kubelet mounts it: one file per key (the runner may read Secrets; the operator may not).
                data = self.core.read_namespaced_secret(secret["secret_name"], self.namespace).data or {}
                for key, value in data.items():
                    (path / key).write_bytes(base64.b64decode(value))
            out[vol["name"]] = path
        return out

    @staticmethod
    def _map_path(value: str, container: dict, volumes: dict[str, Path]) -> str:
        """A path inside the container, as a path on this machine: under a volume
        mount it is the volume's directory; otherwise the image's file is ours."""
        for mount in sorted(container.get("volume_mounts") or [], key=lambda m: -len(m["mount_path"])):
            root = mount["mount_path"].rstrip("/")
            if (value == root or value.startswith(root + "/")) and mount["name"] in volumes:
                return str(volumes[mount["name"]]) + value[len(root):]
        return value

    def _env(self, rp: RunningPod, pod: dict, container: dict, volumes: dict[str, Path]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELOPS_", "BENTOML_", "KUBECONFIG"))}
        for item in container.get("env") or []:
            value = item.get("value")
            ref = (item.get("value_from") or {}).get("field_ref")
            if ref:
                value = {"status.podIP": rp.ip, "metadata.name": rp.name,
                         "metadata.namespace": self.namespace}.get(ref["field_path"], "")
            if value is None:
                continue
            # The pod's loopback is its IP; paths under mounts are the volume directories.
            value = value.replace("127.0.0.1", rp.ip).replace("localhost", rp.ip)
            env[item["name"]] = self._map_path(value, container, volumes)
        home = rp.dir / f"bentoml-{container['name']}"
        home.mkdir(exist_ok=True)
        env["BENTOML_HOME"] = str(home)
        env["PYTHONUNBUFFERED"] = "1"
        # Two cores are shared by every pod: keep numeric libraries to one thread each.
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env.setdefault(var, "1")
        return env


def _port(container: dict, default: int) -> int:
    ports = container.get("ports") or []
    return int(ports[0]["container_port"]) if ports else default


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Run the model pods of a namespace as local processes.")
    p.add_argument("--namespace", "-n", required=True)
    p.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"))
    p.add_argument("--workdir", default=None, help="logs and BENTOML_HOMEs (default: a temporary directory)")
    p.add_argument("--image", action="append", default=[], metavar="IMAGE=MODEL_DIR",
                   help="serve pods of IMAGE from MODEL_DIR (models baked into an image)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s podrunner %(message)s")
    import tempfile

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="podrunner-"))
    images = dict(i.split("=", 1) for i in args.image)
    runner = PodRunner(args.kubeconfig, args.namespace, workdir, images)
    log.info("running model pods of namespace %s; logs under %s", args.namespace, workdir)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(1):
        pass
    runner.close()
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
