"""The reconcile loop: a de-duplicating work queue of ModelDeployments, fed by watch
events, drained by a few workers that plan and apply.

What the loop keeps in memory is only a cache of what the watches delivered (like an
informer) and timers; every decision comes from the object's status and the observed
children, so a restarted operator carries on from where the old one stopped."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
from collections import defaultdict, deque
from datetime import datetime, timezone

from . import feedback_key
from .analysis import AnalysisRequest, Analyzer, CheckResult, Result, Verdict
from .config import OperatorConfig
from .hook_runner import HookRunner
from .hooks import HOOK_ID_LABEL, job_result
from .kube import Conflict, KubeApi, MissingApi, Throttled
from .model_source import RESOLVER_LABEL, ResolverResult, fetch_error, resolver_result
from .naming import LABEL_MD, LABEL_REVISION, deployment_name, profile_configmap_name
from .notifications import NotificationError, parse_notifications
from .notifier import Notifier
from .observed import Rejection
from .planner import Observed, RevisionState, plan
from .routers.gateway_readiness import GatewayState, RouteState, gateway_state, parent_key, route_state

log = logging.getLogger(__name__)
Key = tuple[str, str]  # (namespace, name)
ANALYSIS_TIMEOUT = 30.0
GATEWAY_TTL = 5.0  # seconds a parent Gateway and its class, as read, are reused
GATEWAYS = "/apis/gateway.networking.k8s.io/v1"
REJECTION_TTL = 600.0  # seconds a refused child's verdict holds before one more apply is tried


def rejection(err: Exception, obj: dict, generation) -> Rejection | None:
    """The API server's refusal of a child as invalid (422, or 400 for a value it cannot
    decode); None for any other error, which is retried with back-off."""
    if getattr(err, "status", None) not in (400, 422):
        return None
    message, fields = str(getattr(err, "reason", "") or err), []
    try:
        status = json.loads(getattr(err, "body", None) or "{}")
        message = status.get("message") or message
        fields = [c.get("field", "") for c in (status.get("details") or {}).get("causes") or [] if c.get("field")]
    except (TypeError, ValueError, AttributeError):
        pass
    return Rejection(generation, obj["kind"], obj["metadata"]["name"], message[:1000], tuple(fields))


class WorkQueue:
    """Each key at most once in the queue and never in two workers at once; a key
    can be scheduled for later, and the earliest schedule wins. Urgent keys (a new
    or changed ModelDeployment) go before routine ones (child status, timers), so a
    thousand pods turning ready do not delay a spec change."""

    def __init__(self):
        self._lanes: tuple[deque[Key], deque[Key]] = (deque(), deque())  # urgent, routine
        self._queued: dict[Key, int] = {}  # key -> lane it waits in
        self._wake = asyncio.Event()
        self._active: set[Key] = set()
        self._again: dict[Key, bool] = {}  # key -> urgent, re-queued when its worker is done
        self._timers: dict[Key, asyncio.TimerHandle] = {}
        self._due: dict[Key, float] = {}
        self._urgent = 0  # keys waiting in the urgent lane
        self._calm = asyncio.Event()  # set while the urgent lane is empty
        self._calm.set()

    def add(self, key: Key, delay: float = 0.0, urgent: bool = False) -> None:
        loop = asyncio.get_running_loop()
        if delay > 0:
            due = loop.time() + delay
            if key in self._due and self._due[key] <= due:
                return
            if key in self._timers:
                self._timers.pop(key).cancel()
            self._due[key] = due
            self._timers[key] = loop.call_at(due, self._fire, key)
            return
        if key in self._active:
            self._again[key] = self._again.get(key, False) or urgent
            return
        lane = 0 if urgent else 1
        if self._queued.get(key, 2) <= lane:
            return
        self._queued[key] = lane  # a stale entry in the other lane is skipped by get()
        if lane == 0:
            self._urgent += 1
            self._calm.clear()
        self._lanes[lane].append(key)
        self._wake.set()

    def _fire(self, key: Key) -> None:
        self._timers.pop(key, None)
        self._due.pop(key, None)
        self.add(key)

    async def get(self) -> Key:
        while True:
            for lane, keys in enumerate(self._lanes):
                while keys:
                    key = keys.popleft()
                    if self._queued.get(key) == lane:
                        del self._queued[key]
                        if lane == 0:
                            self._urgent -= 1
                            if not self._urgent:
                                self._calm.set()
                        self._active.add(key)
                        return key
            self._wake.clear()
            await self._wake.wait()

    def done(self, key: Key) -> None:
        self._active.discard(key)
        if key in self._again:
            self.add(key, urgent=self._again.pop(key))

    def forget(self, key: Key) -> None:
        if key in self._timers:
            self._timers.pop(key).cancel()
        self._due.pop(key, None)

    def __len__(self) -> int:
        return len(self._queued)

    async def calm(self) -> None:
        """Returns once no urgent key is waiting."""
        await self._calm.wait()

    def is_calm(self) -> bool:
        return self._calm.is_set()


class NoProvider:
    """Used until metric providers are configured: never a pass."""

    async def analyse(self, request: AnalysisRequest) -> Verdict:
        check = CheckResult("analysis", Result.INCONCLUSIVE, message="no metric provider is configured")
        return Verdict(Result.INCONCLUSIVE, "NoProvider", check.message, (check,))


class Controller:
    def __init__(self, api: KubeApi, config: OperatorConfig, analyzer: Analyzer | None = None,
                 workers: int = 32, clock=lambda: datetime.now(timezone.utc), may_write=lambda: True):
        self.api, self.config, self.analyzer = api, config, analyzer or NoProvider()
        self.workers, self.clock = workers, clock
        # A fence: while it says no (a leader whose Lease renewal is overdue), no pass starts.
        self.may_write = may_write
        self.started_at: float | None = None
        self.queue = WorkQueue()
        self.bodies: dict[Key, dict] = {}
        self.children: dict[Key, dict[str, RevisionState]] = defaultdict(dict)
        self.routes: dict[Key, RouteState] = {}
        self.autoscalers: dict[Key, set[str]] = defaultdict(set)  # names of the HPAs that exist
        # Resolver pods by name (None while they run), and model pods' fetch failures
        # by revision and pod: what the planner needs of the pods, nothing more.
        self.resolvers: dict[Key, dict[str, ResolverResult | None]] = defaultdict(dict)
        self.fetch_errors: dict[Key, dict[str, dict[str, str]]] = defaultdict(dict)
        self._gateways: dict[str, tuple[float, GatewayState]] = {}  # parent -> (read at, state)
        # (kind, ns, name) -> hash of what was last applied. A Deployment's DELETED event
        # drops its entry, so a Deployment someone deleted is re-created at once.
        self.applied: dict[tuple, str] = {}
        self.in_effect: dict[Key, str] = {}  # the resourceVersion whose children a pass applied in full
        self.feedback_keys: set[tuple[str, str, str]] = set()  # (namespace, Secret, uid) created or found
        self.announced: dict[Key, int] = {}
        self.failures: dict[Key, int] = defaultdict(int)
        self.rejected: dict[Key, tuple[float, Rejection]] = {}  # (when, what) the API server refused
        self.tasks: list[asyncio.Task] = []
        self.background: set[asyncio.Task] = set()
        self.announcing = asyncio.Semaphore(2)
        self.hooks = HookRunner(self._wake)
        self.job_results: dict[Key, dict[str, tuple[str, str]]] = defaultdict(dict)  # hook run id -> result
        self.notifier = Notifier()

    def _wake(self, key: Key) -> None:
        if key in self.bodies:
            self.queue.add(key)

    # --- watch events ----------------------------------------------------------------
    def observe_model_deployment(self, event_type: str, body: dict) -> None:
        key = (body["metadata"]["namespace"], body["metadata"]["name"])
        if event_type == "DELETED":
            self.bodies.pop(key, None)
            self.children.pop(key, None)
            self.routes.pop(key, None)
            self.autoscalers.pop(key, None)
            self.resolvers.pop(key, None)
            self.fetch_errors.pop(key, None)
            self.announced.pop(key, None)
            self.job_results.pop(key, None)
            self.rejected.pop(key, None)
            self.in_effect.pop(key, None)
            self.hooks.ensure(key, [])
            self.queue.forget(key)
            return
        old = self.bodies.get(key)
        self.bodies[key] = body
        # Our own status writes come back as events; only spec, annotations or a
        # newer status written by someone else need a pass.
        if old is None or old.get("spec") != body.get("spec") or \
                old["metadata"].get("annotations") != body["metadata"].get("annotations") or \
                old.get("status") != body.get("status"):
            self.queue.add(key, urgent=True)

    def observe_deployment(self, event_type: str, body: dict) -> None:
        meta = body["metadata"]
        labels = meta.get("labels") or {}
        md, rev = labels.get(LABEL_MD), labels.get(LABEL_REVISION)
        if not md or not rev:
            return
        key = (meta["namespace"], md)
        if event_type == "DELETED":
            self.children[key].pop(rev, None)
            self.applied.pop(("Deployment", meta["namespace"], meta["name"]), None)
        else:
            spec, status = body.get("spec") or {}, body.get("status") or {}
            state = RevisionState(int(spec.get("replicas", 0) or 0), int(status.get("readyReplicas", 0) or 0))
            if self.children[key].get(rev) == state:
                # The planner sees replicas and ready replicas only; the Deployment
                # controller's other status updates (several per rollout) need no pass.
                return
            self.children[key][rev] = state
        if key in self.bodies:
            self.queue.add(key)

    def observe_route(self, event_type: str, body: dict) -> None:
        """The gateways' word on an HTTPRoute the operator wrote: a step waits for it."""
        meta = body["metadata"]
        md = (meta.get("labels") or {}).get(LABEL_MD)
        if not md:
            return
        key = (meta["namespace"], md)
        if event_type == "DELETED":
            self.routes.pop(key, None)
            self.applied.pop(("HTTPRoute", meta["namespace"], meta["name"]), None)
        else:
            state = route_state(body)
            if self.routes.get(key) == state:
                return
            self.routes[key] = state
        if key in self.bodies:
            self.queue.add(key)

    def observe_autoscaler(self, event_type: str, body: dict) -> None:
        """HorizontalPodAutoscalers the operator made: only whether each exists matters
        (the planner deletes those no track needs); their status updates need no pass."""
        meta = body["metadata"]
        md = (meta.get("labels") or {}).get(LABEL_MD)
        if not md:
            return
        key = (meta["namespace"], md)
        names = self.autoscalers[key]
        if event_type == "DELETED":
            if meta["name"] not in names:
                return
            names.discard(meta["name"])
            self.applied.pop(("HorizontalPodAutoscaler", meta["namespace"], meta["name"]), None)
        elif meta["name"] in names:
            return
        else:
            names.add(meta["name"])
        if key in self.bodies:
            self.queue.add(key)

    def observe_pod(self, event_type: str, body: dict) -> None:
        """Pods that read a remote model: a resolver's result, a model pod's fetch failure."""
        meta = body["metadata"]
        labels = meta.get("labels") or {}
        md = labels.get(LABEL_MD)
        if not md:
            return
        key, name = (meta["namespace"], md), meta["name"]
        if RESOLVER_LABEL in labels:
            pods = self.resolvers[key]
            if event_type == "DELETED":
                changed = pods.pop(name, None) is not None
            else:
                result = resolver_result(body)
                changed = name not in pods or pods[name] != result
                pods[name] = result
        else:
            errors = self.fetch_errors[key].setdefault(labels.get(LABEL_REVISION, ""), {})
            err = None if event_type == "DELETED" else fetch_error(body)
            changed = errors.get(name) != err
            if err:
                errors[name] = err
            else:
                errors.pop(name, None)
        if changed and key in self.bodies:
            self.queue.add(key)

    def observe_job(self, event_type: str, body: dict) -> None:
        """A Job hook's Job: its result, once it has one."""
        meta = body["metadata"]
        labels = meta.get("labels") or {}
        md, hook_id = labels.get(LABEL_MD), labels.get(HOOK_ID_LABEL)
        if not md or not hook_id:
            return
        key = (meta["namespace"], md)
        result = None if event_type == "DELETED" else job_result(body)
        results = self.job_results[key]
        if result is None or results.get(hook_id) == result:
            return  # a deleted Job's result is in status already, or it is still running
        results[hook_id] = result
        if key in self.bodies:
            self.queue.add(key)

    def _observed_revisions(self, key: Key) -> dict[str, RevisionState]:
        revisions = dict(self.children.get(key, {}))
        for rev, errors in (self.fetch_errors.get(key) or {}).items():
            if errors and rev in revisions:
                revisions[rev] = dataclasses.replace(revisions[rev], fetch_error=sorted(errors.values())[0])
        return revisions

    def _refused(self, key: Key, err: Exception, obj: dict, generation) -> bool:
        """Records a child the API server refused as invalid; False for other errors."""
        refused = rejection(err, obj, generation)
        if refused is None:
            return False
        log.warning("%s/%s: the API server refused %s %s: %s", *key, refused.kind, refused.name, refused.message)
        self.rejected[key] = (asyncio.get_running_loop().time(), refused)
        return True

    def _rejection_of(self, key: Key, generation) -> Rejection | None:
        """The refusal that holds for this generation, if any (a new generation, or one
        older than REJECTION_TTL, is applied again)."""
        when, refused = self.rejected.get(key, (0.0, None))
        if refused is None:
            return None
        if refused.generation != generation or asyncio.get_running_loop().time() - when > REJECTION_TTL:
            self.rejected.pop(key, None)
            return None
        return refused

    async def _resolver_pods(self, key: Key, wanted: dict | None, generation=None) -> None:
        """Exactly the resolver pod the plan wants exists: a new one is created, and
        any other (finished, superseded) is deleted."""
        pods = self.resolvers[key]
        name = wanted["metadata"]["name"] if wanted else None
        if name and name not in pods:
            try:
                await self.api.apply(wanted)
            except Exception as err:
                if not self._refused(key, err, wanted, generation):
                    raise
                return
            pods[name] = None
        for other in [n for n in pods if n != name]:
            await self.api.delete_pod(key[0], other)
            pods.pop(other, None)

    async def _gateway(self, parent: str, namespace: str, name: str) -> GatewayState:
        loop = asyncio.get_running_loop()
        cached = self._gateways.get(parent)
        if cached and loop.time() - cached[0] < GATEWAY_TTL:
            return cached[1]
        try:
            gateway = await self.api.read(f"{GATEWAYS}/namespaces/{namespace}/gateways/{name}")
            klass = None
            if gateway is not None:
                class_name = (gateway.get("spec") or {}).get("gatewayClassName", "")
                klass = await self.api.read(f"{GATEWAYS}/gatewayclasses/{class_name}")
            state = gateway_state(parent, gateway, klass)
        except Exception as err:  # noqa: BLE001 - unknown is not "supported"; the planner says so
            reason = getattr(err, "reason", None) or err
            state = GatewayState(parent, None, message=f"Gateway {parent} could not be read: {reason}")
        self._gateways[parent] = (loop.time(), state)
        return state

    async def gateways_of(self, namespace: str, spec: dict) -> tuple[GatewayState, ...] | None:
        routing = ((spec.get("strategy") or {}).get("trafficRouting") or {}).get("gatewayAPI")
        if not routing:
            return None
        refs = [r for r in routing.get("parentRefs") or []
                if r.get("kind", "Gateway") == "Gateway" and isinstance(r.get("name"), str)]
        return tuple(await asyncio.gather(*(self._gateway(parent_key(r, namespace), r.get("namespace") or namespace,
                                                           r["name"]) for r in refs)))

    # --- workers ---------------------------------------------------------------------
    def start(self) -> None:
        """Starts the workers. Whatever the watches delivered before is queued already
        (every ModelDeployment seen is), so a standby that becomes the leader passes over
        every ModelDeployment at once."""
        self.started_at = asyncio.get_running_loop().time()
        self.tasks = [asyncio.create_task(self._work(), name=f"reconcile-{i}") for i in range(self.workers)]

    async def stop(self) -> None:
        for task in [*self.tasks, *self.background]:
            task.cancel()
        await asyncio.gather(*self.tasks, *self.background, return_exceptions=True)
        await self.hooks.close()
        await self.notifier.close()
        self.api.close()

    async def _work(self) -> None:
        while True:
            key = await self.queue.get()
            if not self.may_write():
                self.queue.done(key)
                self.queue.add(key, 1.0)
                continue
            try:
                delay = await self.reconcile(key)
                self.failures.pop(key, None)
                if self.started_at is not None:
                    log.info("first pass done (%s/%s) %.3fs after the workers started", *key,
                             asyncio.get_running_loop().time() - self.started_at)
                    self.started_at = None
            except Throttled as err:
                delay = err.retry_after
            except Conflict:
                delay = 0.5  # our cached object is stale; the watch brings the new one
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - one bad object must not stop the others
                self.failures[key] += 1
                delay = min(60.0, 0.5 * 2 ** self.failures[key])
                log.exception("reconciling %s/%s failed; retrying in %.1fs", *key, delay)
            finally:
                self.queue.done(key)
            if delay is not None and key in self.bodies:
                self.queue.add(key, delay)

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def _announce(self, key: Key, body: dict, transition: dict, defer: bool = False) -> None:
        try:
            # Events tell people what happened; they wait while new or changed
            # ModelDeployments are queued, so a burst converges first. Nothing is lost:
            # an unannounced transition is announced before the next one is made.
            while True:
                if defer:
                    await self.queue.calm()
                async with self.announcing:
                    if defer and not self.queue.is_calm():
                        continue  # a burst began while this one waited for its turn
                    if await self.api.announce(body, transition):
                        self._notify(body, transition)
                    break
        except Exception as err:  # noqa: BLE001 - retried by the next pass
            log.warning("announcing %s for %s/%s failed: %s", transition["reason"], *key, err)
            if self.announced.get(key) == transition["seq"]:
                del self.announced[key]
            if key in self.bodies:
                self.queue.add(key, 1.0)

    def _notify(self, body: dict, transition: dict) -> None:
        """Only the process whose Event for the transition was new sends its
        notifications, so none is sent twice, also across restarts."""
        try:
            webhooks = parse_notifications((body.get("spec") or {}).get("notifications"))
        except NotificationError:
            return  # the spec is marked InvalidSpec; nothing to send to
        if webhooks:
            self.notifier.send(body, transition, webhooks)

    async def _analyse(self, request: AnalysisRequest) -> Verdict:
        try:
            return await asyncio.wait_for(self.analyzer.analyse(request), ANALYSIS_TIMEOUT)
        except asyncio.TimeoutError:
            message = f"analysis took longer than {ANALYSIS_TIMEOUT:g}s"
        except Exception as err:  # noqa: BLE001 - a broken provider is no data, never a pass
            log.warning("analysis of %s/%s failed: %s", request.namespace, request.name, err)
            message = f"analysis failed: {err}"
        check = CheckResult("analysis", Result.INCONCLUSIVE, message=message)
        return Verdict(Result.INCONCLUSIVE, "AnalysisError", message, (check,))

    async def reconcile(self, key: Key) -> float | None:
        body = self.bodies.get(key)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return None
        meta = body["metadata"]
        # A transition recorded by a process that died before announcing it is
        # announced before any new one is made, so no Event is ever skipped.
        recorded = (body.get("status") or {}).get("transition")
        if recorded and self.announced.get(key) != recorded["seq"]:
            self.announced[key] = recorded["seq"]
            await self._announce(key, body, recorded)
        observed = Observed(revisions=self._observed_revisions(key), route=self.routes.get(key),
                            gateways=await self.gateways_of(key[0], body.get("spec") or {}),
                            resolvers={n: r for n, r in self.resolvers.get(key, {}).items() if r is not None},
                            hook_results={**self.hooks.results_for(key), **self.job_results.get(key, {})})
        now = self.clock()
        observed = dataclasses.replace(observed, autoscalers=frozenset(self.autoscalers.get(key, ())),
                                       rejected=self._rejection_of(key, meta.get("generation")),
                                       in_effect=self.in_effect.get(key) == meta.get("resourceVersion"))
        p = plan(meta, body.get("spec") or {}, body.get("status"), observed, now, config=self.config)
        if p.analysis is not None:
            verdict = await self._analyse(p.analysis)
            p = plan(meta, body.get("spec") or {}, body.get("status"), observed, self.clock(), verdict=verdict,
                     config=self.config)

        # 1. The decision is recorded before anything acts on it. The first pass is the
        # exception: with nothing recorded yet, a re-plan after a crash makes the same
        # first deployment, so its status and children go out at once.
        async def record():
            nonlocal body
            if p.status != (body.get("status") or {}):
                written = await self.api.write_status(body, p.status)
                if p.transition is not None:
                    log.info("%s/%s: %s (transition %d)", *key, p.status["transition"]["reason"],
                             p.status["transition"]["seq"])
                # A new dict around the cached spec (which nothing edits): a deep copy
                # of every body was 4% of the operator's CPU at a thousand objects.
                body = {**body, "status": p.status,
                        "metadata": {**body["metadata"], "resourceVersion": written["metadata"]["resourceVersion"]}}
                self.bodies[key] = body

        # 2. The objects follow from the recorded status.
        missing, refused = [], []

        async def apply(obj):
            ref = (obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"])
            encoded = json.dumps(obj, sort_keys=True)  # the digest's input is also the request's body
            digest = hashlib.sha256(encoded.encode()).hexdigest()
            if self.applied.get(ref) == digest:
                return
            try:
                await self.api.apply(obj, encoded)
            except MissingApi as err:
                missing.append(str(err))
                return
            except Exception as err:
                # A child the API server refuses as invalid is refused again on every retry:
                # the next pass marks the spec InvalidSpec instead (planner.py).
                if not self._refused(key, err, obj, meta.get("generation")):
                    raise
                refused.append(ref)
                return
            self.applied[ref] = digest

        # The pods' feedback key Secret: created once (feedback_key.py), before the
        # Deployments that mount it.
        for secret in feedback_key.secrets_used(p.apply):
            ref = (key[0], secret, meta["uid"])
            if ref not in self.feedback_keys:
                secret_obj = feedback_key.secret(meta, (body.get("spec") or {}).get("model") or {})
                try:
                    await self.api.create_once(secret_obj)
                except Exception as err:
                    if not self._refused(key, err, secret_obj, meta.get("generation")):
                        raise
                    return 0.0
                self.feedback_keys.add(ref)

        # Children of one ModelDeployment do not depend on each other: apply them at once.
        if body.get("status"):
            await record()
            await asyncio.gather(*(apply(obj) for obj in p.apply))
        else:
            await asyncio.gather(record(), *(apply(obj) for obj in p.apply))
        for rev, replicas in p.scale.items():
            state = observed.revisions.get(rev)
            if state is None or state.replicas != replicas:
                await self.api.scale(key[0], deployment_name(key[1], rev), replicas)
        for rev in p.delete:
            await self.api.delete_deployment(key[0], deployment_name(key[1], rev))
            await self.api.delete_configmap(key[0], profile_configmap_name(key[1], rev))
            self.applied = {r: d for r, d in self.applied.items() if not r[2].startswith(deployment_name(key[1], rev))}
        for name in p.unscaled:
            # No track needs it (autoscaling off, or its revision is gone or sized by the operator).
            await self.api.delete_autoscaler(key[0], name)
            self.applied.pop(("HorizontalPodAutoscaler", key[0], name), None)
        if missing:
            log.warning("%s/%s: %s", *key, "; ".join(missing))
        if not refused:  # a kind the cluster lacks is logged above; waiting would not bring it
            self.in_effect[key] = body["metadata"].get("resourceVersion")
        if p.resolver is not None or self.resolvers.get(key):
            await self._resolver_pods(key, p.resolver, meta.get("generation"))
        # The planner lists the HTTP hooks still to answer; what it recorded is forgotten.
        self.hooks.ensure(key, p.hook_calls)

        # 3. The transition is announced once, also if a restart came in between. The
        # Event is off the critical path: the next pass re-announces it if this fails.
        transition = p.status.get("transition")
        if transition and self.announced.get(key) != transition["seq"]:
            self.announced[key] = transition["seq"]
            self._spawn(self._announce(key, body, transition, defer=True))

        if p.transition is not None or (observed.rejected is None and self._rejection_of(key, meta.get("generation"))):
            return 0.0  # one transition per pass, or a refused child to mark: look again at once
        return p.requeue_after if p.requeue_after is not None else self.config.resync_seconds
