"""The S3 client the model server fetches model directories with: boto3 against AWS S3 or
any S3-compatible store (MinIO, Ceph RGW, Versity, ...), path-style addressing and
signature v4, so an endpoint needs no wildcard DNS.

Every failure is one of sources.errors' exceptions, named after what a person does about
it: BadCredentials (the store refused the keys), Unreachable (no answer, a timeout, a
5xx), UntrustedCertificate (TLS verification failed), NotFound (no such bucket or key).
Messages name the endpoint and the bucket/key concerned; never a secret. Retries are
few and the connect timeout short, so a dead store fails within seconds.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import boto3
import botocore.exceptions as bex
from botocore.config import Config

from .errors import (
    BadCredentials,
    Mismatch,
    NotFound,
    SourceError,
    Unreachable,
    UntrustedCertificate,
)

from .uri import ModelUri

if TYPE_CHECKING:
    from .credentials import Credentials

T = TypeVar("T")

DEFAULT_REGION = "us-east-1"
CONNECT_TIMEOUT = 5  # seconds
READ_TIMEOUT = 60  # seconds between two reads of a response
MAX_ATTEMPTS = 2  # the first try included
CHUNK = 1024 * 1024

# Error codes that mean "these credentials will not do", whatever the HTTP status.
# (Versity answers an unknown access key with XAdminUserNotFound and a 404.)
CREDENTIAL_CODES = frozenset({
    "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "AllAccessDisabled",
    "ExpiredToken", "InvalidToken", "TokenRefreshRequired", "InvalidSecurity",
    "AccountProblem", "XAdminUserNotFound", "403", "Forbidden",
})
NOT_FOUND_CODES = frozenset({"NoSuchBucket", "NoSuchKey", "NotFound", "404"})


@dataclass(frozen=True)
class S3Location:
    """Where a model directory lies in a store: a bucket and a key prefix that is "" or
    ends with "/"."""

    bucket: str
    prefix: str

    def __post_init__(self):
        if self.prefix and not self.prefix.endswith("/"):
            object.__setattr__(self, "prefix", self.prefix + "/")

    def key(self, relative: str) -> str:
        return self.prefix + relative

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def _system_ca_bundle() -> str | bool:
    """The system's CA file (so CAs an administrator added to the OS trust store count),
    else True: botocore's own bundle."""
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile):
        if candidate and os.path.isfile(candidate):
            return candidate
    return True


def _cert_verification_failed(exc: BaseException) -> bool:
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, ssl.SSLCertVerificationError):
            return True
        if "CERTIFICATE_VERIFY_FAILED" in str(e) or "certificate verify failed" in str(e):
            return True
        e = e.__cause__ or e.__context__
    # botocore keeps the underlying exception in kwargs, not always in the chain.
    inner = getattr(exc, "kwargs", {}).get("error")
    return isinstance(inner, BaseException) and inner is not exc and _cert_verification_failed(inner)


class S3Client:
    def __init__(self, endpoint: str | None, access_key: str | None, secret_key: str | None,
                 region: str = DEFAULT_REGION, session_token: str | None = None,
                 ca_bundle: str | None = None):
        """endpoint None: AWS S3 of `region` (or AWS_ENDPOINT_URL of the environment).
        No keys at all: boto3's own chain (environment, web identity, instance profile).
        ca_bundle: a PEM file of the CAs to trust; without one an https endpoint is
        checked against the system's CAs."""
        self.endpoint = endpoint.rstrip("/") if endpoint else None
        self.region = region or DEFAULT_REGION
        self._secrets = tuple(s for s in (secret_key, session_token) if s)
        if ca_bundle is not None and not os.path.isfile(ca_bundle):
            raise UntrustedCertificate(f"{self._where()}: the CA bundle {ca_bundle} is not a readable file")
        verify: str | bool = ca_bundle or (_system_ca_bundle() if (endpoint or "https:").startswith("https:") else True)
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"total_max_attempts": MAX_ATTEMPTS, "mode": "standard"},
            connect_timeout=CONNECT_TIMEOUT,
            read_timeout=READ_TIMEOUT,
            # Checksums only where the API requires them: many S3-compatible stores reject
            # the newer default (CRC trailers on every upload). Model files carry digests.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        if access_key is None and secret_key is None and session_token is None:
            session = boto3.session.Session(region_name=self.region)
        else:
            session = boto3.session.Session(aws_access_key_id=access_key or "", aws_secret_access_key=secret_key or "",
                                            aws_session_token=session_token or None, region_name=self.region)
        try:
            self._s3 = session.client("s3", endpoint_url=self.endpoint, verify=verify, config=config)
        except ValueError as e:  # botocore: "Invalid endpoint: ..."
            raise Unreachable(f"invalid endpoint URL {endpoint!r}: {e}") from None
        if self.endpoint is None:
            self.endpoint = self._s3.meta.endpoint_url

    @classmethod
    def from_credentials(cls, creds: Credentials) -> S3Client:
        return cls(endpoint=creds.get("AWS_ENDPOINT_URL"), access_key=creds.get("AWS_ACCESS_KEY_ID"),
                   secret_key=creds.get("AWS_SECRET_ACCESS_KEY"),
                   region=creds.get("AWS_DEFAULT_REGION", DEFAULT_REGION) or DEFAULT_REGION,
                   session_token=creds.get("AWS_SESSION_TOKEN"), ca_bundle=creds.ca_bundle)

    # --- operations --------------------------------------------------------------------

    def list_objects(self, bucket: str, prefix: str) -> list[tuple[str, int]]:
        """Every object under `prefix` (used exactly as given, so "m/1.0/" excludes
        "m/1.0-old/x"), all pages: (key relative to prefix, size), in key order. Folder
        markers (keys ending in "/" with no bytes) are left out."""
        def run() -> list[tuple[str, int]]:
            out = []
            for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for obj in page.get("Contents", ()):
                    key, size = obj["Key"], int(obj.get("Size", 0))
                    if key.endswith("/") and size == 0:
                        continue
                    out.append((key.removeprefix(prefix), size))
            return out
        return self._call(run, self._where(bucket, prefix=prefix))

    def get_bytes(self, bucket: str, key: str, max_bytes: int | None = None) -> bytes:
        """The object's bytes; only the first max_bytes when given (the rest is not read)."""
        def run() -> bytes:
            body = self._s3.get_object(Bucket=bucket, Key=key)["Body"]
            try:
                return body.read() if max_bytes is None else body.read(max_bytes)
            finally:
                body.close()
        return self._call(run, self._where(bucket, key))

    def download(self, bucket: str, key: str, dest: Path, max_bytes: int | None = None) -> None:
        """Streams the object to dest (parent directories created) through dest + ".part",
        renamed into place once complete; the partial file is removed on failure. More
        than max_bytes is a Mismatch, stopped there (a store cannot fill the disk)."""
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")

        def run() -> None:
            resp = self._s3.get_object(Bucket=bucket, Key=key)
            body, expected, written = resp["Body"], resp.get("ContentLength"), 0
            try:
                with open(part, "wb") as f:
                    for chunk in body.iter_chunks(CHUNK):
                        written += len(chunk)
                        if max_bytes is not None and written > max_bytes:
                            raise Mismatch(f"{key} is larger than the {max_bytes} bytes metadata.json lists")
                        f.write(chunk)
            finally:
                body.close()
            if expected is not None and written != expected:
                raise Unreachable(f"{self._where(bucket, key)}: the connection ended after "
                                  f"{written} of {expected} bytes")
            os.replace(part, dest)

        try:
            self._call(run, self._where(bucket, key))
        except BaseException:
            part.unlink(missing_ok=True)
            raise

    def put(self, bucket: str, key: str, source: Path | bytes) -> None:
        """Uploads a file (by path) or bytes as one object."""
        def run() -> None:
            if isinstance(source, (bytes, bytearray, memoryview)):
                self._s3.put_object(Bucket=bucket, Key=key, Body=bytes(source))
            else:
                with open(source, "rb") as f:
                    self._s3.put_object(Bucket=bucket, Key=key, Body=f)
        self._call(run, self._where(bucket, key))

    def ensure_bucket(self, bucket: str) -> None:
        """Creates the bucket; fine if it exists already and these credentials own it."""
        def run() -> None:
            kwargs: dict[str, Any] = {"Bucket": bucket}
            if self.region != DEFAULT_REGION:
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
            try:
                self._s3.create_bucket(**kwargs)
            except bex.ClientError as e:
                code = e.response.get("Error", {}).get("Code", "")
                if code == "BucketAlreadyOwnedByYou":
                    return
                if code == "BucketAlreadyExists":
                    raise BadCredentials(
                        f"{self._where(bucket)}: the bucket exists and belongs to another account") from None
                raise
        self._call(run, self._where(bucket))

    # --- errors ------------------------------------------------------------------------

    def _where(self, bucket: str | None = None, key: str | None = None, prefix: str | None = None) -> str:
        where = f"S3 endpoint {self.endpoint or 'AWS S3'}"
        if bucket is not None:
            where += f", bucket {bucket!r}"
        if key is not None:
            where += f", key {key!r}"
        if prefix is not None:
            where += f", prefix {prefix!r}"
        return where

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _call(self, fn: Callable[[], T], where: str) -> T:
        """Runs fn, turning botocore's failures into sources.errors' exceptions about `where`."""
        try:
            return fn()
        except SourceError:
            raise
        except bex.ClientError as e:
            raise self._client_error(e, where) from None
        except bex.SSLError as e:
            if _cert_verification_failed(e):
                raise UntrustedCertificate(
                    f"{where}: the server's certificate is not signed by a trusted CA "
                    f"({self._redact(str(e.kwargs.get('error', e)))})") from None
            raise Unreachable(f"{where}: TLS handshake failed ({self._redact(str(e))})") from None
        except (bex.ConnectTimeoutError, bex.ReadTimeoutError) as e:
            raise Unreachable(f"{where}: timed out ({e})") from None
        except (bex.EndpointConnectionError, bex.ConnectionClosedError, bex.ProxyConnectionError,
                bex.ResponseStreamingError, bex.IncompleteReadError, bex.HTTPClientError, bex.ConnectionError) as e:
            if _cert_verification_failed(e):
                raise UntrustedCertificate(f"{where}: the server's certificate is not signed by a trusted CA") from None
            raise Unreachable(f"{where}: {self._redact(str(e))}") from None
        except (bex.NoCredentialsError, bex.PartialCredentialsError) as e:
            raise BadCredentials(f"{where}: {e}") from None
        except bex.BotoCoreError as e:
            raise SourceError(f"{where}: {self._redact(str(e))}") from None

    def _client_error(self, e: bex.ClientError, where: str) -> SourceError:
        err = e.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        detail = self._redact(f"{code}: {err['Message']}" if err.get("Message") else code or f"HTTP {status}")
        if code in CREDENTIAL_CODES or status in (401, 403):
            return BadCredentials(f"{where}: the store refused the credentials ({detail})")
        if code in NOT_FOUND_CODES or status == 404:
            return NotFound(f"{where}: {detail}")
        if status >= 500:
            return Unreachable(f"{where}: the store answered HTTP {status} ({detail})")
        return SourceError(f"{where}: {detail}")


@dataclass
class S3Source:
    """A model directory under an S3 prefix (the Source of sources/base.py). A prefix is
    pinned by the digest of its metadata.json, which the fetch checks."""

    uri: ModelUri
    client: S3Client

    def read(self, rel: str, max_bytes: int) -> bytes:
        return self.client.get_bytes(self.uri.bucket, self.uri.prefix + rel, max_bytes)

    def download(self, rel: str, dest: Path, max_bytes: int | None = None) -> None:
        self.client.download(self.uri.bucket, self.uri.prefix + rel, dest, max_bytes)

    def details(self) -> dict:
        return {}


def open_source(uri: ModelUri, creds: Credentials) -> S3Source:
    return S3Source(uri, S3Client.from_credentials(creds))
