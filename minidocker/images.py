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

import os

from minidocker import jsoncore
from minidocker.errors import Conflict, MinidockerError, NotFound
from minidocker.store import Store, atomic_write_json

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def normalize(reference: str) -> str:
    """'busybox' -> 'busybox:latest' (a reference without a tag means :latest); see reference.py."""
    from minidocker import reference as references

    return references.parse(reference).familiar


def tag_name(reference: str) -> str:
    """normalize() for a name about to be given to an image: a digest names content, it cannot be given."""
    from minidocker import reference as references

    parsed = references.parse(reference)
    if parsed.digest:
        raise MinidockerError("refusing to create a tag with a digest reference")
    return parsed.familiar


class Image:
    """An image in the store: its ID, config and the directories of its layers (bottom first)."""

    def __init__(self, store: Store, image_id: str, config: dict, tags: list[str]):
        self.store, self.id, self.config, self.tags = store, image_id, config, tags

    @property
    def layer_dirs(self) -> list[str]:
        dirs = [layer_dir(self.store, d) for d in self.config["rootfs"]["diff_ids"]]
        for diff_id, path in zip(self.config["rootfs"]["diff_ids"], dirs):
            if not os.path.isdir(path):
                raise NotFound(f"image {self.id[7:19]} is damaged: its layer {diff_id} is missing from the store")
        return dirs

    @property
    def runtime_config(self) -> dict:
        """The part of the config that says how to run it (Env, Cmd, Entrypoint, WorkingDir, User)."""
        return self.config.get("config", {})


def layer_dir(store: Store, diff_id: str) -> str:
    from minidocker import layers

    return layers.layer_dir(store, diff_id)


def _repositories(store: Store) -> dict:
    try:
        with open(os.path.join(store.images, "repositories.json")) as f:
            return jsoncore.load(f)
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
        matches = {i for i in set(repos.values()) | set(image_ids(store))
                   if i.removeprefix("sha256:").startswith(prefix)}
        if len(matches) == 1 and len(prefix) >= 4:
            image_id = matches.pop()
    if image_id is None:
        # Most names arrive as the store files them ('busybox' is filed as 'busybox:latest'): found so, they
        # need no parsing, which would import reference.py's regular expressions (~7 ms of a container start).
        image_id = repos.get(reference) or repos.get(f"{reference}:latest")
    if image_id is None:
        name = normalize(reference)
        image_id = repos.get(name)
        if image_id is None and name == "busybox:latest":
            image_id = build_busybox(store)
    if image_id is None:
        raise NotFound(f"Unable to find image '{reference}' locally (run never pulls: 'minidocker pull {reference}')")
    with open(os.path.join(store.images, "blobs", "sha256", image_id.split(":", 1)[1])) as f:
        config = jsoncore.load(f)
    return Image(store, image_id, config, sorted(t for t, i in _repositories(store).items() if i == image_id))


def layers_in_use(store: Store) -> set[str]:
    """The diff IDs of the layers that some stored image lists (call under the lock)."""
    return {diff_id for image_id in image_ids(store) for diff_id in get(store, image_id).config["rootfs"]["diff_ids"]}


def list_images(store: Store) -> list[Image]:
    """Every image in the store, tagged or not (an untagged one shows as <none>:<none>)."""
    return [get(store, image_id) for image_id in image_ids(store)]


def image_ids(store: Store) -> list[str]:
    """The IDs of all stored images: the image configs in blobs/sha256 (configs are JSON objects)."""
    blobs = os.path.join(store.images, "blobs", "sha256")
    try:
        names = os.listdir(blobs)
    except FileNotFoundError:
        return []
    ids = []
    for name in sorted(names):
        if len(name) == 64:
            with open(os.path.join(blobs, name), "rb") as f:
                if f.read(1) == b"{":
                    ids.append("sha256:" + name)
    return ids


# -- the offline base image ----------------------------------------------------------


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
    diff_id = _register_tree(store, work)
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


def _register_tree(store: Store, tree: str) -> str:
    """Store a directory tree as a layer: tar it reproducibly, then register that tar like any other."""
    import shutil
    import tempfile

    from minidocker import layers

    try:
        with tempfile.TemporaryFile(dir=os.path.join(store.images, "layers")) as spool:
            layers.write_tar(tree, spool, reproducible=True)
            spool.seek(0)
            return layers.register_layer(store, spool)
    finally:
        shutil.rmtree(tree, ignore_errors=True)


def add_image(store: Store, config: dict, tags: list[str]) -> str:
    """Store an image config as a content-addressed blob and point the tags at it."""
    import hashlib

    raw = jsoncore.dumps(config, sort_keys=True, separators=(",", ":")).encode()
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
    with store.lock():  # an image appears whole, never while rmi decides which layers are still used
        if not os.path.exists(blob):
            with open(f"{blob}.tmp-{os.getpid()}", "wb") as f:
                f.write(raw_config)
            os.replace(f"{blob}.tmp-{os.getpid()}", blob)
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

    from minidocker import kernel, layers

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
                if os.path.isdir(path) and not os.path.islink(path) and layers.is_opaque(path):
                    # in a user namespace overlayfs reads its marks from user.* xattrs ("userxattr")
                    kernel.setxattr(path, "user.overlay.opaque", b"y")
            os.rename(work, dst)
        dirs.append(dst)
    return dirs


# -- managing images (chapter 7): tag, history, remove, prune, config changes ---------------


def tag(store: Store, source: str, target: str) -> str:
    """docker tag: one more name for the same image (only repositories.json changes)."""
    tag_name(target)
    image = get(store, source)
    add_image_tags(store, image.id, [target])
    return image.id


def add_image_tags(store: Store, image_id: str, tags: list[str]) -> None:
    names = [normalize(t) for t in tags]  # every name is checked before any is written
    with store.lock():
        repos = _repositories(store)
        repos.update({name: image_id for name in names})
        atomic_write_json(os.path.join(store.images, "repositories.json"), repos)


def containers_using(store: Store, image_id: str) -> list[dict]:
    return [r for r in store.records() if r["Image"] == image_id]


def remove(store: Store, reference: str, force: bool = False) -> list[str]:
    """docker rmi: untag, and delete the image once no tag and no container refers to it.

    Returns Docker's report lines ("Untagged: ...", "Deleted: ...").  An image
    a container uses is refused; with force it is only untagged (its layers
    stay: the container still runs on them).
    """
    image = get(store, reference)
    by_name = normalize_or_none(reference) in image.tags  # else it named the image by its ID
    users = containers_using(store, image.id)
    if users and not force:
        raise Conflict(f"conflict: unable to remove repository reference \"{reference}\" (must force) - "
                       f"container {users[0]['Id'][:12]} is using its referenced image {image.id[7:19]}")
    if not by_name and len(image.tags) > 1 and not force:
        raise Conflict(f"conflict: unable to delete {image.id[7:19]} (must be forced) - image is referenced in "
                       f"multiple repositories")
    doomed_tags = [normalize(reference)] if by_name else image.tags
    report = []
    with store.lock():
        repos = _repositories(store)
        for name in doomed_tags:
            if repos.pop(name, None):
                report.append(f"Untagged: {name}")
        atomic_write_json(os.path.join(store.images, "repositories.json"), repos)
        if image.id not in repos.values() and not users:
            report += _delete_image(store, image)
    return report


def normalize_or_none(reference: str) -> str | None:
    try:
        return normalize(reference)
    except MinidockerError:
        return None


def _delete_image(store: Store, image: Image) -> list[str]:
    """Delete the config, then every layer no other image lists (call under the lock)."""
    from minidocker import layers

    os.unlink(os.path.join(store.images, "blobs", "sha256", image.id[7:]))
    still_used = layers_in_use(store)
    report = [f"Deleted: {image.id}"]
    for diff_id in dict.fromkeys(image.config["rootfs"]["diff_ids"]):
        if diff_id not in still_used and layers.has_layer(store, diff_id):
            layers.remove_layer(store, diff_id)
            report.append(f"Deleted: {diff_id}")
    return report


def prune(store: Store, all: bool = False) -> list[str]:
    """docker image prune: delete untagged images no container uses (all=True: every unused image)."""
    from minidocker import layers

    layers.sweep_incoming(store)  # and what killed imports, loads and pulls left
    report = []
    for image_id in image_ids(store):
        image = get(store, image_id)
        if (image.tags and not all) or containers_using(store, image_id):
            continue
        report += remove(store, image_id, force=True)
    return report


def layer_size(store: Store, diff_id: str) -> int:
    """Bytes of file content in the unpacked layer (what `docker history` and `images` show as SIZE)."""
    total = 0
    for dirpath, _dirs, files in os.walk(layer_dir(store, diff_id)):
        for name in files:
            total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def history(image: Image) -> list[dict]:
    """docker history: one row per step that made the image, newest first, each with its layer's size."""
    diff_ids = iter(image.config["rootfs"]["diff_ids"])
    rows = []
    for entry in image.config.get("history") or [{} for _ in image.config["rootfs"]["diff_ids"]]:
        diff_id = None if entry.get("empty_layer") else next(diff_ids, None)
        rows.append({"created": entry.get("created", ""), "created_by": entry.get("created_by", ""),
                     "comment": entry.get("comment", ""), "diff_id": diff_id,
                     "size": layer_size(image.store, diff_id) if diff_id else 0})
    rows.reverse()
    for row, image_id in zip(rows, [image.id]):
        row["id"] = image_id
    return rows


CHANGEABLE = ("CMD", "ENTRYPOINT", "ENV", "WORKDIR", "USER", "EXPOSE", "LABEL", "VOLUME")


def apply_changes(runtime_config: dict, changes: list[str]) -> dict:
    """`--change 'CMD ["sh"]'` and friends (Dockerfile instructions) applied to a copy of a runtime config."""
    import copy
    import shlex

    config = copy.deepcopy(runtime_config)
    for change in changes:
        instruction, _, rest = change.strip().partition(" ")
        instruction, rest = instruction.upper(), rest.strip()
        if instruction not in CHANGEABLE or not rest:
            raise MinidockerError(f"invalid --change {change!r}: expected one of {', '.join(CHANGEABLE)} "
                                  f"and its value")
        try:
            words = jsoncore.loads(rest) if rest.startswith("[") else None
            if words is not None and not (isinstance(words, list) and all(isinstance(w, str) for w in words)):
                raise ValueError("a JSON form must be a list of strings")
            if instruction in ("CMD", "ENTRYPOINT"):  # shell form: run by /bin/sh -c, as in a Dockerfile
                config[instruction.title() if instruction == "CMD" else "Entrypoint"] = \
                    words if words is not None else ["/bin/sh", "-c", rest]
            elif instruction == "ENV":
                pairs = shlex.split(rest)
                if "=" not in pairs[0]:  # the old form: ENV KEY the rest of the line
                    pairs = [f"{pairs[0]}={rest.partition(' ')[2].strip()}"]
                env = dict(e.split("=", 1) for e in config.get("Env") or [])
                for pair in pairs:
                    key, eq, value = pair.partition("=")
                    if not key or not eq:
                        raise ValueError(f"{pair!r} is not KEY=VALUE")
                    env[key] = value
                config["Env"] = [f"{k}={v}" for k, v in env.items()]
            elif instruction == "WORKDIR":
                config["WorkingDir"] = os.path.normpath(os.path.join(config.get("WorkingDir") or "/", rest))
            elif instruction == "USER":
                config["User"] = rest
            elif instruction == "EXPOSE":
                for port in rest.split():
                    number, _, protocol = port.partition("/")
                    if not number.isdigit() or protocol not in ("", "tcp", "udp", "sctp"):
                        raise ValueError(f"invalid port {port!r}")
                    config.setdefault("ExposedPorts", {})[f"{int(number)}/{protocol or 'tcp'}"] = {}
            elif instruction == "LABEL":
                for pair in shlex.split(rest):
                    key, eq, value = pair.partition("=")
                    if not key or not eq:
                        raise ValueError(f"{pair!r} is not KEY=VALUE")
                    config.setdefault("Labels", {})[key] = value
            elif instruction == "VOLUME":
                for path in words if words is not None else rest.split():
                    config.setdefault("Volumes", {})[path] = {}
        except ValueError as e:
            raise MinidockerError(f"invalid --change {change!r}: {e}") from None
    return config


if __name__ == "__main__":  # scripts/setup: put the offline base image into the store now
    image = get(Store(), "busybox")
    print(f"{image.tags[0]} {image.id}")
