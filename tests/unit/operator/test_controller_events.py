"""Which watch events make the controller look at a ModelDeployment again."""

import asyncio

from modelops_operator.config import OperatorConfig
from modelops_operator.controller import Controller
from modelops_operator.planner import RevisionState

KEY = ("ml", "churn")


def deployment(replicas: int, ready: int, generation: int = 1, name: str = "churn-abc") -> dict:
    return {"metadata": {"namespace": "ml", "name": name, "generation": generation,
                         "labels": {"modelops.io/modeldeployment": "churn", "modelops.io/revision": "abc"}},
            "spec": {"replicas": replicas},
            "status": {"replicas": replicas, "readyReplicas": ready, "observedGeneration": generation}}


def controller() -> Controller:
    c = Controller(api=None, config=OperatorConfig())  # no pass runs here: nothing calls the API
    c.observe_model_deployment("ADDED", {"metadata": {"namespace": "ml", "name": "churn"}, "spec": {}})
    return c


def drain(c: Controller) -> int:
    n = len(c.queue)
    c.queue._queued.clear()
    for lane in c.queue._lanes:
        lane.clear()
    return n


def in_loop(test):
    """The work queue lives on the operator's event loop."""
    def run():
        async def body():
            test()
        asyncio.run(body())
    run.__name__ = test.__name__
    return run


@in_loop
def test_only_changes_the_planner_sees_queue_a_pass():
    c = controller()
    drain(c)
    c.observe_deployment("ADDED", deployment(4, 0))
    assert drain(c) == 1 and c.children[KEY]["abc"] == RevisionState(4, 0)
    # The Deployment controller's own bookkeeping (observedGeneration, conditions,
    # updated replicas) changes neither replicas nor ready replicas: no pass.
    c.observe_deployment("MODIFIED", deployment(4, 0, generation=2))
    assert drain(c) == 0
    c.observe_deployment("MODIFIED", deployment(4, 3, generation=2))
    assert drain(c) == 1 and c.children[KEY]["abc"] == RevisionState(4, 3)


@in_loop
def test_a_deleted_deployment_is_applied_again():
    c = controller()
    c.applied[("Deployment", "ml", "churn-abc")] = ("digest", 0.0)
    c.observe_deployment("ADDED", deployment(4, 4))
    drain(c)
    c.observe_deployment("DELETED", deployment(4, 4))
    assert drain(c) == 1
    assert "abc" not in c.children[KEY]
    assert ("Deployment", "ml", "churn-abc") not in c.applied


def route(generation: int, accepted: str | None, digest: str = "d1") -> dict:
    status = {}
    if accepted:
        status = {"parents": [{"parentRef": {"name": "gw"}, "controllerName": "x", "conditions": [
            {"type": "Accepted", "status": accepted, "reason": "Accepted", "observedGeneration": generation}]}]}
    return {"metadata": {"namespace": "ml", "name": "churn", "generation": generation,
                         "labels": {"modelops.io/modeldeployment": "churn"},
                         "annotations": {"modelops.io/route-digest": digest}}, "status": status}


@in_loop
def test_a_gateway_reporting_on_the_route_queues_a_pass():
    c = controller()
    drain(c)
    c.observe_route("ADDED", route(1, None))
    assert drain(c) == 1 and c.routes[KEY].parents == ()
    c.observe_route("MODIFIED", route(1, None))  # nothing new from the gateways
    assert drain(c) == 0
    c.observe_route("MODIFIED", route(1, "True"))
    assert drain(c) == 1 and c.routes[KEY].parents[0].accepted[0] == "True"
    c.observe_route("DELETED", route(1, "True"))
    assert drain(c) == 1 and KEY not in c.routes


class ForbiddenApi:
    async def read(self, path):
        from kubernetes.client.rest import ApiException
        raise ApiException(status=403, reason="Forbidden")


def test_a_gateway_the_operator_may_not_read_is_unknown():
    c = Controller(api=ForbiddenApi(), config=OperatorConfig())
    spec = {"strategy": {"trafficRouting": {"gatewayAPI": {"parentRefs": [{"name": "gw", "namespace": "infra"}]}}}}
    (state,) = asyncio.run(c.gateways_of("ml", spec))
    assert state.found is None and "infra/gw could not be read: Forbidden" in state.message
    assert asyncio.run(c.gateways_of("ml", {"strategy": {"trafficRouting": {"replicas": {}}}})) is None
