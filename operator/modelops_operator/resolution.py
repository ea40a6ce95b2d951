"""Pinning a remote model before it is rolled out. Pure: status + observed resolver
pods + clock in, the pin to roll out (or none yet) and the resolver pod wanted out.

status.resolved is the current pin of spec.model (with `key`, what it was resolved
from); status.resolution is the bookkeeping of resolver pods (the one in flight, the
failures so far, when to try again). A pin is taken once per spec change, and again
every spec.model.resolveInterval when that is set: when the alias moved or the prefix
was overwritten, the pinned revision changes and a rollout starts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from .model_source import RESOLVER_DEADLINE, ModelSource, ResolverResult, resolver_name
from .status import parse_ts, set_condition, ts

BACKOFF_FIRST, BACKOFF_MAX = 15.0, 600.0  # seconds between failed resolutions


@dataclass
class ResolutionStep:
    resolved: dict | None  # the pin to roll out; None while none is known
    resolver: str | None  # the resolver pod wanted now (name), if any
    wake: float | None  # seconds until the next look
    event: tuple[str, str, bool] | None  # (reason, message, warning) to announce
    mismatch: str | None  # the pinned directory declares another version: InvalidSpec


def _backoff(failures: int) -> float:
    return min(BACKOFF_FIRST * 2 ** max(failures - 1, 0), BACKOFF_MAX)


def step(md: str, version: str, source: ModelSource, status: dict, results: dict[str, ResolverResult],
         now: datetime, generation: int | None) -> ResolutionStep:
    """Updates status.resolved, status.resolution and the ModelResolved condition."""
    state = status.get("resolution") or {}
    if state.get("key") != source.key:
        state = {"key": source.key, "attempt": int(state.get("attempt", 0)), "failures": 0}
    status["resolution"] = state
    resolved = status.get("resolved")
    current = resolved if resolved and resolved.get("key") == source.key else None
    event = None
    mismatch = state.get("mismatch")
    wake: list[float] = []

    pod = state.get("pod")
    result = results.get(pod) if pod else None
    if pod and result is None and (parse_ts(state.get("requestedAt")) or now) \
            + timedelta(seconds=RESOLVER_DEADLINE + 30) <= now:
        result = ResolverResult(pod, False, None, "ResolverFailed",
                                f"model resolution failed: resolver pod {pod} gave no result in {RESOLVER_DEADLINE}s")
    if result is not None:
        state.pop("pod", None)
        state.pop("requestedAt", None)
        if result.ok:
            got = result.result
            state["failures"] = 0
            state.pop("retryAt", None)
            state.pop("lastError", None)
            state["checkedAt"] = ts(now)
            if got["version"] != version:
                mismatch = (f"is {version}, but {got['uri']} holds {got['version']} "
                            f"(its metadata.json, {got['digest'][:19]}...)")
                state["mismatch"] = mismatch
            else:
                state.pop("mismatch", None)
                mismatch = None
                pin = {**got, "key": source.key, "resolvedAt": ts(now)}
                moved = current is not None and (current["uri"], current["digest"]) != (got["uri"], got["digest"])
                if current is None or moved:
                    status["resolved"] = pin
                    what = f"{source.uri}" + (f" is {got['uri']}" if got["uri"] != str(source.uri) else "")
                    if moved:
                        event = ("ModelMoved", f"{what} now ({got['digest'][:19]}...), was "
                                               f"{current['uri']} ({current['digest'][:19]}...)", False)
                    else:
                        event = ("ModelResolved", f"{what} ({got['digest'][:19]}...)", False)
                    current = pin
        else:
            state["failures"] = int(state.get("failures", 0)) + 1
            retry = _backoff(state["failures"])
            state["retryAt"] = ts(now + timedelta(seconds=retry))
            state["lastError"] = {"reason": result.reason, "message": result.message}
            event = (result.reason, f"{result.message}; trying again in {int(retry)}s", True)

    due = current is None and not mismatch
    interval = source.resolve_interval
    checked = parse_ts(state.get("checkedAt"))
    if interval and checked is not None:
        next_check = checked + timedelta(seconds=interval)
        due = due or next_check <= now
        if next_check > now:
            wake.append((next_check - now).total_seconds())
    retry_at = parse_ts(state.get("retryAt"))
    if due and not state.get("pod"):
        if retry_at and retry_at > now:
            wake.append((retry_at - now).total_seconds())
        else:
            state["attempt"] = int(state.get("attempt", 0)) + 1
            state["pod"] = resolver_name(md, source, state["attempt"])
            state["requestedAt"] = ts(now)
    if state.get("pod"):
        wake.append(5.0)  # the pod's events wake us sooner

    if mismatch:
        set_condition(status, "ModelResolved", False, "VersionMismatch", f"spec.model.version {mismatch}", now,
                      generation)
    elif current is not None:
        reg = f" (registry version {current['registryVersion']})" if current.get("registryVersion") else ""
        set_condition(status, "ModelResolved", True, "Resolved",
                      f"{source.uri} pinned to {current['uri']}{reg}, {current['digest']}", now, generation)
    elif state.get("lastError"):
        err = state["lastError"]
        set_condition(status, "ModelResolved", False, err["reason"], err["message"], now, generation)
    else:
        set_condition(status, "ModelResolved", False, "Resolving", f"resolving {source.uri}", now, generation)
    return ResolutionStep(current, state.get("pod"), min(wake) if wake else None, event, mismatch)
