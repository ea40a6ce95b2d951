"""Where a person reads how close a rollout is to a drift alarm: `kubectl modelops
status` and the timeline, both from the checks' progress in status."""

from modelops_operator.analysis.base import CheckResult, Result
from modelops_operator.plugin import render_status
from modelops_operator.timeline import Timeline


def md(progress: list[str], time: str) -> dict:
    checks = [CheckResult("drift.share", Result.PASS, 0.0, "<= 0.3", 400, "0 of 10 features drifted",
                          float(p.rstrip("%")) / 100).to_status() for p in progress]
    return {"metadata": {"name": "churn", "namespace": "ml"},
            "spec": {"model": {"name": "churn", "version": "1.0.0", "image": "reg/model:0.1"},
                     "strategy": {"type": "Canary"}},
            "status": {"phase": "Progressing", "weights": {"stable": 80, "candidate": 20, "mirror": 0},
                       "lastVerdict": {"result": "Pass", "reason": "AllChecksPassed", "message": "1 checks passed",
                                       "time": time, "checks": checks}}}


def test_status_shows_the_evidence_against_its_threshold():
    text = render_status(md(["73%"], "2026-12-02T10:00:00Z"))
    assert "drift.share = 0 (want <= 0.3) [73% of the way to an alarm]" in text


def test_the_timeline_records_the_evidence_of_each_analysis():
    tl = Timeline()
    tl.add(md(["12%"], "2026-12-02T10:00:00Z"), 0.0)
    tl.add(md(["12%"], "2026-12-02T10:00:00Z"), 5.0)  # the same verdict, seen again
    tl.add(md(["73%"], "2026-12-02T10:00:30Z"), 30.0)
    assert tl.progress["drift.share"] == [(0.0, 0.12), (30.0, 0.73)]
    assert "evidence towards an alarm at the last analysis: drift.share 73%" in tl.summary()
