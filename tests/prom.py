"""Starts a real Prometheus for a test, with a generated config: the one build of
hack/build-prometheus.sh (static configs and Kubernetes service discovery), which it
builds from its Go module the first time."""

from __future__ import annotations

import functools
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import yaml

BUILD = Path(__file__).resolve().parent.parent / "hack" / "build-prometheus.sh"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@functools.cache
def prometheus_binary() -> str:
    """The binary's path; built (minutes, once per machine) when missing. Asked once per
    session: a fault test restarts Prometheus within seconds."""
    return subprocess.run(["bash", str(BUILD)], check=True, capture_output=True, text=True,
                          timeout=3600).stdout.strip()


class Prometheus:
    def __init__(self, workdir: Path, scrape_configs: list[dict] | None = None, interval: str = "1s"):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        config = {"global": {"scrape_interval": interval, "evaluation_interval": interval},
                  "scrape_configs": scrape_configs or []}
        self.config_path = workdir / "prometheus.yml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.start()

    def start(self) -> None:
        """Starts the process (again, after stop(): the same port, config and storage)."""
        self.log = open(self.workdir / "prometheus.log", "a")
        self.proc = subprocess.Popen(
            [prometheus_binary(), f"--config.file={self.config_path}", f"--storage.tsdb.path={self.workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-lifecycle"],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.wait_ready()

    def add_static_job(self, job: str, target: str) -> None:
        """Also scrape `target` (host:port), e.g. an application's own counters."""
        config = yaml.safe_load(self.config_path.read_text())
        config["scrape_configs"].append({"job_name": job, "static_configs": [{"targets": [target]}]})
        self.config_path.write_text(yaml.safe_dump(config))
        urllib.request.urlopen(urllib.request.Request(f"{self.url}/-/reload", method="POST"), timeout=10).close()

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited: {self.proc.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise TimeoutError("prometheus did not become ready")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()
