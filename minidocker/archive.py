"""Images as files: `save` and `load` (chapter 3).

An image is only files -- a config and some layer tars -- so moving it is
packing those files into one tar.  Two layouts are in use, and minidocker
reads both:

*docker-archive* (what `docker save` has always written, and what `save` writes)::

    manifest.json              [{"Config": "<id>.json", "RepoTags": ["alpine:3.19"],
                                 "Layers": ["<hex>/layer.tar", ...]}]   bottom layer first
    repositories               {"alpine": {"3.19": "<top layer hex>"}}  (for old Docker versions)
    <id hex>.json              the image config; its sha256 is the image ID
    <diff id hex>/layer.tar    each layer, an uncompressed tar: its sha256 is its diff ID

*OCI image layout* (the standard: `skopeo copy ... oci:DIR`, `podman save --format oci-archive`),
as a directory or a tar of one::

    oci-layout                 {"imageLayoutVersion": "1.0.0"}
    index.json                 {"manifests": [{"digest": "sha256:...", "annotations":
                                   {"org.opencontainers.image.ref.name": "3.19"}}]}
    blobs/sha256/<hex>         manifests, configs and (usually gzip) layers, each named by its digest

Everything read is checked against its digest (see content.py) and stored only
when all of it checked out: a truncated or tampered archive leaves the store as
it was.
"""

import io
import json
import os
import tarfile

from minidocker import content, images, reference, trace
from minidocker.errors import MinidockerError
from minidocker.store import Store

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"


# -- save ------------------------------------------------------------------------------------


def save(store: Store, refs: list[str], out) -> None:
    """Write the images named by `refs` to the binary file `out` as one docker-archive tar.

    `out` may be a pipe: the tar is written as a stream, each member once
    (a layer shared by two images is stored once).
    """
    from minidocker.layers import layer_tar

    if not refs:
        raise MinidockerError("save needs at least one image")
    chosen = [(ref, images.get(store, ref)) for ref in refs]  # fails before any byte is written
    manifest, repositories, written = [], {}, set()
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for ref, image in chosen:
            entry = manifest_entry(image.id, image.config["rootfs"]["diff_ids"], _tag_named_by(ref, image))
            if entry["Config"] not in written:
                _add_bytes(tar, entry["Config"], images.config_bytes(image))
                written.add(entry["Config"])
            for diff_id, member in zip(image.config["rootfs"]["diff_ids"], entry["Layers"]):
                if member not in written:
                    _add_layer(tar, member, diff_id, lambda f, d=diff_id: layer_tar(store, d, f))
                    written.add(member)
            _merge_entry(manifest, entry)
            for tag in entry["RepoTags"]:
                name, _, version = tag.rpartition(":")
                repositories.setdefault(name, {})[version] = entry["Layers"][-1].split("/")[0]
        _add_bytes(tar, "manifest.json", json.dumps(manifest).encode())
        _add_bytes(tar, "repositories", json.dumps(repositories).encode())
        trace.record(f"tar -cf - manifest.json repositories {' '.join(sorted(written))}",
                     "docker-archive: the configs, each layer's tar, and manifest.json naming them")


def manifest_entry(image_id: str, diff_ids: list[str], tags: list[str]) -> dict:
    """One image's entry in manifest.json: its tags, and where its config and layers are in the archive.

    The config is stored as "<image ID hex>.json" and each layer as "<diff ID hex>/layer.tar",
    bottom layer first (the order of the config's rootfs.diff_ids).  For example
    manifest_entry("sha256:ab…", ["sha256:12…", "sha256:34…"], ["web:1"]) ->
    {"Config": "ab….json", "RepoTags": ["web:1"], "Layers": ["12…/layer.tar", "34…/layer.tar"]}
    """
    return {"Config": image_id.removeprefix("sha256:") + ".json",
            "RepoTags": list(tags),
            "Layers": [diff_id.removeprefix("sha256:") + "/layer.tar" for diff_id in diff_ids]}


def _tag_named_by(ref: str, image: images.Image) -> list[str]:
    """`save alpine:3.19` records that tag; `save <image ID>` or `save name@sha256:…` none (as Docker does)."""
    try:
        name = images.normalize(ref)
    except MinidockerError:
        return []
    return [name] if name in image.tags and "@" not in name else []


def _merge_entry(manifest: list[dict], entry: dict) -> None:
    """`save a:1 a:2` of one image: one entry with both tags."""
    for existing in manifest:
        if existing["Config"] == entry["Config"]:
            existing["RepoTags"] += [t for t in entry["RepoTags"] if t not in existing["RepoTags"]]
            return
    manifest.append(entry)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    tar.addfile(info, io.BytesIO(data))


def _add_layer(tar: tarfile.TarFile, name: str, diff_id: str, write) -> None:
    """A layer's tar, checked against its diff ID on the way in (a tar member needs its size first)."""
    import tempfile

    with tempfile.TemporaryFile() as spool:
        write(spool)
        spool.seek(0)
        digest = content.VerifyingReader(spool).verify()
        if digest != diff_id:
            raise MinidockerError(f"layer {diff_id} reproduces as {digest}: refusing to write a broken archive")
        info = tarfile.TarInfo(name)
        info.size, info.mode = spool.tell(), 0o644
        spool.seek(0)
        directory = tarfile.TarInfo(os.path.dirname(name))
        directory.type, directory.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(directory)
        tar.addfile(info, spool)


# -- load ------------------------------------------------------------------------------------


def load(store: Store, source) -> list[str]:
    """Load every image in a docker-archive or OCI layout; returns what was loaded ('alpine:3.19', or IDs).

    `source` is a path (a tar file, possibly gzip-compressed, or a directory)
    or a binary stream (stdin), which is first spooled to a temporary file
    because a tar must be read in whatever order its manifest dictates.
    """
    import tempfile

    if isinstance(source, str) and os.path.isdir(source):
        return _load_from(store, _Directory(source))
    if isinstance(source, str):
        try:
            return _load_tar(store, source)
        except FileNotFoundError:
            raise MinidockerError(f"open {source}: no such file or directory") from None
    with tempfile.NamedTemporaryFile(dir=store.root, prefix=".load-") as spool:
        import shutil

        shutil.copyfileobj(source, spool, 1 << 20)
        spool.flush()
        if spool.tell() == 0:
            raise MinidockerError("requested load from stdin, but stdin is empty")
        return _load_tar(store, spool.name)


def _load_tar(store: Store, path: str) -> list[str]:
    try:
        with tarfile.open(path, "r:*") as tar:
            return _load_from(store, _Tar(tar))
    except (tarfile.TarError, EOFError, OSError) as e:
        if isinstance(e, (FileNotFoundError, IsADirectoryError)):
            raise
        first_line = str(e).split("\n", 1)[0].rstrip(":")
        raise MinidockerError(f"not a readable image archive (truncated or corrupt?): {first_line}") from None


def _load_from(store: Store, files) -> list[str]:
    """Find the layout by its marker files, then import what it lists."""
    try:
        if files.exists("manifest.json"):
            return _load_docker_archive(store, files)
        if files.exists("oci-layout"):
            return _load_oci_layout(store, files)
    except (KeyError, ValueError, TypeError, AttributeError) as e:
        raise MinidockerError(f"malformed image archive: {type(e).__name__}: {e}") from None
    raise MinidockerError("unknown archive format: neither a docker-archive (manifest.json) "
                          "nor an OCI image layout (oci-layout, index.json)")


def _load_docker_archive(store: Store, files) -> list[str]:
    manifest = files.json("manifest.json")
    if not isinstance(manifest, list):
        raise MinidockerError("manifest.json is not a list of images")
    loaded = []
    with content.ImageImport(store) as incoming:
        for entry in manifest:
            raw_config = files.read(entry["Config"])
            diff_ids = content.config_layers(raw_config, _digest_in_name(entry["Config"]), len(entry["Layers"]))
            for member, diff_id in zip(entry["Layers"], diff_ids):
                with files.open(member) as layer:
                    incoming.add_layer(layer, diff_id)
            tags = [images.normalize(t) for t in entry.get("RepoTags") or []]
            image_id = incoming.add_image(raw_config, tags)
            loaded += [f"Loaded image: {t}" for t in tags] or [f"Loaded image ID: {image_id}"]
    return loaded


def _digest_in_name(name: str) -> str | None:
    """'<hex>.json' or 'blobs/sha256/<hex>' name their content's digest: then it can be checked."""
    hexpart = os.path.basename(name).removesuffix(".json")
    return "sha256:" + hexpart if len(hexpart) == 64 and all(c in "0123456789abcdef" for c in hexpart) else None


def _load_oci_layout(store: Store, files) -> list[str]:
    index = files.json("index.json")
    loaded = []
    with content.ImageImport(store) as incoming:
        for descriptor in index.get("manifests", []):
            manifest = _platform_manifest(files, descriptor)
            config = manifest["config"]
            raw_config = _read_blob(files, config)
            diff_ids = content.config_layers(raw_config, config["digest"], len(manifest["layers"]))
            for layer, diff_id in zip(manifest["layers"], diff_ids):
                with files.open(_blob_path(layer["digest"])) as blob:
                    incoming.add_layer(blob, diff_id, layer["digest"], layer.get("size"))
            tags = _oci_tags(descriptor)
            image_id = incoming.add_image(raw_config, tags)
            loaded += [f"Loaded image: {t}" for t in tags] or [f"Loaded image ID: {image_id}"]
    return loaded


def _platform_manifest(files, descriptor: dict) -> dict:
    """An index entry may itself be an index (several platforms): descend to this machine's image."""
    manifest = json.loads(_read_blob(files, descriptor))
    if manifest.get("mediaType", descriptor.get("mediaType")) in (OCI_INDEX, DOCKER_MANIFEST_LIST) \
            or "manifests" in manifest:
        from minidocker.registry import pick_platform

        return _platform_manifest(files, pick_platform(manifest["manifests"]))
    return manifest


def _oci_tags(descriptor: dict) -> list[str]:
    """Names from the annotations: containerd's full name, else ref.name if it is a reference."""
    annotations = descriptor.get("annotations") or {}
    for key in (CONTAINERD_NAME, REF_NAME):
        name = annotations.get(key)
        if name:
            try:
                return [reference.parse(name).familiar]
            except MinidockerError:
                continue  # e.g. a bare tag such as "3.19" with no repository to put it in
    return []


def _blob_path(digest: str) -> str:
    return "blobs/sha256/" + content.check_digest(digest).split(":", 1)[1]


def _read_blob(files, descriptor: dict) -> bytes:
    data = files.read(_blob_path(descriptor["digest"]))
    if content.sha256(data) != descriptor["digest"]:
        raise MinidockerError(f"blob digest mismatch: expected {descriptor['digest']}, got {content.sha256(data)}")
    return data


class _Tar:
    """The files of an archive, read by name (in any order: the tar is a seekable file)."""

    def __init__(self, tar: tarfile.TarFile):
        self.tar = tar
        self.members = {m.name.removeprefix("./"): m for m in tar.getmembers()}

    def exists(self, name: str) -> bool:
        return name in self.members

    def open(self, name: str):
        member = self.members.get(name.removeprefix("./"))
        if member is None or not member.isfile():
            raise MinidockerError(f"archive is missing {name}")
        return self.tar.extractfile(member)

    def read(self, name: str) -> bytes:
        with self.open(name) as f:
            return f.read()

    def json(self, name: str):
        return json.loads(self.read(name))


class _Directory(_Tar):
    """The same, for an unpacked layout (`skopeo copy ... oci:DIR`); names may not leave DIR."""

    def __init__(self, root: str):
        self.root = os.path.realpath(root)

    def _path(self, name: str) -> str:
        path = os.path.realpath(os.path.join(self.root, name))
        if os.path.isabs(name) or not path.startswith(self.root + os.sep):
            raise MinidockerError(f"archive names a path outside it: {name}")
        return path

    def exists(self, name: str) -> bool:
        return os.path.isfile(self._path(name))

    def open(self, name: str):
        try:
            return open(self._path(name), "rb")
        except (FileNotFoundError, IsADirectoryError):
            raise MinidockerError(f"archive is missing {name}") from None
