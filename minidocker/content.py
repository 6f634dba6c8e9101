"""Content addressing: bytes that arrive from outside are checked against their digest (chapter 3).

Every piece of an image is named by the sha256 of its bytes:

    image ID     sha256 of the config JSON
    diff ID      sha256 of a layer's *uncompressed* tar (what the config lists)
    blob digest  sha256 of a layer as shipped (usually gzip-compressed: what a manifest lists)

So whoever hands us an image -- a tar file, a registry -- can be checked: hash
the bytes as they stream past and compare.  A mismatch means corruption or
tampering, and the image is refused before anything is stored.

:class:`ImageImport` is the one way images come in (`load` and `pull` both use
it): layers are verified and registered, configs verified, and only when all
of that worked are the image and its tags written.  If anything fails, the
layers that this import added are removed again, so the store is as it was.
"""

import hashlib
import io
import json
import os

from minidocker import images
from minidocker.errors import MinidockerError
from minidocker.store import Store

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def check_digest(digest: str) -> str:
    """A digest from outside is used in file names: it must be exactly sha256:<64 hex>."""
    algorithm, _, hexpart = str(digest).partition(":")
    if algorithm != "sha256" or len(hexpart) != 64 or not all(c in "0123456789abcdef" for c in hexpart):
        raise MinidockerError(f"unsupported or malformed digest: {digest!r}")
    return digest


class VerifyingReader(io.RawIOBase):
    """A file wrapper that hashes every byte read through it; `verify()` at the end compares."""

    def __init__(self, raw, expected: str | None = None, size: int | None = None, what: str = "blob"):
        self.raw, self.expected, self.size, self.what = raw, expected, size, what
        self.hash, self.count = hashlib.sha256(), 0

    def readable(self):
        return True

    def readinto(self, buffer):
        data = self.raw.read(len(buffer))
        self.hash.update(data)
        self.count += len(data)
        buffer[:len(data)] = data
        return len(data)

    @property
    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()

    def verify(self) -> str:
        """Read what is left (a tar reader may stop at its end-of-archive blocks), then compare."""
        while self.read(1 << 20):
            pass
        if self.size is not None and self.count != self.size:
            raise MinidockerError(f"{self.what} {self.expected}: size {self.count}, expected {self.size} "
                                  f"(truncated or corrupt)")
        if self.expected and self.digest != self.expected:
            raise MinidockerError(f"{self.what} digest mismatch: expected {self.expected}, got {self.digest}")
        return self.digest


def uncompressed(stream: io.BufferedReader):
    """The layer tar inside `stream`, decompressed on the fly when it is gzip (found by its magic bytes)."""
    head = stream.peek(4)[:4]
    if head.startswith(GZIP_MAGIC):
        import gzip

        return gzip.GzipFile(fileobj=stream, mode="rb")
    if head.startswith(ZSTD_MAGIC):
        raise MinidockerError("zstd-compressed layers are not supported (only plain and gzip tars)")
    return stream


class ImageImport:
    """Bring images in from outside: everything verified, then stored all together or not at all.

        with ImageImport(store) as incoming:
            diff_id = incoming.add_layer(f, digest="sha256:...")     # for each layer
            incoming.add_image(config_bytes, ["alpine:3.19"], config_digest)
        # an exception inside the block removes the layers it added
    """

    def __init__(self, store: Store):
        self.store = store
        self.new_layers: list[str] = []
        self.pending: list[tuple[bytes, list[str]]] = []

    def __enter__(self):
        return self

    def add_layer(self, fileobj, digest: str | None = None, size: int | None = None) -> str:
        """Register one layer as shipped (plain or gzip tar); returns its diff ID.

        `digest` and `size` describe the bytes as shipped (a manifest's descriptor);
        they are checked once the whole blob has gone through.
        """
        from minidocker._layers_placeholder import register_layer

        shipped = VerifyingReader(fileobj, digest and check_digest(digest), size, what="layer")
        tar_stream = uncompressed(io.BufferedReader(shipped, 1 << 20))
        diff_id, added = _register(register_layer, self.store, tar_stream)
        if added:
            self.new_layers.append(diff_id)
        shipped.verify()
        return diff_id

    def add_image(self, raw_config: bytes, tags: list[str], digest: str | None = None,
                  diff_ids: list[str] | None = None) -> str:
        """Check a config (its digest, and that its layers are the ones we registered); store it at the end."""
        if digest and sha256(raw_config) != check_digest(digest):
            raise MinidockerError(f"config digest mismatch: expected {digest}, got {sha256(raw_config)}")
        try:
            config = json.loads(raw_config)
            listed = config["rootfs"]["diff_ids"]
        except (ValueError, KeyError, TypeError):
            raise MinidockerError("image config is not valid JSON with rootfs.diff_ids") from None
        if diff_ids is not None and list(listed) != list(diff_ids):
            raise MinidockerError(f"layers do not match the image config: config lists {len(listed)} diff IDs "
                                  f"{[d[7:19] for d in listed]}, the layers are {[d[7:19] for d in diff_ids]}")
        for d in listed:
            check_digest(d)
        self.pending.append((raw_config, tags))
        return sha256(raw_config)

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            for raw_config, tags in self.pending:
                images.add_image_config(self.store, raw_config, tags)
            return False
        from minidocker._layers_placeholder import remove_layer

        for diff_id in self.new_layers:  # nothing stored refers to them: put the store back as it was
            remove_layer(self.store, diff_id)
        return False


def _register(register_layer, store: Store, tar_stream) -> tuple[str, bool]:
    """register_layer, and whether the layer is new to the store (so a failed import can remove it)."""
    import tarfile
    import zlib

    layers_dir = os.path.join(store.images, "layers")  # layers/<diff id hex>, as images.py lays them out
    before = set(os.listdir(layers_dir)) if os.path.isdir(layers_dir) else set()
    try:
        diff_id = register_layer(store, tar_stream)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise MinidockerError(f"layer is not a readable tar: {e}") from None
    return diff_id, diff_id.split(":", 1)[1] not in before
