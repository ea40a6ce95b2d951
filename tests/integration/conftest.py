import subprocess
from pathlib import Path

import pytest

from .. import kube
from ..prom import Prometheus

ROOT = Path(__file__).resolve().parents[2]
CRD_FILE = ROOT / "manifests/crds/modelops.io_modeldeployments.yaml"


@pytest.fixture(scope="session")
def tools():
    """Directory of the Go-built binaries (helm, kubectl, ...), built if missing."""
    subprocess.run([str(ROOT / "hack/build-binaries.sh")], check=True, capture_output=True)
    return kube.cluster_paths()[1]


@pytest.fixture(scope="module")
def api(cluster):
    """The operator's own API client (modelops_operator.kube.KubeApi), as the admin."""
    from kubernetes import config as kube_config

    from modelops_operator.kube import KubeApi

    client = KubeApi(kube_config.new_client_from_config(config_file=str(cluster.kubeconfig)), threads=4)
    yield client
    client.close()


@pytest.fixture(scope="session")
def crd(cluster):
    """The ModelDeployment CRD, installed and established."""
    install_crd(cluster)
    return "modeldeployments.modelops.io"


def install_crd(cluster) -> None:
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_FILE))
    # Polled rather than `kubectl wait`, which fails while status.conditions is still unset
    # (so does this jsonpath, with exit 1, until the CRD controller has looked at it).
    kube.wait_for(lambda: cluster.kubectl(
        "get", "crd", "modeldeployments.modelops.io", "-o",
        'jsonpath={.status.conditions[?(@.type=="Established")].status}', check=False).stdout == "True",
        60, message="the ModelDeployment CRD to be established")


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    """A real Prometheus (the one build every test uses) for the analysis's PromQL checks."""
    prom = Prometheus(tmp_path_factory.mktemp("prometheus"))
    yield prom
    prom.stop()
