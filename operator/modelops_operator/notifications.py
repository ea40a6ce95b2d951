"""Notifications (spec.notifications): which transitions a webhook hears of, and what it
is sent. Pure; the notifier sends.

Every transition the planner records (one Event each) falls in at most one kind:
Started, Step, Paused, Promoted, RolledBack or Failed. A notification carries the
transition's sequence number, so a receiver can tell a lost one from a late one."""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("Started", "Step", "Paused", "Promoted", "RolledBack", "Failed")
FORMATS = ("JSON", "Slack")

_BY_REASON = {
    "RolloutStarted": "Started",
    "StepStarted": "Step", "StepWeightSet": "Step", "ShadowStarted": "Step", "ExperimentStarted": "Step",
    "Paused": "Paused", "StepPaused": "Paused", "AwaitingPromotion": "Paused",
    "Promoted": "Promoted",
}


class NotificationError(ValueError):
    def __init__(self, field_path: str, problem: str):
        super().__init__(f"{field_path}: {problem}")
        self.field, self.problem = field_path, problem


@dataclass(frozen=True)
class Webhook:
    name: str
    url: str
    format: str = "JSON"
    events: tuple[str, ...] = KINDS


def parse_notifications(raw) -> tuple[Webhook, ...]:
    """spec.notifications; NotificationError names the field at fault."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise NotificationError("spec.notifications", "must be a list")
    out, names = [], set()
    for i, n in enumerate(raw):
        path = f"spec.notifications[{i}]"
        if not isinstance(n, dict):
            raise NotificationError(path, "must be an object")
        name, url = n.get("name"), n.get("url")
        if not isinstance(name, str) or not name:
            raise NotificationError(f"{path}.name", "is required")
        if name in names:
            raise NotificationError(f"{path}.name", f"{name!r} is used by another notification")
        names.add(name)
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise NotificationError(f"{path}.url", "must be an http:// or https:// URL")
        fmt = n.get("format", "JSON")
        if fmt not in FORMATS:
            raise NotificationError(f"{path}.format", f"{fmt!r} is not one of {', '.join(FORMATS)}")
        events = n.get("events") or list(KINDS)
        if not isinstance(events, list) or any(k not in KINDS for k in events):
            raise NotificationError(f"{path}.events", f"each entry must be one of {', '.join(KINDS)}")
        out.append(Webhook(name, url, fmt, tuple(dict.fromkeys(events))))
    return tuple(out)


def kind_of(transition: dict, phase: str | None) -> str | None:
    """The kind of a recorded transition, given the phase it left the rollout in."""
    reason = transition.get("reason", "")
    if reason in _BY_REASON:
        return _BY_REASON[reason]
    if phase == "RolledBack":
        return "RolledBack"
    if transition.get("type") == "Warning":
        return "Failed"  # the spec, the model or the route keeps a rollout from going on
    return None


def payload(webhook: Webhook, kind: str, body: dict, transition: dict) -> dict:
    """What is POSTed: generic JSON, or a Slack incoming-webhook message."""
    meta, status = body["metadata"], body.get("status") or {}
    cand = status.get("candidate") or {}
    stable = status.get("stable") or {}
    doc = {
        "kind": kind,
        "modelDeployment": {"namespace": meta["namespace"], "name": meta["name"], "uid": meta.get("uid")},
        "seq": transition.get("seq"), "reason": transition.get("reason"), "type": transition.get("type"),
        "message": transition.get("message"), "time": transition.get("time"),
        "phase": status.get("phase"), "stage": status.get("stage"),
        "stable": {k: stable.get(k) for k in ("revision", "version")},
        "candidate": {k: cand.get(k) for k in ("revision", "version")} if cand else None,
        "weights": status.get("weights"),
    }
    if webhook.format == "JSON":
        return doc
    icon = {"RolledBack": ":rotating_light:", "Failed": ":x:", "Paused": ":double_vertical_bar:",
            "Promoted": ":white_check_mark:"}.get(kind, ":arrow_forward:")
    title = f"{icon} {meta['namespace']}/{meta['name']}: {kind}"
    return {"text": f"{title}: {transition.get('message', '')}",
            "blocks": [{"type": "section", "text": {"type": "mrkdwn",
                                                    "text": f"*{title}* ({transition.get('reason')})\n"
                                                            f"{transition.get('message', '')}"}}]}
