"""Chapter 3, images over the network: `push` and `pull` against a real registry on 127.0.0.1.

Each test starts Debian's `docker-registry` (the reference implementation of the
distribution API) on a free port with its own storage directory, and -- for the
token test -- a small token server that signs JWTs with a certificate the registry
trusts.  skopeo is the independent client: it reads what minidocker pushed and
writes what minidocker pulls.  Nothing reaches the internet.
"""

import base64
import http.server
import json
import os
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request

import pytest

from minidocker import images
from minidocker.store import Store


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    """docker-registry serving 127.0.0.1:<port> from <dir>/data; `auth` adds a token section to its config."""

    def __init__(self, directory, auth: dict | None = None):
        self.dir = directory
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        config = {"version": 0.1, "log": {"level": "error", "accesslog": {"disabled": True}},
                  "storage": {"filesystem": {"rootdirectory": f"{directory}/data"}, "delete": {"enabled": True}},
                  "http": {"addr": self.host}}
        if auth:
            config["auth"] = {"token": auth}
        with open(f"{directory}/config.yml", "w") as f:
            json.dump(config, f)  # JSON is YAML
        self.log = open(f"{directory}/registry.log", "w")
        self.process = subprocess.Popen(["docker-registry", "serve", f"{directory}/config.yml"],
                                        stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1)
                break
            except urllib.error.HTTPError:  # 401 when auth is on: it is up
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise AssertionError(f"docker-registry did not start: {open(self.log.name).read()}")
                time.sleep(0.05)

    def blob_path(self, digest: str) -> str:
        hexpart = digest.split(":", 1)[1]
        return f"{self.dir}/data/docker/registry/v2/blobs/sha256/{hexpart[:2]}/{hexpart}/data"

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@pytest.fixture
def registry(tmp_path):
    (tmp_path / "registry").mkdir()
    r = Registry(str(tmp_path / "registry"))
    yield r
    r.stop()





def tag(md, source: str, target: str) -> None:
    """Push sends the image under the name it has here: give it that name first (docker tag)."""
    md.out("tag", source, target)


def test_push_then_pull_into_an_empty_store_and_run(md, empty_md, registry):
    name = f"{registry.host}/tools/busybox:1"
    tag(md, "busybox", name)
    pushed = md("push", name)
    assert pushed.returncode == 0, pushed.stderr
    assert ": Pushed" in pushed.stdout and "1: digest: sha256:" in pushed.stdout
    again = md.out("push", name)  # the second time every blob is there already
    assert "Layer already exists" in again and "Pushed" not in again

    inspected = json.loads(subprocess.run(["skopeo", "inspect", "--tls-verify=false", f"docker://{name}"],
                                          capture_output=True, text=True, check=True).stdout)
    assert inspected["Digest"] == pushed.stdout.split("digest: ")[1].split()[0]  # an independent reader agrees

    pulled = empty_md("pull", name)
    assert pulled.returncode == 0, pulled.stderr
    assert f"Status: Downloaded newer image for {name}" in pulled.stdout
    assert empty_md.out("run", "--rm", name, "echo", "pulled and ran") == "pulled and ran"
    ids = [json.load(open(os.path.join(m.root, "images/repositories.json")))[k]
           for m, k in ((md, "busybox:latest"), (empty_md, name))]
    assert ids[0] == ids[1]  # the same config bytes came back: the same image ID


def test_pull_what_skopeo_pushed_a_docker_schema2_image_with_gzip_layers(md, empty_md, registry, tmp_path):
    md.out("save", "-o", str(tmp_path / "bb.tar"), "busybox")
    name = f"{registry.host}/from/skopeo:latest"
    subprocess.run(["skopeo", "copy", "--dest-tls-verify=false", "--dest-compress",
                    f"docker-archive:{tmp_path}/bb.tar", f"docker://{name}"], check=True, capture_output=True)
    raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{name}"],
                         capture_output=True, text=True, check=True).stdout
    manifest = json.loads(raw)
    assert manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert manifest["layers"][0]["mediaType"].endswith("tar.gzip")
    result = empty_md("--explain", "pull", f"{registry.host}/from/skopeo")  # no tag: latest
    assert result.returncode == 0, result.stderr
    assert "curl -sS -H 'Accept: " in result.stderr and "/v2/from/skopeo/manifests/latest" in result.stderr
    assert empty_md.out("run", "--rm", name, "echo", "ok") == "ok"


def test_a_manifest_list_yields_this_machines_platform(md, empty_md, registry):
    import io

    from minidocker import reference, registry as client_module

    name = f"{registry.host}/multi/arch"
    tag(md, "busybox", f"{name}:ours")
    md.out("push", f"{name}:ours")
    client = client_module.Client(reference.parse(f"{name}:ours"))
    ours, ours_raw, ours_digest = client.get_manifest("ours")
    # a second image for another platform: the same layer, another config
    config = json.loads(images.config_bytes(images.get(Store(md.root), "busybox")))
    config["architecture"] = "s390x"
    other_config = json.dumps(config).encode()
    other_config_digest = "sha256:" + __import__("hashlib").sha256(other_config).hexdigest()
    client.upload_blob(other_config_digest, io.BytesIO(other_config), len(other_config))
    other = dict(ours, config=dict(ours["config"], digest=other_config_digest, size=len(other_config)))
    other_raw = json.dumps(other).encode()
    other_digest = client.put_manifest("s390x", client_module.OCI_MANIFEST, other_raw)
    entries = [({"os": "linux", "architecture": "s390x"}, other_digest, other_raw),
               ({"os": "windows", "architecture": client_module.HOST_ARCH}, other_digest, other_raw),
               ({"os": "linux", "architecture": client_module.HOST_ARCH}, ours_digest, ours_raw)]
    index = {"schemaVersion": 2, "mediaType": client_module.OCI_INDEX, "manifests": [
        {"mediaType": client_module.OCI_MANIFEST, "digest": d, "size": len(raw), "platform": p}
        for p, d, raw in entries]}
    client.put_manifest("multi", client_module.OCI_INDEX, json.dumps(index).encode())

    pulled = empty_md("pull", f"{name}:multi")
    assert pulled.returncode == 0, pulled.stderr
    stored = json.load(open(os.path.join(empty_md.root, "images/repositories.json")))[f"{name}:multi"]
    assert stored == json.load(open(os.path.join(md.root, "images/repositories.json")))["busybox:latest"]
    assert empty_md.out("run", "--rm", f"{name}:multi", "echo", "picked") == "picked"

    index["manifests"] = index["manifests"][:2]  # nothing for linux on this machine
    client.put_manifest("other", client_module.OCI_INDEX, json.dumps(index).encode())
    refused = empty_md("pull", f"{name}:other")
    assert refused.returncode == 125 and f"no matching manifest for linux/{client_module.HOST_ARCH}" in refused.stderr


def test_a_corrupted_blob_is_refused_and_the_store_is_unchanged(md, empty_md, registry):
    name = f"{registry.host}/bad/blob:1"
    tag(md, "busybox", name)
    md.out("push", name)
    from minidocker import reference, registry as client_module

    manifest, _, _ = client_module.Client(reference.parse(name)).get_manifest("1")
    blob = registry.blob_path(manifest["layers"][0]["digest"])
    data = open(blob, "rb").read()
    import gzip

    tampered = gzip.compress(gzip.decompress(data).replace(b"root:x:0:0", b"root::0:0:"), mtime=0)
    assert len(tampered) != len(data) or tampered != data
    open(blob, "wb").write(tampered)
    result = empty_md("pull", name)
    assert result.returncode == 125 and result.stderr.count("\n") == 1, result.stderr
    assert "mismatch" in result.stderr or "size" in result.stderr
    assert not os.path.exists(os.path.join(empty_md.root, "images", "repositories.json"))
    assert os.listdir(os.path.join(empty_md.root, "images", "layers")) == []


@pytest.mark.parametrize("ref, message", [
    ("{host}/no/such:1", "not found"),
    ("127.0.0.1:1/nothing/listens:1", "cannot reach registry"),
    ("UPPER/case", "invalid reference format"),
])
def test_bad_pulls_get_one_line(empty_md, registry, ref, message):
    result = empty_md("pull", ref.format(host=registry.host))
    assert result.returncode == 125 and message in result.stderr and result.stderr.count("\n") == 1, result.stderr


def test_run_does_not_pull(empty_md, registry):
    result = empty_md("run", "--rm", f"{registry.host}/some/image", "true")
    assert result.returncode == 125 and "run never pulls" in result.stderr


# -- token authentication ----------------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """Issues RS256-signed JWTs (signed by `openssl dgst`) granting what the scope asks for, as Docker Hub's does."""

    def __init__(self, directory, service: str, issuer: str):
        self.key, self.cert = f"{directory}/token.key", f"{directory}/token.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.key,
                        "-out", self.cert, "-days", "1", "-subj", "/CN=minidocker test token issuer"],
                       check=True, capture_output=True)
        der = subprocess.run(["openssl", "x509", "-in", self.cert, "-outform", "DER"], check=True,
                             capture_output=True).stdout
        self.x5c = base64.b64encode(der).decode()
        self.service, self.issuer, self.requests = service, issuer, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
                server.requests.append(query)
                body = json.dumps({"token": server.token(query.get("scope", ""))}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.realm = f"http://127.0.0.1:{self.httpd.server_address[1]}/token"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def token(self, scope: str) -> str:
        access = []
        for item in filter(None, scope.split(" ")):
            kind, name, actions = item.split(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        claims = {"iss": self.issuer, "sub": "student", "aud": self.service, "exp": now + 300, "nbf": now - 10,
                  "iat": now, "jti": os.urandom(8).hex(), "access": access}
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.key], input=signing_input.encode(),
                                   check=True, capture_output=True).stdout
        return f"{signing_input}.{b64url(signature)}"

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def asked_scopes(tokens) -> list[tuple[str, set[str]]]:
    """The scopes minidocker asked the token server for, as (resource, actions).  The registry names
    the actions in either order ('pull,push' or 'push,pull': it builds them from a Go map)."""
    resources = [r["scope"].rpartition(":") for r in tokens.requests if "scope" in r]
    return [(resource, set(actions.split(","))) for resource, _, actions in resources]


def test_token_auth_challenge_push_and_pull(md, empty_md, tmp_path):
    directory = tmp_path / "registry"
    directory.mkdir()
    tokens = TokenServer(str(directory), service="minidocker-test", issuer="minidocker-test-issuer")
    registry = None
    try:
        registry = Registry(str(directory), auth={"realm": tokens.realm, "service": "minidocker-test",
                                                  "issuer": "minidocker-test-issuer",
                                                  "rootcertbundle": tokens.cert})
        try:
            urllib.request.urlopen(f"http://{registry.host}/v2/", timeout=5)
            raise AssertionError("the registry should want a token")
        except urllib.error.HTTPError as e:
            assert e.code == 401 and e.headers["WWW-Authenticate"].startswith(f'Bearer realm="{tokens.realm}"')

        name = f"{registry.host}/private/busybox:1"
        tag(md, "busybox", name)
        pushed = md("--explain", "push", name)
        assert pushed.returncode == 0, pushed.stderr + open(registry.log.name).read()
        assert ("repository:private/busybox", {"pull", "push"}) in asked_scopes(tokens)
        assert "TOKEN=$(curl" in pushed.stderr and 'Authorization: Bearer $TOKEN' in pushed.stderr

        pulled = empty_md("pull", name)
        assert pulled.returncode == 0, pulled.stderr
        assert ("repository:private/busybox", {"pull"}) in asked_scopes(tokens)
        assert empty_md.out("run", "--rm", name, "echo", "authorised") == "authorised"
    finally:
        if registry:
            registry.stop()
        tokens.stop()


def test_progress_bars_on_a_terminal(md, empty_md, registry):
    """With stderr on a terminal, each layer's bytes are counted by a tqdm bar (not when redirected)."""
    import pty

    from conftest import MINIDOCKER

    name = f"{registry.host}/progress/busybox:1"
    tag(md, "busybox", name)
    md.out("push", name)
    import fcntl
    import struct
    import termios

    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))  # a new pty has 0 columns
    try:
        result = subprocess.run([MINIDOCKER, "pull", name], env=empty_md.env, stdout=subprocess.PIPE,
                                stderr=terminal, timeout=60)
        os.set_blocking(controller, False)
        shown = os.read(controller, 1 << 16).decode(errors="replace")
    finally:
        os.close(controller)
        os.close(terminal)
    assert result.returncode == 0
    assert "B/s" in shown or "100%" in shown, shown
    assert "B/s" not in empty_md("pull", name).stderr  # redirected: no bar
