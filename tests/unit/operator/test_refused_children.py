"""A child the API server refuses as invalid marks the spec InvalidSpec, naming the field,
instead of being applied again and again with back-off."""

import asyncio
import copy
import json
from datetime import datetime, timezone

from kubernetes.client.rest import ApiException

from modelops_operator.config import OperatorConfig
from modelops_operator.controller import Controller
from modelops_operator.observed import Observed, Rejection
from modelops_operator.planner import plan
from modelops_operator.status import condition

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
META = {"name": "churn", "namespace": "ml", "uid": "u1", "generation": 1}
SPEC = {"model": {"name": "churn", "version": "1.0.0", "image": "registry.example/churn:1.0.0"},
        "replicas": 2, "strategy": {"type": "Canary", "canary": {"steps": [{"weight": 50}]}}}


def refused(field: str, message: str) -> ApiException:
    err = ApiException(status=422, reason="Unprocessable Entity")
    err.body = json.dumps({"kind": "Status", "status": "Failure", "reason": "Invalid", "code": 422,
                           "message": message, "details": {"causes": [{"field": field, "message": message}]}})
    return err


class RefusingApi:
    """Refuses every Deployment as invalid; records what was asked."""

    def __init__(self):
        self.applied: list[str] = []
        self.statuses: list[dict] = []

    async def apply(self, obj, encoded=None):
        self.applied.append(obj["kind"])
        if obj["kind"] == "Deployment":
            raise refused("spec.template.spec.containers[0].image",
                          'Deployment.apps "churn-x" is invalid: spec.template.spec.containers[0].image: '
                          'Invalid value: " x": must not have leading or trailing whitespace')

    async def create_once(self, obj):
        return True

    async def write_status(self, body, status):
        self.statuses.append(copy.deepcopy(status))
        return {"metadata": {"resourceVersion": str(len(self.statuses))}}

    async def announce(self, body, transition):
        return True

    async def read(self, path):
        return None


def test_the_planner_marks_a_refused_generation_invalid():
    rejection = Rejection(1, "Deployment", "churn-abc", "spec.template.spec.containers[0].image: Invalid value",
                          ("spec.template.spec.containers[0].image",))
    p = plan(META, SPEC, None, Observed(rejected=rejection), NOW)
    cond = condition(p.status, "InvalidSpec")
    assert cond["status"] == "True" and cond["message"].startswith("spec.model.image: the API server refused")
    assert p.apply == [] and p.requeue_after is None
    # A new generation is planned (and applied) again.
    p = plan({**META, "generation": 2}, SPEC, None, Observed(rejected=rejection), NOW)
    assert p.apply and (condition(p.status, "InvalidSpec") or {}).get("status") != "True"


def test_a_refused_apply_is_not_retried_with_back_off():
    async def run():
        api = RefusingApi()
        c = Controller(api=api, config=OperatorConfig(), clock=lambda: NOW)
        body = {"metadata": dict(META), "spec": copy.deepcopy(SPEC)}
        c.observe_model_deployment("ADDED", body)
        key = ("ml", "churn")
        first = await c.reconcile(key)
        assert first == 0.0 and "Deployment" in api.applied  # refused: look again at once
        assert c.failures.get(key) is None
        applied = len(api.applied)
        second = await c.reconcile(key)
        cond = condition(api.statuses[-1], "InvalidSpec")
        assert cond["status"] == "True" and cond["message"].startswith("spec.model.image:")
        assert "must not have leading or trailing whitespace" in cond["message"]
        for _ in range(3):
            await c.reconcile(key)
        assert len(api.applied) == applied, "the refused spec was applied again"
        assert second is not None
        # A changed spec (a new generation) is applied again.
        c.observe_model_deployment("MODIFIED", {"metadata": {**META, "generation": 2}, "spec": copy.deepcopy(SPEC),
                                                "status": api.statuses[-1]})
        await c.reconcile(key)
        assert len(api.applied) > applied
        await c.notifier.close()
        await c.hooks.close()
    asyncio.run(run())
