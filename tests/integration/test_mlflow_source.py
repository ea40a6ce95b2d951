"""modelops_services.sources.mlflow against a real MLflow tracking server and Model
Registry (tests/mlflowserver.py, basic auth on): publishing a model directory as a run
and a registered model version, resolving versions and aliases, listing and downloading
the version's files through the artifact proxy, and each failure mapped onto its
sources.errors exception."""

import hashlib
import json
import socket
import ssl
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from modelops_services.sources.base import open_source
from modelops_services.sources.credentials import Credentials
from modelops_services.sources.errors import (
    BadCredentials,
    InvalidModel,
    NotFound,
    SourceError,
    Unreachable,
    UntrustedCertificate,
)
from modelops_services.sources.fetch import fetch
from modelops_services.sources.mlflow import MlflowClient
from modelops_services.sources.publish import publish as publish_dir
from modelops_services.sources.resolve import resolve
from modelops_services.sources.uri import ModelUri, parse

from ..mlflowserver import free_port
from ..s3store import make_tls_files

GIT_COMMIT = "0123456789abcdef0123456789abcdef01234567"


def admin(server, **kwargs) -> MlflowClient:
    return MlflowClient(server.url, username=server.username, password=server.password, **kwargs)


def write_model(root: Path, version: str = "1.0.0", payload: bytes = b"weights") -> dict[str, bytes]:
    """A small model directory: a multi-chunk binary, metadata.json, and a nested file
    whose path needs quoting. Returns {relative path: bytes}."""
    files = {
        "metadata.json": json.dumps({"name": "churn", "version": version, "framework": "sklearn"}).encode(),
        "model.joblib": payload + bytes(range(256)) * 5000,  # > 1 MiB: several download chunks
        "profile.json": b"{}",
        "empty.txt": b"",
        "sub dir/weights+1 & ü;v=2.bin": b"\x00\x01\x02" * 10,
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


@pytest.fixture(scope="module")
def published(mlflow_server, tmp_path_factory):
    """Version 1 of a fresh registered model, alias "champion", published once."""
    name = f"churn-{uuid.uuid4().hex[:8]}"
    d = tmp_path_factory.mktemp("model-v1")
    files = write_model(d)
    mv = admin(mlflow_server).publish(
        d, name, "1.0.0", params={"C": 1.0, "penalty": "l2", "grid": {"depth": [3, 5]}},
        metrics={"auc": 0.91, "accuracy": "0.875"}, tags={"mlflow.source.git.commit": GIT_COMMIT, "team": "risk"},
        alias="champion")
    return name, mv, files


def test_publish_resolves_by_version_and_alias(mlflow_server, published):
    name, mv, _ = published
    assert (mv.name, mv.version) == (name, "1")
    assert mv.tags["modelops.semver"] == "1.0.0"
    assert mv.aliases == ["champion"]
    assert mv.run_id and mv.source.startswith("mlflow-artifacts:/")
    assert mv.source.endswith(f"/{mv.run_id}/artifacts/model")
    assert isinstance(mv.created_ms, int) and abs(mv.created_ms / 1000 - time.time()) < 600

    client = admin(mlflow_server)
    assert client.model_version(name, "1") == mv
    assert client.alias(name, "champion") == mv
    assert client.download_uri(name, "1") == mv.source


def test_list_files_and_download_round_trip(mlflow_server, published, tmp_path):
    name, _, files = published
    client = admin(mlflow_server)
    assert client.list_files(name, "1") == sorted((rel, len(data)) for rel, data in files.items())
    for rel, data in files.items():
        dest = tmp_path / "out" / rel
        client.download(name, "1", rel, dest)
        assert dest.read_bytes() == data, rel
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "empty.txt", "metadata.json", "model.joblib", "profile.json", "sub dir"]  # no .part left behind
    assert client.get_bytes(name, "1", "metadata.json") == files["metadata.json"]
    assert client.get_bytes(name, "1", "model.joblib", max_bytes=7) == b"weights"


def test_a_path_mlflow_would_change_is_refused_before_anything_is_created(mlflow_server, tmp_path):
    name = f"bad-{uuid.uuid4().hex[:8]}"
    write_model(tmp_path)
    (tmp_path / "weights #2.bin").write_bytes(b"x")
    with pytest.raises(InvalidModel, match="'#'"):
        admin(mlflow_server).publish(tmp_path, name, "1.0.0", params={}, metrics={})
    with pytest.raises(NotFound):
        admin(mlflow_server).model_version(name, "1")


def test_run_has_the_params_metrics_and_git_commit(mlflow_server, published):
    _, mv, _ = published
    run = admin(mlflow_server).run(mv.run_id)
    assert run.run_id == mv.run_id
    assert run.params == {"C": "1.0", "penalty": "l2", "grid": '{"depth": [3, 5]}'}
    assert run.metrics == {"auc": 0.91, "accuracy": 0.875}
    assert run.git_commit == GIT_COMMIT
    assert run.tags["team"] == "risk"
    assert run.start_ms and run.end_ms and run.start_ms <= run.end_ms
    assert run.dataset_digests == []


def test_alias_moved_to_a_new_version_resolves_to_it(mlflow_server, published, tmp_path):
    name, _, _ = published
    client = admin(mlflow_server)
    write_model(tmp_path, version="1.1.0", payload=b"better weights")
    mv2 = client.publish(tmp_path, name, "1.1.0", params={"C": 0.5}, metrics={"auc": 0.93}, alias="champion")
    assert mv2.version == "2" and mv2.tags["modelops.semver"] == "1.1.0"
    assert client.alias(name, "champion").version == "2"
    assert client.model_version(name, "1").aliases == []
    assert client.get_bytes(name, "2", "model.joblib", max_bytes=14) == b"better weights"
    # An alias is pinned once, when the source is opened.
    creds = Credentials.load(env=mlflow_server.env())
    src = open_source(parse(f"models:/{name}@champion"), creds)
    assert str(src.uri) == f"models:/{name}/2"
    details = src.details()
    assert (details["run_id"], details["metrics"], details["params"]) == (mv2.run_id, {"auc": 0.93}, {"C": "0.5"})


def test_unknown_model_version_alias_run_and_file_are_not_found(mlflow_server, published):
    name, mv, _ = published
    client = admin(mlflow_server)
    cases = [
        (lambda: client.model_version("no-such-model", "1"), "'no-such-model'"),
        (lambda: client.model_version(name, "999"), "version 999"),
        (lambda: client.alias(name, "nobody"), "alias 'nobody'"),
        (lambda: client.alias("no-such-model", "champion"), "'no-such-model'"),
        (lambda: client.run("0" * 32), "0" * 32),
        (lambda: client.list_files("no-such-model", "1"), "'no-such-model'"),
        (lambda: client.get_bytes(name, "1", "nothing.bin"), "'nothing.bin'"),
    ]
    for call, named in cases:
        with pytest.raises(NotFound) as e:
            call()
        assert named in str(e.value), str(e.value)


def test_a_stopped_port_is_unreachable():
    client = MlflowClient(f"http://127.0.0.1:{free_port()}", timeout=5)
    started = time.monotonic()
    with pytest.raises(Unreachable, match="MLflow registry http://127.0.0.1:"):
        client.model_version("churn", "1")
    assert time.monotonic() - started < 5


def test_refused_credentials(mlflow_server, published):
    name, _, _ = published
    for client in (MlflowClient(mlflow_server.url, username="admin", password="wrong-password-xyz"),
                   MlflowClient(mlflow_server.url)):
        with pytest.raises(BadCredentials, match="HTTP 401") as e:
            client.model_version(name, "1")
        assert "wrong-password-xyz" not in str(e.value)
    # A known user without permission on the model: 403.
    user, password = f"u{uuid.uuid4().hex[:8]}", "reader-password-123"
    mlflow_server.create_user(user, password)
    with pytest.raises(BadCredentials, match="HTTP 403"):
        MlflowClient(mlflow_server.url, username=user, password=password).alias(name, "champion")


class Stub:
    """A loopback HTTP server answering every request with one canned status and body
    (after `delay` seconds); it records the requests' Authorization headers."""

    def __init__(self, status: int, body: bytes = b"{}", delay: float = 0):
        seen = self.auth = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                seen.append(self.headers.get("Authorization"))
                time.sleep(delay)
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_a_token_is_sent_as_bearer_and_refusals_and_5xx_are_told_apart():
    refused = Stub(401, b'{"error_code": "UNAUTHENTICATED", "message": "bad token some-token-xyz"}')
    broken = Stub(503, b"upstream connect error")
    slow = Stub(200, delay=3)
    try:
        with pytest.raises(BadCredentials, match="HTTP 401: UNAUTHENTICATED") as e:
            MlflowClient(refused.url, token="some-token-xyz", username="ignored").alias("churn", "prod")
        assert refused.auth == ["Bearer some-token-xyz"]
        assert "some-token-xyz" not in str(e.value)  # not even when the server echoes it
        with pytest.raises(Unreachable, match="HTTP 503"):
            MlflowClient(broken.url).model_version("churn", "1")
        with pytest.raises(Unreachable, match="timed out after 1s"):
            MlflowClient(slow.url, timeout=1).model_version("churn", "1")
    finally:
        for stub in (refused, broken, slow):
            stub.close()


def test_from_credentials(mlflow_server, published):
    name, _, _ = published
    client = MlflowClient.from_credentials(Credentials.load(env=mlflow_server.env()))
    assert client.alias(name, "champion").name == name
    with pytest.raises(ValueError, match="MLFLOW_TRACKING_URI") as e:
        MlflowClient.from_credentials(Credentials.load(env={"MLFLOW_TRACKING_TOKEN": "t"}))
    assert isinstance(e.value, SourceError)  # the CLI's one-line failure
    with pytest.raises(SourceError, match="want http"):
        MlflowClient("databricks")


def test_an_artifact_store_other_than_the_proxy_is_named(mlflow_server, published):
    """A version whose files live in s3:// (not behind the artifact proxy) is refused,
    naming the scheme."""
    name, mv, _ = published
    client = admin(mlflow_server)
    created = client._api("POST", "model-versions/create", "a version", body={
        "name": name, "source": "s3://some-bucket/models/churn", "run_id": mv.run_id})["model_version"]
    assert client.download_uri(name, created["version"]) == "s3://some-bucket/models/churn"
    with pytest.raises(SourceError, match=r"\(s3\) cannot be read yet"):
        client.list_files(name, created["version"])


def test_cli_paths_publish_resolve_fetch(mlflow_server, tmp_path):
    """sources.publish / resolve / fetch (the `modelops` commands) through the registry:
    digests in metadata.json, an alias pinned, every file verified into the cache."""
    d = tmp_path / "model"
    d.mkdir()
    (d / "metadata.json").write_text(json.dumps({
        "name": "churn", "version": "2.0.0", "framework": "sklearn", "task": "classification", "features": [],
        "hyperparameters": {"C": 1.0}, "metrics": {"auc": 0.9}, "code_version": GIT_COMMIT}))
    (d / "model.joblib").write_bytes(b"joblib bytes")
    (d / "profile.json").write_text("{}")
    name = f"cli-{uuid.uuid4().hex[:8]}"
    creds = Credentials.load(env=mlflow_server.env())
    # models:/NAME (no version: the registry numbers it); uri.parse does not take that form yet.
    pinned, digest = publish_dir(d, ModelUri("models", name=name), creds, alias="prod")
    assert pinned == f"models:/{name}/1"
    r = resolve(parse(f"models:/{name}@prod"), creds)
    assert (r.uri, r.digest, r.version, r.registryVersion) == (pinned, digest, "2.0.0", "1")
    assert r.source["gitCommit"] == GIT_COMMIT and r.source["runId"]
    assert r.metrics == {"auc": 0.9} and r.hyperparameters == {"C": "1.0"}
    entry = fetch(parse(pinned), creds, tmp_path / "cache", digest, "2.0.0")
    assert (entry / "model.joblib").read_bytes() == b"joblib bytes"
    assert hashlib.sha256((entry / "metadata.json").read_bytes()).hexdigest() == digest.removeprefix("sha256:")


# --- TLS ----------------------------------------------------------------------------------

class TlsProxy:
    """Terminates TLS (a certificate from a fresh test CA) on a loopback port and relays
    the plain bytes to the MLflow server."""

    def __init__(self, target_port: int, cert: Path, key: Path):
        self.target_port = target_port
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            tls = self.ctx.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            conn.close()  # the client refused our certificate
            return
        upstream = socket.create_connection(("127.0.0.1", self.target_port))
        threading.Thread(target=self._pump, args=(upstream, tls), daemon=True).start()
        self._pump(tls, upstream)

    @staticmethod
    def _pump(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.sock.close()


def test_tls_needs_the_ca_bundle(mlflow_server, published, tmp_path):
    name, mv, _ = published
    ca, cert, key = make_tls_files(tmp_path / "tls")
    proxy = TlsProxy(mlflow_server.port, cert, key)
    try:
        url = f"https://127.0.0.1:{proxy.port}"
        with pytest.raises(UntrustedCertificate, match="not signed by a trusted CA"):
            MlflowClient(url, username=mlflow_server.username, password=mlflow_server.password).alias(name, "champion")
        with pytest.raises(UntrustedCertificate, match="is not a readable file"):
            MlflowClient(url, ca_bundle=str(tmp_path / "missing.crt"))
        client = MlflowClient(url, username=mlflow_server.username, password=mlflow_server.password,
                              ca_bundle=str(ca))
        assert client.model_version(name, "1").run_id == mv.run_id
        assert client.get_bytes(name, "1", "profile.json") == b"{}"
    finally:
        proxy.close()
