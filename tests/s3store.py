"""A real S3-compatible store for tests: the Versity S3 gateway (versitygw, built by
hack/build-versity.sh) serving a directory through its posix backend, on a free loopback
port, over plain HTTP or HTTPS with a self-signed CA made for the occasion.

- start_versity(workdir, tls=False, port=None) -> S3Store: started, answering, with a
  root account of random keys; store.stop() ends it.
- store.credentials_env() / store.secret_data(): the keys in the standard AWS_* names, as
  a process environment or as a Kubernetes Secret's stringData ("ca.crt": the CA's PEM).
- Session fixtures `versity` (http) and `versity_tls` (https), imported by
  tests/conftest.py; they build the binary first when it is missing.
"""

from __future__ import annotations

import http.client
import os
import secrets
import socket
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
START_TIMEOUT = 30  # seconds until the gateway must answer


def versitygw_binary(timeout: float = 1800) -> Path:
    """hack/build-versity.sh (builds versitygw when missing: a few minutes cold, ~0.05 s
    otherwise); returns the binary's path, the script's last line of output."""
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.run(["bash", str(ROOT / "hack" / "build-versity.sh")], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=err, text=True, timeout=timeout, check=False)
        if proc.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"hack/build-versity.sh failed ({proc.returncode}):\n{err.read()[-4000:]}")
    path = Path(proc.stdout.strip().splitlines()[-1])
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"hack/build-versity.sh printed {path}, which is not an executable")
    return path


@dataclass
class S3Store:
    endpoint: str  # http(s)://127.0.0.1:PORT
    access_key: str
    secret_key: str = field(repr=False)
    region: str
    ca_bundle: Path | None  # the self-signed CA's PEM when TLS, else None
    data_dir: Path  # the posix backend's root: one directory per bucket
    port: int
    log_file: Path = field(repr=False)
    _proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def tls(self) -> bool:
        return self.ca_bundle is not None

    def credentials_env(self, ca: bool = True) -> dict[str, str]:
        """The keys as environment variables; with TLS and ca, AWS_CA_BUNDLE too."""
        env = {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
               "AWS_DEFAULT_REGION": self.region, "AWS_ENDPOINT_URL": self.endpoint}
        if ca and self.ca_bundle:
            env["AWS_CA_BUNDLE"] = str(self.ca_bundle)
        return env

    def secret_data(self, ca: bool = True) -> dict[str, str]:
        """A Secret's string data: the four AWS_* keys, and "ca.crt" (the CA's PEM) with TLS and ca."""
        data = self.credentials_env(ca=False)
        if ca and self.ca_bundle:
            data["ca.crt"] = self.ca_bundle.read_text()
        return data

    def log(self, chars: int = 4000) -> str:
        return self.log_file.read_text(errors="replace")[-chars:] if self.log_file.exists() else "(no log)"

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")


def make_tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """A self-signed CA and a server certificate it signs for 127.0.0.1 and localhost
    (P-256 keys, valid a week): (ca.crt, server.crt, server.key)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "server.ext").write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid,issuer\n")
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "7",
             "-subj", "/CN=modelops test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)
    _openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost", cwd=directory)
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "7", "-extfile", "server.ext", "-out", "server.crt", cwd=directory)
    return directory / "ca.crt", directory / "server.crt", directory / "server.key"


def _xattrs_supported(directory: Path) -> bool:
    """The posix backend keeps object metadata (ETag, checksums, content type) in user.*
    extended attributes; where the filesystem has none it needs a sidecar directory."""
    try:
        os.setxattr(directory, "user.modelops-probe", b"1")
        os.removexattr(directory, "user.modelops-probe")
        return True
    except OSError:
        return False


def _answers(endpoint: str, ca: Path | None) -> bool:
    """Whether anything HTTP answers at endpoint (any status: an anonymous GET is refused)."""
    host_port = endpoint.split("://", 1)[1]
    if endpoint.startswith("https://"):
        conn = http.client.HTTPSConnection(host_port, timeout=2, context=ssl.create_default_context(cafile=str(ca)))
    else:
        conn = http.client.HTTPConnection(host_port, timeout=2)
    try:
        conn.request("GET", "/")
        conn.getresponse().read()
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def start_versity(workdir: Path, tls: bool = False, port: int | None = None,
                  binary: Path | None = None) -> S3Store:
    """Starts versitygw serving workdir/data on 127.0.0.1:port (a free one by default) and
    returns once it answers HTTP(S). With tls, its certificate is signed by a fresh CA
    (workdir/tls/ca.crt)."""
    workdir = Path(workdir)
    data_dir = workdir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    binary = binary or versitygw_binary()
    port = port or free_port()
    access_key = "modelops" + secrets.token_hex(6)
    secret_key = secrets.token_urlsafe(30)
    args = [str(binary), "--port", f"127.0.0.1:{port}", "--region", REGION, "--quiet"]
    ca_bundle = None
    if tls:
        ca_bundle, cert, key = make_tls_files(workdir / "tls")
        args += ["--cert", str(cert), "--key", str(key)]
    args += ["posix"]
    if not _xattrs_supported(data_dir):
        sidecar = workdir / "meta"
        sidecar.mkdir(exist_ok=True)
        args += ["--sidecar", str(sidecar)]
    args += [str(data_dir)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VGW_", "ROOT_", "AWS_"))}
    env.update(ROOT_ACCESS_KEY=access_key, ROOT_SECRET_KEY=secret_key)
    log_file = workdir / "versitygw.log"
    with open(log_file, "wb") as log:
        proc = subprocess.Popen(args, env=env, cwd=workdir, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT)
    scheme = "https" if tls else "http"
    store = S3Store(endpoint=f"{scheme}://127.0.0.1:{port}", access_key=access_key, secret_key=secret_key,
                    region=REGION, ca_bundle=ca_bundle, data_dir=data_dir, port=port, log_file=log_file,
                    _proc=proc)
    deadline = time.monotonic() + START_TIMEOUT
    while not _answers(store.endpoint, ca_bundle):
        if proc.poll() is not None:
            raise RuntimeError(f"versitygw exited ({proc.returncode}) before answering at {store.endpoint}:\n"
                               f"{store.log()}")
        if time.monotonic() > deadline:
            store.stop()
            raise RuntimeError(f"versitygw did not answer at {store.endpoint} within {START_TIMEOUT}s:\n{store.log()}")
        time.sleep(0.1)
    return store


@pytest.fixture(scope="session")
def versity(tmp_path_factory):
    """A versitygw over plain HTTP for the whole session."""
    store = start_versity(tmp_path_factory.mktemp("versity"))
    yield store
    store.stop()


@pytest.fixture(scope="session")
def versity_tls(tmp_path_factory):
    """A versitygw over HTTPS (store.ca_bundle: its CA) for the whole session."""
    store = start_versity(tmp_path_factory.mktemp("versity-tls"), tls=True)
    yield store
    store.stop()
