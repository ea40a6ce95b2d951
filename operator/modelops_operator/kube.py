"""All Kubernetes I/O of the operator: server-side apply of children, scaling, deletes,
status writes with optimistic concurrency, and idempotent Events.

The kubernetes client is synchronous; calls run in a thread pool so the event loop
stays free. Conflicts (409) and throttling (429) surface as typed errors the
controller retries; nothing here decides anything."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from datetime import datetime, timezone

from kubernetes import client, config
from kubernetes.client.rest import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from . import GROUP, KIND, MANAGER, PLURAL, VERSION

log = logging.getLogger(__name__)


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


class KubeApi:
    def __init__(self, api_client: client.ApiClient | None = None, threads: int = 8):
        self.api_client = api_client or client.ApiClient()
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="kube")
        self._dynamic: DynamicClient | None = None
        self.custom = client.CustomObjectsApi(self.api_client)
        self.apps = client.AppsV1Api(self.api_client)
        self.core = client.CoreV1Api(self.api_client)

    async def _run(self, fn, *args, **kwargs):
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.pool, lambda: fn(*args, **kwargs))
        except ApiException as err:
            _raise_typed(err)

    def _dyn(self) -> DynamicClient:
        if self._dynamic is None:
            self._dynamic = DynamicClient(self.api_client)
        return self._dynamic

    async def apply(self, obj: dict) -> None:
        """Server-side apply as the operator's field manager: idempotent, and it only
        touches the fields the operator owns."""
        def call():
            try:
                resource = self._dyn().resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
            except ResourceNotFoundError:
                raise MissingApi(f"{obj['kind']}.{obj['apiVersion']} is not served by this cluster") from None
            return resource.server_side_apply(body=obj, namespace=obj["metadata"]["namespace"],
                                              field_manager=MANAGER, force_conflicts=True)
        await self._run(call)

    async def scale(self, namespace: str, name: str, replicas: int) -> None:
        try:
            await self._run(self.apps.patch_namespaced_deployment, name, namespace, {"spec": {"replicas": replicas}},
                            field_manager=MANAGER)
        except ApiException as err:
            if err.status != 404:
                raise

    async def delete_deployment(self, namespace: str, name: str) -> None:
        try:
            await self._run(self.apps.delete_namespaced_deployment, name, namespace,
                            propagation_policy="Background")
        except ApiException as err:
            if err.status != 404:
                raise

    async def delete_configmap(self, namespace: str, name: str) -> None:
        try:
            await self._run(self.core.delete_namespaced_config_map, name, namespace)
        except ApiException as err:
            if err.status != 404:
                raise

    async def write_status(self, body: dict, status: dict) -> dict:
        """Replaces status, guarded by the resourceVersion the plan was made from."""
        meta = body["metadata"]
        obj = {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND,
               "metadata": {"name": meta["name"], "namespace": meta["namespace"],
                            "resourceVersion": meta["resourceVersion"]},
               "spec": body.get("spec"), "status": status}
        return await self._run(self.custom.replace_namespaced_custom_object_status, GROUP, VERSION,
                               meta["namespace"], PLURAL, meta["name"], obj)

    async def announce(self, body: dict, transition: dict) -> None:
        """One Event per transition. Its name derives from the transition's sequence
        number, so announcing again after a restart is a no-op (409)."""
        meta = body["metadata"]
        name = f"{meta['name']}.{meta['uid'][:8]}.{int(transition['seq']):06d}"
        when = transition.get("time") or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = client.CoreV1Event(
            metadata=client.V1ObjectMeta(name=name, namespace=meta["namespace"]),
            involved_object=client.V1ObjectReference(api_version=f"{GROUP}/{VERSION}", kind=KIND, name=meta["name"],
                                                     namespace=meta["namespace"], uid=meta["uid"],
                                                     resource_version=meta.get("resourceVersion")),
            reason=transition["reason"], message=transition["message"][:1024], type=transition["type"],
            first_timestamp=when, last_timestamp=when, count=1,
            source=client.V1EventSource(component=MANAGER), reporting_component=MANAGER,
            reporting_instance=MANAGER, action=transition["reason"])
        try:
            await self._run(self.core.create_namespaced_event, meta["namespace"], event)
        except Conflict:
            pass  # already announced

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


class MissingApi(Exception):
    """A resource kind the plan needs (e.g. HTTPRoute) is not installed."""
