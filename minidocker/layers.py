"""Layers: content-addressed directory trees, and the tar streams they travel as (chapters 3 and 7).

A layer travels as a tar stream (inside `docker save` archives, registry
blobs, `docker commit`).  Its identity, the *diff ID*, is the sha256 of that
uncompressed tar: the same bytes give the same ID on every machine, so a
layer already stored is never stored twice.

In the store a layer is unpacked once, into ``images/layers/<hex>/``, and used
read-only as one ``lowerdir`` of the overlayfs of every container that needs
it (see :mod:`minidocker.rootfs`).  Deletions travel differently in the two
worlds, and this module converts between them:

    in a tar (OCI image spec)              in a layer directory (overlayfs)
    -------------------------              --------------------------------
    dir/.wh.NAME       (an empty file)     dir/NAME: a character device 0/0  -> "NAME was deleted"
    dir/.wh..wh..opq   (an empty file)     dir with xattr trusted.overlay.opaque=y
                                                                             -> "hide all lower dir/*"

To give back the *exact* tar (so that its sha256 is still the diff ID), the
store keeps a small ``<hex>.tar-split`` record beside the directory: the tar's
headers and padding verbatim, and for each file's bytes only "read them from
the unpacked file" -- the same idea as Docker's tar-split.

Layers come from strangers, so unpacking is defensive: Python's tarfile
extraction filter (PEP 706) refuses paths that are absolute or land outside
the target, including through a symlink unpacked earlier; this module adds
what an image layer needs on top -- hard links must point inside, whiteout
names must be plain names -- and works in a temporary directory renamed into
place at the end, so a bad layer leaves the store as it was.

Device nodes are accepted, as Docker accepts them (a debootstrapped /dev is
full of them): a node is only a name for a number, and whether a container
may open it is the devices cgroup's decision (cgroups/devices.py), not the
node's.  A character device 0/0 in a tar is unpacked as it is -- which is
what overlayfs reads as a whiteout, so it hides the lower layers' file of
that name, exactly as under Docker's overlay2 -- and a layer written back out
(commit, export) says so with an OCI ``.wh.`` file.
"""

# hashlib and shutil are imported where they are used: `run` comes here only for layer_dir(), and
# importing those two would cost every container start ~10 ms.
import os

from minidocker import jsoncore, kernel, trace
from minidocker.errors import MinidockerError, NotFound
from minidocker.store import remove_tree

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
CHUNK = 1 << 20


class BadLayer(MinidockerError):
    """A layer tar that is unsafe, corrupt, truncated or not what its digest says."""


def _tarfile():
    """tarfile with extraction filters: the standard library's from Python 3.11.4, else the backport."""
    import tarfile

    if hasattr(tarfile, "tar_filter"):
        return tarfile
    from backports import tarfile as backported

    return backported


def layer_dir(store, diff_id: str) -> str:
    return os.path.join(store.images, "layers", _hex(diff_id))


def _hex(diff_id: str) -> str:
    algorithm, _, hex_digest = diff_id.partition(":")
    if algorithm != "sha256" or len(hex_digest) != 64 or not all(c in "0123456789abcdef" for c in hex_digest):
        raise BadLayer(f"invalid layer digest: {diff_id!r}")
    return hex_digest


def has_layer(store, diff_id: str) -> bool:
    return os.path.isdir(layer_dir(store, diff_id))


# -- tar -> layer directory -----------------------------------------------------------------


def register_layer(store, tar_fileobj, expected_diff_id: str | None = None) -> str:
    """Unpack a layer tar (plain or gzip) into the store; return its diff ID ("sha256:<hex>").

    Idempotent: a layer already stored is left as it is.  Atomic: on any
    error (unsafe member, corrupt or truncated tar, digest other than
    `expected_diff_id`) a BadLayer is raised and the store is unchanged.
    """
    import shutil

    layers = os.path.join(store.images, "layers")
    os.makedirs(layers, exist_ok=True)
    sweep_incoming(store)
    work = os.path.join(layers, f".incoming-{os.getpid()}-{os.urandom(4).hex()}")
    os.mkdir(work, 0o700)
    try:
        spool = os.path.join(work, "layer.tar")
        diff_id = _spool(tar_fileobj, spool)
        if expected_diff_id is not None and diff_id != expected_diff_id:
            raise BadLayer(f"layer digest mismatch: expected {expected_diff_id}, the tar's sha256 is {diff_id}")
        final = layer_dir(store, diff_id)
        if os.path.isdir(final):
            return diff_id  # already stored: content addressing makes registering twice a no-op
        tree = os.path.join(work, "tree")
        os.mkdir(tree, 0o755)
        members = unpack(spool, tree)
        split = _write_split(spool, members, tree, diff_id, os.path.join(work, "tar-split"))
        record = f"{final}.{os.path.basename(split)}"
        os.replace(split, record)
        try:
            os.rename(tree, final)  # the commit point: from here on the layer exists
        except OSError:
            if not os.path.isdir(final):  # (else another process registered the same layer meanwhile: fine)
                os.unlink(record)
                raise
        trace.record(f"mv {tree} {final}", "the layer is stored under its diff ID, unpacked once")
        return diff_id
    except OSError as e:
        raise BadLayer(f"cannot store layer: {e}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def sweep_incoming(store) -> list[str]:
    """Delete the work directories that killed registrations left: ``.incoming-PID-*`` whose PID is gone.

    A registration removes its own work directory on every error, but not
    when it is killed (SIGKILL runs no cleanup).  kill(2) with signal 0
    sends nothing and only asks whether the process exists: ESRCH, "no such
    process", means the directory is nobody's any more.
    """
    layers = os.path.join(store.images, "layers")
    try:
        names = os.listdir(layers)
    except FileNotFoundError:
        return []
    swept = []
    for name in names:
        owner = name.split("-")[1] if name.startswith(".incoming-") and name.count("-") >= 2 else ""
        if not owner.isdigit() or _process_exists(int(owner)):
            continue  # not a work directory, or a registration still under way
        remove_tree(os.path.join(layers, name))
        trace.record(f"rm -rf {layers}/{name}", f"process {owner} was killed while it registered a layer")
        swept.append(name)
    return swept


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, only not ours
    return True


def _spool(fileobj, path: str) -> str:
    """Copy the (possibly gzip-compressed) stream into `path`, uncompressed; return its sha256."""
    import hashlib

    import gzip
    import zlib

    head = fileobj.read(2)
    source = _Prepend(head, fileobj)
    if head == b"\x1f\x8b":
        source = gzip.GzipFile(fileobj=source, mode="rb")
    digest = hashlib.sha256()
    try:
        with open(path, "wb") as out:
            while chunk := source.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise BadLayer(f"corrupt compressed layer: {e}") from None
    trace.record(f"sha256sum {path}", "a layer's diff ID is the sha256 of its uncompressed tar")
    return "sha256:" + digest.hexdigest()


class _Prepend:
    """A read-only stream: some bytes already read, then the rest of `fileobj`."""

    def __init__(self, head: bytes, fileobj):
        self.head, self.fileobj = head, fileobj

    def read(self, size=-1):
        if not self.head:
            return self.fileobj.read(size)
        if size is None or size < 0:
            data, self.head = self.head + self.fileobj.read(), b""
        else:
            data, self.head = self.head[:size], self.head[size:]
        return data


def unpack(tar_path: str, dest: str) -> list:
    """Unpack a layer tar into the empty directory `dest`, whiteouts into overlayfs form.

    Returns the tar's members (TarInfo, in order).  Raises BadLayer on the first unsafe member
    or on a corrupt or truncated tar; `dest` is then half-filled and must be thrown away.
    """
    tarfile = _tarfile()
    trace.record(f"tar -x --numeric-owner -f {tar_path} -C {dest}",
                 "unpack the layer (refusing paths outside it); .wh. files become overlayfs whiteouts")
    try:
        with tarfile.open(tar_path, "r:") as tar:
            tar.errorlevel = 2  # every problem is an error, none only a warning
            tar.extractall(dest, members=_apply_whiteouts(tar, dest), numeric_owner=True,
                           filter=_safe_for_a_layer)
            members = tar.getmembers()
            end = tar.offset
    except tarfile.FilterError as e:
        raise BadLayer(f"unsafe layer: {e}") from None
    except (tarfile.TarError, EOFError) as e:
        raise BadLayer(f"corrupt layer tar: {e}") from None
    _check_end_of_archive(tar_path, end)
    return members


def _safe_for_a_layer(member, dest: str):
    """The extraction filter: tarfile's own checks, plus what an image layer needs.

    tarfile.tar_filter refuses absolute names and any name that resolves
    outside `dest`, symlinks unpacked earlier included (symlink-then-write).
    Unlike it, a layer keeps its modes (setuid, sticky /tmp) and owners, and
    absolute symlinks are fine: they are resolved inside the container.
    Device nodes are fine too (see the module's docstring).
    """
    tarfile = _tarfile()
    name = member.name
    if name.startswith("/"):
        raise tarfile.AbsolutePathError(member)
    if ".." in name.split("/"):
        raise tarfile.OutsideDestinationError(member, name)
    tarfile.tar_filter(member, dest)  # raises when the name escapes; its mode changes are not wanted here
    if member.islnk():
        target = os.path.realpath(os.path.join(dest, member.linkname))
        if member.linkname.startswith("/") or ".." in member.linkname.split("/") \
                or os.path.commonpath([target, os.path.realpath(dest)]) != os.path.realpath(dest):
            raise tarfile.LinkOutsideDestinationError(member, target)
    # Device nodes pass: the devices cgroup, not the node, decides whether a container may open one.
    return member


def _apply_whiteouts(tar, dest: str):
    """Yield the members to unpack as they are; turn each OCI whiteout into its overlayfs form instead."""
    tarfile = _tarfile()
    for member in tar:
        directory, _, base = member.name.rstrip("/").rpartition("/")
        if not base.startswith(WHITEOUT_PREFIX):
            yield member
            continue
        _safe_for_a_layer(member, dest)  # the whiteout's directory must not lead outside either
        if not member.isreg():
            raise tarfile.FilterError(f"whiteout {member.name!r} is not an empty file")
        hidden = base[len(WHITEOUT_PREFIX):]
        if hidden.startswith(WHITEOUT_PREFIX) and base != OPAQUE_MARKER:
            continue  # other .wh..wh.* names are aufs bookkeeping, meaningless here (Docker skips them too)
        if hidden in ("", ".", ".."):
            raise tarfile.FilterError(f"bad whiteout name {member.name!r}")
        parent = os.path.join(dest, directory)
        os.makedirs(parent, exist_ok=True)
        apply_whiteout(parent, base)


def apply_whiteout(directory: str, whiteout: str) -> None:
    """Turn the OCI whiteout file named `whiteout`, met in a layer tar in `directory`, into overlayfs's form.

    ``.wh..wh..opq`` makes `directory` opaque: the xattr
    ``trusted.overlay.opaque`` set to ``y``.  ``.wh.NAME`` deletes NAME: a
    character device with device number 0/0 named NAME in `directory`,
    replacing whatever this layer itself put there.  (The names have been
    checked: `directory` is inside the layer, NAME is a plain name.)
    """
    if whiteout == OPAQUE_MARKER:
        kernel.setxattr(directory, OPAQUE_XATTR, b"y", why="opaque directory: lower layers' entries are hidden")
        return
    hidden = whiteout[len(WHITEOUT_PREFIX):]
    target = os.path.join(directory, hidden)
    if os.path.isdir(target) and not os.path.islink(target):
        remove_tree(target)
    elif os.path.lexists(target):
        os.unlink(target)
    kernel.mknod(target, "c", 0, 0, mode=0o000, why=f"whiteout: {hidden} is deleted in this layer")


def _check_end_of_archive(tar_path: str, end: int) -> None:
    """tarfile stops quietly at a damaged header; a whole tar ends with zero blocks, so look for them."""
    with open(tar_path, "rb") as f:
        f.seek(end)
        marker = f.read(1024)
    if len(marker) < 512 or marker.strip(b"\0"):
        raise BadLayer(f"corrupt layer tar: truncated or damaged at byte {end} (no end-of-archive marker)")


# -- layer directory -> the same tar ----------------------------------------------------------


def _write_split(tar_path: str, members: list, tree: str, diff_id: str, out_path: str) -> str:
    """Record how to rebuild the tar byte for byte from `tree`; returns the record's path.

    Each file's content is read back from the unpacked file when that file
    is certainly the one on disk (the last member of that name, a regular
    file); everything else -- headers, padding, rarer members -- is kept
    verbatim.  The record is checked by rebuilding the tar once: when it does
    not reproduce the diff ID, the whole tar is kept instead.
    """
    import hashlib

    import base64
    import gzip

    last_of_name = {}
    for index, member in enumerate(members):
        last_of_name[_clean(member.name)] = index
    segments, cursor = [], 0
    with open(tar_path, "rb") as raw:
        def verbatim(upto):
            nonlocal cursor
            if upto > cursor:
                segments.append(["raw", base64.b64encode(raw.read(upto - cursor)).decode()])
                cursor = upto

        for index, member in enumerate(members):
            verbatim(member.offset_data)
            if member.size and member.isreg() and not member.issparse() \
                    and last_of_name[_clean(member.name)] == index:
                segments.append(["file", _clean(member.name), member.size])
                raw.seek(member.size, os.SEEK_CUR)
                cursor += member.size
        verbatim(os.path.getsize(tar_path))
    with gzip.open(out_path, "wt") as f:
        jsoncore.dump({"diff_id": diff_id, "segments": segments}, f)
    digest = hashlib.sha256()
    try:
        _replay(out_path, tree, _Hasher(digest))
    except (OSError, BadLayer):
        digest = None
    if digest is None or "sha256:" + digest.hexdigest() != diff_id:  # rare: members that overwrite one another
        os.unlink(out_path)
        out_path = out_path.replace("tar-split", "tar")
        os.rename(tar_path, out_path)
    return out_path


def _clean(name: str) -> str:
    return os.path.normpath(name).lstrip("/")


class _Hasher:
    def __init__(self, digest):
        self.digest = digest

    def write(self, data):
        self.digest.update(data)
        return len(data)


def _replay(split_path: str, tree: str, out) -> None:
    import base64
    import gzip

    with gzip.open(split_path, "rt") as f:
        segments = jsoncore.load(f)["segments"]
    for segment in segments:
        if segment[0] == "raw":
            out.write(base64.b64decode(segment[1]))
            continue
        _, name, size = segment
        with open(os.path.join(tree, name), "rb") as content:
            left = size
            while left:
                chunk = content.read(min(CHUNK, left))
                if not chunk:
                    raise BadLayer(f"layer file {name} is shorter than recorded: the store is damaged")
                out.write(chunk)
                left -= len(chunk)


def layer_tar(store, diff_id: str, out) -> None:
    """Write the layer's tar, exactly the bytes it was registered from (sha256 = diff ID), to `out`.

    Raises NotFound when the layer is not stored, BadLayer when what is stored no
    longer reproduces the digest (checked as the bytes go out).
    """
    import hashlib

    tree = layer_dir(store, diff_id)
    if not os.path.isdir(tree):
        raise NotFound(f"layer {diff_id} is not in the store")
    digest = hashlib.sha256()

    class Both:
        def write(self, data):
            digest.update(data)
            return out.write(data)

    if os.path.exists(f"{tree}.tar-split"):
        _replay(f"{tree}.tar-split", tree, Both())
    elif os.path.exists(f"{tree}.tar"):
        with open(f"{tree}.tar", "rb") as f:
            while chunk := f.read(CHUNK):
                Both().write(chunk)
    else:  # a layer made by an older minidocker: its tar was the reproducible one of write_tar
        write_tar(tree, Both(), reproducible=True)
    if "sha256:" + digest.hexdigest() != diff_id:
        raise BadLayer(f"layer {diff_id} in the store no longer matches its digest (sha256:{digest.hexdigest()})")


write_layer_tar = layer_tar  # the name chapter 3's code (save, push) calls it by


def remove_layer(store, diff_id: str) -> None:
    """Delete a layer: its directory, its tar-split record and any user-namespace copies of it.

    The caller makes sure nothing uses it any more (see images.remove).
    """
    import shutil

    import glob

    tree = layer_dir(store, diff_id)
    for path in [f"{tree}.tar-split", f"{tree}.tar"]:
        if os.path.exists(path):
            os.unlink(path)
    for path in [tree] + glob.glob(f"{tree}-uid*"):
        if os.path.isdir(path):
            doomed = f"{os.path.dirname(path)}/.removing-{os.path.basename(path)}-{os.getpid()}"
            os.rename(path, doomed)  # first out of sight in one step, then deleted at leisure
            shutil.rmtree(doomed, ignore_errors=True)
    trace.record(f"rm -rf {tree}", "no image uses the layer any more")


# -- a directory (a container's upper dir, a build) -> a layer tar ----------------------------------


def is_whiteout(st) -> bool:
    """overlayfs's mark for "deleted": a character device with device number 0/0."""
    import stat

    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(path: str) -> bool:
    """Marked opaque by overlayfs: trusted.overlay.opaque, or user.overlay.opaque in a user namespace."""
    for name in (OPAQUE_XATTR, "user.overlay.opaque"):
        try:
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
        except OSError:
            pass
    return False


def write_tar(root: str, out, reproducible: bool = False, skip=lambda relpath: False, uid_shift: int = 0) -> None:
    """Tar the tree `root` onto the stream `out`, overlayfs whiteouts converted to OCI ones.

    `reproducible` zeroes times and owner names, so the same tree always
    gives the same bytes (and so the same diff ID).  `skip(relpath)` leaves
    entries out (a container's bind-mount placeholders).  `uid_shift` maps
    owners back from a user namespace's range (host 100000 = container 0).

    The tree may belong to a running container that changes it while we
    read (``commit --pause=false``, ``export``), so no name is ever looked
    up twice: each entry is opened once, relative to its parent directory's
    descriptor and without following a symlink (see :func:`_open_entry`), and
    what goes into the tar -- header and bytes -- comes from that descriptor.
    A container that swaps a file for a symlink to ``/etc/shadow`` between
    our two looks gets the symlink archived, never the host's file.
    Entries that vanish meanwhile are left out; a file that shrinks is
    padded with zeros to the size its header already announced, one that
    grows is cut there (GNU tar does the same; Docker's Go tar writer
    instead fails the whole stream with "missed writing N bytes").
    """
    tarfile = _tarfile()
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            _tar_directory(tar, root_fd, "", reproducible, skip, uid_shift)
    finally:
        os.close(root_fd)


def _tar_directory(tar, dir_fd: int, reldir: str, reproducible: bool, skip, uid_shift: int) -> None:
    """Add the entries of the directory open as `dir_fd` (sorted by name), then each subdirectory's, in turn."""
    import errno
    import stat

    subdirectories = []
    for name in sorted(os.listdir(dir_fd)):
        relpath = f"{reldir}/{name}" if reldir else name
        if skip(relpath):
            continue
        entry = _open_entry(dir_fd, name)
        if entry is None:
            continue  # deleted since the listing: as if we had listed a moment later
        fd, st = entry
        try:
            _add_entry(tar, fd, st, relpath, reproducible, uid_shift)
        finally:
            os.close(fd)
        if stat.S_ISDIR(st.st_mode):
            subdirectories.append((name, relpath))
    for name, relpath in subdirectories:
        try:  # by name again, so O_NOFOLLOW again: a directory swapped for a symlink since is not entered
            child_fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as e:
            if e.errno == errno.ELOOP:  # open(2), O_NOFOLLOW: "the trailing component ... is a symbolic link"
                continue
            raise
        try:
            _tar_directory(tar, child_fd, relpath, reproducible, skip, uid_shift)
        finally:
            os.close(child_fd)


def _open_entry(dir_fd: int, name: str):
    """Open NAME, an entry of the directory `dir_fd`, as it is now: (fd, its fstat), or None when it is gone.

    open(2) with ``O_PATH | O_NOFOLLOW``: "obtain a file descriptor that
    indicates a location in the filesystem tree" without opening the file
    itself -- no FIFO blocks, no device driver runs -- and, should NAME be a
    symbolic link, the descriptor refers to the link, not to what it points
    at.  Relative to `dir_fd`, only this one name is resolved, so nothing
    above it can be swapped either.  fstat(2) of the descriptor tells what
    was opened; whatever NAME is renamed to afterwards, the descriptor stays.
    """
    try:
        fd = os.open(name, os.O_PATH | os.O_NOFOLLOW, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    return fd, os.fstat(fd)


def _reopen(path_fd: int, flags: int) -> int:
    """Open for real (to read, to ask for xattrs) the very file an O_PATH descriptor refers to.

    /proc/self/fd/N is a "magic link": opening it gives the file behind
    descriptor N, not whatever now has the name it was opened by.
    """
    return os.open(f"/proc/self/fd/{path_fd}", flags)


def _add_entry(tar, fd: int, st, relpath: str, reproducible: bool, uid_shift: int) -> None:
    """Add one entry, described by `st` (the fstat of `fd`), and for a regular file the bytes read from `fd`."""
    import stat

    tarfile = _tarfile()
    mtime = 0 if reproducible else int(st.st_mtime)
    if is_whiteout(st):
        directory, _, name = relpath.rpartition("/")
        info = tarfile.TarInfo(f"{directory}/{WHITEOUT_PREFIX}{name}" if directory else WHITEOUT_PREFIX + name)
        info.mtime = mtime
        tar.addfile(info)
        return
    info = _tarinfo(tar, st, relpath, fd)
    if info is None:
        return  # a socket: tar has no type for it (tarfile's gettarinfo leaves it out too)
    if uid_shift and info.uid >= uid_shift and info.gid >= uid_shift:
        info.uid, info.gid, info.uname, info.gname = info.uid - uid_shift, info.gid - uid_shift, "", ""
    if reproducible:
        info.mtime, info.uname, info.gname = 0, "", ""
    if info.isreg():
        content_fd = _reopen(fd, os.O_RDONLY)
        with os.fdopen(content_fd, "rb") as content:
            tar.addfile(info, _Exactly(content, info.size))
    else:
        tar.addfile(info)
    if stat.S_ISDIR(st.st_mode):
        directory_fd = _reopen(fd, os.O_RDONLY | os.O_DIRECTORY)
        try:
            opaque = _is_opaque_fd(directory_fd)
        finally:
            os.close(directory_fd)
        if opaque:
            marker = tarfile.TarInfo(f"{relpath}/{OPAQUE_MARKER}")
            marker.mtime = mtime
            tar.addfile(marker)


def _tarinfo(tar, st, arcname: str, fd: int):
    """The tar header for a file whose stat is `st`: what tarfile.gettarinfo builds, from our fstat, not its lstat."""
    import stat

    tarfile = _tarfile()
    mode, linkname = st.st_mode, ""
    if stat.S_ISREG(mode):
        inode = (st.st_ino, st.st_dev)
        if st.st_nlink > 1 and inode in tar.inodes and arcname != tar.inodes[inode]:
            kind, linkname = tarfile.LNKTYPE, tar.inodes[inode]  # a second name of a file already archived
        else:
            kind = tarfile.REGTYPE
            tar.inodes[inode] = arcname
    elif stat.S_ISDIR(mode):
        kind = tarfile.DIRTYPE
    elif stat.S_ISFIFO(mode):
        kind = tarfile.FIFOTYPE
    elif stat.S_ISLNK(mode):
        kind = tarfile.SYMTYPE
        linkname = os.readlink("", dir_fd=fd)  # readlinkat(2) with "": the link the O_PATH descriptor holds
    elif stat.S_ISCHR(mode):
        kind = tarfile.CHRTYPE
    elif stat.S_ISBLK(mode):
        kind = tarfile.BLKTYPE
    else:
        return None
    info = tarfile.TarInfo(arcname)
    info.mode, info.uid, info.gid, info.mtime = mode, st.st_uid, st.st_gid, st.st_mtime
    info.size = st.st_size if kind == tarfile.REGTYPE else 0
    info.type, info.linkname = kind, linkname
    info.uname, info.gname = _user_name(st.st_uid), _group_name(st.st_gid)
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    return info


def _user_name(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid)[0]
    except KeyError:
        return ""


def _group_name(gid: int) -> str:
    import grp

    try:
        return grp.getgrgid(gid)[0]
    except KeyError:
        return ""


class _Exactly:
    """A file read as exactly `size` bytes, as its tar header announced: zeros past its end, nothing past `size`."""

    def __init__(self, fileobj, size: int):
        self.fileobj, self.left = fileobj, size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n is None or n < 0 else min(n, self.left)
        data = self.fileobj.read(n)
        if len(data) < n:
            data += b"\0" * (n - len(data))  # the file shrank while we read it
        self.left -= n
        return data


def _is_opaque_fd(directory_fd: int) -> bool:
    for name in (OPAQUE_XATTR, "user.overlay.opaque"):
        try:
            if os.getxattr(directory_fd, name) == b"y":
                return True
        except OSError:
            pass
    return False


def tar_digest(root: str, reproducible: bool = True) -> str:
    """The diff ID the tree `root` would have as a layer."""
    import hashlib

    digest = hashlib.sha256()
    write_tar(root, _Hasher(digest), reproducible=reproducible)
    return "sha256:" + digest.hexdigest()
