"""Why a model could not be had: one exception per cause a person acts on differently.
`cause` is the short phrase the pod's log line, its termination message and the
ModelDeployment's condition all carry."""

from __future__ import annotations


class SourceError(Exception):
    cause = "model source error"
    reason = "ModelSourceError"  # the condition reason the operator shows

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return f"{self.cause}: {self.message}"


class BadCredentials(SourceError):
    """The store or registry refused the credentials (wrong key, expired token)."""
    cause = "bad credentials"
    reason = "ModelCredentialsRejected"


class Unreachable(SourceError):
    """No answer: connection refused, DNS, timeout, a 5xx."""
    cause = "store unreachable"
    reason = "ModelStoreUnreachable"


class UntrustedCertificate(SourceError):
    """TLS failed: the server's certificate is not signed by a trusted CA."""
    cause = "untrusted certificate"
    reason = "ModelStoreCertificateUntrusted"


class NotFound(SourceError):
    """The bucket, prefix, object, registered model, version or alias does not exist."""
    cause = "not found"
    reason = "ModelNotFound"


class Mismatch(SourceError):
    """A fetched file's bytes differ from its recorded digest."""
    cause = "digest mismatch"
    reason = "ModelDigestMismatch"


class MissingFile(SourceError):
    """metadata.json lists a file the source does not hold."""
    cause = "missing file"
    reason = "ModelFileMissing"


class InvalidModel(SourceError):
    """What was fetched is not a model directory (no metadata.json, bad JSON, no digests)."""
    cause = "invalid model directory"
    reason = "ModelInvalid"
