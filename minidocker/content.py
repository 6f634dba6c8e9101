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

from minidocker import images
from minidocker.errors import MinidockerError
from minidocker.store import Store


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


def config_layers(raw_config: bytes, digest: str | None, layer_count: int) -> list[str]:
    """Check an image config against its digest; return the diff IDs it lists (one per shipped layer)."""
    if digest and sha256(raw_config) != check_digest(digest):
        raise MinidockerError(f"config digest mismatch: expected {digest}, got {sha256(raw_config)}")
    try:
        diff_ids = [check_digest(d) for d in json.loads(raw_config)["rootfs"]["diff_ids"]]
    except (ValueError, KeyError, TypeError):
        raise MinidockerError("image config is not valid JSON with rootfs.diff_ids") from None
    if len(diff_ids) != layer_count:
        raise MinidockerError(f"the image config lists {len(diff_ids)} layers, the manifest {layer_count}")
    return diff_ids


class ImageImport:
    """Bring images in from outside: everything verified, then stored all together or not at all.

        with ImageImport(store) as incoming:
            diff_ids = config_layers(raw_config, config_digest, len(layers))
            for blob, diff_id in zip(layers, diff_ids):
                incoming.add_layer(blob, diff_id, digest="sha256:...")   # checked as it streams in
            incoming.add_image(raw_config, ["alpine:3.19"])              # stored when the block ends
        # an exception inside the block removes the layers it added

    Two imports may run at once and share a layer: the one that stored it first
    may then fail and roll back.  So commit and roll-back both happen under the
    store's lock; a roll-back keeps a layer that a stored image lists, and a
    commit whose layer was rolled back meanwhile fails (one line: load again).
    """

    def __init__(self, store: Store):
        self.store = store
        self.layers: list[str] = []  # every layer the images of this import list
        self.new_layers: list[str] = []  # those this import stored
        self.pending: list[tuple[bytes, list[str]]] = []

    def __enter__(self):
        return self

    def add_layer(self, fileobj, diff_id: str, digest: str | None = None, size: int | None = None) -> None:
        """Register one layer as shipped (a plain or gzip tar) whose uncompressed sha256 must be `diff_id`.

        `digest` and `size` describe the bytes as shipped (a manifest's descriptor);
        they are checked once the whole blob has gone through.
        """
        import tarfile
        import zlib

        from minidocker import layers

        existed = layers.has_layer(self.store, diff_id)
        shipped = VerifyingReader(fileobj, digest and check_digest(digest), size, what="layer")
        try:
            layers.register_layer(self.store, shipped, expected_diff_id=diff_id)
        except (tarfile.TarError, EOFError, zlib.error) as e:
            raise MinidockerError(f"layer is not a readable tar: {e}") from None
        if not existed:
            self.new_layers.append(diff_id)
        self.layers.append(diff_id)
        shipped.verify()

    def add_image(self, raw_config: bytes, tags: list[str]) -> str:
        """Store this config (and tags) when the whole import has worked; returns the image ID."""
        self.pending.append((raw_config, tags))
        return sha256(raw_config)

    def __exit__(self, exc_type, exc, tb):
        from minidocker import layers

        with self.store.lock():
            gone = [d for d in self.layers if not layers.has_layer(self.store, d)]
            if exc_type is None and not gone:
                for raw_config, tags in self.pending:
                    images.add_image_config(self.store, raw_config, tags)
                return False
            in_use = images.layers_in_use(self.store)
            for diff_id in self.new_layers:  # put the store back as it was, but for what others now use
                if diff_id not in in_use and diff_id not in gone:
                    layers.remove_layer(self.store, diff_id)
        if exc_type is None:
            raise MinidockerError(f"layer {gone[0]} was removed meanwhile by another import that failed; "
                                  "nothing was stored: run this one again")
        return False
