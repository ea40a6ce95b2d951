"""Rollout hooks: outside checks a rollout waits on (spec.hooks). Pure: the settings,
which hooks a point of the lifecycle runs, their run ids, the Job a Job hook creates,
and a finished Job's result. The calls themselves are hook_runner's.

A hook runs at one point:
- BeforeRollout: a rollout starts, before the candidate gets any traffic;
- BeforeStep: before each weighted step (Canary, Shadow's canary promotion);
- BeforePromotion: before the candidate takes all traffic (every strategy);
- AfterRollout: after the rollout ends, promoted or not (gates nothing).

Its run id derives from the rollout (start time and candidate revision), the point,
the step and the hook's name, so each runs once per rollout and step: a restarted
operator finds the result in status, or the same Job, or calls the same URL with the
same X-Modelops-Hook-Id."""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass

from .durations import parse_duration
from .naming import LABEL_MANAGED_BY, MANAGER, common_labels, object_meta

POINTS = ("BeforeRollout", "BeforeStep", "BeforePromotion", "AfterRollout")
HOOK_ID_LABEL = "modelops.io/hook-id"
HOOK_LABEL = "modelops.io/hook"
PENDING, RUNNING, SUCCEEDED, FAILED, SKIPPED = "Pending", "Running", "Succeeded", "Failed", "Skipped"
FINISHED = (SUCCEEDED, FAILED, SKIPPED)
POLL_SECONDS = 2.0  # the planner looks again this often while a hook runs; results also wake it


class HookError(ValueError):
    def __init__(self, field_path: str, problem: str):
        super().__init__(f"{field_path}: {problem}")
        self.field, self.problem = field_path, problem


@dataclass(frozen=True)
class Hook:
    name: str
    at: str
    deadline: float  # seconds a run may take, Pending answers included
    url: str | None = None
    method: str = "POST"
    timeout: float = 10.0  # seconds per call
    retries: int = 2  # more calls after a timeout, a connection error or a 5xx
    poll_interval: float = 10.0  # seconds between calls while the answer is Pending
    job: dict | None = None  # spec.hooks[].job: one container's image, command, args, env, resources

    @property
    def kind(self) -> str:
        return "job" if self.job is not None else "http"


def _seconds(value, path: str) -> float:
    try:
        return parse_duration(value)
    except ValueError as err:
        raise HookError(path, str(err)) from None


def parse_hooks(raw) -> tuple[Hook, ...]:
    """spec.hooks, defaulted by the CRD; HookError names the field at fault."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise HookError("spec.hooks", "must be a list")
    hooks, names = [], set()
    for i, h in enumerate(raw):
        path = f"spec.hooks[{i}]"
        if not isinstance(h, dict):
            raise HookError(path, "must be an object")
        name = h.get("name")
        if not isinstance(name, str) or not name:
            raise HookError(f"{path}.name", "is required")
        if name in names:
            raise HookError(f"{path}.name", f"{name!r} is used by another hook")
        names.add(name)
        at = h.get("at")
        if at not in POINTS:
            raise HookError(f"{path}.at", f"{at!r} is not one of {', '.join(POINTS)}")
        if ("http" in h) == ("job" in h):
            raise HookError(path, "exactly one of http and job must be set")
        deadline = _seconds(h.get("deadline", "30m"), f"{path}.deadline")
        if deadline < 1:
            raise HookError(f"{path}.deadline", "must be at least 1s")
        if "job" in h:
            job = h["job"]
            if not isinstance(job, dict) or not isinstance(job.get("image"), str) or not job["image"]:
                raise HookError(f"{path}.job.image", "is required")
            limit = job.get("backoffLimit", 0)
            if not isinstance(limit, int) or isinstance(limit, bool) or not 0 <= limit <= 10:
                raise HookError(f"{path}.job.backoffLimit", "must be an integer from 0 to 10")
            hooks.append(Hook(name, at, deadline, job=copy.deepcopy(job)))
            continue
        http = h["http"] or {}
        url = http.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise HookError(f"{path}.http.url", "must be an http:// or https:// URL")
        method = http.get("method", "POST")
        if method not in ("GET", "POST", "PUT"):
            raise HookError(f"{path}.http.method", f"{method!r} is not one of GET, POST, PUT")
        timeout = _seconds(http.get("timeout", "10s"), f"{path}.http.timeout")
        poll = _seconds(http.get("pollInterval", "10s"), f"{path}.http.pollInterval")
        if timeout <= 0 or poll < 1:
            raise HookError(f"{path}.http", "timeout must be above 0 and pollInterval at least 1s")
        retries = http.get("retries", 2)
        if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= 10:
            raise HookError(f"{path}.http.retries", "must be an integer from 0 to 10")
        hooks.append(Hook(name, at, deadline, url=url, method=method, timeout=timeout, retries=retries,
                          poll_interval=poll))
    return tuple(hooks)


def run_id(rollout: str, at: str, step: int, name: str) -> str:
    """The same hook of the same rollout, point and step always has the same id."""
    return hashlib.sha256(f"{rollout}|{at}|{step}|{name}".encode()).hexdigest()[:12]


def job_name(md: str, hook: str, hook_id: str) -> str:
    # DNS label: at most 63 characters, with room for the Job controller's pod suffix.
    return f"{md[:20].rstrip('-')}-hook-{hook[:16].rstrip('-')}-{hook_id[:8]}"


def job_object(meta: dict, model: dict, hook: Hook, hook_id: str, context: dict) -> dict:
    """The Job a Job hook runs: one container, owned by the ModelDeployment, with the
    rollout's context in its environment, as non-root with a read-only root filesystem."""
    job = hook.job or {}
    env = [*({"name": e["name"], "value": str(e.get("value", ""))} for e in job.get("env") or []),
           *({"name": f"MODELOPS_{k.upper()}", "value": str(v)} for k, v in sorted(context.items())
             if isinstance(v, (str, int, float)))]
    container = {"name": "hook", "image": job["image"], "env": env,
                 "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                     "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}}
    for key in ("command", "args", "resources"):
        if job.get(key):
            container[key] = copy.deepcopy(job[key])
    pod = {"restartPolicy": "Never", "containers": [container], "automountServiceAccountToken": False,
           "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}}
    if job.get("serviceAccountName"):
        pod["serviceAccountName"] = job["serviceAccountName"]
        pod["automountServiceAccountToken"] = True  # a named account is there to be used
    labels = {**common_labels(meta["name"], model), "app.kubernetes.io/component": "hook", HOOK_LABEL: hook.name,
              HOOK_ID_LABEL: hook_id}
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": object_meta(meta, job_name(meta["name"], hook.name, hook_id), labels),
            "spec": {"backoffLimit": int(job.get("backoffLimit", 0)),
                     "activeDeadlineSeconds": max(1, int(hook.deadline)), "ttlSecondsAfterFinished": 3600,
                     "template": {"metadata": {"labels": {HOOK_ID_LABEL: hook_id, LABEL_MANAGED_BY: MANAGER}},
                                  "spec": pod}}}


def job_result(job: dict) -> tuple[str, str] | None:
    """A finished Job's (Succeeded|Failed, message); None while it runs."""
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("status") != "True":
            continue
        if cond.get("type") == "Complete":
            return SUCCEEDED, "the Job completed"
        if cond.get("type") == "Failed":
            return FAILED, f"the Job failed: {cond.get('reason', '')} {cond.get('message', '')}".strip()
    return None
