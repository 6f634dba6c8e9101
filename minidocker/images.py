"""Images: a stack of read-only layers plus a config (chapter 2's base image; chapters 3 and 7 grow it).

An image is two things.  Its *layers* are directory trees, each unpacked once
into the store and never written again; a container sees them stacked through
overlayfs (see :mod:`minidocker.rootfs`).  Its *config* is a small JSON
document in the OCI image-spec form (Env, Cmd, Entrypoint, WorkingDir, the
layers' diff IDs, history); the image's ID is the sha256 of that document, so
an image's identity is its content.

Store layout under ``$MINIDOCKER_ROOT/images``::

    repositories.json          {"busybox:latest": "sha256:<config digest>"}
    blobs/sha256/<hex>         image configs, content-addressed (as in an OCI layout)
    layers/<diff id hex>/      each layer unpacked once; a container's lowerdir

Offline, the base image ``busybox`` is made here from the host's busybox-static:
one static binary plus a symlink per applet, which is the whole userland.
"""

import json
import os

from minidocker.errors import MinidockerError, NotFound
from minidocker.store import Store, atomic_write_json

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def normalize(reference: str) -> str:
    """'busybox' -> 'busybox:latest' (a reference without a tag means :latest); see reference.py."""
    from minidocker import reference as references

    return references.parse(reference).familiar


class Image:
    """An image in the store: its ID, config and the directories of its layers (bottom first)."""

    def __init__(self, store: Store, image_id: str, config: dict, tags: list[str]):
        self.store, self.id, self.config, self.tags = store, image_id, config, tags

    @property
    def layer_dirs(self) -> list[str]:
        return [layer_dir(self.store, d) for d in self.config["rootfs"]["diff_ids"]]

    @property
    def runtime_config(self) -> dict:
        """The part of the config that says how to run it (Env, Cmd, Entrypoint, WorkingDir, User)."""
        return self.config.get("config", {})


def layer_dir(store: Store, diff_id: str) -> str:
    return os.path.join(store.images, "layers", diff_id.split(":", 1)[1])


def _repositories(store: Store) -> dict:
    try:
        with open(os.path.join(store.images, "repositories.json")) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def get(store: Store, reference: str) -> Image:
    """Find an image by name[:tag], full ID or unique ID prefix.

    The base image ``busybox`` is made on first use when it is not stored yet
    (this offline sandbox's stand-in for ``docker pull busybox``).
    """
    repos = _repositories(store)
    image_id = None
    if reference.startswith("sha256:") or all(c in "0123456789abcdef" for c in reference):
        prefix = reference.removeprefix("sha256:")
        matches = {i for i in repos.values() if i.removeprefix("sha256:").startswith(prefix)}
        if len(matches) == 1 and len(prefix) >= 4:
            image_id = matches.pop()
    if image_id is None:
        name = normalize(reference)
        image_id = repos.get(name)
        if image_id is None and name == "busybox:latest":
            image_id = build_busybox(store)
    if image_id is None:
        raise NotFound(f"Unable to find image '{reference}' locally (run never pulls: 'minidocker pull {reference}')")
    with open(os.path.join(store.images, "blobs", "sha256", image_id.split(":", 1)[1])) as f:
        config = json.load(f)
    return Image(store, image_id, config, sorted(t for t, i in _repositories(store).items() if i == image_id))


def list_images(store: Store) -> list[Image]:
    by_id: dict[str, list[str]] = {}
    for tag, image_id in _repositories(store).items():
        by_id.setdefault(image_id, []).append(tag)
    return [get(store, image_id) for image_id in by_id]


# -- the offline base image ----------------------------------------------------------


def _tar_digest(root: str) -> str:
    """sha256 of a reproducible tar of `root`: the layer's diff ID, as Docker computes it."""
    import hashlib  # building images is rare and running them is not: keep `run`'s imports short
    import io
    import tarfile

    digest = hashlib.sha256()

    class _Hasher(io.RawIOBase):
        def write(self, b):
            digest.update(b)
            return len(b)

    with tarfile.open(fileobj=_Hasher(), mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(dirnames + filenames):
                path = os.path.join(dirpath, name)
                info = tar.gettarinfo(path, os.path.relpath(path, root))
                info.mtime, info.uname, info.gname = 0, "", ""
                if info.isfile():
                    with open(path, "rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)
    return "sha256:" + digest.hexdigest()


def build_busybox(store: Store) -> str:
    """Make busybox:latest from the host's static busybox: one layer, one config. Returns the image ID."""
    import shutil
    import subprocess

    busybox = next((p for p in BUSYBOX_CANDIDATES if os.path.isfile(p)), None)
    if busybox is None:
        raise MinidockerError("busybox-static is not installed (apt-get install busybox-static): "
                              "it is the offline base image")
    layers = os.path.join(store.images, "layers")
    os.makedirs(layers, exist_ok=True)
    work = os.path.join(layers, f".building-{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    for d, mode in [("bin", 0o755), ("sbin", 0o755), ("usr/bin", 0o755), ("usr/sbin", 0o755),
                    ("etc", 0o755), ("dev", 0o755), ("proc", 0o555), ("sys", 0o555), ("root", 0o700),
                    ("home", 0o755), ("tmp", 0o1777), ("var/www", 0o755)]:
        os.makedirs(os.path.join(work, d))
        os.chmod(os.path.join(work, d), mode)
    shutil.copy2(busybox, os.path.join(work, "bin/busybox"))
    applets = subprocess.run([busybox, "--list-full"], capture_output=True, text=True, check=True).stdout
    for applet in applets.split():
        path = os.path.join(work, applet)
        if not os.path.lexists(path):
            os.symlink("/bin/busybox", path)
    with open(os.path.join(work, "etc/passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n")
    with open(os.path.join(work, "etc/group"), "w") as f:
        f.write("root:x:0:\nnogroup:x:65534:\n")
    diff_id = _tar_digest(work)
    final = layer_dir(store, diff_id)
    if os.path.isdir(final):
        shutil.rmtree(work)
    else:
        os.rename(work, final)
    version = subprocess.run([busybox], capture_output=True, text=True).stdout.split("\n", 1)[0]
    import time

    config = {
        "architecture": "amd64", "os": "linux",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "config": {"Env": [DEFAULT_PATH], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": f"minidocker: {busybox} ({version.strip()}) and a symlink per applet"}],
    }
    return add_image(store, config, ["busybox:latest"])


def add_image(store: Store, config: dict, tags: list[str]) -> str:
    """Store an image config as a content-addressed blob and point the tags at it."""
    import hashlib

    raw = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    image_id = "sha256:" + hashlib.sha256(raw).hexdigest()
    blobs = os.path.join(store.images, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)
    blob = os.path.join(blobs, image_id.split(":", 1)[1])
    if not os.path.exists(blob):
        with open(blob + ".tmp", "wb") as f:
            f.write(raw)
        os.replace(blob + ".tmp", blob)
    with store.lock():
        repos = _repositories(store)
        repos.update({normalize(t): image_id for t in tags})
        atomic_write_json(os.path.join(store.images, "repositories.json"), repos)
    return image_id


def add_image_config(store: Store, raw_config: bytes, tags: list[str]) -> str:
    """Store a config exactly as it arrived (its bytes are its ID) and point the tags at it.

    An image that came from elsewhere (`load`, `pull`) keeps its ID only if
    its config is stored byte for byte: re-serialising the JSON would change
    the sha256, and with it the image's identity.
    """
    import hashlib

    image_id = "sha256:" + hashlib.sha256(raw_config).hexdigest()
    blobs = os.path.join(store.images, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)
    blob = os.path.join(blobs, image_id.split(":", 1)[1])
    if not os.path.exists(blob):
        with open(f"{blob}.tmp-{os.getpid()}", "wb") as f:
            f.write(raw_config)
        os.replace(f"{blob}.tmp-{os.getpid()}", blob)
    with store.lock():
        repos = _repositories(store)
        repos.update({normalize(t): image_id for t in tags})
        atomic_write_json(os.path.join(store.images, "repositories.json"), repos)
    return image_id


def config_bytes(image: Image) -> bytes:
    """The image's config exactly as stored: the bytes whose sha256 is its ID."""
    with open(os.path.join(image.store.images, "blobs", "sha256", image.id.split(":", 1)[1]), "rb") as f:
        return f.read()


def shifted_layers(image: Image, uid: int) -> list[str]:
    """Copies of the image's layers owned by `uid` + original owner: what a user namespace needs.

    In a user namespace that maps container root to host uid 100000, files
    owned by the host's root show up as 'nobody' and container root may not
    write them.  Docker's userns-remap keeps a second, chowned copy of each
    layer for that range; so does minidocker (made once, then reused).
    """
    import shutil
    import subprocess

    dirs = []
    for src in image.layer_dirs:
        dst = f"{src}-uid{uid}"
        if not os.path.isdir(dst):
            work = f"{dst}.tmp-{os.getpid()}"
            shutil.rmtree(work, ignore_errors=True)
            subprocess.run(["cp", "-a", src, work], check=True)
            paths = [work] + [os.path.join(d, n) for d, dirs, files in os.walk(work) for n in dirs + files]
            for path in paths:  # each exactly once: uid -> uid + shift
                st = os.lstat(path)
                os.lchown(path, uid + st.st_uid, uid + st.st_gid)
            os.rename(work, dst)
        dirs.append(dst)
    return dirs


if __name__ == "__main__":  # scripts/setup: put the offline base image into the store now
    image = get(Store(), "busybox")
    print(f"{image.tags[0]} {image.id}")
