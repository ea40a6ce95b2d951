"""What `kubectl modelops status` and `history` show of models pinned from a store or
registry: where from, which registry version and bytes, and the run's metrics."""

from modelops_operator.plugin import render_history, render_status

PIN1 = {"uri": "models:/churn/1", "registryVersion": "1", "digest": "sha256:" + "a" * 64, "metrics": {"auc": 0.8123}}
PIN2 = {"uri": "models:/churn/2", "registryVersion": "2", "digest": "sha256:" + "b" * 64, "metrics": {"auc": 0.8456}}
MD = {
    "metadata": {"name": "churn", "namespace": "ml"},
    "spec": {"model": {"name": "churn", "version": "1.0.0", "image": "reg/model:0.1", "uri": "models:/churn@champion"},
             "strategy": {"type": "Canary", "trafficRouting": {"replicas": {}}}},
    "status": {
        "phase": "Progressing", "weights": {"stable": 50, "candidate": 50, "mirror": 0},
        "stable": {"revision": "r1", "version": "1.0.0", "replicas": 1, "readyReplicas": 1, "model": PIN1},
        "candidate": {"revision": "r2", "version": "1.1.0", "replicas": 1, "readyReplicas": 1, "model": PIN2},
        "conditions": [{"type": "ModelResolved", "status": "False", "reason": "ModelCredentialsRejected",
                        "message": "model resolution failed: bad credentials: 401"}],
        "history": [{"revision": "r1", "version": "1.0.0", "outcome": "Succeeded", "reason": "Promoted",
                     "model": PIN1, "startedAt": "2026-12-01T10:00:00Z", "finishedAt": "2026-12-01T10:05:00Z"}],
    },
}


def test_status_shows_both_registry_versions_their_digests_and_metrics():
    text = render_status(MD)
    assert "from models:/churn@champion" in text
    assert "models:/churn/1 (registry v1) sha256:aaaaaaaaaaaa  auc=0.8123" in text
    assert "models:/churn/2 (registry v2) sha256:bbbbbbbbbbbb  auc=0.8456" in text
    assert "ModelResolved: ModelCredentialsRejected: model resolution failed: bad credentials" in text


def test_history_names_the_pinned_model():
    assert "models:/churn/1 v1" in render_history(MD)
