"""`pull` and `push`: the OCI distribution API, plain HTTP requests (chapter 3).

A registry is a web server with a small, standard API (the OCI distribution
spec, Docker's "registry v2").  Pulling `alpine:3.19` is a handful of GETs::

    GET /v2/library/alpine/manifests/3.19      -> an index: one manifest per platform
    GET /v2/library/alpine/manifests/sha256:…  -> linux/amd64's manifest: config + layer digests
    GET /v2/library/alpine/blobs/sha256:…      -> the config (JSON), then each layer (a .tar.gz)

and pushing is the same backwards: upload each blob (POST for an upload URL,
then PUT the bytes with their digest), then PUT the manifest under its tag.

Most registries want a token.  The first request answers 401 with a
challenge, ``WWW-Authenticate: Bearer realm="https://auth…",service="…",scope="repository:library/alpine:pull"``;
the client fetches a token from that realm and repeats the request with
``Authorization: Bearer <token>``.  Blobs are named by their digest, so each is
verified as it arrives (content.py); nothing is stored unless all of it matches.

`--explain` prints each request as the `curl` command that does the same.
"""

import io
import json
import platform
import sys
import urllib.error
import urllib.parse
import urllib.request

from minidocker import content, images, layers, reference, trace
from minidocker.errors import MinidockerError, NotFound
from minidocker.store import Store

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_TYPES = (OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST)
HOST_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "ppc64le": "ppc64le",
             "s390x": "s390x", "riscv64": "riscv64"}.get(platform.machine(), platform.machine())


def pick_platform(manifests: list[dict]) -> dict:
    """From an index (one entry per platform), the entry for linux on this machine's architecture."""
    for entry in manifests:
        p = entry.get("platform") or {}
        if p.get("os") == "linux" and p.get("architecture") == HOST_ARCH:
            return entry
    offered = ", ".join(f"{(e.get('platform') or {}).get('os')}/{(e.get('platform') or {}).get('architecture')}"
                        for e in manifests)
    raise MinidockerError(f"no matching manifest for linux/{HOST_ARCH} in the manifest list (offered: {offered})")


def _is_local(host: str) -> bool:
    """Like Docker, speak plain HTTP only to a registry on this machine (localhost, 127.0.0.0/8)."""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return name in ("localhost", "[::1]") or name.startswith("127.")


class Client:
    """One repository on one registry, with its token (fetched when the registry challenges us)."""

    def __init__(self, ref: reference.Reference):
        self.ref = ref
        self.base = f"{'http' if _is_local(ref.registry) else 'https'}://{ref.registry}/v2/{ref.path}"
        self.token: str | None = None
        self.opener = urllib.request.build_opener(urllib.request.HTTPRedirectHandler())

    # -- HTTP, with the token dance ----------------------------------------------------------

    def request(self, method: str, url: str, headers: dict | None = None, body=None, length: int | None = None,
                ok=(200,), why: str = "", shown_as: dict | None = None):
        """Send one request (again with a token if challenged); returns the open response.

        `shown_as` changes what --explain shows: {"url_shown": ..., "body": FILE, "capture": "VAR=FORMAT"}.
        """
        headers = dict(headers or {})
        for attempt in (1, 2):
            _explain_curl(method, url, headers, body is not None, self.token, why, **(shown_as or {}))
            req = urllib.request.Request(url, data=body, method=method, headers=headers)
            if length is not None:
                req.add_header("Content-Length", str(length))
            if self.token:  # unredirected: not sent on to another host after a redirect
                req.add_unredirected_header("Authorization", f"Bearer {self.token}")
            try:
                response = self.opener.open(req, timeout=60)
            except urllib.error.HTTPError as e:
                if e.code == 401 and attempt == 1 and self._authenticate(e.headers.get("WWW-Authenticate", "")):
                    if hasattr(body, "seek"):
                        body.seek(0)
                    continue
                raise _registry_error(e, self.ref) from None
            except (urllib.error.URLError, OSError) as e:
                reason = getattr(e, "reason", e)
                raise MinidockerError(f"cannot reach registry {self.ref.registry}: {reason}") from None
            if response.status not in ok:
                raise MinidockerError(f"{method} {url}: unexpected HTTP {response.status}")
            return response
        raise MinidockerError(f"registry {self.ref.registry} refused our token")

    def _authenticate(self, challenge: str) -> bool:
        """Answer a `WWW-Authenticate: Bearer realm=…,service=…,scope=…` challenge by fetching a token."""
        scheme, _, params = challenge.partition(" ")
        if scheme.lower() != "bearer":
            raise MinidockerError(f"registry {self.ref.registry} wants {scheme or 'unknown'} authentication, "
                                  "which minidocker does not do (only anonymous Bearer tokens)")
        fields = dict(_challenge_fields(params))
        realm = fields.pop("realm", None)
        if not realm:
            return False
        url = realm + "?" + urllib.parse.urlencode({k: v for k, v in fields.items() if k in ("service", "scope")})
        _explain_curl("GET", url, {}, False, None, "the registry said 401: fetch a token from its auth server",
                      capture="TOKEN=| jq -r .token")
        try:
            with self.opener.open(url, timeout=60) as response:
                answer = json.load(response)
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise MinidockerError(f"token server {realm} failed: {getattr(e, 'reason', e)}") from None
        self.token = answer.get("token") or answer.get("access_token")
        return bool(self.token)

    # -- the API's resources ----------------------------------------------------------------

    def get_manifest(self, ref: str) -> tuple[dict, bytes, str]:
        """GET a manifest (or index) by tag or digest; returns it parsed, raw, and its digest."""
        with self.request("GET", f"{self.base}/manifests/{ref}", {"Accept": ", ".join(MANIFEST_TYPES)},
                          why="the manifest: which config and which layers") as response:
            raw = response.read(4 << 20)
            media_type = response.headers.get("Content-Type", "").split(";")[0]
        digest = content.sha256(raw)
        if ref.startswith("sha256:") and digest != ref:
            raise MinidockerError(f"manifest digest mismatch: asked for {ref}, got {digest}")
        try:
            manifest = json.loads(raw)
        except ValueError:
            raise MinidockerError(f"manifest for {ref} is not JSON") from None
        manifest.setdefault("mediaType", media_type)
        return manifest, raw, digest

    def open_blob(self, digest: str, why: str):
        return self.request("GET", f"{self.base}/blobs/{content.check_digest(digest)}", why=why)

    def has_blob(self, digest: str) -> bool:
        try:
            self.request("HEAD", f"{self.base}/blobs/{digest}", why="does the registry have it already?").close()
            return True
        except NotFound:
            return False

    def upload_blob(self, digest: str, fileobj, size: int) -> None:
        """POST for an upload location, then PUT all the bytes there with their digest (a monolithic upload)."""
        with self.request("POST", f"{self.base}/blobs/uploads/", body=b"", ok=(202,),
                          why="start an upload: the registry answers with a Location",
                          shown_as={"body": "/dev/null", "capture": "LOCATION=%header{location}"}) as response:
            location = urllib.parse.urljoin(self.base, response.headers["Location"])
        separator = "&" if "?" in location else "?"
        self.request("PUT", f"{location}{separator}digest={digest}", {"Content-Type": "application/octet-stream"},
                     body=fileobj, length=size, ok=(201,), why="the blob's bytes; the registry checks the digest",
                     shown_as={"url_shown": f'"$LOCATION{separator}digest={digest}"', "body": "BLOB"}
                     ).close()

    def put_manifest(self, tag: str, media_type: str, raw: bytes) -> str:
        with self.request("PUT", f"{self.base}/manifests/{tag}", {"Content-Type": media_type}, body=raw,
                          ok=(201,), why="the manifest, under its tag: now the image exists there",
                          shown_as={"body": "manifest.json"}) as response:
            return response.headers.get("Docker-Content-Digest") or content.sha256(raw)


def _challenge_fields(params: str):
    """realm="a",service="b",scope="c,d" -> (name, value) pairs (values may contain commas)."""
    import re

    for match in re.finditer(r'(\w+)="([^"]*)"', params):
        yield match[1], match[2]


def _registry_error(e: urllib.error.HTTPError, ref: reference.Reference) -> MinidockerError:
    try:
        errors = json.loads(e.read() or b"{}").get("errors") or []
        detail = "; ".join(f"{x.get('code', '')}: {x.get('message', '')}" for x in errors)
    except (ValueError, AttributeError, OSError):
        detail = ""
    detail = detail or e.reason
    if e.code == 404:
        return NotFound(f"{ref.familiar_name}: not found in {ref.registry} ({detail})")
    if e.code in (401, 403):
        return MinidockerError(f"access to {ref.familiar_name} on {ref.registry} denied: {detail}")
    return MinidockerError(f"registry {ref.registry} answered {e.code}: {detail}")


def _explain_curl(method, url, headers, has_body, token, why, url_shown=None, body="FILE", capture=None):
    """Record a request as the curl command that repeats it ($TOKEN: the token from the auth step).

    capture "VAR=FORMAT" keeps part of the answer in a shell variable: "TOKEN=| jq -r .token" pipes
    the body through jq; "LOCATION=%header{location}" keeps a response header (curl -w).
    """
    import shlex

    parts = ["curl", "-sS"]
    if method == "HEAD":
        parts.append("--head")
    elif method != "GET":
        parts += ["-X", method]
    parts += [x for k, v in headers.items() for x in ("-H", f"{k}: {v}")]
    command = " ".join(shlex.quote(p) for p in parts)
    if token:
        command += ' -H "Authorization: Bearer $TOKEN"'
    if has_body:
        command += f" --data-binary @{body}"
    command += " -L " + (url_shown or shlex.quote(url))
    if capture:
        variable, _, how = capture.partition("=")
        command = (f"{variable}=$({command} {how})" if how.startswith("|")
                   else f"{variable}=$({command} -o /dev/null -w {shlex.quote(how)})")
    trace.record(command, why)


# -- pull ----------------------------------------------------------------------------------------


def pull(store: Store, name: str, progress=None, out=sys.stdout) -> str:
    """Download an image into the store; returns its ID.  `progress`: a tqdm factory (or None)."""
    ref = reference.parse(name)
    client = Client(ref)
    print(f"{ref.tag if not ref.digest else ref.digest}: Pulling from {ref.familiar_name}", file=out, flush=True)
    manifest, raw, digest = client.get_manifest(ref.manifest_ref)
    if manifest.get("mediaType") in (OCI_INDEX, DOCKER_LIST) or "manifests" in manifest:
        chosen = pick_platform(manifest["manifests"])
        manifest, raw, _ = client.get_manifest(content.check_digest(chosen["digest"]))
    if manifest.get("schemaVersion") != 2 or "config" not in manifest:
        raise MinidockerError(f"unsupported manifest (media type {manifest.get('mediaType')!r}): "
                              "only schema 2 and OCI manifests")
    with client.open_blob(manifest["config"]["digest"], "the image config") as response:
        raw_config = response.read(16 << 20)
    diff_ids = content.config_layers(raw_config, manifest["config"]["digest"], len(manifest["layers"]))
    with content.ImageImport(store) as incoming:
        for layer, diff_id in zip(manifest["layers"], diff_ids):
            short = layer["digest"][7:19]
            if layers.has_layer(store, diff_id):
                print(f"{short}: Already exists", file=out, flush=True)
                continue
            with client.open_blob(layer["digest"], "one layer, usually a gzip-compressed tar") as response:
                stream = _Progress(response, progress, short, layer.get("size")) if progress else response
                incoming.add_layer(stream, diff_id, layer["digest"], layer.get("size"))
                if progress:
                    stream.close()
            print(f"{short}: Pull complete", file=out, flush=True)
        image_id = incoming.add_image(raw_config, [ref.familiar])
    print(f"Digest: {digest}\nStatus: Downloaded newer image for {ref.familiar}", file=out, flush=True)
    return image_id


class _Progress(io.RawIOBase):
    """Counts bytes into a tqdm bar as they are read."""

    def __init__(self, raw, factory, label: str, total: int | None):
        self.raw = raw
        self.bar = factory(total=total, desc=label, unit="B", unit_scale=True, leave=False)

    def readable(self):
        return True

    def readinto(self, buffer):
        data = self.raw.read(len(buffer))
        buffer[:len(data)] = data
        self.bar.update(len(data))
        return len(data)

    def close(self):
        self.bar.close()
        super().close()


# -- push ----------------------------------------------------------------------------------------


def push(store: Store, name: str, progress=None, out=sys.stdout) -> str:
    """Upload a local image (tagged `name`) to its registry; returns the manifest digest."""
    import gzip
    import tempfile

    ref = reference.parse(name)
    if ref.digest:
        raise MinidockerError("push takes a tag, not a digest: the digest is the registry's answer")
    image = images.get(store, ref.familiar)
    client = Client(ref)
    print(f"The push refers to repository [{ref.domain}/{ref.path}]", file=out, flush=True)
    descriptors = []  # the manifest's layer entries
    for diff_id in image.config["rootfs"]["diff_ids"]:
        with tempfile.TemporaryFile() as plain, tempfile.TemporaryFile() as packed:
            layers.layer_tar(store, diff_id, plain)
            plain.seek(0)
            with gzip.GzipFile(fileobj=packed, mode="wb", mtime=0) as gz:  # mtime 0: same bytes, same digest
                reader = content.VerifyingReader(plain, diff_id, what="layer")
                while chunk := reader.read(1 << 20):
                    gz.write(chunk)
                reader.verify()
            size = packed.tell()
            packed.seek(0)
            digest = content.VerifyingReader(packed).verify()
            packed.seek(0)
            short = digest[7:19]
            if client.has_blob(digest):
                print(f"{short}: Layer already exists", file=out, flush=True)
            else:
                body = _Progress(packed, progress, short, size) if progress else packed
                client.upload_blob(digest, body, size)
                if progress:
                    body.close()
                print(f"{short}: Pushed", file=out, flush=True)
            descriptors.append({"mediaType": OCI_LAYER_GZIP, "digest": digest, "size": size})
    raw_config = images.config_bytes(image)
    config_digest = content.sha256(raw_config)
    if not client.has_blob(config_digest):
        client.upload_blob(config_digest, io.BytesIO(raw_config), len(raw_config))
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(raw_config)},
                "layers": descriptors}
    raw = json.dumps(manifest, indent=2).encode()
    digest = client.put_manifest(ref.tag, OCI_MANIFEST, raw)
    print(f"{ref.tag}: digest: {digest} size: {len(raw)}", file=out, flush=True)
    return digest
