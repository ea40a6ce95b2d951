"""Shadow: the candidate gets a mirrored share of live traffic whose answers nobody
sees; after shadow.duration of passing analyses it is promoted, at once or through the
canary steps (shadow.promotion: Canary)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from ..analysis import Decision
from ..routers import Traffic
from ..status import ts
from .base import Stage, Strategy
from .canary import Canary

if TYPE_CHECKING:
    from ..lifecycle import Rollout

_CANARY = Canary()


def _stepping(r: Rollout) -> bool:
    """Past the shadow, promoting through the canary steps."""
    return bool(r.st.get("stepCount"))


class Shadow(Strategy):
    name = "Shadow"

    def target(self, r: Rollout, now: Traffic) -> Traffic:
        if _stepping(r):
            return _CANARY.target(r, now)
        return Traffic(now.stable, now.candidate, 0, int(r.spec.shadow["mirrorPercent"]))

    def on_scaled(self, r: Rollout, target: Traffic) -> None:
        if _stepping(r):
            _CANARY.on_scaled(r, target)
            return
        r.set_stage("Shadowing")
        r.st["analysis"]["nextAt"] = ts(r.now + timedelta(seconds=r.spec.analysis.interval))
        r.move("ShadowStarted", f"mirroring {target.mirror}% of live traffic to the candidate")

    def stages(self) -> dict[str, Stage]:
        return {"Shadowing": self.shadowing, "Pausing": _CANARY.pausing}

    def shadowing(self, r: Rollout) -> None:
        decision = r.run_gate()
        if decision is None:
            return
        if decision is not Decision.ADVANCE:
            r.on_gate_failure(decision)
            return
        if r.since("stageStartedAt") < r.spec.shadow_duration:
            return
        self.end_shadow(r, "shadow analysis passed")

    def end_shadow(self, r: Rollout, why: str) -> None:
        st, spec = r.st, r.spec
        st["weights"]["mirror"] = 0
        if spec.shadow.get("promotion") == "Canary":
            st["currentStep"] = 0
            st["stepCount"] = len(spec.steps)
            r.set_stage("Scaling")
            r.move("StepStarted", f"{why}; canary step 1/{len(spec.steps)}: {spec.steps[0].weight}% to the candidate")
        else:
            r.set_stage("Promoting")
            r.move("Promoting", f"{why}; promoting the candidate to 100%")

    def promote_now(self, r: Rollout, stage: str) -> None:
        if stage == "Shadowing":
            self.end_shadow(r, "promoted by a person")
        else:
            self.advance(r, "promoted by a person")
