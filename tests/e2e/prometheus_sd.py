"""Prometheus that finds the monitor sidecars through Kubernetes service discovery.

The scrape config is what a user adds to their own Prometheus (the chart's PodMonitor,
`podMonitor.enabled`, carries the same relabelling for the Prometheus operator):
every pod with the `modelops.io/modeldeployment` label, its `monitor` port, /metrics,
and exactly these identifying labels on every series:

    namespace, modeldeployment, revision, pod

taken from the pod's metadata (the sidecar's own copies are dropped, so a
misconfigured sidecar cannot claim another model's identity). There is no track
label: a revision's track changes at promotion, and neither its pods' labels nor their
env may change then (that would restart them). The revision is the identity; status
says which revision is stable and which is the candidate.
"""

from __future__ import annotations

import base64
from pathlib import Path

from ..prom import Prometheus

LABEL_MD = "modelops.io/modeldeployment"
CONTRACT = ("namespace", "modeldeployment", "revision", "pod")

RELABEL = [
    {"source_labels": ["__meta_kubernetes_pod_label_modelops_io_modeldeployment"], "regex": ".+", "action": "keep"},
    {"source_labels": ["__meta_kubernetes_pod_container_port_name"], "regex": "monitor", "action": "keep"},
    {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
    {"source_labels": ["__meta_kubernetes_pod_label_modelops_io_modeldeployment"], "target_label": "modeldeployment"},
    {"source_labels": ["__meta_kubernetes_pod_label_modelops_io_revision"], "target_label": "revision"},
    {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
]
# Where a target label and the sidecar's label are both set, Prometheus keeps the
# sidecar's as exported_<name>; the pod's metadata is the one to trust.
METRIC_RELABEL = [{"regex": "exported_(namespace|modeldeployment|track|revision|pod)", "action": "labeldrop"}]


def scrape_config(api_server: str, ca_file: str, token_file: str, namespaces: list[str] | None = None,
                  interval: str = "2s", timeout: str = "1s", job: str = "modelops-monitors") -> dict:
    """The scrape config (one job) for a Prometheus outside the cluster; inside it,
    leave out api_server and the credentials (the pod's ServiceAccount is used)."""
    sd = {"role": "pod", "api_server": api_server,
          "authorization": {"credentials_file": token_file}, "tls_config": {"ca_file": ca_file},
          # The API server filters: Prometheus never sees the other pods.
          "selectors": [{"role": "pod", "label": LABEL_MD}]}
    if namespaces:
        sd["namespaces"] = {"names": list(namespaces)}
    return {"job_name": job, "scrape_interval": interval, "scrape_timeout": timeout, "metrics_path": "/metrics",
            "kubernetes_sd_configs": [sd], "relabel_configs": RELABEL, "metric_relabel_configs": METRIC_RELABEL}


RBAC = """
apiVersion: v1
kind: ServiceAccount
metadata: {{name: {name}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: {name}}}
rules:
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: {name}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: {name}}}
subjects:
- {{kind: ServiceAccount, name: {name}, namespace: {namespace}}}
"""


def start_prometheus(cluster, namespace: str, workdir: Path, interval: str = "2s") -> Prometheus:
    """A real Prometheus discovering the namespace's model pods as ServiceAccount
    `prometheus` of that namespace, allowed to read pods there and nothing else."""
    workdir.mkdir(parents=True, exist_ok=True)
    cluster.apply(RBAC.format(name="prometheus", namespace=namespace), namespace=namespace)
    token = cluster.kubectl("create", "token", "prometheus", "-n", namespace, "--duration=2h").stdout.strip()
    token_file = workdir / "token"
    token_file.write_text(token)
    token_file.chmod(0o600)
    ca_data = cluster.kubectl("config", "view", "--minify", "--flatten", "-o",
                              "jsonpath={.clusters[0].cluster.certificate-authority-data}").stdout.strip()
    ca_file = workdir / "ca.crt"
    ca_file.write_bytes(base64.b64decode(ca_data))
    config = scrape_config(cluster.server, str(ca_file), str(token_file), [namespace], interval)
    return Prometheus(workdir, [config], interval=interval)
