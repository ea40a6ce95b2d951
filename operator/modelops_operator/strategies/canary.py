"""Canary: stepped traffic weights, each step held for a pause or a person and analysed."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from ..routers import Traffic
from ..spec import Spec
from ..status import parse_ts, ts
from .base import Stage, Strategy

if TYPE_CHECKING:
    from ..lifecycle import Rollout


class Canary(Strategy):
    name = "Canary"

    def step_count(self, spec: Spec) -> int:
        return len(spec.steps)

    def target(self, r: Rollout, now: Traffic) -> Traffic:
        steps = r.spec.steps
        step = steps[min(int(r.st.get("currentStep", 0)), len(steps) - 1)]
        return Traffic(now.stable, now.candidate, step.weight)

    def on_scaled(self, r: Rollout, target: Traffic) -> None:
        st, spec = r.st, r.spec
        step = spec.steps[int(st.get("currentStep", 0))]
        where = f"step {int(st['currentStep']) + 1}/{len(spec.steps)}"
        if step.manual:
            st["phase"] = "Paused"
            st["pausedReason"] = "ManualStep"
            r.set_stage("Paused")
            r.move("StepPaused", f"{where}: {st['weights']['candidate']}% on the candidate; "
                                 "waiting for a person to promote")
        elif step.pause:
            r.set_stage("Pausing")
            r.move("StepWeightSet", f"{where}: {st['weights']['candidate']}% on the candidate; "
                                    f"pausing {step.pause:g}s")
        else:
            r.begin_analysis(f"{where}: {st['weights']['candidate']}% on the candidate")

    def stages(self) -> dict[str, Stage]:
        return {"Pausing": self.pausing}

    @staticmethod
    def pausing(r: Rollout) -> None:
        st = r.st
        step = r.spec.steps[int(st.get("currentStep", 0))]
        left = (step.pause or 0) - r.since("stageStartedAt")
        if left > 0:
            # The drift evidence is read during the pause too: an alarm does not wait for
            # the step's analysis (run_gate reads it until nextAt, the pause's end).
            state = st.setdefault("analysis", {"runs": 0, "consecutiveFailures": 0, "consecutiveInconclusive": 0})
            state["nextAt"] = ts(parse_ts(st["stageStartedAt"]) + timedelta(seconds=step.pause))
            decision = r.run_gate()
            if decision is not None:
                r.on_gate_failure(decision)
            return
        r.set_stage("Analysing")
        st["analysis"]["nextAt"] = ts(r.now)
        r.move("PauseEnded", f"step {int(st['currentStep']) + 1}/{len(r.spec.steps)}: pause over; analysing")
