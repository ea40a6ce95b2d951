"""Faults for the local cluster of hack/cluster.sh, done to the real components.

- `restart_apiserver`: the kube-apiserver process is stopped (SIGTERM, SIGKILL after a
  grace period) and started again with its own command line, environment and log, as
  kwokctl started it; its pid file is updated, so `kwokctl` still manages it.
- `pause(component, seconds)`: SIGSTOP, then SIGCONT (etcd "paused").
- `TcpProxy`: a TCP proxy between a client (the operator) and the API server. It can
  close every connection at once (watches dropped), delay every chunk each way, and
  reset (RST) a random connection every so often. TLS passes through untouched: the
  proxy listens on 127.0.0.1, which the API server's certificate names.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

from .kube import Cluster, _lib_vars, wait_for


def component_pid_file(component: str) -> Path:
    v = _lib_vars("KWOK_WORKDIR", "CLUSTER_NAME")
    return Path(v["KWOK_WORKDIR"]) / "clusters" / v["CLUSTER_NAME"] / "pids" / f"{component}.pid"


def component_pid(component: str) -> int:
    return int(component_pid_file(component).read_text().strip())


def api_ready(cluster: Cluster) -> bool:
    return cluster.kubectl("get", "--raw", "/readyz", check=False, timeout=10).returncode == 0


def restart_apiserver(cluster: Cluster, grace: float = 5, timeout: float = 90) -> float:
    """Stops kube-apiserver and starts it again; returns the seconds it was unready."""
    pid_file = component_pid_file("kube-apiserver")
    pid = int(pid_file.read_text().strip())
    proc = Path(f"/proc/{pid}")
    args = proc.joinpath("cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    env = dict(kv.split(b"=", 1) for kv in proc.joinpath("environ").read_bytes().split(b"\0") if b"=" in kv)
    cwd = os.readlink(proc / "cwd")
    log = pid_file.parent.parent / "logs" / "kube-apiserver.log"
    down_at = time.monotonic()
    # As a kubelet restarts it, with a short grace period: SIGTERM, then SIGKILL. (Left
    # alone, it waits a minute for its open watches before it exits.)
    def exited() -> bool:
        return not proc.exists() or "Z" in _state(proc)

    os.kill(pid, signal.SIGTERM)
    try:
        wait_for(exited, grace, interval=0.1)
    except TimeoutError:
        os.kill(pid, signal.SIGKILL)
        wait_for(exited, 30, interval=0.1, message="kube-apiserver to exit")
    with open(log, "ab") as out:
        new = subprocess.Popen(args, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               start_new_session=True, close_fds=True)
    pid_file.write_text(str(new.pid))
    wait_for(lambda: api_ready(cluster), timeout, interval=0.2, message="kube-apiserver ready again")
    return time.monotonic() - down_at


def _state(proc: Path) -> str:
    with contextlib.suppress(OSError):
        return proc.joinpath("stat").read_text().rsplit(")", 1)[1].split()[0]
    return "X"


def pause(component: str, seconds: float) -> None:
    """Freezes a component of the cluster (SIGSTOP) for `seconds`, then resumes it."""
    pid = component_pid(component)
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(seconds)
    finally:
        os.kill(pid, signal.SIGCONT)


class TcpProxy:
    """127.0.0.1:<port> -> target, on an event loop of its own thread."""

    def __init__(self, target: str, seed: int = 1):
        host, _, port = target.rpartition(":")
        self.target = (host.strip("[]"), int(port))
        self.latency = 0.0  # seconds added before each chunk is passed on
        self.reset_every: float | None = None  # reset one random connection this often
        self.dropped = 0  # connections closed or reset by the proxy
        self._rng = random.Random(seed)
        self._conns: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tcp-proxy", daemon=True)
        self._thread.start()
        self._ready.wait(10)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def kubeconfig(self, source: Path, path: Path) -> Path:
        """`source` with its server pointing at this proxy."""
        text = source.read_text()
        server = f"https://{self.target[0]}:{self.target[1]}"
        assert server in text, f"{server} not in {source}"
        path.write_text(text.replace(server, f"https://{self.address}"))
        return path

    def drop_all(self, reset: bool = False) -> int:
        """Closes every open connection (with RST if `reset`); returns how many."""
        return asyncio.run_coroutine_threadsafe(self._drop_all(reset), self._loop).result(10)

    def close(self) -> None:
        self.drop_all()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    # --- the loop ----------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        resetter = self._loop.create_task(self._resetter())
        self._ready.set()
        self._loop.run_forever()
        server.close()
        resetter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            self._loop.run_until_complete(resetter)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            self._abort(writer)
            return
        self._conns.add(writer)
        try:
            await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))
        finally:
            self._conns.discard(writer)
            for w in (writer, up_writer):
                if not w.is_closing():
                    w.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while chunk := await reader.read(65536):
                if self.latency:
                    await asyncio.sleep(self.latency)
                if writer.is_closing():
                    return
                writer.write(chunk)
                await writer.drain()
        if not writer.is_closing():
            writer.close()

    async def _resetter(self) -> None:
        while True:
            await asyncio.sleep(self.reset_every or 0.5)
            if self.reset_every and self._conns:
                self._abort(self._rng.choice(sorted(self._conns, key=id)))

    async def _drop_all(self, reset: bool) -> int:
        conns = list(self._conns)
        for w in conns:
            if reset:
                self._abort(w)
            else:
                w.close()
                self.dropped += 1
        return len(conns)

    def _abort(self, writer: asyncio.StreamWriter) -> None:
        """Closes with a TCP reset (SO_LINGER 0), as a middlebox that gave up would."""
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
        self.dropped += 1
