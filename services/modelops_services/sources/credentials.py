"""Credentials of a model source, read from a mounted Secret (one file per key) or from
the environment. The keys are the standard ones, so one Secret serves boto3, the MLflow
client and modelops alike."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL",
        "MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
CA_BUNDLE_KEYS = ("ca.crt", "ca-bundle.crt", "AWS_CA_BUNDLE")  # a PEM file in the Secret


@dataclass
class Credentials:
    values: dict[str, str] = field(default_factory=dict)
    ca_bundle: str | None = None  # path of a PEM file with the CAs to trust, else the system's

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.values.get(key) or default

    @classmethod
    def load(cls, directory: str | Path | None = None, env: dict[str, str] | None = None) -> "Credentials":
        """From `directory` (a mounted Secret) when given, over the environment's values."""
        env = dict(os.environ if env is None else env)
        values = {k: env[k] for k in KEYS if env.get(k)}
        ca = env.get("AWS_CA_BUNDLE") or env.get("MLFLOW_TRACKING_SERVER_CERT_PATH") or None
        if directory:
            d = Path(directory)
            for key in KEYS:
                f = d / key
                if f.is_file():
                    values[key] = f.read_text().strip()
            ca = next((str(d / k) for k in CA_BUNDLE_KEYS if (d / k).is_file()), ca)
        return cls(values, ca)
