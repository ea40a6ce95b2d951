"""A rollout's timeline, recorded from the ModelDeployment's status while it runs:
the weights, the numbers each analysis measured, and every transition. Rendered as
a PNG (weights and drift over time, decisions marked) and as a short summary.

Only status is read, so the timeline shows what the operator saw and decided."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

TERMINAL = ("Succeeded", "RolledBack", "Failed")
DECISIONS = {"Promoted", "ExperimentDecided", "AnalysisFailed", "AnalysisInconclusive", "Aborted", "ProgressDeadlineExceeded",
             "WinnerPromoted", "ControlKept", "Paused"}


@dataclass(frozen=True)
class Event:
    seconds: float
    reason: str
    message: str
    warning: bool


@dataclass
class Timeline:
    """Samples of one ModelDeployment; `seconds` count from the first sample."""

    name: str = ""
    start: float | None = None
    seconds: list[float] = field(default_factory=list)
    candidate_weight: list[int] = field(default_factory=list)
    phases: list[str] = field(default_factory=list)
    checks: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # name -> (t, value) per verdict
    events: list[Event] = field(default_factory=list)
    limits: dict[str, float] = field(default_factory=dict)  # check name -> upper bound it is held to
    # Sequential checks: name -> (t, evidence so far over what an alarm needs) per verdict.
    progress: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    _seen_verdict: str | None = None
    _seen_seq: int = 0

    def add(self, md: dict, now: float) -> None:
        """Records one look at the object; `now` is seconds on any monotonic clock."""
        if self.start is None:
            self.start = now
            self.name = md["metadata"]["name"]
            self._seen_seq = int(((md.get("status") or {}).get("transition") or {}).get("seq", 0))
        t = now - self.start
        st = md.get("status") or {}
        self.seconds.append(t)
        self.candidate_weight.append(int((st.get("weights") or {}).get("candidate", 0)))
        self.phases.append(st.get("phase", "Pending"))
        verdict = st.get("lastVerdict") or {}
        if verdict.get("time") and verdict.get("time") != self._seen_verdict:
            self._seen_verdict = verdict["time"]
            for check in verdict.get("checks", []):
                share = _percent(check.get("progress"))
                if share is not None:
                    self.progress.setdefault(check["name"], []).append((t, share))
                try:
                    value = float(check["value"])
                except (KeyError, TypeError, ValueError):
                    continue
                self.checks.setdefault(check["name"], []).append((t, value))
                bound = re.fullmatch(r"(?:<=?|in \[[^,]+,)\s*([-+0-9.eE]+)\]?", check.get("threshold", "").strip())
                if bound:
                    self.limits[check["name"]] = float(bound.group(1))
        transition = st.get("transition") or {}
        if int(transition.get("seq", 0)) > self._seen_seq:
            self._seen_seq = int(transition["seq"])
            self.events.append(Event(t, transition.get("reason", ""), transition.get("message", ""),
                                     transition.get("type") == "Warning"))

    @property
    def decision(self) -> Event | None:
        return next((e for e in reversed(self.events) if e.reason in DECISIONS), None)

    def summary(self) -> str:
        if not self.seconds:
            return "no samples"
        lines = [f"{self.name}: {self.phases[-1]} after {self.seconds[-1]:.0f}s; "
                 f"peak candidate weight {max(self.candidate_weight)}%"]
        for e in self.events:
            lines.append(f"  {e.seconds:6.1f}s  {e.reason}: {e.message}")
        decision = self.decision
        if decision:
            back = next((t for t, w in zip(self.seconds, self.candidate_weight) if t >= decision.seconds and w == 0),
                        None)
            lines.append(f"decision: {decision.reason} at {decision.seconds:.1f}s"
                         + (f"; candidate weight 0% at {back:.1f}s" if back is not None else ""))
        if self.progress:
            last = ", ".join(f"{name} {points[-1][1]:.0%}" for name, points in sorted(self.progress.items()))
            lines.append(f"evidence towards an alarm at the last analysis: {last}")
        return "\n".join(lines)

    def render_png(self, path: str, drift_prefix: str = "drift.") -> None:
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            raise SystemExit("the timeline needs matplotlib: pip install 'modelops[demo]'") from None
        fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(10, 6), height_ratios=(1, 1.2))
        top.step(self.seconds, self.candidate_weight, where="post", color="tab:blue", label="candidate weight")
        top.set_ylabel("candidate traffic %")
        top.set_ylim(-5, 105)
        top.set_title(f"{self.name}: rollout timeline")
        plotted = False
        if self.progress:
            # Sequential evidence: how far each drift check is from an alarm (100%).
            for name, points in sorted(self.progress.items()):
                if name.startswith(drift_prefix):
                    xs, ys = zip(*points)
                    bottom.plot(xs, [100 * y for y in ys], marker="o", markersize=3, label=name)
                    plotted = True
            bottom.axhline(100, color="tab:red", linestyle=":", linewidth=1)
            bottom.set_ylabel("evidence towards an alarm %")
        else:
            for name, points in sorted(self.checks.items()):
                if not name.startswith(drift_prefix):
                    continue
                xs, ys = zip(*points)
                line, = bottom.plot(xs, ys, marker="o", markersize=3, label=name)
                if name in self.limits:
                    bottom.axhline(self.limits[name], color=line.get_color(), linestyle=":", linewidth=1)
                plotted = True
            bottom.set_ylabel("drift (per analysis)")
        bottom.set_xlabel("seconds since the rollout was watched")
        for ax in (top, bottom):
            for e in self.events:
                style = dict(color="tab:red" if e.warning else "tab:green", alpha=0.35 if e.reason not in DECISIONS
                             else 0.9, linestyle="--" if e.reason not in DECISIONS else "-")
                ax.axvline(e.seconds, **style)
        decision = self.decision
        if decision:
            top.annotate(decision.reason, (decision.seconds, 100), xytext=(5, -15), textcoords="offset points",
                         color="tab:red" if decision.warning else "tab:green", fontweight="bold")
        top.legend(loc="upper left")
        if plotted:
            bottom.legend(loc="upper left", fontsize="small")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)


def _percent(text) -> float | None:
    """'73%' -> 0.73; None for anything else."""
    match = re.fullmatch(r"([0-9.]+)%", str(text or "").strip())
    return float(match.group(1)) / 100 if match else None


def finished(md: dict) -> bool:
    """The latest spec is seen, no rollout is in flight, and the phase is final."""
    st = md.get("status") or {}
    return (st.get("phase") in TERMINAL and not st.get("candidate")
            and st.get("observedGeneration") == md["metadata"].get("generation"))

