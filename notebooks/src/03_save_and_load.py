"""Notebook 03 -- moving images as files (seed: 3, "docker load/save 将镜像导出为文件")."""

# %% [markdown]
# # 03 · save and load: an image is just files
#
# **Goal:** open a saved image, read its `manifest.json`, check every digest by hand, and prove the
# format is real by loading minidocker's tar into podman, a different container engine.
# **Difficulty:** beginner · **Time:** 20 minutes · run every cell top to bottom, as root.
#
# The study notes say of chapter 3 only: *docker load/save — 将镜像导出为文件* (export an image to a
# file). Here we look inside that file. Everything in it is named by the sha256 of its content, which
# is how a receiver can check that nothing was lost or changed on the way.
#
# | English | 中文 | in one line |
# |---|---|---|
# | image | 镜像 | a stack of read-only layers plus a config saying how to run it |
# | layer | 层 | a tar of the files one build step added, changed or deleted |
# | config | 镜像配置 | JSON: Env, Cmd, Entrypoint, … and the ordered list of layer diff IDs |
# | manifest | 清单 | which config and which layer files make one image |
# | digest | 摘要 | `sha256:` + the hash of some bytes; the same bytes always give the same digest |
# | diff ID | 层的差异 ID | the digest of a layer's *uncompressed* tar |
# | image ID | 镜像 ID | the digest of the config |
# | archive | 归档 | one tar file holding all of the above (`docker save`'s output) |
# | registry | 镜像仓库 | a web server that hands out the same pieces over HTTP (`pull`/`push`) |

# %%
import hashlib
import io
import json
import os
import tarfile

from minidocker import api
from minidocker.notebook import Lab

lab = Lab()  # a private state root with the busybox image, removed again in the last cell
archive = os.path.join(lab.store.root, "busybox.tar")
with open(archive, "wb") as out:
    api.save(["busybox"], out, store=lab.store)
print(lab.trace(steps=api.last_trace()))

# %% [markdown]
# ## 1. What is in the tar?
#
# `save` wrote one tar. List it like `tar -tvf busybox.tar` would:

# %%
with tarfile.open(archive) as tar:
    members = tar.getmembers()
lab.table([{"name": m.name, "type": "dir" if m.isdir() else "file", "bytes": m.size} for m in members])

# %% [markdown]
# Three kinds of file: `manifest.json` (the table of contents), one `<hex>.json` (the image config), and
# one `<hex>/layer.tar` per layer. `repositories` is a leftover for very old Docker versions.
#
# ## 2. manifest.json: the table of contents

# %%
with tarfile.open(archive) as tar:
    manifest = json.load(tar.extractfile("manifest.json"))
    config_bytes = tar.extractfile(manifest[0]["Config"]).read()
    layer_bytes = [tar.extractfile(name).read() for name in manifest[0]["Layers"]]
print(json.dumps(manifest, indent=2))

# %% [markdown]
# One entry per image: its tags (`RepoTags`), where its config is, and its layers **bottom first**.
#
# The notes (chapter 7) describe the older Docker format: each layer's metadata named its *parent* layer
# ID, and an image was found by starting from the top layer and following the parents down. Today's
# format simply lists the layers in order — in `manifest.json` here, and in the config's
# `rootfs.diff_ids` below. The `repositories` file still points at the top layer, a trace of the old way.

# %%
config = json.loads(config_bytes)
print(json.dumps({k: config[k] for k in ("architecture", "os", "config", "rootfs")}, indent=2))

# %% [markdown]
# ## 3. Every name is a digest: check them by hand
#
# The config's file name is the image ID, and it must be the sha256 of the config's bytes. Each layer's
# sha256 must be the diff ID the config lists at the same position. This is exactly what `load` checks
# before it stores anything.

# %%
image_id = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
print("sha256 of the config:", image_id)
print("its file name:       ", manifest[0]["Config"])
assert manifest[0]["Config"] == image_id[7:] + ".json"
for position, (data, listed) in enumerate(zip(layer_bytes, config["rootfs"]["diff_ids"])):
    actual = "sha256:" + hashlib.sha256(data).hexdigest()
    print(f"layer {position}: {actual} {'==' if actual == listed else '!='} config's diff_ids[{position}]")
    assert actual == listed

# %% [markdown]
# And a layer is an ordinary tar of files. The first few entries of busybox's one layer:

# %%
with tarfile.open(fileobj=io.BytesIO(layer_bytes[0])) as layer:
    print("\n".join(f"{m.name:<20} {'-> ' + m.linkname if m.issym() else m.size}" for m in layer.getmembers()[:12]))

# %% [markdown]
# ## 4. A changed byte is caught
#
# Change one byte inside the layer (a letter of a file name: the tar is still a perfectly valid tar)
# and try to load the result into a fresh, empty store. The digest no longer matches the config, so
# `load` refuses — and the store stays empty.

# %%
tampered = os.path.join(lab.store.root, "tampered.tar")
at = layer_bytes[0].index(b"busybox")
bad_layer = layer_bytes[0][:at] + b"B" + layer_bytes[0][at + 1:]
with tarfile.open(archive) as tar, tarfile.open(tampered, "w") as out:
    for member in tar.getmembers():
        data = tar.extractfile(member).read() if member.isfile() else None
        if member.name == manifest[0]["Layers"][0]:
            data = bad_layer
        out.addfile(member, io.BytesIO(data) if data is not None else None)

from minidocker.errors import MinidockerError  # noqa: E402
from minidocker.store import Store  # noqa: E402

empty = Store(os.path.join(lab.store.root, "empty-store"))
try:
    api.load(tampered, store=empty)
except MinidockerError as e:
    print("load refused:", e)
print("layers stored:", os.listdir(os.path.join(empty.images, "layers")) if os.path.isdir(
    os.path.join(empty.images, "layers")) else [])

# %% [markdown]
# The untouched archive loads into that empty store, and a container runs from it:

# %%
print(api.load(archive, store=empty))
cid, _ = api.run("busybox", ["echo", "loaded, and running"], detach=True, store=empty,
                 cgroup_parent=lab.cgroup_parent)
api.wait(cid, store=empty)
print(api.logs(cid, store=empty).decode(), end="")
api.remove(cid, store=empty)

# %% [markdown]
# ## 5. The format is real: podman loads it
#
# If minidocker had invented its own format, only minidocker could read it. podman (a Docker-compatible
# engine from Red Hat) knows nothing about minidocker; give it our tar. podman gets a private storage
# directory here, so nothing of the machine's own podman is touched (and its open-file limits are kept
# within what this machine allows).

# %%
import subprocess  # noqa: E402
import tempfile  # noqa: E402

podman_dir = os.path.join(lab.store.root, "podman")
podman_run = tempfile.mkdtemp(prefix="mdpod-")  # podman wants a short run directory
os.makedirs(podman_dir)
with open(f"{podman_dir}/containers.conf", "w") as f:
    f.write('[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n'
            '[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n')
podman_env = {**os.environ, "CONTAINERS_CONF": f"{podman_dir}/containers.conf", "TMPDIR": podman_dir}


def podman(*args):
    result = subprocess.run(["podman", "--root", f"{podman_dir}/root", "--runroot", podman_run,
                             "--storage-driver", "overlay", *args], env=podman_env, capture_output=True, text=True)
    return (result.stdout + result.stderr).strip()


print("$ podman load -i busybox.tar\n" + podman("load", "-i", archive))
print("$ podman run --rm busybox echo ...\n" + podman("run", "--rm", "--network", "none", "localhost/busybox:latest",
                                                      "echo", "hello from podman"))
print("podman's image ID:", podman("inspect", "-f", "{{.Id}}", "localhost/busybox:latest"))
print("minidocker's:     ", image_id[7:])

# %% [markdown]
# Same bytes, same config digest, same image ID — in two different engines. Going the other way works
# too (`podman save -o x.tar IMAGE`, then `minidocker load -i x.tar`); the tests do both, and also read the
# OCI image layout that `skopeo copy … oci:DIR` writes (`index.json` → manifest → blobs, every one
# named by its digest).

# %% [markdown]
# ## 6. The same pieces over HTTP: push and pull
#
# A registry serves exactly these pieces — manifest, config, layers, each under its digest — over a
# small HTTP API. Start Debian's `docker-registry` on this machine (a private directory, a free port),
# push busybox to it, and pull it back into an empty store. Every request is recorded as the `curl`
# command that repeats it.

# %%
import socket  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402

with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
registry_dir = os.path.join(lab.store.root, "registry")
os.makedirs(registry_dir)
with open(f"{registry_dir}/config.yml", "w") as f:
    json.dump({"version": 0.1, "log": {"level": "error"}, "http": {"addr": f"127.0.0.1:{port}"},
               "storage": {"filesystem": {"rootdirectory": f"{registry_dir}/data"}}}, f)
registry = subprocess.Popen(["docker-registry", "serve", f"{registry_dir}/config.yml"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
for _ in range(100):  # wait until it answers
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
        break
    except OSError:
        time.sleep(0.05)

name = f"127.0.0.1:{port}/course/busybox:1"
api.tag("busybox", name, store=lab.store)  # push sends the image under the name it has here
api.push(name, store=lab.store)
lab.trace(steps=api.last_trace())

# %% [markdown]
# Push asked whether each blob was there (`HEAD`), uploaded what was missing (`POST` for an upload
# address, `PUT` the bytes with their digest — the registry checks it), and finally `PUT` the manifest
# under the tag. Pulling reads the same things back:

# %%
pulled_into = Store(os.path.join(lab.store.root, "pull-store"))
api.pull(name, store=pulled_into)
lab.trace(steps=api.last_trace())

# %% [markdown]
# Docker Hub works the same way, with one more step first: its answer to the first request is
# `401` with `WWW-Authenticate: Bearer realm=…,service=…,scope=…`, and the client fetches a token from
# that realm (`TOKEN=$(curl …)` in the trace). With internet access, try
# `minidocker --explain pull alpine` in a terminal.

# %%
registry.terminate()
registry.wait()
# %%
podman("system", "reset", "--force")
import shutil  # noqa: E402

shutil.rmtree(podman_run, ignore_errors=True)
print(lab.cleanup())
