"""ABTest: sessions split between the control and the candidate (by weight, or by a
request match) until the experiment decides which converts better."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import TYPE_CHECKING

from ..analysis import Decision, Result
from ..analysis.abtest import NO_DIFFERENCE
from ..routers import Traffic
from ..spec import Spec
from ..status import ts
from .base import Stage, Strategy

if TYPE_CHECKING:
    from ..lifecycle import Rollout


class ABTest(Strategy):
    name = "ABTest"

    def target(self, r: Rollout, now: Traffic) -> Traffic:
        return Traffic(now.stable, now.candidate, 0, 0, True)

    def experiment(self, stage: str | None) -> bool:
        return stage == "Experimenting"

    def experiment_settings(self, spec: Spec) -> dict:
        return spec.ab_test

    def on_scaled(self, r: Rollout, target: Traffic) -> None:
        st = r.st
        r.set_stage("Experimenting")
        st["analysis"]["nextAt"] = ts(r.now + timedelta(seconds=r.spec.analysis.interval))
        r.move("ExperimentStarted", f"A/B test running: {st['weights']['candidate']}% of sessions "
                                    "on the candidate" if st["weights"]["candidate"] else
               "A/B test running: matching requests go to the candidate")

    def stages(self) -> dict[str, Stage]:
        return {"Experimenting": self.experimenting}

    def experimenting(self, r: Rollout) -> None:
        """Health checks still roll back; until the test has its sample size the
        verdict is Inconclusive, which here only means: keep collecting."""
        deadline = r.spec.ab_deadline
        decision = r.run_gate()
        if decision is None:
            return
        verdict = r.verdict
        if verdict.experiment:
            r.st["abTest"] = copy.deepcopy(verdict.experiment)
        if verdict.result is Result.FAIL:
            if decision is Decision.ROLLBACK:
                r.rollback("AnalysisFailed", verdict.message)
            return
        winner = verdict.winner
        if winner == "candidate":
            r.set_stage("Promoting")
            r.move("ExperimentDecided", f"the candidate converts better: {verdict.message}; promoting it")
        elif winner == "control":
            r.finish("RolledBack", "ControlKept", f"the control converts better: {verdict.message}",
                     "RolledBack", block=True)
        elif winner == NO_DIFFERENCE:
            r.finish("RolledBack", "ControlKept", verdict.message, "RolledBack", block=True)
        elif r.since("stageStartedAt") >= deadline:
            r.finish("RolledBack", "ControlKept", "no significant difference by spec.strategy.abTest.decision."
                                                  "maxDuration; keeping the control", "RolledBack", block=True)

    def promote_now(self, r: Rollout, stage: str) -> None:
        if stage == "Experimenting":
            r.set_stage("Promoting")
            r.move("Promoting", "promoted by a person; promoting the candidate")
        else:
            self.advance(r, "promoted by a person")
