"""The chart's PodMonitor and ServiceMonitor relabel exactly like the scrape config
the end-to-end scenarios run Prometheus with (tests/e2e/prometheus_sd.py)."""

import subprocess

import yaml

from .. import kube
from .prometheus_sd import CONTRACT, METRIC_RELABEL, RELABEL

CHART = kube.ROOT / "charts/modelops"


def mappings(relabelings, source="source_labels", target="target_label"):
    return {r[target]: r[source] for r in relabelings if r.get(target)}


def rendered(kind):
    helm = kube.cluster_paths()[1] / "helm"
    if not helm.exists():
        kube.ensure_binaries()
    out = subprocess.run([str(helm), "template", "m", str(CHART), "--set", "podMonitor.enabled=true",
                          "--set", "serviceMonitor.enabled=true"], capture_output=True, text=True, check=True).stdout
    (obj,) = [d for d in yaml.safe_load_all(out) if d and d["kind"] == kind]
    return obj


def test_scrape_config_produces_the_label_contract():
    assert set(mappings(RELABEL)) == set(CONTRACT)


def test_chart_monitors_relabel_like_the_scrape_config():
    expected = mappings(RELABEL)
    pod = rendered("PodMonitor")["spec"]["podMetricsEndpoints"][0]
    svc = rendered("ServiceMonitor")["spec"]["endpoints"][0]
    for endpoint in (pod, svc):
        assert endpoint["port"] == "monitor"
        assert mappings(endpoint["relabelings"], "sourceLabels", "targetLabel") == expected
        assert endpoint["metricRelabelings"] == METRIC_RELABEL
