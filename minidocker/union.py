"""The union filesystem: how overlayfs answers for a stack of layers (chapter 7).

A container's root is one overlayfs mount (see :mod:`minidocker.rootfs`)::

    mount -t overlay -o lowerdir=L3:L2:L1,upperdir=UPPER,workdir=WORK overlay ROOTFS

The kernel keeps four rules, and this module spells each of them out in
Python so you can check your understanding against the kernel's answer:

1. **Read**: a path is served by the top-most layer that holds it (UPPER
   first, then L3, L2, L1).  Directories are merged: their entries come from
   every layer that has the directory.
2. **Copy-up**: the first write to a file that lives in a lower layer copies
   that one file (and its parent directories, empty) into UPPER; the lower
   layers are never written.
3. **Whiteout**: deleting a lower file puts a character device 0/0 of the
   same name into UPPER; it hides every lower version.
4. **Opaque directory**: a directory in UPPER with the xattr
   ``trusted.overlay.opaque=y`` hides the whole lower directory of that name
   (what ``rm -rf d; mkdir d`` leaves).

From these follow ``diff`` (walk UPPER: whiteout = D, in a lower layer = C,
else A), ``commit`` (UPPER tarred, whiteouts in OCI form, becomes a new
layer) and ``export`` (the merged view, as the kernel shows it, in one tar).
"""

import os

from minidocker import layers, trace

# Files minidocker bind-mounts into every container (rootfs.ETC_FILES): overlayfs needs an empty file
# to mount on, which lands in UPPER.  Like Docker's "init layer", they are no change of the container's.
BIND_MOUNT_PLACEHOLDERS = ("etc/hostname", "etc/hosts", "etc/resolv.conf")


def _entry(layer: str, path: str):
    try:
        return os.lstat(os.path.join(layer, path))
    except (FileNotFoundError, NotADirectoryError):
        return None


def serving_layers(layer_dirs_top_first: list[str], path: str) -> list[int]:
    """Which layers the merged `path` comes from: indexes into `layer_dirs_top_first` (UPPER first, if any).

    [] when the path does not exist in the merged view; one index for a
    file; for a directory every layer that contributes entries, top first.
    """
    import stat

    candidates = list(range(len(layer_dirs_top_first)))
    parts = [p for p in path.strip("/").split("/") if p]
    prefix = ""
    for depth, part in enumerate(parts):
        prefix = f"{prefix}/{part}" if prefix else part
        found = []
        for index in candidates:
            st = _entry(layer_dirs_top_first[index], prefix)
            if st is None:
                continue
            if layers.is_whiteout(st):
                break  # rule 3: deleted here, so every lower version is hidden
            if not stat.S_ISDIR(st.st_mode):
                if found:
                    break  # a file under a directory from above: the directory wins
                found = [index]  # rule 1: the top-most holder serves the file; lower ones are hidden
                break
            found.append(index)
            if layers.is_opaque(os.path.join(layer_dirs_top_first[index], prefix)):
                break  # rule 4: nothing of the lower directories shows through
        if not found:
            return []
        if depth < len(parts) - 1 and not stat.S_ISDIR(_entry(layer_dirs_top_first[found[0]], prefix).st_mode):
            return []  # a file where a directory is needed
        candidates = found
    return candidates


def layer_view(layer_dirs_top_first: list[str]) -> dict[str, int]:
    """Every path of the merged tree -> the index of the layer it is read from (for a directory: its top-most)."""
    view = {}

    def walk(prefix: str, holders: list[int]) -> None:
        names = set()
        for index in holders:
            try:
                names.update(os.listdir(os.path.join(layer_dirs_top_first[index], prefix)))
            except (FileNotFoundError, NotADirectoryError):
                pass
        for name in sorted(names):
            path = f"{prefix}/{name}" if prefix else name
            served = serving_layers([layer_dirs_top_first[i] for i in holders], path)
            if not served:
                continue
            served = [holders[i] for i in served]
            view[path] = served[0]
            if os.path.isdir(os.path.join(layer_dirs_top_first[served[0]], path)) and \
                    not os.path.islink(os.path.join(layer_dirs_top_first[served[0]], path)):
                walk(path, served)

    walk("", list(range(len(layer_dirs_top_first))))
    return view


def _is_placeholder(upper: str, relpath: str, lower_dirs_top_first: list[str]) -> bool:
    if relpath not in BIND_MOUNT_PLACEHOLDERS:
        return False
    st = _entry(upper, relpath)
    return st is not None and st.st_size == 0 and not serving_layers(lower_dirs_top_first, relpath)


def changes(upper: str, lower_dirs_top_first: list[str]) -> list[tuple[str, str]]:
    """docker diff: [("A"|"C"|"D", "/path"), ...] for what the container changed, sorted by path."""
    import stat

    found = []

    def walk(relpath: str) -> bool:
        """Record the changes under `relpath` (a directory of UPPER); True if there were any."""
        any_change = False
        for name in sorted(os.listdir(os.path.join(upper, relpath))):
            path = f"{relpath}/{name}" if relpath else name
            if _is_placeholder(upper, path, lower_dirs_top_first):
                continue
            st = os.lstat(os.path.join(upper, path))
            in_lower = bool(serving_layers(lower_dirs_top_first, path))
            if layers.is_whiteout(st):
                if in_lower:
                    found.append(("D", "/" + path))
                    any_change = True
                continue
            if stat.S_ISDIR(st.st_mode):
                mark = len(found)
                opaque = layers.is_opaque(os.path.join(upper, path))
                below = walk(path)
                if opaque and in_lower:  # rule 4: everything the lower directory held is gone
                    hidden = _merged_names(lower_dirs_top_first, path) - set(os.listdir(os.path.join(upper, path)))
                    found.extend(("D", f"/{path}/{name}") for name in sorted(hidden))
                    below = below or bool(hidden)
                if not in_lower or below:
                    found.insert(mark, ("C" if in_lower else "A", "/" + path))
                    any_change = True
                continue
            found.append(("C" if in_lower else "A", "/" + path))
            any_change = True
        return any_change

    walk("")
    return sorted(found, key=lambda change: change[1])


def _merged_names(lower_dirs_top_first: list[str], directory: str) -> set[str]:
    """The entries the merged lower layers show in `directory`."""
    names = set()
    for index in serving_layers(lower_dirs_top_first, directory):
        names.update(os.listdir(os.path.join(lower_dirs_top_first[index], directory)))
    return {n for n in names if serving_layers(lower_dirs_top_first, f"{directory}/{n}")}


def tar_upper(upper: str, lower_dirs_top_first: list[str], out, uid_shift: int = 0) -> None:
    """The container's layer as a tar stream: UPPER, whiteouts in OCI form, bind-mount placeholders left out."""
    trace.record(f"tar -c -C {upper} .  # 0/0 devices -> .wh.NAME, opaque dirs -> .wh..wh..opq",
                 "the container's writable layer, in the form images carry layers")
    layers.write_tar(upper, out, skip=lambda relpath: _is_placeholder(upper, relpath, lower_dirs_top_first),
                     uid_shift=uid_shift)


def export_merged(lower_dirs: list[str], upper: str, mountpoint: str, out) -> None:
    """Write the container's merged filesystem, as the kernel shows it, to the binary stream `out` as a tar.

    A forked child makes a private mount namespace, mounts a read-only
    overlay of UPPER and the image's layers there (all as lowerdirs: no
    writable layer, so no workdir is needed) and tars it into a pipe.  The
    mount dies with the child: nothing to clean up, nothing visible on the host.
    """
    from minidocker import kernel, rootfs
    from minidocker.launch import Channel

    read_end, write_end = os.pipe()
    parent, child = Channel.pair()
    pid = os.fork()
    if pid == 0:  # the child: never returns into minidocker's code
        code = 1
        try:
            os.close(read_end)
            parent.close()
            trace.become("export", lambda step: child.send(step=step.as_list()))
            kernel.unshare(kernel.CLONE_NEWNS, why="a private mount namespace: the export's mount is ours alone")
            rootfs.make_mounts_private()
            options = f"lowerdir={':'.join([upper] + list(reversed(lower_dirs)))}"
            kernel.mount("overlay", mountpoint, "overlay", kernel.MS_RDONLY, options,
                         why="the container's files merged, read-only (UPPER as the top-most lower layer)")
            trace.record(f"tar -c -C {mountpoint} .", "the merged tree, flat: one tar, no layers, no whiteouts")
            with os.fdopen(write_end, "wb") as pipe:
                layers.write_tar(mountpoint, pipe)
            code = 0
        except BaseException as e:  # one line to the parent, never a traceback from a child
            try:
                child.send(error=str(e) or type(e).__name__)
            except OSError:
                pass
        finally:
            os._exit(code)
    os.close(write_end)
    child.close()
    try:
        with os.fdopen(read_end, "rb") as pipe:
            while chunk := pipe.read(1 << 20):
                out.write(chunk)
        failure = None
        while (message := parent.recv()) is not None:
            if "step" in message:
                trace.adopt(message["step"])
            elif "error" in message:
                failure = message["error"]
    finally:
        parent.close()
        _, status = os.waitpid(pid, 0)
    if failure or status != 0:
        from minidocker.errors import MinidockerError

        raise MinidockerError(f"export failed: {failure or 'the exporting process failed'}")
