"""Chapter 7 on the real kernel: overlayfs's rules seen in the layer directories, and the image commands.

Each rule is checked where the kernel leaves its traces: the container's
writable layer (UPPER) and the image's layer directories, after the
container's processes did the reading, writing and deleting.
"""

import hashlib
import io
import os
import stat
import tarfile

from conftest import store_snapshot
from minidocker import images, layers, union
from minidocker.store import Store


def upper_of(md, ref) -> str:
    return md.inspect(ref, "{{.GraphDriver.Data.UpperDir}}")


def upper_entries(upper: str) -> set[str]:
    """Everything in UPPER except the empty files minidocker bind-mounts /etc/hostname etc. onto."""
    found = set()
    for dirpath, dirnames, filenames in os.walk(upper):
        for name in dirnames + filenames:
            rel = os.path.relpath(os.path.join(dirpath, name), upper)
            if rel not in union.BIND_MOUNT_PLACEHOLDERS:
                found.add(rel)
    return found


def file_hash(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def three_layer_image(md) -> str:
    """busybox + a layer writing /data/f=one and /data/only1 + a layer writing /data/f=two."""
    md.out("run", "--name", "l1", "busybox", "sh", "-c", "mkdir /data; echo one > /data/f; echo 1 > /data/only1")
    md.out("commit", "l1", "three:1")
    md.out("run", "--name", "l2", "three:1", "sh", "-c", "echo two > /data/f")
    md.out("commit", "-m", "second", "l2", "three:2")
    md.out("rm", "l1", "l2")
    return "three:2"


def test_a_read_is_served_by_the_topmost_layer_that_holds_the_path(md):
    image = images.get(Store(md.root), three_layer_image(md))
    assert len(image.layer_dirs) == 3
    assert md.out("run", "--rm", "three:2", "cat", "/data/f", "/data/only1") == "two\n1"
    top_first = list(reversed(image.layer_dirs))
    assert open(f"{top_first[1]}/data/f").read() == "one\n"  # the lower version is still there, hidden
    assert union.serving_layers(top_first, "data/f") == [0]
    assert union.serving_layers(top_first, "data/only1") == [1]
    assert union.serving_layers(top_first, "bin/busybox") == [2]
    assert union.serving_layers(top_first, "data") == [0, 1]  # a directory merges the layers that have it
    view = union.layer_view(top_first)
    assert view["data/f"] == 0 and view["data/only1"] == 1 and view["bin/sh"] == 2


def test_a_write_copies_up_only_that_file(md):
    base = images.get(Store(md.root), "busybox").layer_dirs[0]
    before = file_hash(f"{base}/etc/passwd")
    md.out("run", "--name", "w", "busybox", "sh", "-c", "echo 'extra:x:5:5::/:/bin/sh' >> /etc/passwd")
    upper = upper_of(md, "w")
    assert upper_entries(upper) == {"etc", "etc/passwd"}  # not /etc/group, not /bin: only the file written
    assert open(f"{upper}/etc/passwd").read() == open(f"{base}/etc/passwd").read() + "extra:x:5:5::/:/bin/sh\n"
    assert file_hash(f"{base}/etc/passwd") == before  # the image's layer is never written
    assert md.out("diff", "w").splitlines() == ["C /etc", "C /etc/passwd"]


def test_a_delete_writes_a_whiteout_that_hides_the_lower_file(md):
    base = images.get(Store(md.root), "busybox").layer_dirs[0]
    md.out("run", "--name", "d", "busybox", "rm", "/etc/group")
    upper = upper_of(md, "d")
    st = os.lstat(f"{upper}/etc/group")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)
    assert os.path.isfile(f"{base}/etc/group")
    assert md("start", "-a", "d").returncode == 1  # rm again: the file is gone for this container...
    assert "root:x:0:" in md.out("run", "--rm", "busybox", "cat", "/etc/group")  # ...and only for it
    assert md.out("diff", "d").splitlines() == ["C /etc", "D /etc/group"]


def test_a_directory_made_again_is_opaque(md):
    md.out("run", "--name", "o", "busybox", "sh", "-c", "rm -rf /usr/sbin && mkdir /usr/sbin && touch /usr/sbin/mine")
    upper = upper_of(md, "o")
    assert os.getxattr(f"{upper}/usr/sbin", "trusted.overlay.opaque") == b"y"
    assert os.listdir(f"{upper}/usr/sbin") == ["mine"]
    base = images.get(Store(md.root), "busybox").layer_dirs[0]
    hidden = sorted(os.listdir(f"{base}/usr/sbin"))
    assert hidden  # busybox has applets there, all hidden now
    diff = md.out("diff", "o").splitlines()
    assert "C /usr/sbin" in diff and "A /usr/sbin/mine" in diff
    assert {f"D /usr/sbin/{name}" for name in hidden} <= set(diff)


def test_commit_turns_whiteouts_into_oci_ones_and_back(md):
    md.out("run", "--name", "c", "busybox", "sh", "-c",
           "rm /etc/group; rm -rf /usr/sbin; mkdir /usr/sbin; echo hi > /usr/sbin/mine; echo new > /etc/motd")
    image_id = md.out("commit", "-m", "by test", "c", "mine:1")
    store = Store(md.root)
    image = images.get(store, "mine:1")
    assert image.id == image_id and len(image.layer_dirs) == 2
    diff_id = image.config["rootfs"]["diff_ids"][-1]
    out = io.BytesIO()
    layers.layer_tar(store, diff_id, out)
    assert "sha256:" + hashlib.sha256(out.getvalue()).hexdigest() == diff_id
    names = set(tarfile.open(fileobj=io.BytesIO(out.getvalue())).getnames())
    assert {"etc/.wh.group", "usr/sbin/.wh..wh..opq", "usr/sbin/mine", "etc/motd"} <= names
    assert not names & {"etc/group", "etc/hostname", "etc/hosts", "etc/resolv.conf"}
    top = image.layer_dirs[-1]
    assert os.lstat(f"{top}/etc/group").st_rdev == 0 and stat.S_ISCHR(os.lstat(f"{top}/etc/group").st_mode)
    assert os.getxattr(f"{top}/usr/sbin", "trusted.overlay.opaque") == b"y"
    result = md("run", "--rm", "mine:1", "sh", "-c", "ls /usr/sbin; cat /etc/motd; test -e /etc/group")
    assert result.returncode == 1 and result.stdout == "mine\nnew\n"
    assert md.out("history", "mine:1").splitlines()[1].endswith("by test")


def test_commit_applies_changes(md):
    md.out("run", "--name", "c", "busybox", "mkdir", "/srv")
    md.out("commit", "-c", 'CMD ["sh", "-c", "echo $GREETING from $(pwd) as $(id -u)"]', "-c", "ENV GREETING=hello",
           "-c", "WORKDIR /srv", "-c", "USER nobody", "-c", "EXPOSE 8080", "-c", "LABEL team=ops 'note=a b'",
           "-c", "VOLUME /data", "c", "changed")
    config = images.get(Store(md.root), "changed").runtime_config
    assert "GREETING=hello" in config["Env"] and config["WorkingDir"] == "/srv" and config["User"] == "nobody"
    assert config["ExposedPorts"] == {"8080/tcp": {}} and config["Labels"] == {"team": "ops", "note": "a b"}
    assert config["Volumes"] == {"/data": {}}
    assert md.out("run", "--rm", "changed") == "hello from /srv as 65534"
    md.out("commit", "-c", "ENTRYPOINT echo entry", "c", "entry")
    assert md.out("run", "--rm", "entry") == "entry"


def test_tag_images_rmi_and_prune(md):
    store = Store(md.root)
    busybox_layer = images.get(store, "busybox").layer_dirs[0]
    md.out("run", "--name", "c", "busybox", "touch", "/new")
    image_id = md.out("commit", "c", "app:1")
    md.out("tag", "app:1", "app:2")
    listing = md.out("images")
    assert "app " in listing and " 1 " in listing and " 2 " in listing and image_id[7:19] in listing
    new_layer = images.get(store, "app:1").layer_dirs[-1]
    md.out("create", "--name", "user", "app:1", "true")
    refused = md("rmi", "app:1")
    assert refused.returncode == 1 and "is using its referenced image" in refused.stderr
    md.out("rm", "user")
    assert md.out("rmi", "app:1") == "Untagged: app:1"  # app:2 still names it
    assert os.path.isdir(new_layer)
    removed = md.out("rmi", "app:2").splitlines()
    assert removed[0] == "Untagged: app:2" and f"Deleted: {image_id}" in removed
    assert not os.path.exists(new_layer) and os.path.isdir(busybox_layer)  # busybox's layer is still used
    dangling = md.out("commit", "c")
    assert "<none>" in md.out("images") and dangling[7:19] in md.out("images", "-q")
    assert f"Deleted: {dangling}" in md.out("image", "prune", "-f")
    assert dangling[7:19] not in md.out("images", "-q") and "busybox" in md.out("images")


def test_export_flattens_and_import_makes_one_layer(md, tmp_path):
    three_layer_image(md)
    md.out("run", "--name", "e", "three:2", "sh", "-c", "rm /data/only1; echo three > /data/f")
    exported = tmp_path / "e.tar"
    md.out("export", "-o", str(exported), "e")
    with tarfile.open(exported) as tar:
        names = set(tar.getnames())
        assert tar.extractfile("data/f").read() == b"three\n"
    assert "data/only1" not in names and "bin/busybox" in names and not any(".wh." in n for n in names)
    image_id = md.out("import", "-c", 'CMD ["cat", "/data/f"]', "-c", "ENV PATH=/bin", str(exported), "flat")
    image = images.get(Store(md.root), "flat")
    assert image.id == image_id and len(image.layer_dirs) == 1
    assert len(md.out("history", "flat").splitlines()) == 2  # header + one step: the history is gone
    assert md.out("run", "--rm", "flat") == "three"
    piped = md("import", "-", "flat:stdin", input=exported.read_bytes())
    assert piped.returncode == 0 and md.out("run", "--rm", "flat:stdin", "cat", "/data/f") == "three"


def test_explain_shows_the_overlay_options_and_the_tar_steps(md):
    three_layer_image(md)
    image = images.get(Store(md.root), "three:2")
    run = md("--explain", "run", "--rm", "three:2", "true")
    lowers = ":".join(d.replace(md.root, "$MINIDOCKER_ROOT") for d in reversed(image.layer_dirs))
    assert f"mount -t overlay -o lowerdir={lowers},upperdir=" in run.stderr
    md.out("run", "--name", "x", "three:2", "rm", "/data/f")
    commit = md("--explain", "commit", "x", "x:1")
    assert commit.returncode == 0, commit.stderr
    for step in ("tar -c -C", "sha256sum", "tar -x --numeric-owner", "mknod -m 0", " c 0 0"):
        assert step in commit.stderr


def test_bad_layers_and_images_get_one_line_and_change_nothing(md, tmp_path):
    md.out("create", "--name", "keep", "busybox", "true")
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        info = tarfile.TarInfo("/etc/evil")
        tar.addfile(info, io.BytesIO(b""))
    good = io.BytesIO()
    with tarfile.open(fileobj=good, mode="w") as tar:
        info = tarfile.TarInfo("data")
        info.size = 2000
        tar.addfile(info, io.BytesIO(b"x" * 2000))
    truncated = tmp_path / "truncated.tar"
    truncated.write_bytes(good.getvalue()[:1200])
    store_before = store_snapshot(os.path.join(md.root, "images"))
    for args, message in [(["import", str(evil), "evil"], "unsafe layer"),
                          (["import", str(truncated), "t"], "corrupt layer tar"),
                          (["import", str(tmp_path / "absent.tar")], "cannot read"),
                          (["commit", "nosuch"], "No such container"),
                          (["commit", "-c", "FROM scratch", "keep"], "invalid --change"),
                          (["commit", "keep", "Bad Name"], "invalid reference format"),
                          (["tag", "busybox", "bad name"], "invalid reference format"),
                          (["history", "nosuch"], "Unable to find image")]:
        result = md(*args)
        assert result.returncode == 125, (args, result.stderr)
        assert message in result.stderr and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not os.path.exists("/etc/evil")
    assert store_snapshot(os.path.join(md.root, "images")) == store_before
    missing = md("rmi", "nosuch")
    assert missing.returncode == 1 and "Unable to find image" in missing.stderr


def test_an_image_with_a_missing_layer_is_reported(md):
    md.out("run", "--name", "c", "busybox", "touch", "/x")
    md.out("commit", "c", "broken")
    layer = images.get(Store(md.root), "broken").layer_dirs[-1]
    os.rename(layer, layer + ".away")
    try:
        result = md("run", "--rm", "broken", "true")
        assert result.returncode == 125 and "is missing from the store" in result.stderr
        assert result.stderr.count("\n") == 1
    finally:
        os.rename(layer + ".away", layer)


def test_whiteouts_and_opaque_dirs_hold_in_a_user_namespace_and_commit_maps_owners_back(md):
    md.out("run", "--name", "o", "busybox", "sh", "-c", "rm -rf /usr/sbin; mkdir /usr/sbin; touch /usr/sbin/mine; rm /etc/group")
    md.out("commit", "o", "op:1")
    seen = md("run", "--rm", "--userns", "remap", "op:1", "sh", "-c", "ls /usr/sbin; test -e /etc/group")
    assert seen.returncode == 1 and seen.stdout == "mine\n"  # user.overlay.opaque in the shifted copy
    md.out("run", "--name", "r", "--userns", "remap", "op:1", "sh", "-c", "rm -rf /var; mkdir /var; echo x > /var/x")
    upper = upper_of(md, "r")
    assert os.stat(f"{upper}/var/x").st_uid == 100000 and os.getxattr(f"{upper}/var", "user.overlay.opaque") == b"y"
    md.out("commit", "r", "op:2")
    assert md.out("run", "--rm", "op:2", "stat", "-c", "%u %g", "/var/x") == "0 0"
    assert md.out("run", "--rm", "op:2", "ls", "/var") == "x"


def test_a_running_container_can_be_diffed_exported_and_committed(md, tmp_path):
    md.out("run", "-d", "--name", "live", "busybox", "sh", "-c", "echo live > /live; rm /etc/group; sleep 60")
    md.wait_for(lambda: "A /live" in md.out("diff", "live"), what="the container's first write")
    exported = tmp_path / "live.tar"
    md.out("export", "-o", str(exported), "live")
    with tarfile.open(exported) as tar:
        assert tar.extractfile("live").read() == b"live\n" and "etc/group" not in tar.getnames()
    md.out("commit", "live", "live:1")
    assert md.out("run", "--rm", "live:1", "cat", "/live") == "live"
    with open("/proc/self/mountinfo") as f:
        assert md.root not in f.read()  # export's overlay lived and died in a mount namespace of its own


def test_a_committed_deletion_stays_deleted(md):
    md.out("run", "--name", "c", "busybox", "rm", "/etc/group", "/bin/ls")
    md.out("commit", "c", "deleted")
    top = images.get(Store(md.root), "deleted").layer_dirs[-1]
    for name in ("etc/group", "bin/ls"):
        st = os.lstat(f"{top}/{name}")
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0), f"{name} should be a whiteout"
    assert not os.path.lexists(f"{top}/etc/.wh.group")
    seen = md("run", "--rm", "deleted", "sh", "-c", "cat /etc/group; test -e /bin/ls")
    assert seen.returncode == 1 and "No such file" in seen.stderr and "root:x:0:" not in seen.stdout


def test_a_committed_directory_made_again_hides_the_lower_one(md):
    md.out("run", "--name", "c", "busybox", "sh", "-c", "rm -rf /usr/bin && mkdir /usr/bin && echo mine > /usr/bin/mine")
    md.out("commit", "c", "opaque")
    top = images.get(Store(md.root), "opaque").layer_dirs[-1]
    assert os.getxattr(f"{top}/usr/bin", "trusted.overlay.opaque") == b"y"
    assert sorted(os.listdir(f"{top}/usr/bin")) == ["mine"]
    assert md.out("run", "--rm", "opaque", "ls", "/usr/bin") == "mine"
