"""Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it.

Several operator replicas run; only the one holding the Lease reconciles. A candidate
takes the Lease when it does not exist, when it is its own, when it was released, or
when its holder has not renewed it for leaseDurationSeconds *as this candidate observed*
(the time is the candidate's own monotonic clock from the moment it last saw the record
change, never the holder's timestamps, so clock skew between nodes cannot shorten a
term). The leader renews every retry period, on a thread of its own; if it cannot renew
for the renew deadline (shorter than the lease duration) or sees another holder, it
stops: the process exits, so nothing it started can write after a standby took over,
and Kubernetes restarts it as a standby. Every write of the Lease is an update guarded
by the resourceVersion it was decided from, so of two candidates that see the same
expired record only one succeeds.

`decide` is the whole decision, a pure function; `LeaderElector` does the I/O."""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import enum
import json
import logging
import os
import socket
import threading
import time
from datetime import datetime, timezone
from typing import Awaitable, Callable

log = logging.getLogger(__name__)

COORDINATION = "/apis/coordination.k8s.io/v1"
SA_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


class Action(enum.Enum):
    CREATE = "create"  # no Lease yet: create it, holding it
    ACQUIRE = "acquire"  # someone else's Lease, expired or released: take it over
    RENEW = "renew"  # ours: renew it
    WAIT = "wait"  # someone else holds it and it has not expired


@dataclasses.dataclass(frozen=True)
class LeaseRecord:
    """The parts of a Lease the election reads."""

    holder: str | None
    duration: float  # leaseDurationSeconds
    acquire_time: str | None = None
    renew_time: str | None = None
    transitions: int = 0
    resource_version: str | None = None

    @classmethod
    def from_lease(cls, lease: dict) -> "LeaseRecord":
        spec = lease.get("spec") or {}
        return cls(holder=spec.get("holderIdentity") or None,
                   duration=float(spec.get("leaseDurationSeconds") or 0),
                   acquire_time=spec.get("acquireTime"), renew_time=spec.get("renewTime"),
                   transitions=int(spec.get("leaseTransitions") or 0),
                   resource_version=(lease.get("metadata") or {}).get("resourceVersion"))

    def same_term(self, other: "LeaseRecord | None") -> bool:
        """The same holder's same renewal: nothing happened since `other` was observed."""
        return other is not None and (self.holder, self.duration, self.acquire_time, self.renew_time,
                                      self.transitions) == (other.holder, other.duration, other.acquire_time,
                                                            other.renew_time, other.transitions)


def decide(record: LeaseRecord | None, identity: str, observed_at: float | None, now: float) -> Action:
    """What a candidate does with the Lease it just read.

    `observed_at` is when (on the caller's monotonic clock) the candidate first saw this
    record unchanged; `now` is the same clock. An unknown `observed_at` (None) means the
    record was only just seen: its lease duration starts now."""
    if record is None:
        return Action.CREATE
    if record.holder == identity:
        return Action.RENEW
    if not record.holder:
        return Action.ACQUIRE  # released by its holder
    since = now if observed_at is None else observed_at
    if now - since >= record.duration:
        return Action.ACQUIRE
    return Action.WAIT


def utc_micro(at: datetime | None = None) -> str:
    """A MicroTime as the API server writes it."""
    return (at or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def next_lease(record: LeaseRecord | None, action: Action, identity: str, duration: float,
               now_utc: str) -> dict:
    """The Lease spec a candidate writes for `action` (CREATE, ACQUIRE or RENEW)."""
    spec = {"holderIdentity": identity, "leaseDurationSeconds": max(1, round(duration)),
            "renewTime": now_utc}
    if action is Action.RENEW and record is not None:
        spec["acquireTime"] = record.acquire_time or now_utc
        spec["leaseTransitions"] = record.transitions
    else:
        spec["acquireTime"] = now_utc
        # As client-go counts them: every change of holder, a release included.
        spec["leaseTransitions"] = record.transitions + 1 if record is not None else 0
    return spec


def default_identity(env=os.environ) -> str:
    """The pod's name (downward API), else host and process id."""
    return env.get("POD_NAME") or f"{socket.gethostname()}_{os.getpid()}"


def default_namespace(env=os.environ) -> str | None:
    """The pod's namespace: POD_NAMESPACE (downward API), else the ServiceAccount's."""
    if env.get("POD_NAMESPACE"):
        return env["POD_NAMESPACE"]
    try:
        with open(SA_NAMESPACE_FILE) as f:
            return f.read().strip() or None
    except OSError:
        return None


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


@dataclasses.dataclass(frozen=True)
class ElectionConfig:
    enabled: bool = False
    lease_name: str = "modelops-operator"
    lease_namespace: str | None = None
    identity: str = ""
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self):
        if not self.enabled:
            return
        if not self.lease_namespace:
            raise ValueError("leader election needs the Lease's namespace: --lease-namespace or POD_NAMESPACE")
        if not self.lease_duration > self.renew_deadline > self.retry_period > 0:
            raise ValueError("leader election needs lease duration > renew deadline > retry period > 0, got "
                             f"{self.lease_duration:g}s, {self.renew_deadline:g}s, {self.retry_period:g}s")

    @classmethod
    def from_env(cls, env=os.environ, **overrides) -> "ElectionConfig":
        values = dict(
            enabled=_truthy(env.get("MODELOPS_LEADER_ELECT")),
            lease_name=env.get("MODELOPS_LEASE_NAME") or cls.lease_name,
            lease_namespace=env.get("MODELOPS_LEASE_NAMESPACE") or default_namespace(env),
            identity=env.get("MODELOPS_LEADER_IDENTITY") or default_identity(env),
            lease_duration=float(env.get("MODELOPS_LEASE_DURATION") or cls.lease_duration),
            renew_deadline=float(env.get("MODELOPS_RENEW_DEADLINE") or cls.renew_deadline),
            retry_period=float(env.get("MODELOPS_RETRY_PERIOD") or cls.retry_period),
        )
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


class LeaseClient:
    """Reads and writes one Lease as plain JSON, on a thread of its own: renewals never
    queue behind the controller's requests."""

    def __init__(self, namespace: str, name: str, timeout: float, api_client=None):
        from kubernetes import client

        self.namespace, self.name, self.timeout = namespace, name, timeout
        self.api_client = api_client or client.ApiClient(client.Configuration.get_default_copy())
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="lease")

    def _call(self, method: str, path: str, body=None) -> tuple[int, dict]:
        method, url, headers, body, post = self.api_client.param_serialize(
            method, path, body=body, auth_settings=["BearerToken"],
            header_params={"Content-Type": "application/json", "Accept": "application/json"})
        resp = self.api_client.call_api(method, url, headers, body, post, _request_timeout=self.timeout)
        data = resp.read()
        return resp.status, json.loads(data or b"{}")

    async def _run(self, method: str, path: str, body=None) -> tuple[int, dict]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, self._call, method, path, body)

    @property
    def path(self) -> str:
        return f"{COORDINATION}/namespaces/{self.namespace}/leases"

    async def get(self) -> dict | None:
        status, body = await self._run("GET", f"{self.path}/{self.name}")
        if status == 404:
            return None
        _check(status, body, "read")
        return body

    async def create(self, spec: dict) -> bool:
        """False if someone else created it first."""
        lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                 "metadata": {"name": self.name, "namespace": self.namespace}, "spec": spec}
        status, body = await self._run("POST", self.path, lease)
        if status == 409:
            return False
        _check(status, body, "create")
        return True

    async def update(self, resource_version: str, spec: dict) -> bool:
        """False if the Lease changed since it was read (or was deleted)."""
        lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                 "metadata": {"name": self.name, "namespace": self.namespace, "resourceVersion": resource_version},
                 "spec": spec}
        status, body = await self._run("PUT", f"{self.path}/{self.name}", lease)
        if status in (404, 409):
            return False
        _check(status, body, "update")
        return True

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def _check(status: int, body: dict, what: str) -> None:
    if not 200 <= status < 300:
        raise RuntimeError(f"{what} Lease: HTTP {status}: {body.get('message', body)}")


class LeaderElector:
    """Campaigns for the Lease, then keeps it; `on_lost` is called (once) when it cannot.

    `wait_leading()` returns once this process leads. `valid()` says whether the last
    renewal is younger than the renew deadline: a fence for writers."""

    def __init__(self, config: ElectionConfig, client: LeaseClient | None = None,
                 on_lost: Callable[[str], Awaitable[None] | None] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.config = config
        self.client = client or LeaseClient(config.lease_namespace, config.lease_name, timeout=config.renew_deadline)
        self.on_lost = on_lost or _exit_process
        self.clock = clock
        self.observed: LeaseRecord | None = None
        self.observed_at: float | None = None
        self.renewed_at: float | None = None  # last successful acquire/renew
        # Read from the operator's thread, written from the election's: plain flags.
        self.leading = threading.Event()
        self.stopped = threading.Event()
        self.acquired_utc: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Campaigns, then renews, on a thread and event loop of its own, as client-go's
        elector runs on a goroutine of its own: a renewal never waits for the operator's
        loop, which a burst of watch events or a long pass can hold for seconds."""
        started = threading.Event()

        def election() -> None:
            loop = asyncio.new_event_loop()
            self._loop, self._task = loop, loop.create_task(self.run(), name="leader-election")
            started.set()
            try:
                loop.run_until_complete(asyncio.gather(self._task, return_exceptions=True))
            finally:
                loop.close()
                self.stopped.set()
        self._thread = threading.Thread(target=election, name="leader-election", daemon=True)
        self._thread.start()
        started.wait()

    def valid(self) -> bool:
        renewed_at = self.renewed_at
        return self.leading.is_set() and renewed_at is not None and \
            self.clock() - renewed_at < self.config.renew_deadline

    async def wait_leading(self) -> None:
        while not self.leading.is_set():
            if self.stopped.is_set():
                raise RuntimeError("the leader election ended without leading")
            await asyncio.sleep(0.05)

    async def wait_stopped(self) -> None:
        """Until the election ends: leadership lost (after `on_lost`), or released."""
        while not self.stopped.is_set():
            await asyncio.sleep(0.05)

    def _observe(self, record: LeaseRecord | None) -> None:
        if record is None or not record.same_term(self.observed):
            self.observed, self.observed_at = record, self.clock()

    async def try_acquire_or_renew(self) -> bool:
        """One round: read the Lease, decide, write. True if this process holds it now."""
        lease = await self.client.get()
        record = LeaseRecord.from_lease(lease) if lease is not None else None
        self._observe(record)
        action = decide(record, self.config.identity, self.observed_at, self.clock())
        if action is Action.WAIT:
            return False
        now_utc = utc_micro()
        spec = next_lease(record, action, self.config.identity, self.config.lease_duration, now_utc)
        if action is Action.CREATE:
            ok = await self.client.create(spec)
        else:
            ok = await self.client.update(record.resource_version, spec)
        if ok:
            self.observed = LeaseRecord(self.config.identity, spec["leaseDurationSeconds"], spec["acquireTime"],
                                        spec["renewTime"], spec["leaseTransitions"])
            self.observed_at = self.renewed_at = self.clock()
            if action is not Action.RENEW or self.acquired_utc is None:
                self.acquired_utc = spec["acquireTime"]
        return ok

    async def run(self) -> None:
        cfg = self.config
        # Campaign: until this process holds the Lease.
        while True:
            try:
                if await self.try_acquire_or_renew():
                    break
            except Exception as err:  # noqa: BLE001 - the API server may be away for a while
                log.warning("leader election: %s", err)
            await asyncio.sleep(cfg.retry_period)
        log.info("leader election: %s leads on Lease %s/%s (acquired %s)", cfg.identity, cfg.lease_namespace,
                 cfg.lease_name, self.acquired_utc)
        self.leading.set()
        # Keep it: renew every retry period; give up after the renew deadline.
        while True:
            await asyncio.sleep(cfg.retry_period)
            reason = await self._renew()
            if reason:
                self.leading.clear()
                log.error("leader election: %s stops leading: %s", cfg.identity, reason)
                result = self.on_lost(reason)
                if asyncio.iscoroutine(result):
                    await result
                return

    async def _renew(self) -> str | None:
        """None once renewed; else why leadership is lost."""
        cfg = self.config
        while True:
            left = cfg.renew_deadline - (self.clock() - self.renewed_at)
            if left <= 0:
                return f"the Lease was not renewed within the renew deadline ({cfg.renew_deadline:g}s)"
            try:
                if await asyncio.wait_for(self.try_acquire_or_renew(), left):
                    return None
                if self.observed is not None and self.observed.holder not in (None, cfg.identity):
                    return f"the Lease is held by {self.observed.holder}"
            except asyncio.TimeoutError:
                continue
            except Exception as err:  # noqa: BLE001 - retried until the deadline
                log.warning("leader election: renewing failed: %s", err)
            await asyncio.sleep(min(cfg.retry_period, max(0.0, cfg.renew_deadline - (self.clock() - self.renewed_at))))

    async def release(self) -> None:
        """On a clean shutdown: hand the Lease back so a standby takes over at once."""
        if self._task is not None and not self.stopped.is_set():
            try:
                self._loop.call_soon_threadsafe(self._task.cancel)
            except RuntimeError:  # its loop closed meanwhile: the election has ended
                pass
            await self.wait_stopped()
        try:
            if self.leading.is_set() and self.observed is not None and self.observed.holder == self.config.identity:
                lease = await self.client.get()
                record = LeaseRecord.from_lease(lease) if lease is not None else None
                if record is not None and record.holder == self.config.identity:
                    now_utc = utc_micro()
                    spec = {"holderIdentity": None, "leaseDurationSeconds": 1, "acquireTime": now_utc,
                            "renewTime": now_utc, "leaseTransitions": record.transitions}
                    if await self.client.update(record.resource_version, spec):
                        log.info("leader election: %s released the Lease", self.config.identity)
        except Exception as err:  # noqa: BLE001 - the standby takes over when it expires
            log.warning("leader election: releasing the Lease failed: %s", err)
        finally:
            self.leading.clear()
            self.client.close()


def _exit_process(reason: str) -> None:
    """What client-go's callers do: the process ends, every task and request with it.
    Kubernetes restarts the container, which campaigns again as a standby."""
    for handler in logging.getLogger().handlers:
        try:
            handler.flush()
        except Exception:  # noqa: BLE001
            pass
    os._exit(1)
