"""TEMPORARY stand-in for minidocker/layers.py (branch `union`), to be deleted when it is merged.

Only what archive.py / registry.py call: register_layer, remove_layer, write_layer_tar.
No whiteout conversion and only basic path checks: do not build on this.
"""

import hashlib
import os
import shutil
import tarfile

from minidocker import images
from minidocker.errors import MinidockerError


def register_layer(store, tar_fileobj) -> str:
    layers = os.path.join(store.images, "layers")
    os.makedirs(layers, exist_ok=True)
    work = os.path.join(layers, f".incoming-{os.getpid()}-{id(tar_fileobj)}")
    os.makedirs(work)
    digest = hashlib.sha256()
    try:
        with open(work + ".tar", "wb") as copy:
            while chunk := tar_fileobj.read(1 << 20):
                digest.update(chunk)
                copy.write(chunk)
        with tarfile.open(work + ".tar") as tar:
            for m in tar.getmembers():
                if m.name.startswith("/") or ".." in m.name.split("/"):
                    raise MinidockerError(f"layer member escapes: {m.name}")
            tar.extractall(work, numeric_owner=True)
        diff_id = "sha256:" + digest.hexdigest()
        final = images.layer_dir(store, diff_id)
        if os.path.isdir(final):
            shutil.rmtree(work)
            os.unlink(work + ".tar")
        else:
            os.rename(work + ".tar", final + ".tar")
            os.rename(work, final)
        return diff_id
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        if os.path.exists(work + ".tar"):
            os.unlink(work + ".tar")
        raise


def remove_layer(store, diff_id: str) -> None:
    final = images.layer_dir(store, diff_id)
    shutil.rmtree(final, ignore_errors=True)
    if os.path.exists(final + ".tar"):
        os.unlink(final + ".tar")


def write_layer_tar(store, diff_id: str, out) -> None:
    """Write the layer's tar, byte-identical to its diff ID, to the binary file `out`."""
    final = images.layer_dir(store, diff_id)
    if os.path.exists(final + ".tar"):
        with open(final + ".tar", "rb") as f:
            shutil.copyfileobj(f, out)
        return
    import io
    # busybox: the reproducible tar images._tar_digest hashes
    buf = io.BytesIO()
    root = final
    with tarfile.open(fileobj=buf, mode="w|", format=tarfile.PAX_FORMAT) as tar:
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
    out.write(buf.getvalue())
