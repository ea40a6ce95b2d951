"""BlueGreen: the candidate runs at full size as a preview, is analysed, and the active
Service switches to it at once (by itself or by a person)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..routers import Traffic
from .base import Strategy

if TYPE_CHECKING:
    from ..lifecycle import Rollout


class BlueGreen(Strategy):
    name = "BlueGreen"

    def target(self, r: Rollout, now: Traffic) -> Traffic:
        return Traffic(now.stable, now.candidate, 0)  # the preview takes no live traffic

    def on_scaled(self, r: Rollout, target: Traffic) -> None:
        if r.spec.blue_green.get("prePromotionAnalysis", True):
            r.begin_analysis("preview is ready; pre-promotion analysis")
        else:
            self.after_gate(r, "preview is ready")

    def analysis_passed(self, r: Rollout) -> None:
        self.after_gate(r, "pre-promotion analysis passed")

    def after_gate(self, r: Rollout, why: str) -> None:
        if r.spec.blue_green.get("autoPromote", True):
            r.st["phase"] = "Progressing"
            r.set_stage("Promoting")
            r.move("Promoting", f"{why}; switching the active Service")
        else:
            r.st["phase"] = "Paused"
            r.st["pausedReason"] = "AwaitingPromotion"
            r.set_stage("Paused")
            r.move("AwaitingPromotion", f"{why}; waiting for a person to promote")

    def advance(self, r: Rollout, why: str) -> None:
        r.st["phase"] = "Progressing"
        r.st.pop("pausedReason", None)
        r.set_stage("Promoting")
        r.move("Promoting", f"{why}; switching the active Service")

    def promote_paused(self, r: Rollout) -> None:
        self.advance(r, "promoted by a person")  # nothing is analysed after the switch
