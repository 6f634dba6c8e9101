"""The layer store (chapters 3 and 7): tar in, the exact tar out, whiteouts converted, strangers' tars refused.

These tests call minidocker.layers on a private store; the unpacked layers are
looked at on disk (device numbers, xattrs), which is what overlayfs will read.
"""

import gzip
import hashlib
import io
import json
import os
import stat
import tarfile

import pytest

from conftest import store_snapshot

from minidocker import images, layers
from minidocker.errors import MinidockerError, NotFound
from minidocker.store import Store


@pytest.fixture
def store(tmp_path):
    return Store(str(tmp_path / "root"))


def make_tar(*entries) -> bytes:
    """entries: (name, kind, extra) with kind file|dir|symlink|hardlink|chr|blk|fifo."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, extra in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1700000000
            data = None
            if kind == "file":
                data = extra.encode() if isinstance(extra, str) else extra
                info.size, info.mode = len(data), 0o644
            elif kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, extra or 0o755
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, extra
            elif kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, extra
            elif kind in ("chr", "blk"):
                info.type = tarfile.CHRTYPE if kind == "chr" else tarfile.BLKTYPE
                info.devmajor, info.devminor = extra
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
            elif kind == "setuid":
                data = b"#!/bin/sh\n"
                info.size, info.mode = len(data), 0o4755
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


GOOD = [("etc", "dir", None), ("etc/motd", "file", "hello\n"), ("etc/gone.conf", "file", "x"),
        ("bin", "dir", None), ("bin/tool", "setuid", None), ("bin/sh", "symlink", "/bin/busybox"),
        ("bin/again", "hardlink", "etc/motd"), ("tmp", "dir", 0o1777), ("run", "dir", None),
        ("run/pipe", "fifo", None), ("etc/.wh.passwd", "file", b""), ("var", "dir", None),
        ("var/cache", "dir", None), ("var/cache/.wh..wh..opq", "file", b"")]


def test_register_unpacks_once_and_gives_back_the_exact_tar(store):
    data = make_tar(*GOOD)
    diff_id = layers.register_layer(store, io.BytesIO(data))
    assert diff_id == sha(data)
    tree = layers.layer_dir(store, diff_id)
    assert open(f"{tree}/etc/motd").read() == "hello\n"
    assert os.stat(f"{tree}/bin/tool").st_mode & 0o7777 == 0o4755  # a layer keeps setuid bits
    assert os.stat(f"{tree}/tmp").st_mode & 0o7777 == 0o1777
    assert os.readlink(f"{tree}/bin/sh") == "/bin/busybox"  # absolute: resolved inside the container
    assert os.stat(f"{tree}/bin/again").st_ino == os.stat(f"{tree}/etc/motd").st_ino
    assert stat.S_ISFIFO(os.lstat(f"{tree}/run/pipe").st_mode)
    out = io.BytesIO()
    layers.layer_tar(store, diff_id, out)
    assert out.getvalue() == data  # byte for byte, so sha256 = diff ID
    assert os.path.exists(f"{tree}.tar-split") and not os.path.exists(f"{tree}.tar")


def test_oci_whiteouts_become_overlayfs_ones(store):
    tree = layers.layer_dir(store, layers.register_layer(store, io.BytesIO(make_tar(*GOOD))))
    st = os.lstat(f"{tree}/etc/passwd")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)
    assert not os.path.lexists(f"{tree}/etc/.wh.passwd")
    assert os.getxattr(f"{tree}/var/cache", "trusted.overlay.opaque") == b"y"
    assert os.listdir(f"{tree}/var/cache") == []


def test_device_nodes_are_kept_and_come_back_out_as_they_went_in(store):
    """As in Docker: a node is only a name (the devices cgroup decides who opens it).  A 0/0 character
    device is what overlayfs reads as a whiteout, so going out again (commit, export) it is a .wh. file."""
    data = make_tar(("dev", "dir", None), ("dev/sda", "blk", (8, 0)), ("dev/full", "chr", (1, 7)),
                    ("etc", "dir", None), ("etc/hidden", "chr", (0, 0)))
    diff_id = layers.register_layer(store, io.BytesIO(data))
    tree = layers.layer_dir(store, diff_id)
    assert stat.S_ISBLK(os.lstat(f"{tree}/dev/sda").st_mode) and os.lstat(f"{tree}/dev/sda").st_rdev == os.makedev(8, 0)
    assert stat.S_ISCHR(os.lstat(f"{tree}/dev/full").st_mode) and os.lstat(f"{tree}/dev/full").st_rdev == os.makedev(1, 7)
    assert layers.is_whiteout(os.lstat(f"{tree}/etc/hidden"))
    out = io.BytesIO()
    layers.layer_tar(store, diff_id, out)
    assert out.getvalue() == data  # save and push send the very same bytes
    out = io.BytesIO()
    layers.write_tar(tree, out)
    members = {m.name: m for m in tarfile.open(fileobj=io.BytesIO(out.getvalue()))}
    assert (members["dev/sda"].type, members["dev/sda"].devmajor, members["dev/sda"].devminor) == (tarfile.BLKTYPE, 8, 0)
    assert (members["dev/full"].type, members["dev/full"].devmajor, members["dev/full"].devminor) == (tarfile.CHRTYPE, 1, 7)
    assert "etc/.wh.hidden" in members and "etc/hidden" not in members


def test_a_whiteout_replaces_what_the_same_layer_put_there_a_directory_or_a_file(store):
    data = make_tar(("d", "dir", None), ("d/inside", "file", "x"), ("f", "file", "y"),
                    (".wh.d", "file", b""), (".wh.f", "file", b""))
    tree = layers.layer_dir(store, layers.register_layer(store, io.BytesIO(data)))
    for name in ("d", "f"):
        st = os.lstat(f"{tree}/{name}")
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0), name


def test_registering_twice_changes_nothing_and_gzip_gives_the_same_diff_id(store):
    data = make_tar(*GOOD)
    diff_id = layers.register_layer(store, io.BytesIO(data))
    before = store_snapshot(store.images)
    assert layers.register_layer(store, io.BytesIO(gzip.compress(data))) == diff_id
    assert layers.register_layer(store, io.BytesIO(data), expected_diff_id=diff_id) == diff_id
    assert store_snapshot(store.images) == before


def test_members_overwriting_one_another_still_give_back_the_exact_tar(store):
    data = make_tar(("a", "file", "first"), ("a", "file", "second, longer"), ("b", "file", "b"))
    diff_id = layers.register_layer(store, io.BytesIO(data))
    assert open(f"{layers.layer_dir(store, diff_id)}/a").read() == "second, longer"
    out = io.BytesIO()
    layers.layer_tar(store, diff_id, out)
    assert out.getvalue() == data


def test_a_directory_tar_round_trips_with_whiteouts_in_oci_form(store, tmp_path):
    data = make_tar(*GOOD)
    tree = layers.layer_dir(store, layers.register_layer(store, io.BytesIO(data)))
    out = io.BytesIO()
    layers.write_tar(tree, out)
    names = tarfile.open(fileobj=io.BytesIO(out.getvalue())).getnames()
    assert "etc/.wh.passwd" in names and "var/cache/.wh..wh..opq" in names and "etc/passwd" not in names


UNSAFE = {
    "absolute path": [("/tmp/evil", "file", "x")],
    "dot-dot": [("a/../../evil", "file", "x")],
    "symlink then write": [("link", "symlink", "{outside}"), ("link/evil", "file", "x")],
    "relative symlink then write": [("d", "dir", None), ("d/up", "symlink", "../../../../../../../../{outside}"),
                                    ("d/up/evil", "file", "x")],
    "hardlink outside": [("h", "hardlink", "{outside}/victim")],
    "hardlink via ..": [("h", "hardlink", "../../../../../../../..{outside}/victim")],
    "hardlink through a symlink": [("s", "symlink", "{outside}/victim"), ("h", "hardlink", "s")],
    "device through a symlink": [("link", "symlink", "{outside}"), ("link/sda", "blk", (8, 0))],
    "whiteout through a symlink": [("link", "symlink", "{outside}"), ("link/.wh.victim", "file", b"")],
    "whiteout of ..": [("a", "dir", None), ("a/.wh..", "file", b"")],
    "opaque marker through a symlink": [("link", "symlink", "{outside}"), ("link/.wh..wh..opq", "file", b"")],
}


@pytest.mark.parametrize("case", UNSAFE, ids=list(UNSAFE))
def test_unsafe_tars_are_refused_and_nothing_escapes_or_changes(store, tmp_path, case):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("keep me")
    layers.register_layer(store, io.BytesIO(make_tar(*GOOD)))
    before, outside_before = store_snapshot(store.root), store_snapshot(str(outside))
    entries = [(n.format(outside=outside), k, e.format(outside=outside) if isinstance(e, str) else e)
               for n, k, e in UNSAFE[case]]
    with pytest.raises(layers.BadLayer, match="unsafe layer"):
        layers.register_layer(store, io.BytesIO(make_tar(*entries)))
    assert store_snapshot(store.root) == before
    assert store_snapshot(str(outside)) == outside_before
    assert not os.path.lexists("/tmp/evil")


def _damaged():
    good = make_tar(("a", "file", "x" * 3000), ("b", "file", "y" * 100), ("c", "dir", None))
    second_header = 512 * (2 + (3000 + 511) // 512)  # pax header + header + data of "a"
    flipped = bytearray(good)
    flipped[second_header + 600] ^= 0xFF  # a byte of b's header (its pax header is 512 bytes long)
    return {
        "truncated in a file": good[:1500],
        "truncated in a header": good[:second_header + 100],
        "truncated at a header": good[:second_header],
        "damaged header": bytes(flipped),
        "garbage": os.urandom(4096),
        "empty": b"",
        "truncated gzip": gzip.compress(good)[:len(gzip.compress(good)) // 2],
    }


@pytest.mark.parametrize("case", list(_damaged()), ids=list(_damaged()))
def test_corrupt_or_truncated_tars_are_refused_and_the_store_is_unchanged(store, case):
    layers.register_layer(store, io.BytesIO(make_tar(*GOOD)))
    before = store_snapshot(store.root)
    with pytest.raises(layers.BadLayer, match="corrupt"):
        layers.register_layer(store, io.BytesIO(_damaged()[case]))
    assert store_snapshot(store.root) == before


def test_digest_mismatch_and_missing_layer(store):
    layers.register_layer(store, io.BytesIO(make_tar(("other", "file", "other"))))
    data = make_tar(*GOOD)
    before = store_snapshot(store.root)
    with pytest.raises(layers.BadLayer, match="digest mismatch"):
        layers.register_layer(store, io.BytesIO(data), expected_diff_id="sha256:" + "0" * 64)
    assert store_snapshot(store.root) == before
    with pytest.raises(NotFound, match="not in the store"):
        layers.layer_tar(store, sha(data), io.BytesIO())
    with pytest.raises(layers.BadLayer, match="invalid layer digest"):
        layers.layer_tar(store, "sha256:../../etc", io.BytesIO())


def test_a_damaged_store_is_detected_when_the_tar_is_given_back(store):
    diff_id = layers.register_layer(store, io.BytesIO(make_tar(*GOOD)))
    with open(f"{layers.layer_dir(store, diff_id)}/etc/motd", "w") as f:
        f.write("HELLO\n")  # same size, other bytes
    with pytest.raises(layers.BadLayer, match="no longer matches"):
        layers.layer_tar(store, diff_id, io.BytesIO())


def test_remove_layer_leaves_other_layers(store):
    kept = layers.register_layer(store, io.BytesIO(make_tar(("kept", "file", "k"))))
    before = store_snapshot(store.root)
    doomed = layers.register_layer(store, io.BytesIO(make_tar(*GOOD)))
    layers.remove_layer(store, doomed)
    assert store_snapshot(store.root) == before and layers.has_layer(store, kept) and not layers.has_layer(store, doomed)


def test_a_layer_stored_without_a_record_is_given_back_from_its_tree(store, tmp_path):
    """Layers unpacked by an older minidocker have no tar-split: their tar was the reproducible one."""
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "motd").write_text("hi\n")
    os.symlink("/bin/busybox", tree / "sh")
    spool = io.BytesIO()
    layers.write_tar(str(tree), spool, reproducible=True)
    diff_id = layers.register_layer(store, io.BytesIO(spool.getvalue()))
    assert diff_id == layers.tar_digest(str(tree))
    os.unlink(layers.layer_dir(store, diff_id) + ".tar-split")
    out = io.BytesIO()
    layers.layer_tar(store, diff_id, out)
    assert out.getvalue() == spool.getvalue()


def _import_one_layer(store, tar: bytes, tag: str):
    """Start an import of a one-layer image (the block not yet ended); returns it."""
    from minidocker import content

    incoming = content.ImageImport(store).__enter__()
    incoming.add_layer(io.BytesIO(tar), sha(tar))
    config = {"architecture": "amd64", "os": "linux", "config": {}, "rootfs": {"type": "layers", "diff_ids": [sha(tar)]},
              "created": tag}  # a different config, so a different image, per tag
    incoming.add_image(json.dumps(config).encode(), [tag])
    return incoming


def test_an_import_that_fails_keeps_a_layer_a_concurrent_import_has_stored_an_image_on(store):
    tar = make_tar(*GOOD)
    failing = _import_one_layer(store, tar, "failing:1")  # stores the layer first
    succeeding = _import_one_layer(store, tar, "other:1")  # finds it there and uses it
    assert succeeding.__exit__(None, None, None) is False
    failing.__exit__(MinidockerError, MinidockerError("boom"), None)  # its roll-back
    assert layers.has_layer(store, sha(tar)), "the roll-back removed a layer a stored image lists"
    assert images.get(store, "other:1").layer_dirs == [layers.layer_dir(store, sha(tar))]
    with pytest.raises(NotFound):
        images.get(store, "failing:1")


def test_an_import_whose_shared_layer_was_rolled_back_meanwhile_fails_and_stores_nothing(store):
    tar = make_tar(*GOOD)
    failing = _import_one_layer(store, tar, "failing:1")
    late = _import_one_layer(store, tar, "late:1")
    failing.__exit__(MinidockerError, MinidockerError("boom"), None)  # nobody stored an image on it yet
    with pytest.raises(MinidockerError, match="removed meanwhile by another import that failed"):
        late.__exit__(None, None, None)
    assert images.image_ids(store) == [] and not layers.has_layer(store, sha(tar))
    assert os.listdir(os.path.join(store.images, "layers")) == []
