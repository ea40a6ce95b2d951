"""The rollout planner: spec + status + observed cluster + verdict in, next status and
desired objects out. Pure: no I/O, no clock, no memory between calls.

Each call makes at most one transition (recorded in status.transition with a
sequence number, so its Event is announced exactly once even across restarts), and
the desired objects always follow from the status it returns. A restarted operator
therefore resumes at the same step, and applying a plan twice changes nothing."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .analysis import AnalysisRequest, Decision, Result, Verdict, drift_alarm, gate
from .analysis.abtest import NO_DIFFERENCE
from . import resolution
from .children import model_deployment, profile_configmap
from .config import OperatorConfig
from .model_source import ResolverResult, model_summary, resolver_pod
from .naming import CANDIDATE, STABLE, common_labels
from .routers import Traffic, router_for
from .routers.base import candidate_share
from .routers.gateway_readiness import GatewayState, Readiness, RouteState, missing_features, route_readiness
from .spec import Spec, SpecError, parse
from .status import add_history, condition, parse_ts, set_condition, ts

COMMANDS = ("promote", "abort", "retry")
ANNOTATION = "modelops.io/{}"
WAIT_FOR_PODS = 2.0  # seconds between looks while pods start; child events also wake us
WAIT_FOR_ROUTE = 1.0  # seconds between looks while a gateway takes up a route; route events also wake us


@dataclass(frozen=True)
class RevisionState:
    replicas: int  # spec.replicas of its Deployment
    ready: int
    fetch_error: str | None = None  # why a pod's model fetch failed (its init container's message)


@dataclass(frozen=True)
class Observed:
    revisions: dict[str, RevisionState] = field(default_factory=dict)
    route: RouteState | None = None  # the HTTPRoute as the gateways reported on it
    gateways: tuple[GatewayState, ...] | None = None  # its parent Gateways; None: not read
    resolvers: dict[str, ResolverResult] = field(default_factory=dict)  # finished resolver pods by name

    def ready(self, revision: str | None) -> int:
        state = self.revisions.get(revision) if revision else None
        return state.ready if state else 0

    def replicas(self, revision: str | None) -> int:
        state = self.revisions.get(revision) if revision else None
        return state.replicas if state else 0


@dataclass(frozen=True)
class Transition:
    reason: str
    message: str
    warning: bool = False


@dataclass
class Plan:
    status: dict
    apply: list[dict] = field(default_factory=list)  # whole objects, server-side applied
    scale: dict[str, int] = field(default_factory=dict)  # revision -> replicas, other revisions
    delete: list[str] = field(default_factory=list)  # revisions whose Deployments go
    transition: Transition | None = None
    analysis: AnalysisRequest | None = None  # a gate is due: call again with a verdict
    requeue_after: float | None = None
    resolver: dict | None = None  # the resolver pod that must exist (every other one goes)


def record_transition(status: dict, reason: str, message: str, warning: bool, now: datetime) -> Transition:
    """Records the next transition in status; its seq names the Event that announces it."""
    seq = int((status.get("transition") or {}).get("seq", 0)) + 1
    status["transition"] = {"seq": seq, "type": "Warning" if warning else "Normal", "reason": reason,
                            "message": message, "time": ts(now)}
    return Transition(reason, message, warning)


def pending_commands(annotations: dict, status: dict) -> set[str]:
    """Commands are annotations whose value changed since last carried out, so the
    operator never edits the user's object to clear them."""
    done = status.get("commands") or {}
    return {c for c in COMMANDS if annotations.get(ANNOTATION.format(c)) not in (None, "", done.get(c))}


class _Rollout:
    """One planning pass; `st` is the status being built."""

    def __init__(self, meta, spec: Spec, status, observed: Observed, now, verdict, config):
        self.meta, self.spec, self.observed, self.now, self.verdict = meta, spec, observed, now, verdict
        self.config = config
        self.st = status
        self.router = router_for(spec)
        self.transition: Transition | None = None
        self.analysis: AnalysisRequest | None = None
        self.due: list[float] = []
        self.commands = pending_commands(meta.get("annotations") or {}, status)
        self.desired: dict[str, int] = {}  # revision -> replicas the plan gives it
        self.refusal: Readiness | None = None  # why the new revision's rollout was not started
        self.why_new = "spec.model changed"  # what starts a rollout of a new revision

    # --- bookkeeping ---------------------------------------------------------------
    def move(self, reason: str, message: str, warning: bool = False) -> None:
        assert self.transition is None, "one transition per plan"
        self.transition = record_transition(self.st, reason, message, warning, self.now)

    def handled(self, command: str) -> None:
        value = (self.meta.get("annotations") or {}).get(ANNOTATION.format(command))
        self.st.setdefault("commands", {})[command] = value
        self.commands.discard(command)

    def track_entry(self, revision: str) -> dict:
        spec = self.spec
        entry = {"revision": revision, "version": spec.version, "image": spec.image}
        if spec.resolved:
            entry["model"] = model_summary(spec.resolved)
        return entry

    def wake_in(self, seconds: float) -> None:
        self.due.append(max(0.5, seconds))

    def since(self, key: str) -> float:
        started = parse_ts(self.st.get(key))
        return (self.now - started).total_seconds() if started else 0.0

    def set_stage(self, stage: str) -> None:
        self.st["stage"] = stage
        self.st["stageStartedAt"] = ts(self.now)

    def traffic(self) -> Traffic:
        st = self.st
        stable = (st.get("stable") or {}).get("revision")
        cand = (st.get("candidate") or {}).get("revision")
        weights = st.get("weights") or {}
        experiment = bool(cand) and self.spec.strategy == "ABTest" and st.get("stage") in ("Experimenting",)
        return Traffic(stable, cand, int(weights.get("candidate", 0)), int(weights.get("mirror", 0)), experiment)

    def target(self) -> Traffic:
        """The traffic the current stage aims at (status.weights is what is in effect)."""
        st, spec = self.st, self.spec
        now = self.traffic()
        stage = st.get("stage")
        if not now.candidate:
            return now
        if stage == "Promoting":
            return Traffic(now.stable, now.candidate, 100)
        if spec.strategy == "Canary" or (spec.strategy == "Shadow" and st.get("stepCount")):
            step = spec.steps[min(int(st.get("currentStep", 0)), len(spec.steps) - 1)]
            return Traffic(now.stable, now.candidate, step.weight)
        if spec.strategy == "Shadow":
            return Traffic(now.stable, now.candidate, 0, int(spec.shadow["mirrorPercent"]))
        if spec.strategy == "ABTest":
            return Traffic(now.stable, now.candidate, 0, 0, True)
        return Traffic(now.stable, now.candidate, 0)  # BlueGreen preview

    def set_weights(self, traffic: Traffic) -> None:
        """Records the traffic in effect: for replica ratios, the share the replica
        counts really give, not the step's nominal weight."""
        weight = traffic.weight
        if self.router.name == "replicas" and traffic.candidate:
            weight = round(100 * candidate_share(self.spec.replicas, weight) / self.spec.replicas)
        if traffic.experiment:
            ab = self.spec.ab_test
            weight = int(ab["split"]["candidateWeight"]) if "split" in ab else 0
        self.st["weights"] = {"stable": 100 - weight, "candidate": weight, "mirror": traffic.mirror}

    def step_text(self) -> None:
        st = self.st
        count = int(st.get("stepCount") or 0)
        if st.get("candidate") and count:
            st["stepText"] = f"{min(int(st.get('currentStep', 0)) + 1, count)}/{count}"
        else:
            st.pop("stepText", None)

    # --- rollout lifecycle ---------------------------------------------------------
    def begin(self, revision: str, why: str) -> None:
        """Starts a rollout, unless the gateways cannot serve the strategy: then nothing
        moves (the stable's route stays as it is) and status says what is missing."""
        refusal = missing_features(self.spec, self.observed.gateways) if self.router.name == "gatewayAPI" else None
        if refusal is None:
            self.start(revision, why)
            return
        self.refusal = refusal
        st = self.st
        st["phase"] = "Pending"
        if (condition(st, "RouteReady") or {}).get("message") != refusal.message:
            self.move("RolloutRefused", f"{why}: {self.spec.version} (revision {revision}) not rolled out: "
                                        f"{refusal.message}", warning=True)
        self.wake_in(30.0)  # the Gateway or its class may change; their changes send no event here

    def route_held(self) -> bool:
        """Through a gateway, traffic moves on only once every parent serves the route
        as it is now: never a step, or analysis, on traffic that cannot reach the candidate."""
        if self.router.name != "gatewayAPI" or self.readiness().ok:
            return False
        self.wake_in(WAIT_FOR_ROUTE)
        return True

    def readiness(self) -> Readiness:
        desired = self.router.route(self.meta, self.spec, self.traffic())
        return route_readiness(desired, self.observed.route, self.observed.gateways, self.meta["namespace"])

    def start(self, revision: str, why: str) -> None:
        spec, st = self.spec, self.st
        st["candidate"] = self.track_entry(revision)
        st["phase"] = "Progressing"
        st["rolloutStartedAt"] = ts(self.now)
        st["currentStep"] = 0
        st["stepCount"] = len(spec.steps) if spec.strategy == "Canary" else 0
        st["analysis"] = {"runs": 0, "consecutiveFailures": 0, "consecutiveInconclusive": 0}
        st.pop("lastVerdict", None)
        st.pop("abTest", None)
        st.pop("failedChecks", None)
        self.set_stage("Scaling")
        self.set_weights(Traffic(st["stable"]["revision"], revision, 0))
        self.move("RolloutStarted", f"{why}: rolling out {spec.model['name']} {spec.version} (revision {revision}) "
                                    f"with {spec.strategy}")

    def finish(self, outcome: str, reason: str, message: str, phase: str, warning: bool = False,
               block: bool = False, announce: bool = True) -> None:
        st = self.st
        cand = st.pop("candidate")
        entry = {"revision": cand["revision"], "version": cand.get("version", ""),
                 "image": cand.get("image", ""), "outcome": outcome, "reason": reason, "message": message,
                 "startedAt": st.get("rolloutStartedAt") or ts(self.now), "finishedAt": ts(self.now)}
        if cand.get("model"):
            entry["model"] = cand["model"]
        add_history(st, entry, self.spec.history_limit)
        if block:
            st["blockedRevision"] = cand["revision"]
        st["phase"] = phase
        for key in ("stage", "stageStartedAt", "currentStep", "stepCount", "stepText"):
            st.pop(key, None)
        st["weights"] = {"stable": 100, "candidate": 0, "mirror": 0}
        if announce:
            self.move(reason, message, warning)

    def rollback(self, reason: str, message: str, outcome: str = "RolledBack") -> None:
        cand = self.st["candidate"]
        self.finish(outcome, reason, f"{cand.get('version')} ({cand['revision']}) rolled back: {message}",
                    "RolledBack", warning=True, block=True)

    def promote_done(self) -> None:
        st = self.st
        old = st["stable"]["revision"]
        cand = dict(st["candidate"])
        delay = 0.0 if self.router.name == "replicas" else self.spec.scale_down_delay
        retiring = [r for r in st.get("retiring", []) if r["revision"] != cand["revision"]]
        if old != cand["revision"]:
            retiring.append({"revision": old, "deleteAt": ts(self.now + timedelta(seconds=delay))})
        st["retiring"] = retiring
        self.finish("Succeeded", "Promoted", f"{cand.get('version')} ({cand['revision']}) is now stable",
                    "Succeeded")
        st["stable"] = {k: cand[k] for k in ("revision", "version", "image", "model") if k in cand}
        st.pop("blockedRevision", None)

    # --- gates ---------------------------------------------------------------------
    def run_gate(self) -> Decision | None:
        """Asks for a verdict when one is due; returns the gate's decision, or None."""
        an, st = self.spec.analysis, self.st
        state = st.setdefault("analysis", {"runs": 0, "consecutiveFailures": 0, "consecutiveInconclusive": 0})
        next_at = parse_ts(state.get("nextAt"))
        watch = bool(next_at and self.now < next_at)
        if watch:
            wait = (next_at - self.now).total_seconds()
            if not an.watches_drift:
                self.wake_in(wait)
                return None
            # Between gates the sequential drift evidence is read every readInterval;
            # only an alarm acts on such a read, nothing else about it is recorded.
            self.wake_in(min(wait, an.read_interval))
            if self.verdict is not None and not drift_alarm(self.verdict):
                return None
        if self.verdict is None:
            self.analysis = AnalysisRequest(
                namespace=self.meta["namespace"], name=self.meta["name"], strategy=self.spec.strategy,
                stable_revision=st["stable"]["revision"], candidate_revision=st["candidate"]["revision"],
                step=int(st.get("currentStep", 0)), window_seconds=max(an.interval, self.since("stageStartedAt")),
                analysis=self.spec.raw.get("analysis") or {}, monitor=self.spec.monitor,
                ab_test=self.spec.ab_test if self.spec.strategy == "ABTest" else {}, watch=watch)
            return None
        verdict: Verdict = self.verdict
        outcome = gate(verdict, int(state.get("consecutiveFailures", 0)), int(state.get("consecutiveInconclusive", 0)),
                       an.failure_limit, an.inconclusive_limit, an.on_inconclusive)
        state.update(runs=int(state.get("runs", 0)) + 1, consecutiveFailures=outcome.consecutive_failures,
                     consecutiveInconclusive=outcome.consecutive_inconclusive,
                     nextAt=ts(self.now + timedelta(seconds=an.interval)))
        st["lastVerdict"] = {"result": verdict.result.value, "reason": verdict.reason, "message": verdict.message,
                             "step": int(st.get("currentStep", 0)), "time": ts(self.now),
                             "checks": [c.to_status() for c in verdict.checks]}
        failed = [c.to_status() for c in verdict.failed]
        if failed:
            st["failedChecks"] = failed
        elif verdict.result is Result.PASS:
            st.pop("failedChecks", None)
        self.wake_in(min(an.interval, an.read_interval) if an.watches_drift else an.interval)
        return outcome.decision

    def on_gate_failure(self, decision: Decision) -> bool:
        """Handles Rollback and Pause; True when the stage is over."""
        verdict: Verdict = self.verdict
        if decision is Decision.ROLLBACK:
            if verdict.result is Result.FAIL:
                self.rollback("AnalysisFailed", verdict.message)
            else:
                self.rollback("AnalysisInconclusive", f"no conclusive analysis: {verdict.message}")
            return True
        if decision is Decision.PAUSE:
            self.st["phase"] = "Paused"
            self.set_stage("Paused")
            self.st["pausedReason"] = "InconclusiveAnalysis"
            self.move("Paused", f"analysis stayed inconclusive: {verdict.message}; promote, abort or fix the metrics",
                      warning=True)
            return True
        return False

    # --- stages --------------------------------------------------------------------
    def scaling(self) -> None:
        spec, st = self.spec, self.st
        target = self.target()
        cand = target.candidate
        if not self.router.reached(spec, target, self.observed.replicas(target.stable), self.observed.ready(cand)):
            if self.since("stageStartedAt") > spec.progress_deadline:
                self.rollback("ProgressDeadlineExceeded",
                              f"{self.observed.ready(cand)} candidate pods ready after "
                              f"{int(self.since('stageStartedAt'))}s, more than spec.progressDeadline")
            else:
                self.wake_in(min(WAIT_FOR_PODS, spec.progress_deadline))
            return
        self.set_weights(target)
        if spec.strategy == "Canary" or (spec.strategy == "Shadow" and st.get("stepCount")):
            step = spec.steps[int(st.get("currentStep", 0))]
            where = f"step {int(st['currentStep']) + 1}/{len(spec.steps)}"
            if step.manual:
                st["phase"] = "Paused"
                st["pausedReason"] = "ManualStep"
                self.set_stage("Paused")
                self.move("StepPaused", f"{where}: {st['weights']['candidate']}% on the candidate; "
                                        "waiting for a person to promote")
            elif step.pause:
                self.set_stage("Pausing")
                self.move("StepWeightSet", f"{where}: {st['weights']['candidate']}% on the candidate; "
                                           f"pausing {step.pause:g}s")
            else:
                self.begin_analysis(f"{where}: {st['weights']['candidate']}% on the candidate")
        elif spec.strategy == "BlueGreen":
            if spec.blue_green.get("prePromotionAnalysis", True):
                self.begin_analysis("preview is ready; pre-promotion analysis")
            else:
                self.after_blue_green_gate("preview is ready")
        elif spec.strategy == "Shadow":
            self.set_stage("Shadowing")
            self.st["analysis"]["nextAt"] = ts(self.now + timedelta(seconds=spec.analysis.interval))
            self.move("ShadowStarted", f"mirroring {target.mirror}% of live traffic to the candidate")
        elif spec.strategy == "ABTest":
            self.set_stage("Experimenting")
            self.st["analysis"]["nextAt"] = ts(self.now + timedelta(seconds=spec.analysis.interval))
            self.move("ExperimentStarted", f"A/B test running: {st['weights']['candidate']}% of sessions "
                                           "on the candidate" if st["weights"]["candidate"] else
                      "A/B test running: matching requests go to the candidate")

    def begin_analysis(self, message: str) -> None:
        self.set_stage("Analysing")
        # Measure the new traffic split for a whole interval before judging it.
        self.st["analysis"]["nextAt"] = ts(self.now + timedelta(seconds=self.spec.analysis.interval))
        self.wake_in(self.spec.analysis.interval)
        self.move("StepWeightSet", f"{message}; analysing every {self.spec.analysis.interval:g}s")

    def pausing(self) -> None:
        step = self.spec.steps[int(self.st.get("currentStep", 0))]
        left = (step.pause or 0) - self.since("stageStartedAt")
        if left > 0:
            # The drift evidence is read during the pause too: an alarm does not wait for
            # the step's analysis (run_gate reads it until nextAt, the pause's end).
            state = self.st.setdefault("analysis", {"runs": 0, "consecutiveFailures": 0, "consecutiveInconclusive": 0})
            state["nextAt"] = ts(parse_ts(self.st["stageStartedAt"]) + timedelta(seconds=step.pause))
            decision = self.run_gate()
            if decision is not None:
                self.on_gate_failure(decision)
            return
        self.set_stage("Analysing")
        self.st["analysis"]["nextAt"] = ts(self.now)
        self.move("PauseEnded", f"step {int(self.st['currentStep']) + 1}/{len(self.spec.steps)}: pause over; analysing")

    def advance(self, why: str) -> None:
        st, spec = self.st, self.spec
        st["phase"] = "Progressing"
        st.pop("pausedReason", None)
        if spec.strategy == "BlueGreen":
            self.set_stage("Promoting")
            self.move("Promoting", f"{why}; switching the active Service")
            return
        i = int(st.get("currentStep", 0)) + 1
        if i < int(st.get("stepCount") or 0):
            st["currentStep"] = i
            self.set_stage("Scaling")
            self.move("StepStarted", f"{why}; step {i + 1}/{st['stepCount']}: {spec.steps[i].weight}% to the candidate")
        else:
            self.set_stage("Promoting")
            self.move("Promoting", f"{why}; promoting the candidate to 100%")

    def analysing(self) -> None:
        decision = self.run_gate()
        if decision is None:
            return
        if decision is Decision.ADVANCE:
            if self.spec.strategy == "BlueGreen":
                self.after_blue_green_gate("pre-promotion analysis passed")
            else:
                self.advance(f"step {int(self.st.get('currentStep', 0)) + 1} analysis passed")
            return
        self.on_gate_failure(decision)

    def after_blue_green_gate(self, why: str) -> None:
        if self.spec.blue_green.get("autoPromote", True):
            self.st["phase"] = "Progressing"
            self.set_stage("Promoting")
            self.move("Promoting", f"{why}; switching the active Service")
        else:
            self.st["phase"] = "Paused"
            self.st["pausedReason"] = "AwaitingPromotion"
            self.set_stage("Paused")
            self.move("AwaitingPromotion", f"{why}; waiting for a person to promote")

    def shadowing(self) -> None:
        decision = self.run_gate()
        if decision is None:
            return
        if decision is not Decision.ADVANCE:
            self.on_gate_failure(decision)
            return
        if self.since("stageStartedAt") < self.spec.shadow_duration:
            return
        self.end_shadow("shadow analysis passed")

    def end_shadow(self, why: str) -> None:
        st, spec = self.st, self.spec
        st["weights"]["mirror"] = 0
        if spec.shadow.get("promotion") == "Canary":
            st["currentStep"] = 0
            st["stepCount"] = len(spec.steps)
            self.set_stage("Scaling")
            self.move("StepStarted", f"{why}; canary step 1/{len(spec.steps)}: {spec.steps[0].weight}% to the candidate")
        else:
            self.set_stage("Promoting")
            self.move("Promoting", f"{why}; promoting the candidate to 100%")

    def experimenting(self) -> None:
        """Health checks still roll back; until the test has its sample size the
        verdict is Inconclusive, which here only means: keep collecting."""
        deadline = self.spec.ab_deadline
        decision = self.run_gate()
        if decision is None:
            return
        if self.verdict.experiment:
            self.st["abTest"] = copy.deepcopy(self.verdict.experiment)
        if self.verdict.result is Result.FAIL:
            if decision is Decision.ROLLBACK:
                self.rollback("AnalysisFailed", self.verdict.message)
            return
        winner = self.verdict.winner
        if winner == "candidate":
            self.set_stage("Promoting")
            self.move("ExperimentDecided", f"the candidate converts better: {self.verdict.message}; promoting it")
        elif winner == "control":
            self.finish("RolledBack", "ControlKept", f"the control converts better: {self.verdict.message}",
                        "RolledBack", block=True)
        elif winner == NO_DIFFERENCE:
            self.finish("RolledBack", "ControlKept", self.verdict.message, "RolledBack", block=True)
        elif self.since("stageStartedAt") >= deadline:
            self.verdict_free_deadline()

    def verdict_free_deadline(self) -> None:
        self.finish("RolledBack", "ControlKept", "no significant difference by spec.strategy.abTest.decision."
                                                  "maxDuration; keeping the control", "RolledBack", block=True)

    def promoting(self) -> None:
        target = self.target()
        if not self.router.reached(self.spec, target, self.observed.replicas(target.stable),
                                   self.observed.ready(target.candidate)):
            if self.since("stageStartedAt") > self.spec.progress_deadline:
                self.rollback("ProgressDeadlineExceeded", "the candidate did not reach full size in time")
            else:
                self.wake_in(WAIT_FOR_PODS)
            return
        self.promote_done()

    def paused(self) -> None:
        if "promote" in self.commands:
            self.handled("promote")
            if self.spec.strategy == "BlueGreen":
                self.st["phase"] = "Progressing"
                self.st.pop("pausedReason", None)
                self.set_stage("Promoting")
                self.move("Promoting", "promoted by a person; switching the active Service")
            else:
                self.st["analysis"].update(consecutiveInconclusive=0, consecutiveFailures=0)
                self.advance("promoted by a person")

    # --- the pass ------------------------------------------------------------------
    def hold(self) -> None:
        """The spec's model is not pinned yet: no transition, and the objects keep what
        runs (objects() applies no Deployment for an unknown revision)."""
        self.spec = dataclasses.replace(self.spec, revision="")
        if not self.st.get("stable"):
            self.st["phase"] = "Pending"

    def run(self) -> None:
        st, spec = self.st, self.spec
        rev = spec.revision
        stable = st.get("stable")
        cand = st.get("candidate")

        if not stable:
            st["stable"] = self.track_entry(rev)
            st["phase"] = "Progressing"
            st["weights"] = {"stable": 100, "candidate": 0, "mirror": 0}
            self.move("Deploying", f"first deployment of {spec.model['name']} {spec.version} (revision {rev})")
            return

        if cand and cand["revision"] != rev:
            if rev == stable["revision"]:
                self.finish("Aborted", "SpecReverted", f"spec.model is back on the stable {stable.get('version')}; "
                                                       f"dropped candidate {cand.get('version')}", "Succeeded")
            else:
                old = cand.get("version")
                # One Event says both: the old candidate is dropped and the new one starts.
                self.finish("Superseded", "Superseded", f"{old} replaced by {spec.version} mid-rollout",
                            "Progressing", announce=False)
                self.begin(rev, f"{old} superseded mid-rollout")
            return

        if cand:
            if "abort" in self.commands:
                self.handled("abort")
                self.rollback("Aborted", "aborted by a person", outcome="Aborted")
                return
            failed = (self.observed.revisions.get(cand["revision"]) or RevisionState(0, 0)).fetch_error
            if failed:
                # Known now: waiting for the progress deadline would only delay the rollback.
                self.rollback("ModelFetchFailed", failed)
                return
            if self.route_held():
                return
            stage = st.get("stage", "Scaling")
            if "promote" in self.commands and stage not in ("Paused", "Promoting"):
                self.handled("promote")
                if stage == "Shadowing":
                    self.end_shadow("promoted by a person")
                elif stage == "Experimenting":
                    self.set_stage("Promoting")
                    self.move("Promoting", "promoted by a person; promoting the candidate")
                else:
                    self.advance("promoted by a person")
                return
            getattr(self, stage.lower())()
            return

        # No rollout in flight.
        if rev == stable["revision"]:
            if st.get("phase") != "Succeeded" and self.observed.ready(rev) >= spec.replicas:
                first = st.get("phase") == "Progressing"
                st["phase"] = "Succeeded"
                st.pop("blockedRevision", None)
                self.move("Available" if first else "Stable",
                          f"{spec.version} ({rev}) serving with {spec.replicas} replicas")
            elif self.observed.ready(rev) < spec.replicas:
                self.wake_in(WAIT_FOR_PODS)
            return
        if st.get("blockedRevision") == rev:
            if "retry" in self.commands:
                self.handled("retry")
                st.pop("blockedRevision")
                self.begin(rev, "retried by a person")
            return
        self.begin(rev, self.why_new)

    # --- objects -------------------------------------------------------------------
    def objects(self) -> tuple[list[dict], dict[str, int], list[str]]:
        spec, st = self.spec, self.st
        traffic = self.traffic()
        target = self.target() if traffic.candidate else traffic
        capacity = self.router.capacity(spec, target, self.observed.ready(traffic.candidate))
        apply, scale = [], {}
        current = spec.revision
        stable_rev, cand_rev = traffic.stable, traffic.candidate
        for rev, track, replicas in ((stable_rev, STABLE, capacity.stable), (cand_rev, CANDIDATE, capacity.candidate)):
            if not rev:
                continue
            self.desired[rev] = replicas
            if rev == current:
                apply.append(model_deployment(self.meta, spec, self.config, track, replicas))
                cm = profile_configmap(self.meta, spec, track)
                if cm:
                    apply.append(cm)
            else:
                # Another revision's pod template lives in its Deployment; only scale it.
                scale[rev] = replicas
        apply.extend(self.router.objects(self.meta, spec, traffic))

        keep = {stable_rev, cand_rev}
        delete = []
        retiring = []
        for entry in st.get("retiring", []):
            if entry["revision"] in keep:
                continue
            delete_at = parse_ts(entry["deleteAt"])
            if delete_at and delete_at <= self.now:
                delete.append(entry["revision"])
            else:
                retiring.append(entry)
                keep.add(entry["revision"])
                self.wake_in((delete_at - self.now).total_seconds())
        if retiring:
            st["retiring"] = retiring
        else:
            st.pop("retiring", None)
        delete.extend(r for r in self.observed.revisions if r not in keep and r not in delete)
        return apply, scale, delete

    def conditions(self, generation: int | None) -> None:
        st, spec, now = self.st, self.spec, self.now
        stable_rev = (st.get("stable") or {}).get("revision")
        cand_rev = (st.get("candidate") or {}).get("revision")
        ready = self.observed.ready(stable_rev) + self.observed.ready(cand_rev)
        for key, rev in (("stable", stable_rev), ("candidate", cand_rev)):
            if rev and key in st:
                # What the plan asks for, not what the watch last saw: known at once,
                # so a new Deployment does not cost a second status write.
                st[key]["replicas"] = self.desired.get(rev, self.observed.replicas(rev))
                st[key]["readyReplicas"] = self.observed.ready(rev)
        set_condition(st, "Available", ready >= spec.replicas,
                      "MinimumReplicasAvailable" if ready >= spec.replicas else "ReplicasUnavailable",
                      f"{ready} of {spec.replicas} replicas ready", now, generation)
        phase = st.get("phase")
        if cand_rev:
            set_condition(st, "Progressing", True, "RolloutInProgress",
                          f"rolling out {st['candidate'].get('version')}: {st.get('stage')}"
                          + (f", step {st['stepText']}" if st.get("stepText") else "")
                          + f", {st['weights']['candidate']}% on the candidate", now, generation)
        else:
            reason = {"RolledBack": "RolledBack", "Succeeded": "RolloutComplete"}.get(phase, "NoRollout")
            set_condition(st, "Progressing", False, reason, st.get("transition", {}).get("message", ""), now,
                          generation)
        if phase == "Paused":
            set_condition(st, "Paused", True, st.get("pausedReason", "Paused"),
                          "kubectl modelops promote to go on, abort to roll back", now, generation)
        else:
            st.pop("pausedReason", None)
            set_condition(st, "Paused", False, "NotPaused", "", now, generation)
        stable_fetch = (self.observed.revisions.get(stable_rev) or RevisionState(0, 0)).fetch_error \
            if stable_rev else None
        if stable_fetch:
            set_condition(st, "Degraded", True, "ModelFetchFailed",
                          f"{stable_fetch}; the pods of {stable_rev} stay unready", now, generation)
        elif phase == "RolledBack" and (st.get("history") or [{}])[0].get("reason") != "ControlKept":
            last = st["history"][0]
            set_condition(st, "Degraded", True, last.get("reason", "RolledBack"),
                          f"{last.get('message', '')}; fix the model and change spec.model, "
                          "or kubectl modelops retry", now, generation)
        else:
            set_condition(st, "Degraded", False, "Healthy", "", now, generation)
        if self.router.name == "gatewayAPI":
            ready = self.refusal or self.readiness()
            set_condition(st, "RouteReady", ready.ok, ready.reason, ready.message, now, generation)
        else:
            st["conditions"] = [c for c in st.get("conditions", []) if c["type"] != "RouteReady"]
        set_condition(st, "InvalidSpec", False, "Valid", "", now, generation)


def plan(meta: dict, raw_spec: dict, status: dict | None, observed: Observed, now: datetime,
         verdict: Verdict | None = None, config: OperatorConfig | None = None) -> Plan:
    """The next status and the objects that realise it. See the module docstring."""
    status = copy.deepcopy(status or {})
    generation = meta.get("generation")
    try:
        spec = parse(raw_spec)
    except SpecError as err:
        invalid = _invalid(status, err, now, generation)
        invalid.status["observedGeneration"] = generation
        return invalid

    pin = None
    if spec.source:
        pin = resolution.step(meta["name"], spec.version, spec.source, status, observed.resolvers, now, generation)
        resolver = resolver_pod(meta, spec.image, spec.source, pin.resolver,
                                {**common_labels(meta["name"], spec.model),
                                 "app.kubernetes.io/component": "model-resolver"}) if pin.resolver else None
        if pin.mismatch:
            invalid = _invalid(status, SpecError("spec.model.version", pin.mismatch), now, generation)
            invalid.status["observedGeneration"] = generation
            invalid.resolver, invalid.requeue_after = resolver, pin.wake
            return invalid
    else:
        for key in ("resolved", "resolution"):
            status.pop(key, None)
        status["conditions"] = [c for c in status.get("conditions", []) if c["type"] != "ModelResolved"]
    if pin is not None and pin.resolved:
        spec = spec.pinned(pin.resolved)

    rollout = _Rollout(meta, spec, status, observed, now, verdict, config or OperatorConfig())
    if pin is not None and not pin.resolved:
        # Nothing new runs before it is pinned; what runs stays as it is.
        rollout.hold()
    else:
        if pin is not None and pin.event and pin.event[0] == "ModelMoved":
            rollout.why_new = pin.event[1]
        rollout.run()
    if pin is not None and pin.event and rollout.transition is None:
        rollout.move(*pin.event)
    rollout.step_text()
    apply, scale, delete = rollout.objects()
    rollout.conditions(generation)
    status["observedGeneration"] = generation
    status["specHash"] = spec.revision
    if pin is not None and pin.wake is not None:
        rollout.wake_in(pin.wake)
    due = [d for d in rollout.due if d is not None]
    return Plan(status=status, apply=apply, scale=scale, delete=delete, transition=rollout.transition,
                analysis=rollout.analysis, requeue_after=min(due) if due else None,
                resolver=resolver if pin is not None else None)


def _invalid(status: dict, err: SpecError, now: datetime, generation) -> Plan:
    """An invalid spec changes nothing but the InvalidSpec condition."""
    previous = dict(condition(status, "InvalidSpec") or {})
    message = f"{err.field}: {err.problem}; nothing was changed"
    set_condition(status, "InvalidSpec", True, "InvalidSpec", message, now, generation)
    plan_ = Plan(status=status)
    if not previous or previous.get("status") != "True" or previous.get("message") != message:
        plan_.transition = record_transition(status, "InvalidSpec", message, True, now)
    return plan_
