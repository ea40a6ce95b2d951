"""The rollout lifecycle every strategy shares: start, the stages every strategy
passes through (Scaling, Analysing, Promoting, Paused), gates, finish, rollback,
history, the desired objects and the conditions. What differs between strategies is in
strategies/, one file each."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta

from . import autoscaling
from .analysis import AnalysisRequest, Decision, Result, Verdict, drift_alarm, gate
from .children import model_deployment, profile_configmap
from . import hooks as hook_gate
from .model_source import model_summary
from .naming import CANDIDATE, STABLE
from .observed import Observed, RevisionState
from .routers import Traffic, router_for
from .routers.base import Capacity, candidate_share
from .routers.gateway_readiness import Readiness, missing_features, route_readiness
from .spec import Spec
from .status import add_history, condition, parse_ts, set_condition, ts
from .strategies import strategy_for

COMMANDS = ("promote", "abort", "retry")
ANNOTATION = "modelops.io/{}"
WAIT_FOR_PODS = 2.0  # seconds between looks while pods start; child events also wake us
WAIT_FOR_ROUTE = 1.0  # seconds between looks while a gateway takes up a route; route events also wake us


@dataclass(frozen=True)
class Transition:
    reason: str
    message: str
    warning: bool = False


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


class Rollout:
    """One planning pass; `st` is the status being built. The lifecycle every strategy
    shares lives here; what differs is asked of `self.strategy`."""

    def __init__(self, meta, spec: Spec, status, observed: Observed, now, verdict, config):
        self.meta, self.spec, self.observed, self.now, self.verdict = meta, spec, observed, now, verdict
        self.config = config
        self.st = status
        self.router = router_for(spec)
        self.strategy = strategy_for(spec)
        self.transition: Transition | None = None
        self.analysis: AnalysisRequest | None = None
        self.due: list[float] = []
        self.commands = pending_commands(meta.get("annotations") or {}, status)
        self.desired: dict[str, int] = {}  # revision -> replicas the plan gives it
        self.refusal: Readiness | None = None  # why the new revision's rollout was not started
        self.why_new = "spec.model changed"  # what starts a rollout of a new revision
        self.unscaled: list[str] = []  # HPAs that exist and must not (autoscaling.py)
        self.hook_calls: list[dict] = []  # HTTP hooks that must be running (the controller calls them)
        self.hook_jobs: list[dict] = []  # Jobs that Job hooks run
        self.waiting_for: list[str] = []  # hooks a stage change now waits on

    # --- bookkeeping ---------------------------------------------------------------
    def move(self, reason: str, message: str, warning: bool = False) -> None:
        assert self.transition is None, "one transition per plan"
        if self.waiting_for:
            message += f"; first waiting for hook{'s' if len(self.waiting_for) > 1 else ''} " \
                       f"{', '.join(self.waiting_for)}"
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

    def set_stage(self, stage: str, points: tuple[str, ...] | None = None) -> None:
        """Enters a stage, unless hooks must pass first: a weighted step's Scaling runs
        BeforeStep hooks, Promoting runs BeforePromotion ones (`points` overrides)."""
        if points is None:
            stepped = stage == "Scaling" and int(self.st.get("stepCount") or 0) > 0
            points = ("BeforeStep",) if stepped else ("BeforePromotion",) if stage == "Promoting" else ()
        gate = [h for h in self.spec.hooks if h.at in points]
        if gate:
            self.enter_hooks(stage, gate)
            return
        self.st["stage"] = stage
        self.st["stageStartedAt"] = ts(self.now)

    # --- hooks ---------------------------------------------------------------------
    def add_hook_runs(self, hooks, step: int, revision: str) -> list[str]:
        """Records a run of each hook for this rollout (its start and candidate) and
        step; returns their ids."""
        records = self.st.setdefault("hooks", [])
        known = {r["id"] for r in records}
        rollout = f"{self.st.get('rolloutStartedAt')}|{revision}"
        ids = []
        for h in hooks:
            hid = hook_gate.run_id(rollout, h.at, step, h.name)
            ids.append(hid)
            if hid not in known:
                records.append({"id": hid, "name": h.name, "at": h.at, "step": step, "kind": h.kind,
                                "phase": hook_gate.RUNNING, "message": "", "startedAt": ts(self.now)})
        return ids

    def enter_hooks(self, then: str, gate) -> None:
        step = int(self.st.get("currentStep", 0))
        ids = self.add_hook_runs(gate, step, self.st["candidate"]["revision"])
        self.st["stage"] = "Hooks"
        self.st["stageStartedAt"] = ts(self.now)
        self.st["hookGate"] = {"then": then, "ids": ids}
        self.waiting_for = [h.name for h in gate]

    def update_hooks(self) -> None:
        """Brings every unfinished run's record up to date from what the controller saw,
        and fails those past their deadline."""
        by_name = {h.name: h for h in self.spec.hooks}
        for rec in self.st.get("hooks") or []:
            if rec["phase"] in hook_gate.FINISHED:
                continue
            hook = by_name.get(rec["name"])
            result = self.observed.hook_results.get(rec["id"])
            if hook is None:
                result = (hook_gate.FAILED, "the hook was removed from spec.hooks")
            elif (result is None or result[0] == hook_gate.PENDING) and \
                    (self.now - parse_ts(rec["startedAt"])).total_seconds() > hook.deadline:
                result = (hook_gate.FAILED, f"no result within its deadline of {hook.deadline:g}s")
            if result is None:
                continue
            rec["message"] = result[1][:512]
            if result[0] in hook_gate.FINISHED:
                rec.update(phase=result[0], finishedAt=ts(self.now))

    def pending_hooks(self) -> None:
        """What must still run: the Job or the call of every unfinished run."""
        by_name = {h.name: h for h in self.spec.hooks}
        cand = self.st.get("candidate") or {}
        stable = self.st.get("stable") or {}
        for rec in self.st.get("hooks") or []:
            hook = by_name.get(rec["name"])
            if rec["phase"] in hook_gate.FINISHED or hook is None:
                continue
            context = {"namespace": self.meta["namespace"], "name": self.meta["name"], "hook": rec["name"],
                       "at": rec["at"], "id": rec["id"], "step": rec["step"],
                       "stable_revision": stable.get("revision", ""), "stable_version": stable.get("version", ""),
                       "candidate_revision": rec.get("revision") or cand.get("revision", ""),
                       "candidate_version": rec.get("version") or cand.get("version", ""),
                       "candidate_weight": (self.st.get("weights") or {}).get("candidate", 0)}
            if rec.get("outcome"):
                context["outcome"] = rec["outcome"]
            if hook.kind == "job":
                self.hook_jobs.append(hook_gate.job_object(self.meta, self.spec.model, hook, rec["id"], context))
            else:
                self.hook_calls.append({"id": rec["id"], "hook": hook, "context": context})
            self.wake_in(hook_gate.POLL_SECONDS)

    def hooks(self) -> None:
        """The Hooks stage: the gate's hooks decide whether the stage after it begins."""
        gate = self.st.get("hookGate") or {}
        records = {r["id"]: r for r in self.st.get("hooks") or []}
        runs = [records[i] for i in gate.get("ids", []) if i in records]
        failed = [r for r in runs if r["phase"] == hook_gate.FAILED]
        if failed:
            r = failed[0]
            self.rollback("HookFailed", f"hook {r['name']} ({r['at']}) failed: {r['message']}")
            return
        if all(r["phase"] == hook_gate.SUCCEEDED for r in runs):
            self.pass_hooks(f"hook{'s' if len(runs) > 1 else ''} {', '.join(r['name'] for r in runs)} passed")

    def pass_hooks(self, why: str) -> None:
        gate = self.st.pop("hookGate", {})
        then = gate.get("then", "Scaling")
        for rec in self.st.get("hooks") or []:
            if rec["id"] in gate.get("ids", []) and rec["phase"] not in hook_gate.FINISHED:
                rec.update(phase=hook_gate.SKIPPED, message=why, finishedAt=ts(self.now))
        self.set_stage(then, points=())
        step = f"step {int(self.st.get('currentStep', 0)) + 1}/{self.st['stepCount']}" \
            if then == "Scaling" and self.st.get("stepCount") else then.lower()
        self.move("HooksPassed", f"{why}; going on to {step}")

    def report_after_hooks(self) -> None:
        """AfterRollout hooks gate nothing; a failed one is told once, as a warning."""
        for rec in self.st.get("hooks") or []:
            if rec["at"] == "AfterRollout" and rec["phase"] == hook_gate.FAILED and not rec.get("reported") \
                    and self.transition is None:
                rec["reported"] = True
                self.move("HookFailed", f"hook {rec['name']} (AfterRollout) failed: {rec['message']}", warning=True)

    def traffic(self) -> Traffic:
        st = self.st
        stable = (st.get("stable") or {}).get("revision")
        cand = (st.get("candidate") or {}).get("revision")
        weights = st.get("weights") or {}
        experiment = bool(cand) and self.strategy.experiment(st.get("stage"))
        return Traffic(stable, cand, int(weights.get("candidate", 0)), int(weights.get("mirror", 0)), experiment)

    def target(self) -> Traffic:
        """The traffic the current stage aims at (status.weights is what is in effect)."""
        now = self.traffic()
        stage = self.st.get("stage")
        if not now.candidate:
            return now
        if stage == "Promoting":
            return Traffic(now.stable, now.candidate, 100)
        if stage == "Hooks":
            return now  # nothing moves while hooks decide
        return self.strategy.target(self, now)

    def set_weights(self, traffic: Traffic) -> None:
        """Records the traffic in effect: for replica ratios, the share the replica
        counts really give, not the step's nominal weight."""
        weight = traffic.weight
        if self.router.name == "replicas" and traffic.candidate and self.spec.autoscaling:
            sized = self.sized(traffic)
            weight = autoscaling.share(sized.stable, sized.candidate)
        elif self.router.name == "replicas" and traffic.candidate:
            weight = round(100 * candidate_share(self.spec.replicas, weight) / self.spec.replicas)
        if traffic.experiment:
            ab = self.spec.ab_test
            weight = int(ab["split"]["candidateWeight"]) if "split" in ab else 0
        self.st["weights"] = {"stable": 100 - weight, "candidate": weight, "mirror": traffic.mirror}

    def sized(self, target: Traffic) -> autoscaling.Sizes:
        """The tracks' sizes under spec.autoscaling (see autoscaling.py)."""
        spec = self.spec
        base = self.router.capacity(spec, target, self.observed.ready(target.candidate))
        return autoscaling.sizes(spec.autoscaling, self.router.name, spec.replicas, bool(target.candidate),
                                 target.weight, self.observed.replicas(target.stable),
                                 self.observed.replicas(target.candidate), base.candidate)

    def reached(self, target: Traffic) -> bool:
        """Whether the target's replicas are ready; autoscaled, the stable is never
        shrunk, so only the candidate's ready pods count."""
        if self.spec.autoscaling:
            return self.observed.ready(target.candidate) >= self.sized(target).candidate
        return self.router.reached(self.spec, target, self.observed.replicas(target.stable),
                                   self.observed.ready(target.candidate))

    def serving_floor(self) -> int:
        """Ready pods that make the stable fully available: spec.replicas, or, when
        autoscaled, the size its HPA keeps it at."""
        if not self.spec.autoscaling:
            return self.spec.replicas
        stable = (self.st.get("stable") or {}).get("revision")
        return self.observed.replicas(stable) or self.spec.autoscaling.clamp(self.spec.replicas)

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
        st["stepCount"] = self.strategy.step_count(spec)
        st["analysis"] = {"runs": 0, "consecutiveFailures": 0, "consecutiveInconclusive": 0}
        st.pop("lastVerdict", None)
        st.pop("abTest", None)
        st.pop("failedChecks", None)
        st.pop("hooks", None)
        st.pop("hookGate", None)
        self.set_stage("Scaling", ("BeforeRollout", "BeforeStep") if st["stepCount"] else ("BeforeRollout",))
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
        st.pop("hookGate", None)
        after = [h for h in self.spec.hooks if h.at == "AfterRollout"]
        if after and outcome != "Superseded":
            for rec_id in self.add_hook_runs(after, 0, cand["revision"]):
                rec = next(r for r in st["hooks"] if r["id"] == rec_id)
                rec.update(revision=cand["revision"], version=cand.get("version", ""), outcome=outcome)
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
                ab_test=self.strategy.experiment_settings(self.spec), watch=watch)
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
        spec = self.spec
        target = self.target()
        cand = target.candidate
        if not self.reached(target):
            if self.since("stageStartedAt") > spec.progress_deadline:
                self.rollback("ProgressDeadlineExceeded",
                              f"{self.observed.ready(cand)} candidate pods ready after "
                              f"{int(self.since('stageStartedAt'))}s, more than spec.progressDeadline")
            else:
                self.wake_in(min(WAIT_FOR_PODS, spec.progress_deadline))
            return
        self.set_weights(target)
        self.strategy.on_scaled(self, target)

    def begin_analysis(self, message: str) -> None:
        self.set_stage("Analysing")
        # Measure the new traffic split for a whole interval before judging it.
        self.st["analysis"]["nextAt"] = ts(self.now + timedelta(seconds=self.spec.analysis.interval))
        self.wake_in(self.spec.analysis.interval)
        self.move("StepWeightSet", f"{message}; analysing every {self.spec.analysis.interval:g}s")

    def analysing(self) -> None:
        decision = self.run_gate()
        if decision is None:
            return
        if decision is Decision.ADVANCE:
            self.strategy.analysis_passed(self)
            return
        self.on_gate_failure(decision)

    def promoting(self) -> None:
        target = self.target()
        if not self.reached(target):
            if self.since("stageStartedAt") > self.spec.progress_deadline:
                self.rollback("ProgressDeadlineExceeded", "the candidate did not reach full size in time")
            else:
                self.wake_in(WAIT_FOR_PODS)
            return
        # Where a route or a Service selector carries the weights, traffic moves before
        # the rollout is called done: the switch is recorded and applied in one pass, and
        # Succeeded follows in a later one, once it is in effect (through a gateway, once
        # every parent serves it: route_held), so Succeeded never names a version the
        # Services do not yet send every request to. (Replica ratios switch by retiring
        # the stable's pods, which promote_done does.)
        if self.router.name != "replicas" and self.traffic().weight < 100:
            self.set_weights(target)
            self.wake_in(0.0)
            return
        if not self.observed.in_effect:
            self.wake_in(0.0)
            return
        self.promote_done()

    def paused(self) -> None:
        if "promote" in self.commands:
            self.handled("promote")
            self.strategy.promote_paused(self)

    # --- the pass ------------------------------------------------------------------
    def hold(self) -> None:
        """The spec's model is not pinned yet: no transition, and the objects keep what
        runs (objects() applies no Deployment for an unknown revision)."""
        self.spec = dataclasses.replace(self.spec, revision="")
        if not self.st.get("stable"):
            self.st["phase"] = "Pending"

    def run(self) -> None:
        self.update_hooks()
        self.run_stage()
        self.report_after_hooks()
        self.pending_hooks()

    def run_stage(self) -> None:
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
            if "promote" in self.commands and stage == "Hooks":
                self.handled("promote")
                self.pass_hooks("promoted by a person: hooks skipped")
                return
            if "promote" in self.commands and stage not in ("Paused", "Promoting"):
                self.handled("promote")
                self.strategy.promote_now(self, stage)
                return
            handler = self.strategy.stages().get(stage)
            if handler is not None:
                handler(self)
            else:
                getattr(self, stage.lower())()
            return

        # No rollout in flight.
        if rev == stable["revision"]:
            floor = self.serving_floor()
            if st.get("phase") != "Succeeded" and self.observed.ready(rev) >= floor:
                first = st.get("phase") == "Progressing"
                st["phase"] = "Succeeded"
                st.pop("blockedRevision", None)
                self.move("Available" if first else "Stable",
                          f"{spec.version} ({rev}) serving with {floor} replicas")
            elif self.observed.ready(rev) < floor:
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
        sized = self.sized(target) if spec.autoscaling else None
        if sized is not None:
            capacity = Capacity(sized.stable, sized.candidate)
            if self.router.name == "replicas" and traffic.candidate and st.get("stage") not in ("Scaling", "Hooks"):
                # The share the candidate holds as the stable's HPA scales it.
                share = autoscaling.share(sized.stable, sized.candidate)
                st["weights"] = {**st.get("weights", {}), "stable": 100 - share, "candidate": share}
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
        apply.extend(self.hook_jobs)
        hpas = []
        if sized is not None:
            tracks = [(track, rev, (st.get(track) or {}).get("version") or spec.version)
                      for track, rev in ((STABLE, stable_rev), (CANDIDATE, cand_rev)) if rev]
            hpas = autoscaling.autoscalers(self.meta, spec.model["name"], spec.autoscaling, tracks, sized)
            apply.extend(hpas)
        wanted = {h["metadata"]["name"] for h in hpas}
        self.unscaled = sorted(n for n in self.observed.autoscalers if n not in wanted)

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
        st, now = self.st, self.now
        stable_rev = (st.get("stable") or {}).get("revision")
        cand_rev = (st.get("candidate") or {}).get("revision")
        ready = self.observed.ready(stable_rev) + self.observed.ready(cand_rev)
        for key, rev in (("stable", stable_rev), ("candidate", cand_rev)):
            if rev and key in st:
                # What the plan asks for, not what the watch last saw: known at once,
                # so a new Deployment does not cost a second status write.
                st[key]["replicas"] = self.desired.get(rev, self.observed.replicas(rev))
                st[key]["readyReplicas"] = self.observed.ready(rev)
        floor = self.serving_floor()
        set_condition(st, "Available", ready >= floor,
                      "MinimumReplicasAvailable" if ready >= floor else "ReplicasUnavailable",
                      f"{ready} of {floor} replicas ready", now, generation)
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
