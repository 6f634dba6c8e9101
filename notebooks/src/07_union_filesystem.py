"""Notebook 07 -- the union filesystem (seed section 7, 在镜像中打包软件: docker镜像的分层, 联合文件系统, export/import)."""

# %% [markdown]
# # 07 · The union filesystem: layers, copy-on-write, whiteouts
#
# **Goal:** see an image as a stack of read-only layers, and watch the kernel (overlayfs) apply the
# four rules of the study notes to a running container: where a read is served from, what a write
# copies up, what a delete leaves behind, and how a directory made again hides the old one.
# Then turn a container's changes into a new layer (`commit`), and flatten a container (`export` /
# `import`) to see what is lost.
# **Difficulty:** intermediate · **Time:** 40 minutes · run every cell top to bottom, as root.
#
# The study notes, section 7 (*联合文件系统*), state the rules; each is tested here on the real kernel:
# *从存在该文件的最上面一层中读取* (read from the top-most layer that has the file),
# *一个删除/修改记录就被写入最顶层，它会遮挡底层所有该文件的版本* (a delete record in the top layer
# hides every lower version), *copy-on-write … 仅有被修改的文件才会被复制到当前层* (only the modified
# file is copied up), *新的层会被添加到栈的最上方* (new layers go on top of the stack).
#
# | English | 中文 | in one line |
# |---|---|---|
# | layer | 层 | a directory tree, stored once, never written after it is made |
# | union filesystem (overlayfs) | 联合文件系统 | one merged view of several layers, done by the kernel |
# | lower / upper layer | 下层 / 最上层（容器层） | read-only image layers / the container's writable layer |
# | copy-up (copy-on-write) | 写时复制 | the first write copies the file from below into the upper layer |
# | whiteout | 删除记录（遮挡文件） | a 0/0 character device in upper: "this name is deleted" |
# | opaque directory | 不透明目录 | a directory in upper that hides the whole lower directory |
# | diff ID | 层的摘要 | sha256 of a layer's tar: the layer's name in the store |
# | commit | 提交 | the container's upper layer becomes a new image layer |
# | export / import | 导出 / 导入扁平文件系统 | one flat tar of the merged view / a one-layer image from it |

# %%
import io
import os
import stat
import tarfile

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import display

from minidocker import api, images, layers, union
from minidocker.notebook import Lab

lab = Lab()

# %% [markdown]
# ## 1. Build an image of three layers
#
# Each `commit` puts the container's changes on top of its image as one new layer: *新的层会被添加到
# 栈的最上方*. Layer 2 writes `/app/config` and `/app/data/a`; layer 3 rewrites `/app/config` and adds
# `/app/data/b`.


# %%
def commit_step(image: str, script: str, tag: str, message: str) -> str:
    """Run `script` in a container of `image`, wait, commit it as `tag`, remove the container."""
    cid = lab.start("sh", "-c", script, image=image)
    assert api.wait(cid, store=lab.store) == 0
    image_id = api.commit(cid, tag, message=message, store=lab.store)
    lab.remove(cid)
    return image_id


commit_step("busybox", "mkdir -p /app/data && echo v1 > /app/config && echo a > /app/data/a", "stack:2", "layer 2")
commit_step("stack:2", "echo v2 > /app/config && echo b > /app/data/b", "stack:3", "layer 3")
lab.table([{"IMAGE": r["id"][7:19] if "id" in r else "<missing>", "CREATED BY": r["created_by"][:60],
            "SIZE (bytes)": r["size"], "COMMENT": r["comment"]} for r in api.history("stack:3", store=lab.store)])

# %% [markdown]
# The layers are plain directories in the store, each named by its diff ID (the sha256 of its tar):

# %%
stack = images.get(lab.store, "stack:3")
for number, (diff_id, path) in enumerate(zip(stack.config["rootfs"]["diff_ids"], stack.layer_dirs), 1):
    print(f"layer {number}: {diff_id[:19]}…  {sum(len(f) for _, _, f in os.walk(path)):5d} files  -> {path}")

# %% [markdown]
# ## 2. A picture of the stack: which layer serves each path
#
# `union.serving_layers` spells out overlayfs's lookup in Python: go down from the top, stop at the
# first layer holding the path (a whiteout stops the search too; a directory merges, unless opaque).
# The picture marks, for each path, what every layer holds and (★) the layer a read is served from.

# %%
KIND_COLOURS = {"file": "#7fb3d5", "symlink": "#d2b4de", "dir": "#d5f5e3", "whiteout": "#e74c3c",
                "opaque dir": "#f5b041"}


def what_is_there(layer: str, path: str) -> str | None:
    try:
        st = os.lstat(os.path.join(layer, path))
    except (FileNotFoundError, NotADirectoryError):
        return None
    if layers.is_whiteout(st):
        return "whiteout"
    if stat.S_ISDIR(st.st_mode):
        return "opaque dir" if layers.is_opaque(os.path.join(layer, path)) else "dir"
    return "symlink" if stat.S_ISLNK(st.st_mode) else "file"


def draw_stack(layer_dirs_top_first, names, paths, title="the layer stack"):
    """One column per layer (top layer on the left), one row per path; ★ = the layer a read comes from."""
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(names), 0.45 * len(paths) + 1.2))
    for row, path in enumerate(paths):
        served = union.serving_layers(layer_dirs_top_first, path)
        for col, layer in enumerate(layer_dirs_top_first):
            kind = what_is_there(layer, path)
            if kind:
                ax.add_patch(plt.Rectangle((col, row), 0.95, 0.9, color=KIND_COLOURS[kind]))
                ax.text(col + 0.47, row + 0.45, ("★ " if served and col == served[0] else "") + kind,
                        ha="center", va="center", fontsize=8)
        if not served:
            ax.text(len(names) + 0.1, row + 0.45, "(not visible)", va="center", fontsize=8, color="#c0392b")
    ax.set_xlim(0, len(names) + 1.2)
    ax.set_ylim(len(paths), 0)
    ax.set_xticks([c + 0.47 for c in range(len(names))], names, fontsize=8)
    ax.set_yticks([r + 0.45 for r in range(len(paths))], ["/" + p for p in paths], fontsize=8)
    ax.tick_params(length=0)
    ax.set_frame_on(False)
    ax.set_title(title, fontsize=10)
    plt.close(fig)
    return fig


IMAGE_NAMES = ["layer 3", "layer 2", "layer 1 (busybox)"]
PATHS = ["app", "app/config", "app/data", "app/data/a", "app/data/b", "etc/passwd", "etc/group", "bin/sh"]
draw_stack(list(reversed(stack.layer_dirs)), IMAGE_NAMES, PATHS, "stack:3 before any container")

# %% [markdown]
# Rule 1 (*从存在该文件的最上面一层中读取*): `/app/config` exists in layers 2 and 3; the container
# reads layer 3's. Ask the kernel, not the model:

# %%
box = lab.start("sleep", "600", image="stack:3")
print(lab.exec(box, "cat", "/app/config").strip(), "<- from layer 3; layer 2 still holds:",
      open(os.path.join(stack.layer_dirs[1], "app/config")).read().strip())
lab.trace("mount -t overlay")

# %% [markdown]
# The trace shows the one `mount -t overlay` that builds the root: `lowerdir=` lists the image's
# layers top-most first, `upperdir=` is this container's own writable layer, `workdir=` is overlayfs's
# scratch space. Nothing was copied to start the container: the layers are shared by every container
# of the image.
#
# ## 3. Live: modify, delete, make again — and look into the upper layer
#
# The widget below runs a shell command in the running container, then redraws the stack *with the
# container's upper layer as the top column* and lists what that upper layer now holds.

# %%
record = api.inspect(box, store=lab.store)
UPPER = record["GraphDriver"]["Data"]["UpperDir"]


def upper_listing():
    """UPPER's entries (minus the empty files minidocker bind-mounts /etc/hostname etc. onto)."""
    rows = []
    for dirpath, dirnames, filenames in os.walk(UPPER):
        for name in sorted(dirnames + filenames):
            rel = os.path.relpath(os.path.join(dirpath, name), UPPER)
            if rel in union.BIND_MOUNT_PLACEHOLDERS:
                continue
            st = os.lstat(os.path.join(UPPER, rel))
            rows.append({"path in upper": "/" + rel, "what": what_is_there(UPPER, rel),
                         "device": f"{os.major(st.st_rdev)}/{os.minor(st.st_rdev)}" if stat.S_ISCHR(st.st_mode) else "",
                         "size": st.st_size if stat.S_ISREG(st.st_mode) else ""})
    return rows


def act(command):
    """Run `command` in the container; show the stack with UPPER on top, and UPPER's contents."""
    output = lab.exec(box, "sh", "-c", command)
    top_first = [UPPER] + list(reversed(stack.layer_dirs))
    figure = draw_stack(top_first, ["UPPER (container)"] + IMAGE_NAMES, PATHS, f"after: {command}")
    return output, figure, upper_listing()


output, figure, listing = act("echo 'extra:x:1000:1000::/home:/bin/sh' >> /etc/passwd")
display(figure)
lab.table(listing)

# %% [markdown]
# **Copy-up** (*仅有被修改的文件才会被复制到当前层*): appending one line to `/etc/passwd` copied
# exactly that file (and its directory, empty otherwise) into UPPER. `/etc/group` and the other 400
# busybox files stayed where they were. The image's own copy is untouched:

# %%
print("image's /etc/passwd ends with:", open(os.path.join(stack.layer_dirs[0], "etc/passwd")).read().splitlines()[-1])
print("UPPER's /etc/passwd ends with:", open(os.path.join(UPPER, "etc/passwd")).read().splitlines()[-1])

# %% [markdown]
# **Whiteout** (*删除记录…遮挡底层所有该文件的版本*): deleting `/app/config`, which two lower layers
# hold, cannot touch those layers. Instead a character device with device number 0/0 appears in UPPER,
# and overlayfs hides every lower version behind it:

# %%
output, figure, listing = act("rm /app/config /etc/group; ls /app")
display(figure)
st = os.lstat(os.path.join(UPPER, "app/config"))
print("UPPER/app/config:", "character device" if stat.S_ISCHR(st.st_mode) else "?",
      f"{os.major(st.st_rdev)}/{os.minor(st.st_rdev)}", "| the container's ls /app:", output.split())
lab.table(listing)

# %% [markdown]
# **Opaque directory**: `rm -rf /app/data` whites the directory out; making it again creates a new,
# empty directory in UPPER marked `trusted.overlay.opaque=y`, so `a` and `b` from the lower layers do not
# shine through the new one:

# %%
output, figure, listing = act("rm -rf /app/data && mkdir /app/data && echo c > /app/data/c && ls /app/data")
display(figure)
print("xattr:", os.getxattr(os.path.join(UPPER, "app/data"), "trusted.overlay.opaque"), "| ls /app/data:", output.split())

# %% [markdown]
# `diff` walks UPPER with the same rules: a whiteout is D, a name a lower layer also has is C, any
# other name is A (like `docker diff`):

# %%
print("\n".join(f"{kind} {path}" for kind, path in api.diff(box, store=lab.store)))

# %% [markdown]
# Try it yourself: type a command (`echo hi > /bin/new`, `rm /bin/ls`, `mv /app /moved`, `chmod 700 /etc`)
# and press the button. Which commands copy a file up? Which leave a whiteout?

# %%
command_box = widgets.Text(value="echo hi > /app/data/d; rm /bin/ls", description="command",
                           layout=widgets.Layout(width="60%"))
shown = widgets.Output()


def on_click(_button=None):
    with shown:
        shown.clear_output(wait=True)
        out, fig, rows = act(command_box.value)
        print(out)
        display(fig, lab.table(rows))


button = widgets.Button(description="run in the container")
button.on_click(on_click)
display(widgets.VBox([widgets.HBox([command_box, button]), shown]))
on_click()  # once now, so the notebook also runs (and is tested) without anybody clicking

# %% [markdown]
# ## 4. commit: the upper layer becomes a layer, whiteouts in OCI form
#
# Inside the store a whiteout is a 0/0 device and opaqueness an xattr: overlayfs's forms. A tar (what
# `save`, `push` and registries carry) cannot rely on either, so the OCI image spec writes them as
# empty files: `.wh.NAME` for a whiteout, `.wh..wh..opq` inside an opaque directory. `commit`
# converts one way; unpacking a layer (`load`, `pull`) converts back.

# %%
api.stop(box, timeout=0, store=lab.store)
new_id = api.commit(box, "stack:4", message="the container's changes", store=lab.store)
commit_steps = lab.trace(steps=api.last_trace())
top = images.get(lab.store, "stack:4")
layer_tar = io.BytesIO()
layers.layer_tar(lab.store, top.config["rootfs"]["diff_ids"][-1], layer_tar)
members = tarfile.open(fileobj=io.BytesIO(layer_tar.getvalue())).getnames()
print("in the new layer's tar:", sorted(m for m in members if ".wh." in m or m.startswith("app")))
print("unpacked again in the store:", what_is_there(top.layer_dirs[-1], "app/config"), "at app/config,",
      what_is_there(top.layer_dirs[-1], "app/data"), "at app/data")
commit_steps

# %% [markdown]
# The commit trace: tar UPPER (devices → `.wh.` files), hash the tar (its sha256 is the new layer's diff
# ID), unpack it into the store (`.wh.` files → `mknod … c 0 0`, `setfattr … opaque`), rename it into place.
# A container of `stack:4` sees what the committed container saw:

# %%
print(lab.run("sh", "-c", "ls /app /app/data; test -e /etc/group || echo no /etc/group", image="stack:4").output)

# %% [markdown]
# ## 5. Flatten: export and import (*导入导出扁平文件系统*)
#
# `export` writes the container's merged view — as the kernel shows it, through a read-only overlay
# mount — as one tar. `import` makes a one-layer image from it. Same files; the history and the
# layer boundaries are gone:

# %%
flat_tar = io.BytesIO()
api.export(box, flat_tar, store=lab.store)
flat_tar.seek(0)
api.import_image(flat_tar, "flat:1", message="from export", changes=['CMD ["sh"]'], store=lab.store)
for name in ("stack:4", "flat:1"):
    image = images.get(lab.store, name)
    print(f"{name}: {len(image.config['rootfs']['diff_ids'])} layer(s), {len(api.history(name, store=lab.store))} history row(s)")
print(lab.run("cat", "/app/data/c", image="flat:1").output.strip())
lab.remove(box)

# %% [markdown]
# ## What to remember
#
# * An image is a stack of read-only directories; a container adds one writable directory on top,
#   and the kernel's overlayfs merges them on every lookup.
# * Reads come from the top-most layer holding the path; writes copy the one file up; deletes write a
#   whiteout; a directory made again is opaque.
# * `commit` = tar the upper layer (whiteouts as `.wh.` files) = one more layer; `export` = the merged
#   view, flat, with no layers and no history.

# %%
print(lab.cleanup())
