"""spec.model.uri: where a model directory lives.

    file:///models/churn            a directory in the image or a mounted volume
    s3://bucket/churn/1.3.0/        an object-store prefix, always read as a directory
    models:/churn/7                 an MLflow registered model version
    models:/churn@champion          an MLflow alias (a moving reference, pinned at rollout)

The CRD holds the same grammar as CEL rules (operator/modelops_operator/crd.yaml);
tests/unit/services/test_model_uri.py checks that the two agree."""

from __future__ import annotations

import re
from dataclasses import dataclass

FILE = re.compile(r"^file://(/[^\s]*)$")
# Bucket names as S3 allows them: 3-63 lower-case letters, digits, dots and hyphens.
S3 = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/([^\s]*))?$")
# Registered model names may hold most characters, but not "/", "@" or spaces here.
MODELS = re.compile(r"^models:/([^/@\s]+)(?:/([0-9]+)|@([A-Za-z_][A-Za-z0-9_-]{0,254}))$")
FORMS = "file:///PATH, s3://BUCKET/PREFIX/, models:/NAME/VERSION or models:/NAME@ALIAS"


@dataclass(frozen=True)
class ModelUri:
    scheme: str  # "file", "s3" or "models"
    path: str = ""  # file: the directory
    bucket: str = ""  # s3
    prefix: str = ""  # s3: "" (the bucket's root) or ending in "/"
    name: str = ""  # models: the registered model
    version: str = ""  # models: a registry version, set when pinned
    alias: str = ""  # models: an alias, until pinned

    @property
    def remote(self) -> bool:
        return self.scheme != "file"

    @property
    def moving(self) -> bool:
        """Whether what it names can change without the URI changing: an alias moves;
        an S3 prefix can be overwritten (its digest pins it)."""
        return self.scheme == "s3" or bool(self.alias)

    def at_version(self, version: str) -> "ModelUri":
        return ModelUri("models", name=self.name, version=str(version))

    def __str__(self) -> str:
        if self.scheme == "file":
            return f"file://{self.path}"
        if self.scheme == "s3":
            return f"s3://{self.bucket}/{self.prefix}"
        return f"models:/{self.name}/{self.version}" if self.version else f"models:/{self.name}@{self.alias}"


REGISTERED = re.compile(r"^models:/([^/@\s]+)/?$")


def parse_target(uri: str) -> ModelUri:
    """Where `modelops publish` puts a model: any URI, or models:/NAME (the registry
    numbers the new version)."""
    if m := REGISTERED.match(uri):
        return ModelUri("models", name=m.group(1))
    return parse(uri)


def parse(uri: str) -> ModelUri:
    """The URI's parts; ValueError saying which forms are accepted."""
    if m := FILE.match(uri):
        return ModelUri("file", path=m.group(1))
    if m := S3.match(uri):
        prefix = m.group(2) or ""
        if "//" in prefix or prefix.startswith("/"):
            raise ValueError(f"{uri!r}: an S3 prefix has no empty path segments; want {FORMS}")
        if prefix and not prefix.endswith("/"):
            prefix += "/"  # a directory: s3://b/model1 must never also read model1-old/
        return ModelUri("s3", bucket=m.group(1), prefix=prefix)
    if m := MODELS.match(uri):
        return ModelUri("models", name=m.group(1), version=m.group(2) or "", alias=m.group(3) or "")
    raise ValueError(f"{uri!r} is not a model URI; want {FORMS}")
