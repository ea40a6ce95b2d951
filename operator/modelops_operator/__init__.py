"""The modelops operator: progressive delivery of ModelDeployments."""

GROUP = "modelops.io"
VERSION = "v1alpha1"
PLURAL = "modeldeployments"
KIND = "ModelDeployment"
MANAGER = "modelops-operator"
