"""The strategy interface: what differs between Canary, BlueGreen, Shadow and ABTest.

The shared lifecycle (lifecycle.Rollout: start, gates, finish, rollback, history,
conditions) calls these at the few points where strategies differ; everything a
strategy does goes through the rollout it is given, so strategies hold no state."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from ..routers import Traffic
from ..spec import Spec

if TYPE_CHECKING:
    from ..lifecycle import Rollout

Stage = Callable[["Rollout"], None]


class Strategy:
    name = ""

    def step_count(self, spec: Spec) -> int:
        """Weighted steps a rollout starts with (status.stepCount)."""
        return 0

    def target(self, r: Rollout, now: Traffic) -> Traffic:
        """The traffic the current stage aims at, before promotion (a candidate exists)."""
        raise NotImplementedError

    def experiment(self, stage: str | None) -> bool:
        """Whether the candidate's traffic is an experiment's split in this stage."""
        return False

    def experiment_settings(self, spec: Spec) -> dict:
        """What the analysis needs to judge an experiment (spec.strategy.abTest)."""
        return {}

    def on_scaled(self, r: Rollout, target: Traffic) -> None:
        """The Scaling stage reached its target: what runs next."""
        raise NotImplementedError

    def stages(self) -> dict[str, Stage]:
        """Stages of this strategy's own, by name; the shared ones are the lifecycle's."""
        return {}

    def analysis_passed(self, r: Rollout) -> None:
        """A step's analysis passed."""
        self.advance(r, f"step {int(r.st.get('currentStep', 0)) + 1} analysis passed")

    def advance(self, r: Rollout, why: str) -> None:
        """On to the next weighted step, or to promotion after the last one."""
        st, spec = r.st, r.spec
        st["phase"] = "Progressing"
        st.pop("pausedReason", None)
        i = int(st.get("currentStep", 0)) + 1
        if i < int(st.get("stepCount") or 0):
            st["currentStep"] = i
            r.set_stage("Scaling")
            r.move("StepStarted", f"{why}; step {i + 1}/{st['stepCount']}: {spec.steps[i].weight}% to the candidate")
        else:
            r.set_stage("Promoting")
            r.move("Promoting", f"{why}; promoting the candidate to 100%")

    def promote_now(self, r: Rollout, stage: str) -> None:
        """A person's promote while the rollout runs (not paused, not promoting)."""
        self.advance(r, "promoted by a person")

    def promote_paused(self, r: Rollout) -> None:
        """A person's promote while the rollout is paused."""
        r.st["analysis"].update(consecutiveInconclusive=0, consecutiveFailures=0)
        self.advance(r, "promoted by a person")
