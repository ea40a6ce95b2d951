"""The MLflow Model Registry client the model server and the `modelops` CLI use: plain
REST (the standard library's urllib and ssl) against a tracking server, so modelops
does not depend on the `mlflow` package.

Model versions, aliases and runs come from the registry and tracking APIs
(/api/2.0/mlflow/...). A version's files come through the tracking server's artifact
proxy: its download URI is `mlflow-artifacts:/PATH`, read and written at
/api/2.0/mlflow-artifacts/artifacts/PATH. Other artifact stores (s3://, gs://, ...)
are not read yet: a SourceError names the scheme.

Authentication is MLflow's: a bearer token (MLFLOW_TRACKING_TOKEN) or basic auth
(MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD). A CA bundle (the credentials'
ca.crt) replaces the system's CAs for https. Every failure is one of sources.errors'
exceptions: BadCredentials (401, 403), Unreachable (no connection, a timeout, a 5xx),
UntrustedCertificate (TLS verification failed), NotFound (no such model, version,
alias, run or file: the message names it). Messages never hold a secret.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import posixpath
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import BadCredentials, InvalidModel, Mismatch, NotFound, SourceError, Unreachable, UntrustedCertificate
from .uri import ModelUri

if TYPE_CHECKING:
    from .credentials import Credentials

API = "/api/2.0/mlflow"
ARTIFACTS_API = "/api/2.0/mlflow-artifacts/artifacts"
ARTIFACTS_SCHEME = "mlflow-artifacts"
MODEL_ARTIFACT_DIR = "model"  # publish: the run's artifact directory that backs the version
SEMVER_TAG = "modelops.semver"  # publish: the model version's semantic version
GIT_COMMIT_TAG = "mlflow.source.git.commit"
TRAINING_DATE_TAG = "modelops.training_date"
TRAINING_DATA_TAG = "modelops.training_data_hash"
CHUNK = 1 << 20
ERROR_TEXT = 300  # characters of a server's error body kept in a message
# log-batch's limits per request (MLflow's MAX_PARAMS_TAGS_PER_BATCH, MAX_METRICS_PER_BATCH).
PARAMS_PER_BATCH = 100
METRICS_PER_BATCH = 1000


@dataclass
class ModelVersion:
    name: str
    version: str
    run_id: str
    source: str
    tags: dict[str, str] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)
    created_ms: int | None = None

    @classmethod
    def from_json(cls, mv: dict) -> ModelVersion:
        return cls(name=mv.get("name", ""), version=str(mv.get("version", "")), run_id=mv.get("run_id") or "",
                   source=mv.get("source") or "", tags=_pairs(mv.get("tags")), aliases=list(mv.get("aliases") or []),
                   created_ms=_int(mv.get("creation_timestamp")))


@dataclass
class RunInfo:
    run_id: str
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    start_ms: int | None = None
    end_ms: int | None = None
    git_commit: str | None = None  # the tag mlflow.source.git.commit
    dataset_digests: list[str] = field(default_factory=list)  # of the run's dataset inputs

    @classmethod
    def from_json(cls, run: dict) -> RunInfo:
        info, data = run.get("info") or {}, run.get("data") or {}
        tags = _pairs(data.get("tags"))
        metrics = {}
        for m in data.get("metrics") or ():
            try:
                metrics[m["key"]] = float(m["value"])
            except (KeyError, TypeError, ValueError):
                continue
        digests = [d["dataset"]["digest"] for d in (run.get("inputs") or {}).get("dataset_inputs") or ()
                   if (d.get("dataset") or {}).get("digest")]
        return cls(run_id=info.get("run_id") or info.get("run_uuid") or "", params=_pairs(data.get("params")),
                   metrics=metrics, tags=tags, start_ms=_int(info.get("start_time")),
                   end_ms=_int(info.get("end_time")), git_commit=tags.get(GIT_COMMIT_TAG),
                   dataset_digests=digests)


class _ApiError(SourceError):
    """Any other refusal of the API (a 400 and its MLflow error code)."""

    def __init__(self, message: str, error_code: str = "", status: int = 0):
        super().__init__(message)
        self.error_code = error_code
        self.status = status


class MissingSetting(SourceError, ValueError):
    """A setting the client cannot do without is not in the credentials (a ValueError,
    and a SourceError so the CLI reports it in its one line)."""

    cause = "missing setting"


def _pairs(items: Any) -> dict[str, str]:
    """MLflow's [{"key": k, "value": v}, ...] as a dict."""
    return {str(i["key"]): "" if i.get("value") is None else str(i["value"])
            for i in items or () if isinstance(i, dict) and "key" in i}


def _int(v: Any) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def _now_ms() -> int:
    return int(time.time() * 1000)


def _safe_relpath(relpath: str) -> str:
    """A path inside a version's directory: no absolute paths, no '..' or empty segments."""
    parts = relpath.split("/")
    if not relpath or relpath.startswith("/") or "\\" in relpath or any(p in ("", ".", "..") for p in parts):
        raise InvalidModel(f"{relpath!r} is not a path inside a model directory")
    return relpath


def _check_artifact_path(rel: str) -> str:
    """A file name the artifact proxy keeps as it is: MLflow refuses "#" and backslashes,
    decodes %XX repeatedly (so "a%20b" would land as "a b") and escapes control characters."""
    bad = sorted({c for c in rel if c in "#%\\" or ord(c) < 32 or ord(c) == 127})
    if bad:
        raise InvalidModel(f"{rel!r}: MLflow cannot store a file whose path holds {' '.join(map(repr, bad))}")
    return rel


def _cert_verification_failed(exc: BaseException | None) -> bool:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ssl.SSLCertVerificationError):
            return True
        reason = getattr(exc, "reason", None)  # URLError keeps the cause in .reason
        if isinstance(reason, BaseException) and reason is not exc and _cert_verification_failed(reason):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _param_value(v: Any) -> str:
    return json.dumps(v, sort_keys=True) if isinstance(v, (dict, list, tuple)) else str(v)


class MlflowClient:
    def __init__(self, tracking_uri: str, token: str | None = None, username: str | None = None,
                 password: str | None = None, ca_bundle: str | None = None, timeout: float = 10.0):
        """tracking_uri: http(s)://HOST[:PORT][/PREFIX] of the tracking server. A token wins
        over a username/password. ca_bundle: a PEM file of the CAs to trust for https."""
        parts = urllib.parse.urlsplit(tracking_uri.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SourceError(f"MLflow tracking URI {self._display(tracking_uri)!r}: want http(s)://HOST[:PORT]")
        try:
            port = parts.port
        except ValueError:
            raise SourceError(f"MLflow tracking URI {self._display(tracking_uri)!r}: invalid port") from None
        if parts.username and not (token or username):  # http://user:pass@host
            username = urllib.parse.unquote(parts.username)
            password = urllib.parse.unquote(parts.password or "")
        netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        if port:
            netloc += f":{port}"
        self.tracking_uri = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        self.timeout = timeout
        self._secrets = tuple(s for s in (token, password) if s)
        if token:
            self._auth: str | None = f"Bearer {token}"
        elif username:
            raw = f"{username}:{password or ''}".encode()
            self._auth = "Basic " + base64.b64encode(raw).decode("ascii")
        else:
            self._auth = None
        if ca_bundle is not None and not os.path.isfile(ca_bundle):
            raise UntrustedCertificate(f"{self._where()}: the CA bundle {ca_bundle} is not a readable file")
        self._ssl = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else ssl.create_default_context()
        self._opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=self._ssl))
        self._download_uris: dict[tuple[str, str], str] = {}

    @classmethod
    def from_credentials(cls, creds: Credentials, timeout: float = 10.0) -> MlflowClient:
        uri = creds.get("MLFLOW_TRACKING_URI")
        if not uri:
            raise MissingSetting("MLFLOW_TRACKING_URI is not set (neither in the credentials Secret nor in the "
                                 "environment)")
        return cls(uri, token=creds.get("MLFLOW_TRACKING_TOKEN"), username=creds.get("MLFLOW_TRACKING_USERNAME"),
                   password=creds.get("MLFLOW_TRACKING_PASSWORD"), ca_bundle=creds.ca_bundle, timeout=timeout)

    # --- registry and runs -------------------------------------------------------------

    def model_version(self, name: str, version: str) -> ModelVersion:
        what = f"version {version} of registered model {name!r}"
        body = self._api("GET", "model-versions/get", what, query={"name": name, "version": str(version)})
        return ModelVersion.from_json(body.get("model_version") or {})

    def alias(self, name: str, alias: str) -> ModelVersion:
        what = f"alias {alias!r} of registered model {name!r}"
        try:
            body = self._api("GET", "registered-models/alias", what, query={"name": name, "alias": alias})
        except _ApiError as e:
            # MLflow answers an unknown alias of an existing model with a 400
            # INVALID_PARAMETER_VALUE "Registered model alias X not found."
            if "not found" in e.message.lower():
                raise NotFound(f"{self._where()}: {what} not found") from None
            raise
        return ModelVersion.from_json(body.get("model_version") or {})

    def run(self, run_id: str) -> RunInfo:
        body = self._api("GET", "runs/get", f"run {run_id!r}", query={"run_id": run_id})
        return RunInfo.from_json(body.get("run") or {})

    def download_uri(self, name: str, version: str) -> str:
        key = (name, str(version))
        if key not in self._download_uris:  # a version's artifacts never move
            body = self._api("GET", "model-versions/get-download-uri",
                             f"version {version} of registered model {name!r}",
                             query={"name": name, "version": str(version)})
            self._download_uris[key] = body.get("artifact_uri") or ""
        return self._download_uris[key]

    # --- a version's files -------------------------------------------------------------

    def list_files(self, name: str, version: str) -> list[tuple[str, int]]:
        """Every file under the version's artifact directory, recursively: (path relative
        to it, size), sorted by path."""
        root = self._artifact_path(self.download_uri(name, version))
        out: list[tuple[str, int]] = []
        todo = [""]
        while todo:
            sub = todo.pop()
            path = posixpath.join(root, sub) if sub else root
            what = f"the files of version {version} of registered model {name!r}"
            body = self._request("GET", ARTIFACTS_API, what, query={"path": path})
            for f in body.get("files") or ():
                rel = posixpath.join(sub, posixpath.basename(f["path"].rstrip("/"))) if sub \
                    else posixpath.basename(f["path"].rstrip("/"))
                if f.get("is_dir"):
                    todo.append(rel)
                else:
                    out.append((rel, int(f.get("file_size") or 0)))
        return sorted(out)

    def get_bytes(self, name: str, version: str, relpath: str, max_bytes: int | None = None) -> bytes:
        """A file of the version; only its first max_bytes when given (the rest is not read)."""
        url, what = self._file(name, version, relpath)
        with self._open("GET", url, what) as resp:
            try:
                return resp.read() if max_bytes is None else resp.read(max_bytes)
            except (OSError, http.client.HTTPException) as e:
                raise self._transport_error(e, what) from None

    def download(self, name: str, version: str, relpath: str, dest: Path, max_bytes: int | None = None) -> None:
        """Streams a file of the version to dest (parent directories created) through
        dest + ".part", renamed into place once complete; the partial file is removed on
        failure."""
        url, what = self._file(name, version, relpath)
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        try:
            with self._open("GET", url, what) as resp:
                expected, written = _int(resp.headers.get("Content-Length")), 0
                with open(part, "wb") as f:
                    while True:
                        try:
                            chunk = resp.read(CHUNK)
                        except (OSError, http.client.HTTPException) as e:  # the network, not our disk
                            raise self._transport_error(e, what) from None
                        if not chunk:
                            break
                        written += len(chunk)
                        if max_bytes is not None and written > max_bytes:
                            raise Mismatch(f"{relpath} is larger than the {max_bytes} bytes metadata.json lists")
                        f.write(chunk)
            if expected is not None and written != expected:
                raise Unreachable(f"{self._where()}: {what}: the connection ended after {written} of "
                                  f"{expected} bytes")
            os.replace(part, dest)
        except BaseException:
            part.unlink(missing_ok=True)
            raise

    # --- publishing ----------------------------------------------------------------------

    def publish(self, model_dir: Path, name: str, semver: str, params: dict, metrics: dict,
                tags: dict | None = None, alias: str | None = None, experiment: str = "modelops") -> ModelVersion:
        """A new version of registered model `name` (created if absent) backed by a
        finished run of `experiment` that logged params, metrics and tags and holds every
        file of model_dir under its "model/" artifacts. The version is tagged
        modelops.semver=semver; `alias`, when given, moves to it."""
        model_dir = Path(model_dir)
        if not model_dir.is_dir():
            raise InvalidModel(f"{model_dir} is not a directory")
        files = sorted(p for p in model_dir.rglob("*") if p.is_file())
        for path in files:  # before anything is created
            _check_artifact_path(path.relative_to(model_dir).as_posix())
        values = {}
        for k, v in (metrics or {}).items():
            try:
                values[str(k)] = float(v)
            except (TypeError, ValueError):
                raise InvalidModel(f"metric {k!r} is {v!r}, not a number") from None
        experiment_id = self._experiment_id(experiment)
        run_tags = {"mlflow.runName": f"{name}-{semver}", **{str(k): str(v) for k, v in (tags or {}).items()}}
        run = self._api("POST", "runs/create", f"a run of experiment {experiment!r}", body={
            "experiment_id": experiment_id, "start_time": _now_ms(), "run_name": run_tags["mlflow.runName"],
            "tags": [{"key": k, "value": v} for k, v in run_tags.items()]})["run"]["info"]
        run_id, artifact_uri = run["run_id"], run["artifact_uri"]
        try:
            self._log_batch(run_id, {str(k): _param_value(v) for k, v in (params or {}).items()}, values)
            root = posixpath.join(self._artifact_path(artifact_uri), MODEL_ARTIFACT_DIR)
            for path in files:
                rel = path.relative_to(model_dir).as_posix()
                self._upload(path, posixpath.join(root, rel), f"artifact {MODEL_ARTIFACT_DIR}/{rel} of run {run_id}")
        except BaseException:
            try:
                self._end_run(run_id, "FAILED")
            except SourceError:
                pass
            raise
        self._end_run(run_id, "FINISHED")
        try:
            self._api("POST", "registered-models/create", f"registered model {name!r}", body={"name": name})
        except _ApiError as e:
            if e.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        mv = self._api("POST", "model-versions/create", f"a version of registered model {name!r}", body={
            "name": name, "source": f"{artifact_uri.rstrip('/')}/{MODEL_ARTIFACT_DIR}", "run_id": run_id,
            "tags": [{"key": SEMVER_TAG, "value": semver}]})["model_version"]
        version = str(mv["version"])
        self._wait_ready(name, version)
        if alias:
            self._api("POST", "registered-models/alias", f"alias {alias!r} of registered model {name!r}",
                      body={"name": name, "alias": alias, "version": version})
        return self.model_version(name, version)

    def _experiment_id(self, experiment: str) -> str:
        what = f"experiment {experiment!r}"
        for _ in range(2):
            try:
                body = self._api("GET", "experiments/get-by-name", what, query={"experiment_name": experiment})
                return str(body["experiment"]["experiment_id"])
            except NotFound:
                pass
            try:
                return str(self._api("POST", "experiments/create", what, body={"name": experiment})["experiment_id"])
            except _ApiError as e:  # created by someone else meanwhile
                if e.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
        raise SourceError(f"{self._where()}: {what} could neither be found nor created")

    def _log_batch(self, run_id: str, params: dict[str, str], metrics: dict[str, float]) -> None:
        what, now = f"the params and metrics of run {run_id}", _now_ms()
        items = list(params.items())
        for i in range(0, len(items), PARAMS_PER_BATCH):
            self._api("POST", "runs/log-batch", what, body={
                "run_id": run_id, "params": [{"key": k, "value": v} for k, v in items[i:i + PARAMS_PER_BATCH]]})
        m = list(metrics.items())
        for i in range(0, len(m), METRICS_PER_BATCH):
            self._api("POST", "runs/log-batch", what, body={"run_id": run_id, "metrics": [
                {"key": k, "value": v, "timestamp": now, "step": 0} for k, v in m[i:i + METRICS_PER_BATCH]]})

    def _end_run(self, run_id: str, status: str) -> None:
        self._api("POST", "runs/update", f"run {run_id}",
                  body={"run_id": run_id, "status": status, "end_time": _now_ms()})

    def _wait_ready(self, name: str, version: str, timeout: float = 60) -> None:
        """Waits while the registry copies the version's files (PENDING_REGISTRATION)."""
        deadline = time.monotonic() + timeout
        while True:
            mv = self._api("GET", "model-versions/get", f"version {version} of registered model {name!r}",
                           query={"name": name, "version": version})["model_version"]
            status = mv.get("status", "READY")
            if status == "READY":
                return
            if status == "FAILED_REGISTRATION" or time.monotonic() > deadline:
                raise SourceError(f"{self._where()}: version {version} of registered model {name!r} is {status}"
                                  f"{': ' + mv['status_message'] if mv.get('status_message') else ''}")
            time.sleep(0.5)

    def _upload(self, path: Path, artifact_path: str, what: str) -> None:
        url = self.tracking_uri + ARTIFACTS_API + "/" + urllib.parse.quote(artifact_path, safe="/")
        size = path.stat().st_size
        with open(path, "rb") as f:
            headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
            with self._open("PUT", url, what, data=f, headers=headers) as resp:
                resp.read()

    # --- HTTP ----------------------------------------------------------------------------

    def _artifact_path(self, uri: str) -> str:
        """The artifact proxy's path of an mlflow-artifacts URI; a SourceError naming any
        other scheme (those stores are not read yet)."""
        parts = urllib.parse.urlsplit(uri)
        if parts.scheme != ARTIFACTS_SCHEME:
            scheme = parts.scheme or "a local path"
            raise SourceError(f"{self._where()}: artifacts at {uri!r} ({scheme}) cannot be read yet; only "
                              f"{ARTIFACTS_SCHEME}:/ (the tracking server's artifact proxy, `mlflow server "
                              "--serve-artifacts`) is supported")
        return parts.path.strip("/")

    def _file(self, name: str, version: str, relpath: str) -> tuple[str, str]:
        rel = _safe_relpath(relpath)
        root = self._artifact_path(self.download_uri(name, version))
        url = self.tracking_uri + ARTIFACTS_API + "/" + urllib.parse.quote(posixpath.join(root, rel), safe="/")
        return url, f"file {rel!r} of version {version} of registered model {name!r}"

    def _api(self, method: str, endpoint: str, what: str, query: dict | None = None, body: dict | None = None) -> dict:
        return self._request(method, f"{API}/{endpoint}", what, query=query, body=body)

    def _request(self, method: str, path: str, what: str, query: dict | None = None, body: dict | None = None) -> dict:
        url = self.tracking_uri + path + ("?" + urllib.parse.urlencode(query) if query else "")
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        with self._open(method, url, what, data=data, headers=headers) as resp:
            try:
                raw = resp.read()
            except (OSError, http.client.HTTPException) as e:
                raise self._transport_error(e, what) from None
        try:
            return json.loads(raw) if raw.strip() else {}
        except ValueError:
            raise Unreachable(f"{self._where()}: {what}: the answer is not JSON "
                              f"({self._redact(raw[:ERROR_TEXT].decode(errors='replace'))!r})") from None

    def _open(self, method: str, url: str, what: str, data: Any = None, headers: dict | None = None):
        req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
        req.add_header("Accept", "application/json")
        if self._auth:
            # Unredirected: a redirect elsewhere never carries the credentials.
            req.add_unredirected_header("Authorization", self._auth)
        try:
            return self._opener.open(req, timeout=self.timeout)
        except urllib.error.HTTPError as e:
            raise self._http_error(e, what) from None
        except (OSError, http.client.HTTPException) as e:
            raise self._transport_error(e, what) from None

    def _http_error(self, e: urllib.error.HTTPError, what: str) -> SourceError:
        try:
            text = e.read().decode(errors="replace")
        except (OSError, http.client.HTTPException):
            text = ""
        finally:
            e.close()
        code, message = "", text.strip()
        try:
            doc = json.loads(text)
            code, message = str(doc.get("error_code", "")), str(doc.get("message", message))
        except (ValueError, AttributeError):
            pass
        detail = f"{code}: {message}" if code else (message or f"HTTP {e.code}")
        detail = self._redact(" ".join(detail.split()))[:ERROR_TEXT]
        where = self._where()
        if e.code in (401, 403):
            return BadCredentials(f"{where}: the registry refused the credentials for {what} "
                                  f"(HTTP {e.code}: {detail})")
        if code == "RESOURCE_DOES_NOT_EXIST" or e.code == 404:
            return NotFound(f"{where}: {what} not found ({detail})")
        if e.code >= 500:
            return Unreachable(f"{where}: {what}: the server answered HTTP {e.code} ({detail})")
        return _ApiError(f"{where}: {what}: HTTP {e.code} ({detail})", code, e.code)

    def _transport_error(self, e: BaseException, what: str) -> SourceError:
        where = self._where()
        if _cert_verification_failed(e):
            return UntrustedCertificate(f"{where}: the server's certificate is not signed by a trusted CA "
                                        f"({self._redact(str(getattr(e, 'reason', e)))})")
        if isinstance(e, (TimeoutError, socket.timeout)) or isinstance(getattr(e, "reason", None), TimeoutError):
            return Unreachable(f"{where}: {what}: timed out after {self.timeout:g}s")
        reason = getattr(e, "reason", None) or e
        return Unreachable(f"{where}: {what}: {self._redact(str(reason)) or type(e).__name__}")

    def _where(self) -> str:
        return f"MLflow registry {self._display(getattr(self, 'tracking_uri', ''))}"

    @staticmethod
    def _display(uri: str) -> str:
        parts = urllib.parse.urlsplit(uri)
        if parts.username or parts.password:  # never show userinfo
            parts = parts._replace(netloc=parts.netloc.rsplit("@", 1)[1])
        return urllib.parse.urlunsplit(parts)

    def _redact(self, text: str) -> str:
        for secret in getattr(self, "_secrets", ()):
            text = text.replace(secret, "***")
        return text


# --- the Source of sources/base.py --------------------------------------------------------

@dataclass
class MlflowSource:
    """One registered model version (an alias is pinned to its version when opened)."""

    uri: ModelUri
    client: MlflowClient
    version: ModelVersion

    def read(self, rel: str, max_bytes: int) -> bytes:
        return self.client.get_bytes(self.uri.name, self.uri.version, rel, max_bytes)

    def download(self, rel: str, dest: Path, max_bytes: int | None = None) -> None:
        self.client.download(self.uri.name, self.uri.version, rel, dest, max_bytes)

    def details(self) -> dict:
        """The version's run: id, git commit, training time, dataset digest, params, metrics."""
        out: dict[str, Any] = {"registry_version": self.version.version, "semver": self.version.tags.get(SEMVER_TAG)}
        if not self.version.run_id:
            return out
        out["run_id"] = self.version.run_id
        try:
            run = self.client.run(self.version.run_id)
        except NotFound:  # the run was deleted; the version's files remain
            return out
        trained = run.tags.get(TRAINING_DATE_TAG)
        if not trained and (run.end_ms or run.start_ms):
            stamp = (run.end_ms or run.start_ms) / 1000
            trained = datetime.fromtimestamp(stamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        out.update(git_commit=run.git_commit, trained_at=trained,
                   dataset_digest=(run.dataset_digests[0] if run.dataset_digests else run.tags.get(TRAINING_DATA_TAG)),
                   params=run.params, metrics=run.metrics)
        return out


def open_source(uri: ModelUri, creds: Credentials) -> MlflowSource:
    client = MlflowClient.from_credentials(creds)
    mv = client.alias(uri.name, uri.alias) if uri.alias and not uri.version else client.model_version(uri.name,
                                                                                                      uri.version)
    return MlflowSource(uri.at_version(mv.version), client, mv)
