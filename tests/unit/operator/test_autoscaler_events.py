"""HorizontalPodAutoscaler watch events: only whether each exists makes a pass."""

from modelops_operator.controller import Controller

from .test_controller_events import KEY, controller, drain, in_loop


def hpa(name: str = "churn-abc", current: int = 3) -> dict:
    return {"metadata": {"namespace": "ml", "name": name, "labels": {"modelops.io/modeldeployment": "churn"}},
            "spec": {"minReplicas": 2, "maxReplicas": 10}, "status": {"currentReplicas": current}}


@in_loop
def test_an_hpa_appearing_or_going_queues_a_pass_its_status_does_not():
    c: Controller = controller()
    drain(c)
    c.observe_autoscaler("ADDED", hpa())
    assert drain(c) == 1 and c.autoscalers[KEY] == {"churn-abc"}
    c.observe_autoscaler("MODIFIED", hpa(current=7))  # the HPA's own status: nothing for the planner
    assert drain(c) == 0
    c.applied[("HorizontalPodAutoscaler", "ml", "churn-abc")] = "digest"
    c.observe_autoscaler("DELETED", hpa())
    assert drain(c) == 1 and c.autoscalers[KEY] == set()
    # Deleted by someone: the next pass applies it again.
    assert ("HorizontalPodAutoscaler", "ml", "churn-abc") not in c.applied
    c.observe_autoscaler("ADDED", {"metadata": {"namespace": "ml", "name": "other", "labels": {}}})
    assert drain(c) == 0
