"""Runs the operator as a real process, as the chart's ServiceAccount, against the
local cluster; and small helpers to watch ModelDeployments from tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from ..kube import wait_for


ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts/modelops"


def install_chart(cluster, namespace: str, release: str, *args: str) -> None:
    cluster.helm("install", release, str(CHART), "-n", namespace, "--wait", "--timeout", "3m", *args)


class OperatorProcess:
    """`modelops-operator --namespace NS` as a subprocess; kill -9 and start again."""

    def __init__(self, kubeconfig: Path, namespace: str, log_path: Path, prometheus_url: str,
                 extra_args: tuple[str, ...] = ()):
        self.kubeconfig, self.namespace, self.log_path = kubeconfig, namespace, log_path
        self.extra_args = tuple(extra_args)
        self.env = {**os.environ, "KUBECONFIG": str(kubeconfig), "MODELOPS_PROMETHEUS_URL": prometheus_url,
                    "MODELOPS_RESYNC_SECONDS": "5", "MODELOPS_LOG_LEVEL": "info"}
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = open(self.log_path, "a")
        log.write(f"\n===== start {self.starts} =====\n")
        log.flush()
        self.proc = subprocess.Popen([sys.executable, "-m", "modelops_operator.main", "--namespace", self.namespace,
                                      *self.extra_args],
                                     env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def kill9(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill9()

    def alive(self) -> bool:
        return bool(self.proc) and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""


@contextmanager
def chart_operator(cluster, namespace: str, release: str, prometheus_url: str, tmp_path: Path, **env: str):
    """The chart installed as `release`, and the operator running as its ServiceAccount
    (with `env` added); its log is printed afterwards, so pytest shows it on failure."""
    install_chart(cluster, namespace, release)
    kubeconfig = cluster.service_account_kubeconfig(namespace, f"{release}-operator", tmp_path / "sa.kubeconfig")
    op = OperatorProcess(kubeconfig, namespace, tmp_path / "operator.log", prometheus_url)
    op.env.update(env)
    op.start()
    try:
        yield op
    finally:
        op.stop()
        print(op.log()[-20000:])
        cluster.helm("uninstall", release, "-n", namespace, "--wait", check=False)


def get_md(cluster, namespace: str, name: str) -> dict:
    return json.loads(cluster.kubectl("get", "md", name, "-n", namespace, "-o", "json").stdout)


def wait_phase(cluster, namespace: str, name: str, phase: str, version: str | None = None, timeout: float = 120):
    """Waits until the phase is reached (with `version` stable, if given) and, for an
    end phase, no candidate is left."""
    def check():
        st = get_md(cluster, namespace, name).get("status") or {}
        if st.get("phase") != phase:
            return None
        if version is not None and (st.get("stable") or {}).get("version") != version:
            return None
        if phase in ("Succeeded", "RolledBack") and st.get("candidate"):
            return None
        return st
    return wait_for(check, timeout, message=f"{name} to be {phase}" + (f" on {version}" if version else ""))


def events(cluster, namespace: str, name: str) -> list[dict]:
    out = cluster.kubectl("get", "events", "-n", namespace, "--field-selector",
                          f"involvedObject.name={name},involvedObject.kind=ModelDeployment", "-o", "json").stdout
    items = json.loads(out)["items"]
    return sorted(items, key=lambda e: e["metadata"]["name"])


def event_reasons(cluster, namespace: str, name: str) -> list[str]:
    return [e["reason"] for e in events(cluster, namespace, name)]


def children(cluster, namespace: str, name: str) -> dict[str, list[str]]:
    out = {}
    for kind in ("deployments", "services", "configmaps", "httproutes"):
        res = cluster.kubectl("get", kind, "-n", namespace, "-l", f"modelops.io/modeldeployment={name}",
                              "-o", "jsonpath={.items[*].metadata.name}", check=False)
        out[kind] = sorted(res.stdout.split()) if res.returncode == 0 else []
    return out
