"""Status helpers: timestamps, conditions and history entries."""

from __future__ import annotations

from datetime import datetime, timezone

CONDITION_TYPES = ("Available", "Progressing", "Paused", "Degraded", "RouteReady", "ModelResolved", "InvalidSpec")


def ts(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_ts(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def set_condition(status: dict, ctype: str, value: bool, reason: str, message: str, now: datetime,
                  generation: int | None = None) -> None:
    """Sets one condition; lastTransitionTime moves only when the status flips."""
    conditions = status.setdefault("conditions", [])
    wanted = "True" if value else "False"
    for cond in conditions:
        if cond["type"] == ctype:
            if cond.get("status") != wanted:
                cond["lastTransitionTime"] = ts(now)
            cond.update(status=wanted, reason=reason, message=message)
            if generation is not None:
                cond["observedGeneration"] = generation
            return
    cond = {"type": ctype, "status": wanted, "reason": reason, "message": message, "lastTransitionTime": ts(now)}
    if generation is not None:
        cond["observedGeneration"] = generation
    conditions.append(cond)
    conditions.sort(key=lambda c: CONDITION_TYPES.index(c["type"]))


def condition(status: dict, ctype: str) -> dict | None:
    return next((c for c in status.get("conditions", []) if c["type"] == ctype), None)


def add_history(status: dict, entry: dict, limit: int) -> None:
    """Newest first, at most `limit` entries."""
    history = [entry, *status.get("history", [])]
    status["history"] = history[:limit]
    if not status["history"]:
        status.pop("history")
