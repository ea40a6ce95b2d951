"""All Kubernetes I/O of the operator: server-side apply of children, scaling, deletes,
status writes with optimistic concurrency, and idempotent Events.

The kubernetes client is synchronous; calls run in a thread pool so the event loop
stays free. Conflicts (409) and throttling (429) surface as typed errors the
controller retries; nothing here decides anything."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
from datetime import datetime, timezone

from kubernetes import client, config
from kubernetes.client.rest import ApiException

from . import GROUP, KIND, MANAGER, PLURAL, VERSION

log = logging.getLogger(__name__)

# The kinds the operator applies: (apiVersion, kind) -> (path prefix, plural).
RESOURCES = {
    ("apps/v1", "Deployment"): ("/apis/apps/v1", "deployments"),
    ("v1", "Service"): ("/api/v1", "services"),
    ("v1", "ConfigMap"): ("/api/v1", "configmaps"),
    ("v1", "Pod"): ("/api/v1", "pods"),  # resolver pods only; model pods come from Deployments
    ("batch/v1", "Job"): ("/apis/batch/v1", "jobs"),  # Job hooks
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): ("/apis/gateway.networking.k8s.io/v1", "httproutes"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"): ("/apis/autoscaling/v2", "horizontalpodautoscalers"),
}


class Conflict(Exception):
    """The object changed since it was read; read again and re-plan."""


class Throttled(Exception):
    def __init__(self, retry_after: float):
        super().__init__(f"throttled, retry after {retry_after}s")
        self.retry_after = retry_after


def load_config() -> None:
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()


def _raise_typed(err: ApiException):
    if err.status == 409:
        raise Conflict(str(err.reason)) from err
    if err.status == 429:
        retry = float((err.headers or {}).get("Retry-After", 1) or 1)
        raise Throttled(retry) from err
    raise err


# Seconds to connect, and to wait for an answer: the API server answers every request
# within its own 60 s request timeout, so a silent connection beyond that is dead (a
# dropped NAT entry, a peer gone without a FIN) and would hold its object's worker for ever.
REQUEST_TIMEOUT = (10.0, 75.0)


class KubeApi:
    def __init__(self, api_client: client.ApiClient | None = None, threads: int = 64,
                 timeout: tuple[float, float] = REQUEST_TIMEOUT):
        if api_client is None:
            # One pooled connection per thread: with the default pool (5 per CPU), busy threads
            # drop connections and every request pays a new TLS handshake.
            cfg = client.Configuration.get_default_copy()
            cfg.connection_pool_maxsize = threads
            api_client = client.ApiClient(cfg)
        self.api_client, self.timeout = api_client, timeout
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="kube")

    async def _run(self, fn, *args, **kwargs):
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.pool, lambda: fn(*args, _request_timeout=self.timeout, **kwargs))
        except ApiException as err:
            _raise_typed(err)

    def _raw(self, method: str, path: str, body, content_type: str = "application/json",
             query: tuple = (), _request_timeout=None, parse: bool = True) -> dict | None:
        """A request whose answer is parsed as plain JSON: the client's model classes
        cost more CPU than the request itself at a thousand objects. With parse=False the
        answer is read and dropped: decoding the applied Deployments that the API server
        sends back was about a sixth of the operator's CPU, and nothing reads them."""
        if "json" not in content_type and not isinstance(body, str):
            body = json.dumps(body)  # JSON is YAML; the client only encodes JSON bodies itself
        method, url, headers, body, post = self.api_client.param_serialize(
            method, path, query_params=list(query), body=body, auth_settings=["BearerToken"],
            header_params={"Content-Type": content_type, "Accept": "application/json"})
        resp = self.api_client.call_api(method, url, headers, body, post, _request_timeout=_request_timeout)
        data = resp.read()
        if not 200 <= resp.status < 300:
            raise ApiException(http_resp=resp)
        return json.loads(data or b"{}") if parse else None

    async def apply(self, obj: dict, encoded: str | None = None) -> None:
        """Server-side apply as the operator's field manager: idempotent, and it only
        touches the fields the operator owns. encoded: obj as JSON, if the caller has it."""
        meta = obj["metadata"]
        try:
            base, plural = RESOURCES[(obj["apiVersion"], obj["kind"])]
        except KeyError:
            raise MissingApi(f"the operator does not manage {obj['kind']}.{obj['apiVersion']}") from None
        path = f"{base}/namespaces/{meta['namespace']}/{plural}/{meta['name']}"
        try:
            await self._run(self._raw, "PATCH", path, obj if encoded is None else encoded,
                            "application/apply-patch+yaml", (("fieldManager", MANAGER), ("force", "true")), parse=False)
        except ApiException as err:
            if err.status == 404:
                raise MissingApi(f"{obj['kind']}.{obj['apiVersion']} is not served by this cluster") from None
            raise

    async def create_once(self, obj: dict) -> bool:
        """Creates a namespaced core object (a Secret) unless one of that name exists: True
        when this call created it, False when it was there (409). Never read, never
        applied again, so a Secret's data goes to the API server once."""
        meta = obj["metadata"]
        path = f"/api/v1/namespaces/{meta['namespace']}/{obj['kind'].lower()}s"
        try:
            await self._run(self._raw, "POST", path, obj, "application/json", (("fieldManager", MANAGER),),
                            parse=False)
        except Conflict:
            return False
        return True

    async def read(self, path: str) -> dict | None:
        """One object as plain JSON, or None when it does not exist."""
        try:
            return await self._run(self._raw, "GET", path, None)
        except ApiException as err:
            if err.status == 404:
                return None
            raise

    async def scale(self, namespace: str, name: str, replicas: int) -> None:
        await self._unless_gone("PATCH", f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
                                {"spec": {"replicas": replicas}}, "application/merge-patch+json",
                                (("fieldManager", MANAGER),))

    async def _unless_gone(self, method: str, path: str, body=None, content_type: str = "application/json",
                           query: tuple = ()) -> None:
        """A write to a child that may be gone meanwhile: 404 is fine, nothing is left to do."""
        try:
            await self._run(self._raw, method, path, body, content_type, query, parse=False)
        except ApiException as err:
            if err.status != 404:
                raise

    async def _delete(self, path: str, query: tuple = ()) -> None:
        await self._unless_gone("DELETE", path, query=query)

    async def delete_deployment(self, namespace: str, name: str) -> None:
        await self._delete(f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
                           (("propagationPolicy", "Background"),))

    async def delete_autoscaler(self, namespace: str, name: str) -> None:
        await self._delete(f"/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers/{name}")

    async def delete_pod(self, namespace: str, name: str) -> None:
        await self._delete(f"/api/v1/namespaces/{namespace}/pods/{name}", (("gracePeriodSeconds", "0"),))

    async def delete_configmap(self, namespace: str, name: str) -> None:
        await self._delete(f"/api/v1/namespaces/{namespace}/configmaps/{name}")

    async def write_status(self, body: dict, status: dict) -> dict:
        """Replaces status, guarded by the resourceVersion the plan was made from."""
        meta = body["metadata"]
        obj = {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND,
               "metadata": {"name": meta["name"], "namespace": meta["namespace"],
                            "resourceVersion": meta["resourceVersion"]},
               "spec": body.get("spec"), "status": status}
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{meta['namespace']}/{PLURAL}/{meta['name']}/status"
        # Under the operator's own field manager, so the object's managedFields say who wrote status.
        return await self._run(self._raw, "PUT", path, obj, "application/json", (("fieldManager", MANAGER),))

    async def announce(self, body: dict, transition: dict) -> bool:
        """One Event per transition. Its name derives from the transition's sequence
        number, so announcing again after a restart is a no-op (409): False then,
        True when this call created it."""
        meta = body["metadata"]
        name = f"{meta['name']}.{meta['uid'][:8]}.{int(transition['seq']):06d}"
        when = transition.get("time") or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": meta["namespace"]},
            "involvedObject": {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "name": meta["name"],
                               "namespace": meta["namespace"], "uid": meta["uid"]},
            "reason": transition["reason"], "message": transition["message"][:1024], "type": transition["type"],
            "firstTimestamp": when, "lastTimestamp": when, "count": 1,
            "source": {"component": MANAGER}, "reportingComponent": MANAGER, "reportingInstance": MANAGER,
            "action": transition["reason"],
        }
        try:
            await self._run(self._raw, "POST", f"/api/v1/namespaces/{meta['namespace']}/events", event, parse=False)
        except Conflict:
            return False  # already announced
        return True

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


class MissingApi(Exception):
    """A resource kind the plan needs (e.g. HTTPRoute) is not installed."""
