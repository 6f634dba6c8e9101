"""Chapter 3, images as files: `save` and `load`, proven against independent tools (podman, skopeo).

A minidocker tar must load into podman and run there; podman's and skopeo's
outputs (docker-archive, OCI archive, OCI directory) must load into minidocker
and run here.  Bad archives: one line, exit 125, the store exactly as before.
"""

import io
import json
import os
import shutil
import subprocess
import tarfile

import pytest



class Podman:
    """podman with a private storage root, run root and config: nothing shared, nothing left behind.

    The containers.conf keeps rlimits within the hard limits (this machine cannot raise them) and uses
    runc with cgroupfs (crun refuses cgroup v1/v2 hybrids).
    """

    def __init__(self, base):
        import tempfile

        self.base = base
        os.makedirs(base)
        self.runroot = tempfile.mkdtemp(prefix="mdpod-")  # podman wants a run root under 50 characters
        with open(f"{base}/containers.conf", "w") as f:
            f.write('[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n'
                    f'[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
                    f'tmp_dir = "{base}/tmp"\nvolume_path = "{base}/volumes"\n')
        with open(f"{base}/storage.conf", "w") as f:
            f.write(f'[storage]\ndriver = "overlay"\nrunroot = "{self.runroot}"\ngraphroot = "{base}/root"\n')
        self.env = {**os.environ, "CONTAINERS_CONF": f"{base}/containers.conf",
                    "CONTAINERS_STORAGE_CONF": f"{base}/storage.conf", "TMPDIR": base}

    def __call__(self, *args, check=True):
        result = subprocess.run(["podman", "--root", f"{self.base}/root", "--runroot", self.runroot,
                                 "--cgroup-manager", "cgroupfs", *args], env=self.env, capture_output=True,
                                text=True, timeout=120)
        if check and result.returncode:
            raise AssertionError(f"podman {' '.join(args)}: {result.stderr}")
        return result

    def clean(self):
        self("rm", "-af", check=False)
        self("system", "reset", "--force", check=False)
        with open("/proc/self/mountinfo") as f:
            left = [line.split()[4] for line in f if line.split()[4].startswith((self.base, self.runroot))]
        for mountpoint in reversed(left):
            subprocess.run(["umount", "-l", mountpoint], capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)
        shutil.rmtree(self.runroot, ignore_errors=True)
        assert not left, f"podman left mounts: {left}"


@pytest.fixture
def podman(tmp_path):
    p = Podman(str(tmp_path / "podman"))
    yield p
    p.clean()





def three_layer_image(podman, md, tmp_path) -> str:
    """busybox (from minidocker, through podman load) + two COPY layers, built by podman."""
    md.out("save", "-o", str(tmp_path / "bb.tar"), "busybox")
    podman("load", "-i", str(tmp_path / "bb.tar"))
    context = tmp_path / "context"
    context.mkdir()
    (context / "one.txt").write_text("first layer above busybox\n")
    (context / "two.txt").write_text("second layer above busybox\n")
    (context / "Containerfile").write_text("FROM localhost/busybox:latest\nCOPY one.txt /one.txt\n"
                                           "COPY two.txt /two.txt\nCMD [\"cat\", \"/one.txt\", \"/two.txt\"]\n")
    podman("build", "-q", "-t", "three:1", str(context))
    return "localhost/three:1"


def store_state(root) -> tuple:
    """What a failed load must not change: the tags and the set of layers and blobs."""
    images = os.path.join(root, "images")
    repos = open(os.path.join(images, "repositories.json")).read() if os.path.exists(
        os.path.join(images, "repositories.json")) else ""
    listing = lambda d: sorted(os.listdir(d)) if os.path.isdir(d) else []  # noqa: E731
    return repos, listing(os.path.join(images, "layers")), listing(os.path.join(images, "blobs", "sha256"))


# -- minidocker -> podman ------------------------------------------------------------------------------


def test_minidocker_save_loads_into_podman_and_runs(md, podman, tmp_path):
    md.out("save", "-o", str(tmp_path / "out.tar"), "busybox")
    with tarfile.open(tmp_path / "out.tar") as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        names = tar.getnames()
    assert manifest[0]["RepoTags"] == ["busybox:latest"]
    assert manifest[0]["Config"] in names and all(layer in names for layer in manifest[0]["Layers"])
    assert "Loaded image: localhost/busybox:latest" in podman("load", "-i", str(tmp_path / "out.tar")).stdout
    ran = podman("run", "--rm", "--network", "none", "localhost/busybox:latest", "sh", "-c", "echo hello from $0",
                 "podman")
    assert ran.stdout == "hello from podman\n"
    image_id = json.load(open(os.path.join(md.root, "images", "repositories.json")))["busybox:latest"]
    assert podman("inspect", "-f", "{{.Id}}", "localhost/busybox:latest").stdout.strip() == image_id[7:]


def test_save_several_images_to_stdout(md, tmp_path):
    image_id = json.load(open(os.path.join(md.root, "images", "repositories.json")))["busybox:latest"]
    repos_path = os.path.join(md.root, "images", "repositories.json")
    repos = json.load(open(repos_path))
    repos["second/name:v2"] = image_id  # a second tag of the same image
    json.dump(repos, open(repos_path, "w"))
    data = md("save", "busybox", "second/name:v2", input=b"", check=True).stdout  # bytes in: bytes out
    (tmp_path / "both.tar").write_bytes(data)
    with tarfile.open(tmp_path / "both.tar") as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        layer_members = [n for n in tar.getnames() if n.endswith("layer.tar")]
    assert [e["RepoTags"] for e in manifest] == [["busybox:latest", "second/name:v2"]]
    assert len(layer_members) == 1  # a shared layer is written once


# -- podman / skopeo -> minidocker ------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive", "oci-dir"])
def test_podman_and_skopeo_outputs_load_into_minidocker_and_run(md, empty_md, podman, tmp_path, fmt):
    name = three_layer_image(podman, md, tmp_path)
    target = str(tmp_path / f"three.{fmt}")
    if fmt == "oci-dir":  # skopeo, an independent writer of the OCI layout as a directory
        podman("save", "-o", str(tmp_path / "three.tar"), name)
        subprocess.run(["skopeo", "copy", f"docker-archive:{tmp_path}/three.tar", f"oci:{target}:three:1"],
                       check=True, capture_output=True)
    else:
        podman("save", "--format", fmt, "-o", target, name)
    loaded = empty_md("load", "-i", target)
    assert loaded.returncode == 0, loaded.stderr
    expected_name = "three:1" if fmt == "oci-dir" else name
    assert loaded.stdout == f"Loaded image: {expected_name}\n"
    ran = empty_md("run", "--rm", expected_name)
    assert ran.stdout == "first layer above busybox\nsecond layer above busybox\n", ran.stderr
    podman_id = podman("inspect", "-f", "{{.Id}}", name).stdout.strip()
    repos = json.load(open(os.path.join(empty_md.root, "images", "repositories.json")))
    if fmt == "docker-archive":
        assert repos[expected_name] == "sha256:" + podman_id  # the same config bytes: the same image ID
    assert len(os.listdir(os.path.join(empty_md.root, "images", "layers"))) >= 3


def test_skopeo_docker_archive_from_stdin(md, empty_md, tmp_path):
    md.out("save", "-o", str(tmp_path / "bb.tar"), "busybox")
    subprocess.run(["skopeo", "copy", f"docker-archive:{tmp_path}/bb.tar",
                    f"docker-archive:{tmp_path}/sk.tar:example.com/team/tool:7"], check=True, capture_output=True)
    loaded = empty_md("load", input=(tmp_path / "sk.tar").read_bytes())
    assert loaded.returncode == 0 and loaded.stdout == b"Loaded image: example.com/team/tool:7\n", loaded.stderr
    assert empty_md.out("run", "--rm", "example.com/team/tool:7", "echo", "ran") == "ran"


# -- bad input ---------------------------------------------------------------------------------------------


def _rewrite_tar(src, dst, change):
    """Copy a tar member by member; change(name, bytes) -> bytes | None (None drops the member)."""
    with tarfile.open(src) as tin, tarfile.open(dst, "w") as tout:
        for member in tin.getmembers():
            data = tin.extractfile(member).read() if member.isfile() else None
            if data is not None:
                data = change(member.name, data)
                if data is None:
                    continue
                member.size = len(data)
            tout.addfile(member, io.BytesIO(data) if data is not None else None)


def _flip_a_byte_in_layer(name, data):
    if name.endswith("layer.tar"):
        at = data.index(b"busybox")  # a byte inside a file name: still a valid tar, another digest
        return data[:at] + b"B" + data[at + 1:]
    return data


def _bad_archives(md, tmp_path):
    good = tmp_path / "good.tar"
    md.out("save", "-o", str(good), "busybox")
    raw = good.read_bytes()
    cases = {}
    (tmp_path / "truncated.tar").write_bytes(raw[: len(raw) // 2])
    cases["truncated"] = (tmp_path / "truncated.tar", "truncated or corrupt")
    (tmp_path / "garbage.tar").write_bytes(os.urandom(4096))
    cases["not a tar"] = (tmp_path / "garbage.tar", "not a readable image archive")
    _rewrite_tar(good, tmp_path / "tampered.tar", _flip_a_byte_in_layer)
    cases["layer digest mismatch"] = (tmp_path / "tampered.tar", "layer digest mismatch")
    _rewrite_tar(good, tmp_path / "nolayer.tar", lambda n, d: None if n.endswith("layer.tar") else d)
    cases["missing layer"] = (tmp_path / "nolayer.tar", "archive is missing")
    _rewrite_tar(good, tmp_path / "unknown.tar", lambda n, d: None if n == "manifest.json" else d)
    cases["unknown format"] = (tmp_path / "unknown.tar", "unknown archive format")
    _rewrite_tar(good, tmp_path / "badjson.tar", lambda n, d: b"{not json" if n == "manifest.json" else d)
    cases["manifest not json"] = (tmp_path / "badjson.tar", "malformed image archive")
    _rewrite_tar(good, tmp_path / "badconfig.tar",
                 lambda n, d: d.replace(b"busybox", b"busyb0x") if n.endswith(".json") and "/" not in n
                 and n != "manifest.json" else d)
    cases["config digest mismatch"] = (tmp_path / "badconfig.tar", "config digest mismatch")
    cases["no such file"] = (tmp_path / "nope.tar", "no such file")
    return cases


CASE_NAMES = ["truncated", "not a tar", "layer digest mismatch", "missing layer", "unknown format",
              "manifest not json", "config digest mismatch", "no such file"]


@pytest.mark.parametrize("case", CASE_NAMES)
def test_bad_archives_are_refused_and_change_nothing(md, empty_md, tmp_path, case):
    path, message = _bad_archives(md, tmp_path)[case]
    for target in (md, empty_md):  # a store with busybox, and an empty one
        before = store_state(target.root)
        result = target("load", "-i", str(path))
        assert result.returncode == 125, result.stderr
        assert message in result.stderr and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
        assert store_state(target.root) == before
        assert not [n for n in os.listdir(target.root) if n.startswith(".load")]  # no spooled debris


def test_oci_layout_with_a_missing_or_tampered_blob(md, empty_md, tmp_path):
    md.out("save", "-o", str(tmp_path / "bb.tar"), "busybox")
    layout = tmp_path / "layout"
    subprocess.run(["skopeo", "copy", f"docker-archive:{tmp_path}/bb.tar", f"oci:{layout}:busybox"],
                   check=True, capture_output=True)
    manifest_digest = json.load(open(layout / "index.json"))["manifests"][0]["digest"]
    manifest = json.load(open(layout / "blobs/sha256" / manifest_digest[7:]))
    layer_blob = layout / "blobs/sha256" / manifest["layers"][0]["digest"][7:]
    data = layer_blob.read_bytes()
    layer_blob.write_bytes(data[:-10] + bytes(10))  # same size, other bytes
    result = empty_md("load", "-i", str(layout))
    assert result.returncode == 125 and ("digest mismatch" in result.stderr or "corrupt" in result.stderr)
    assert store_state(empty_md.root) == ("", [], [])
    layer_blob.unlink()
    result = empty_md("load", "-i", str(layout))
    assert result.returncode == 125 and "archive is missing blobs/sha256/" in result.stderr
    assert store_state(empty_md.root) == ("", [], [])


@pytest.mark.parametrize("args, message", [
    (["save", "-o", "/tmp/never-written.tar", "Bad:Name"], "invalid reference format"),
    (["save", "-o", "/tmp/never-written.tar", "nosuch:1"], "Unable to find image"),
    (["save", "busybox"], "cowardly refusing"),
    (["load"], "stdin is empty"),
])
def test_bad_save_and_load_arguments(md, args, message):
    result = md(*args) if args != ["save", "busybox"] else _with_tty_stdout(md, args)
    assert result.returncode == 125 and message in result.stderr and result.stderr.count("\n") == 1
    assert not os.path.exists("/tmp/never-written.tar")


def _with_tty_stdout(md, args):
    """stdout on a terminal (a pty): save refuses to spray a tar over it."""
    import pty

    controller, terminal = pty.openpty()
    try:
        from conftest import MINIDOCKER

        return subprocess.run([MINIDOCKER, *args], env=md.env, stdout=terminal, stderr=subprocess.PIPE,
                              text=True, timeout=30)
    finally:
        os.close(controller)
        os.close(terminal)


def test_a_gzip_compressed_archive_loads(md, empty_md, tmp_path):
    """`docker save busybox | gzip > busybox.tar.gz` is a common way to ship one: load reads it as is."""
    import gzip

    md.out("save", "-o", str(tmp_path / "bb.tar"), "busybox")
    (tmp_path / "bb.tar.gz").write_bytes(gzip.compress((tmp_path / "bb.tar").read_bytes()))
    assert empty_md.out("load", "-i", str(tmp_path / "bb.tar.gz")) == "Loaded image: busybox:latest"
    assert empty_md.out("run", "--rm", "busybox", "echo", "unzipped") == "unzipped"


def test_explain_shows_the_tar_steps(md, empty_md, tmp_path):
    saved = md("--explain", "save", "-o", str(tmp_path / "bb.tar"), "busybox")
    assert saved.returncode == 0 and "tar -cf - manifest.json repositories" in saved.stderr
    loaded = empty_md("--explain", "load", "-i", str(tmp_path / "bb.tar"))
    assert loaded.returncode == 0 and "tar -x" in loaded.stderr, loaded.stderr


def test_oci_layout_with_an_index_of_platforms_loads_this_machines(md, empty_md, tmp_path):
    """index.json may point at an image index (one manifest per platform): load takes linux/<host arch>."""
    import hashlib

    from minidocker.registry import HOST_ARCH, OCI_INDEX

    md.out("save", "-o", str(tmp_path / "bb.tar"), "busybox")
    layout = tmp_path / "layout"
    subprocess.run(["skopeo", "copy", f"docker-archive:{tmp_path}/bb.tar", f"oci:{layout}:busybox"],
                   check=True, capture_output=True)
    index_path = layout / "index.json"
    ours = json.load(open(index_path))["manifests"][0]
    elsewhere = dict(ours, digest="sha256:" + "0" * 64)  # another platform's manifest: not even in this layout
    nested = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {**{k: v for k, v in elsewhere.items() if k != "annotations"}, "platform": {"os": "linux", "architecture": "s390x"}},
        {**{k: v for k, v in ours.items() if k != "annotations"}, "platform": {"os": "linux", "architecture": HOST_ARCH}}]}
    raw = json.dumps(nested).encode()
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    (layout / "blobs/sha256" / digest[7:]).write_bytes(raw)
    json.dump({"schemaVersion": 2, "manifests": [{"mediaType": OCI_INDEX, "digest": digest, "size": len(raw),
                                                  "annotations": ours["annotations"]}]}, open(index_path, "w"))
    assert empty_md.out("load", "-i", str(layout)) == "Loaded image: busybox:latest"
    assert empty_md.out("run", "--rm", "busybox", "echo", "our platform") == "our platform"


def test_deletions_travel_both_ways_as_oci_whiteouts(md, empty_md, podman, tmp_path):
    """A deleted file is a whiteout in the layer tar: podman must honour minidocker's, and the other way round."""
    md.out("run", "--name", "deleter", "busybox", "sh", "-c", "rm /etc/group && echo new > /etc/added")
    md.out("commit", "deleter", "deleted:1")
    md.out("save", "-o", str(tmp_path / "deleted.tar"), "deleted:1")
    with tarfile.open(tmp_path / "deleted.tar") as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        with tarfile.open(fileobj=tar.extractfile(manifest[0]["Layers"][-1])) as top:
            assert "etc/.wh.group" in top.getnames()  # the OCI form, not overlayfs's 0/0 device
    podman("load", "-i", str(tmp_path / "deleted.tar"))
    seen = podman("run", "--rm", "--network", "none", "localhost/deleted:1", "sh", "-c",
                  "ls /etc/group 2>&1; cat /etc/added").stdout
    assert "No such file" in seen and "new" in seen

    context = tmp_path / "rm-context"
    context.mkdir()
    (context / "Containerfile").write_text("FROM localhost/deleted:1\nRUN rm /etc/passwd\n")
    podman("build", "-q", "-t", "alsodeleted:1", str(context))
    podman("save", "-o", str(tmp_path / "alsodeleted.tar"), "localhost/alsodeleted:1")
    assert empty_md.out("load", "-i", str(tmp_path / "alsodeleted.tar")) == "Loaded image: localhost/alsodeleted:1"
    listing = empty_md("run", "--rm", "localhost/alsodeleted:1", "sh", "-c", "ls /etc")
    names = set(listing.stdout.split())  # (beside hostname, hosts, resolv.conf: minidocker's own mounts)
    assert listing.returncode == 0 and "added" in names and not names & {"group", "passwd"}, listing.stdout
