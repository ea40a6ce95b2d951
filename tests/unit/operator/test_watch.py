"""kubectl modelops watch: redraws until the rollout ends, then summarises it and
writes the timeline, from status alone."""

import io
import struct

from modelops_operator.plugin import watch

from .sim import Sim, deployed, verdict
from .test_planner import CANARY, v2


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def drive(sim, judge):
    """Each look at the object lets the operator make one more pass."""
    def read():
        sim.reconcile(judge)
        return {"metadata": {**sim.meta}, "spec": sim.spec, "status": sim.status}
    return read


def test_watch_follows_a_rollback_to_its_end_and_writes_the_timeline(tmp_path):
    sim = Sim(CANARY).run(deployed)
    v2(sim)
    clock = Clock()
    out = io.StringIO()
    png = tmp_path / "timeline.png"
    looks = []

    def sleep(seconds):
        clock.t += seconds
        looks.append(clock.t)

    judge = lambda request: verdict("Pass") if request.step == 0 else verdict("Fail", "drift.share = 0.5")
    assert watch(drive(sim, judge), 2.0, str(png), out=out, clock=clock, sleep=sleep) == 0
    text = out.getvalue()
    assert sim.phase() == "RolledBack"
    assert "Phase:       RolledBack" in text
    assert "decision: AnalysisFailed" in text  # the summary names the decision
    assert "candidate weight 0%" in text
    with open(png, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", head[16:24])
    assert width > 500 and height > 300


def test_watch_without_a_terminal_prints_only_changes():
    sim = Sim(CANARY).run(deployed)
    out = io.StringIO()
    calls = []

    def read():
        calls.append(1)
        return {"metadata": {**sim.meta}, "spec": sim.spec, "status": sim.status}

    watch(read, 1.0, None, out=out, clock=lambda: 0.0, sleep=lambda s: None)
    assert len(calls) == 1  # already finished: one look, no loop
    assert out.getvalue().count("Phase:") == 1
