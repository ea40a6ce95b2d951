"""Direct: reads the monitor sidecars of a track's pods, without Prometheus.

The pods of a revision are listed by their labels (modelops.io/modeldeployment and
modelops.io/revision: pods carry their revision, not the track, which changes at
promotion without restarting them), and each pod's monitor answers GET /drift with
its raw numbers: at the pod IP, or through the API server's pod proxy when the
operator runs outside the cluster network. The pods' numbers are merged and judged
by the same checks as Prometheus' (analysis/checks.py).

No pods, a pod whose monitor does not answer, or too few samples is Inconclusive."""

from __future__ import annotations

import asyncio
import time
from typing import Callable

import aiohttp

from ...naming import LABEL_MD, LABEL_REVISION
from .. import champion, checks
from ..base import AnalysisRequest, CheckResult, Result

DEFAULT_PORT = 9091
PROXY_KEYS = 100  # request keys per lookup through the pod proxy (in the query string)
ACCESS = ("direct", "proxy")


class MonitorError(Exception):
    pass


class DirectProvider:
    name = "Direct"

    def __init__(self, api=None, access: str = "direct", timeout: float = 5.0, concurrency: int = 16,
                 api_factory: Callable[[], object] | None = None):
        """`api` is a kube.KubeApi (or `api_factory` makes one on first use); `access`
        is "direct" (the pod IP) or "proxy" (the API server's pods/proxy)."""
        if access not in ACCESS:
            raise ValueError(f"monitor access must be one of {', '.join(ACCESS)}, not {access!r}")
        self._api, self._api_factory = api, api_factory
        self.access = access
        self.timeout = timeout
        self.concurrency = concurrency
        self.clock = time.time

    @property
    def api(self):
        if self._api is None:
            if self._api_factory is None:
                from ...kube import KubeApi  # the kubernetes client loads only when used

                self._api_factory = lambda: KubeApi(threads=4)
            self._api = self._api_factory()
        return self._api

    async def pods(self, namespace: str, name: str, revision: str) -> list[dict]:
        """Running, not terminating pods of one revision of the ModelDeployment."""
        api = self.api
        selector = f"{LABEL_MD}={name},{LABEL_REVISION}={revision}"
        body = await api._run(api._raw, "GET", f"/api/v1/namespaces/{namespace}/pods", None,
                              query=(("labelSelector", selector),))
        return [p for p in body.get("items") or ()
                if (p.get("status") or {}).get("phase") == "Running"
                and not (p.get("metadata") or {}).get("deletionTimestamp")
                and (self.access == "proxy" or (p.get("status") or {}).get("podIP"))]

    async def read(self, pod: dict, port: int, session: aiohttp.ClientSession, limit: asyncio.Semaphore,
                   since: float | None = None) -> dict:
        """One pod's /drift document; with `since` (unix seconds) also its prediction
        counts since then."""
        query = () if since is None else (("since", f"{since:.3f}"),)
        return await self.call(pod, port, session, limit, "GET", "drift", query)

    async def call(self, pod: dict, port: int, session: aiohttp.ClientSession, limit: asyncio.Semaphore,
                   method: str, path: str, query: tuple = (), body: dict | None = None) -> dict:
        """One request to a pod's monitor, at its IP or through the pod proxy."""
        meta = pod["metadata"]
        async with limit:
            try:
                if self.access == "proxy":
                    api = self.api
                    url = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}:{port}/proxy/{path}"
                    return await asyncio.wait_for(api._run(api._raw, method, url, body, query=query), self.timeout)
                ip = pod["status"]["podIP"]
                host = f"[{ip}]" if ":" in ip else ip
                async with session.request(method, f"http://{host}:{port}/{path}", params=dict(query),
                                           json=body) as resp:
                    if resp.status != 200:
                        raise MonitorError(f"HTTP {resp.status}")
                    return await resp.json(content_type=None)
            except MonitorError:
                raise
            except Exception as err:  # noqa: BLE001 - any failure means this monitor is not readable
                raise MonitorError(_describe(err)) from None

    async def answers(self, request: AnalysisRequest) -> champion.Answers:
        """The candidate's and the stable's answers to the same requests since the stage
        began, matched by request key: the shadow's keys are listed at its monitors and
        looked up at the stable's."""
        port = int((request.monitor or {}).get("port") or DEFAULT_PORT)
        since = self.clock() - request.window_seconds
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        limit = asyncio.Semaphore(self.concurrency)
        cand_pods, stable_pods = await asyncio.gather(
            self.pods(request.namespace, request.name, request.candidate_revision),
            self.pods(request.namespace, request.name, request.stable_revision or ""))
        if not cand_pods or not stable_pods:
            return champion.Answers(None, [], "no running pods of the " + ("candidate" if not cand_pods else "stable"))
        problems: list[str] = []
        async with aiohttp.ClientSession(timeout=timeout) as session:
            listed = await asyncio.gather(*(self.call(p, port, session, limit, "GET", "predictions",
                                                      (("since", f"{since:.3f}"),)) for p in cand_pods),
                                          return_exceptions=True)
            cand: dict[str, list] = {}
            task = None
            for pod, doc in zip(cand_pods, listed):
                if isinstance(doc, BaseException) or not isinstance(doc, dict):
                    problems.append(f"{pod['metadata']['name']}: {doc}")
                    continue
                task = doc.get("task") or task
                cand.update({k: v for k, v in (doc.get("predictions") or {}).items() if isinstance(v, list)})
            keys = list(cand)[-champion.MAX_KEYS:]
            if self.access == "proxy":
                # The pod proxy is granted `get` only: the keys go in query strings, in batches.
                asks = [(p, "GET", tuple(("key", k) for k in keys[i:i + PROXY_KEYS]), None)
                        for p in stable_pods for i in range(0, len(keys), PROXY_KEYS)]
            else:
                asks = [(p, "POST", (), {"keys": keys}) for p in stable_pods]
            found = await asyncio.gather(*(self.call(p, port, session, limit, method, "predictions/lookup", query, body)
                                           for p, method, query, body in asks), return_exceptions=True)
        stable: dict[str, list] = {}
        failed_pods: set[str] = set()
        for (pod, *_), doc in zip(asks, found):
            if isinstance(doc, BaseException) or not isinstance(doc, dict):
                if pod["metadata"]["name"] not in failed_pods:
                    failed_pods.add(pod["metadata"]["name"])
                    problems.append(f"{pod['metadata']['name']}: {doc}")
                continue
            stable.update({k: v for k, v in (doc.get("predictions") or {}).items() if isinstance(v, list)})
        pairs = [pair for k in keys if k in stable and len(stable[k]) == len(cand[k]) for pair in zip(cand[k], stable[k])]
        problem = f"{len(problems)} monitors did not answer ({'; '.join(problems[:3])})" if problems else None
        return champion.Answers(task, pairs, problem, len(keys))

    async def track(self, request: AnalysisRequest, revision: str, role: str, port: int,
                    session: aiohttp.ClientSession, limit: asyncio.Semaphore,
                    ) -> tuple[checks.TrackNumbers | None, CheckResult | None]:
        """A revision's merged numbers, and an Inconclusive check when some pods could not be read."""
        where = f"{LABEL_MD}={request.name},{LABEL_REVISION}={revision} in {request.namespace}"
        pods = await self.pods(request.namespace, request.name, revision)
        if not pods:
            return None, CheckResult(f"monitor.{role}", Result.INCONCLUSIVE, message=f"no running pods with {where}")
        # Both tracks' predictions over the same period: since the stage began.
        since = self.clock() - request.window_seconds
        answers = await asyncio.gather(*(self.read(p, port, session, limit, since) for p in pods),
                                       return_exceptions=True)
        numbers, failed = [], []
        for pod, answer in zip(pods, answers):
            if isinstance(answer, BaseException):
                failed.append(f"{pod['metadata']['name']}: {answer}")
            elif not isinstance(answer, dict):
                failed.append(f"{pod['metadata']['name']}: /drift is not a JSON object")
            else:
                numbers.append(checks.from_drift_json(answer))
        merged = checks.merge_pods(numbers) if numbers else None
        problem = None
        if failed:
            problem = CheckResult(f"monitor.{role}", Result.INCONCLUSIVE, samples=len(numbers),
                                  message=f"{len(failed)} of {len(pods)} monitors did not answer on port {port} "
                                          f"({'; '.join(failed[:3])})")
        return merged, problem

    async def measure(self, request: AnalysisRequest) -> list[CheckResult]:
        an = request.analysis
        settings = checks.Settings.from_analysis(an)
        if not settings.drift_enabled and not settings.slo_enabled and settings.quality is None:
            return []
        port = int((request.monitor or {}).get("port") or DEFAULT_PORT)
        needs_stable = (settings.slo_enabled and (settings.max_error_rate_increase is not None
                                                  or settings.max_latency_p99_ratio is not None)
                        or settings.quality is not None)  # the quality gate compares with the stable
        # The comparison of predictions is skipped when the stable serves nothing (a
        # one-replica canary at 50% moves the only pod): a stable without pods is no problem.
        relative = needs_stable or checks.compares_champion(an, request.compared_strategy)
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        limit = asyncio.Semaphore(self.concurrency)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            wanted = [(request.candidate_revision, "candidate")]
            if relative and request.stable_revision:
                wanted.append((request.stable_revision, "stable"))
            results = await asyncio.gather(*(self.track(request, rev, role, port, session, limit) for rev, role in wanted))
        problems = [p for i, (_, p) in enumerate(results) if p is not None and (i == 0 or needs_stable)]
        cand = results[0][0]
        stable = results[1][0] if len(results) > 1 else None
        if cand is None:
            return problems
        return [*problems, *checks.evaluate(cand, stable, an, request.compared_strategy)]


def _describe(err: Exception) -> str:
    status = getattr(err, "status", None)
    if isinstance(status, int):  # the API server's answer (pods/proxy)
        body = getattr(err, "body", None)
        body = body.decode(errors="replace") if isinstance(body, bytes) else str(body or getattr(err, "reason", ""))
        return f"HTTP {status} from the API server: {body.strip()[:200]}"
    text = str(err).strip()
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
