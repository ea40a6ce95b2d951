"""Plays the model server of pods whose monitors the pod runner runs alone
(`PodRunner(containers=("monitor",))`): every pod that runs gets `rate` records a
second, handed to its monitor through the pod's socket by the model server's own
forwarder (modelops_services.forwarding.MonitorForwarder), which drops what a dead
monitor cannot take, as the model server does. Rows are synthetic churn customers; a
pod's error share comes from `errors(pod)` (records with status 500 carry no rows,
like the model server's)."""

from __future__ import annotations

import asyncio
import random
import threading
from typing import Callable

from modelops_services.forwarding import MonitorForwarder

from .podrunner import PodRunner, RunningPod
from .traffic import customers, to_rows


class Feeder:
    def __init__(self, runner: PodRunner, rate: float = 20.0, errors: Callable[[RunningPod], float] = lambda p: 0.0,
                 seed: int = 7, tick: float = 0.1):
        self.runner, self.rate, self.errors, self.tick = runner, rate, errors, tick
        self.rng = random.Random(seed)
        self.rows = to_rows(customers(2000, seed=seed))
        self.sent: dict[str, int] = {}  # pod name -> records handed to its forwarder
        self._forwarders: dict[str, MonitorForwarder] = {}  # by pod uid
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), name="feeder", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    async def _run(self) -> None:
        n = 0
        carry: dict[str, float] = {}
        while not self._stop.is_set():
            pods = {p.uid: p for p in self.runner.running() if p.started.is_set() and "monitor" in p.procs}
            for uid in list(self._forwarders):
                if uid not in pods:
                    await self._forwarders.pop(uid).close()
            for uid, pod in pods.items():
                fwd = self._forwarders.get(uid)
                if fwd is None:
                    socket = pod.procs["monitor"].env.get("MODELOPS_MONITOR_SOCKET")
                    if not socket:
                        continue
                    fwd = self._forwarders[uid] = MonitorForwarder("", socket_path=socket, flush_s=0.2)
                due = carry.get(uid, 0.0) + self.rate * self.tick
                count, carry[uid] = int(due), due - int(due)
                share = self.errors(pod)
                for _ in range(count):
                    n += 1
                    if self.rng.random() < share:
                        fwd.submit({"id": f"r{n}", "status": 500, "latency_ms": self.rng.uniform(2, 20)})
                        continue
                    row = self.rows[n % len(self.rows)]
                    score = self.rng.betavariate(2, 5)
                    fwd.submit({"id": f"r{n}", "status": 200, "latency_ms": self.rng.uniform(5, 30),
                                "features": [row], "predictions": [int(score > 0.5)], "scores": [score],
                                "ids": [f"r{n}-0"]})
                self.sent[pod.name] = self.sent.get(pod.name, 0) + count
            await asyncio.sleep(self.tick)
        for fwd in self._forwarders.values():
            await fwd.close()
