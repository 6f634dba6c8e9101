"""The container's filesystem: overlayfs, /proc, /dev, /sys, and changing root (chapter 1).

All of this runs inside the container's new *mount namespace*, so every mount
here is invisible to the host and disappears by itself when the container's
last process exits -- nothing to clean up, nothing to leak.

1. overlayfs stacks the image's read-only layers (lowerdir) under a
   per-container writable layer (upperdir); the merged view is the root.
2. Kernel filesystems are mounted inside it: a /proc for the new PID
   namespace, a small /dev on tmpfs with only safe devices, /sys read-only.
3. The root is changed.  ``pivot_root`` swaps the whole root mount, so the
   host's tree can be detached; ``chroot`` (``--chroot``, for teaching) only
   changes how "/" is resolved, which a root process can climb out of.
4. Like Docker, a few /proc files that leak host information are masked
   and kernel tunables under /proc are made read-only.

Steps 1-2 happen before the root changes, while a path such as
``ROOTFS/etc/hosts`` is still looked up from the host's "/".  The image
decides what ``ROOTFS/etc`` is, and a symlink ``etc -> /etc`` would make the
kernel follow it to the *host's* /etc.  So every path minidocker creates or
mounts on inside the root is first opened with openat2(2) and
RESOLVE_IN_ROOT -- the kernel resolves it as if ROOTFS were "/", exactly as
the container itself will -- and the mount goes onto that open descriptor
(:func:`open_inside`).  /proc, /sys and /dev must be real directories: an
image that makes them symlinks is refused, as runc refuses it.
"""

import errno
import os
import stat

from minidocker import kernel
from minidocker.errors import MinidockerError
from minidocker.kernel import (MNT_DETACH, MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_RDONLY,
                               MS_REC, MS_REMOUNT, MS_STRICTATIME)

# Docker's defaults (moby's oci/defaults.go): hidden, and read-only, paths.
MASKED_PATHS = ["/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
                "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap"]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

# The only devices a container gets: (name, major, minor).
DEVICES = [("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0)]
DEV_LINKS = [("/proc/self/fd", "fd"), ("/proc/self/fd/0", "stdin"), ("/proc/self/fd/1", "stdout"),
             ("/proc/self/fd/2", "stderr"), ("/proc/kcore", "core"), ("pts/ptmx", "ptmx")]
ETC_FILES = ("hostname", "hosts", "resolv.conf")


def make_mounts_private() -> None:
    kernel.mount(None, "/", None, MS_REC | MS_PRIVATE,
                 why="stop mounts propagating between this mount namespace and the host's")


def mount_overlay(lower_dirs: list[str], upper: str, work: str, target: str, in_user_namespace: bool) -> None:
    # overlayfs lists the top-most lower layer first; images list layers bottom first.
    options = f"lowerdir={':'.join(reversed(lower_dirs))},upperdir={upper},workdir={work}"
    if in_user_namespace:  # only the host's root may write trusted.* xattrs; overlayfs uses user.* instead
        options += ",userxattr"
    kernel.mount("overlay", target, "overlay", 0, options,
                 why="union of the read-only image layers and this container's writable layer")


MAX_SYMLINKS = 40  # path_resolution(7): the kernel follows at most 40 symlinks in one lookup


def open_inside(root: str, path: str, kind: str) -> int:
    """An O_PATH descriptor of `path` (e.g. "etc/hosts") resolved inside `root`, created if missing.

    `kind` is "dir" or "file": what a missing last component is created as.
    Every directory on the way is resolved with RESOLVE_IN_ROOT, so an
    absolute symlink or ".." in the image stays inside `root`.  The last
    component itself is never followed: a symlink there is replaced by an
    empty file (for "file"), or refused (for "dir").
    """
    parent, name = _parent_inside(root, path)
    try:
        try:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        if st is not None and stat.S_ISLNK(st.st_mode):
            if kind == "dir":
                raise MinidockerError(f"the image's /{path} is a symlink, where a directory is needed: refused")
            os.unlink(name, dir_fd=parent)  # (a change of the container's own layer only)
            st = None
        if st is None:
            if kind == "dir":
                os.mkdir(name, 0o755, dir_fd=parent)
            else:
                os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                                 0o644, dir_fd=parent))
        elif kind == "dir" and not stat.S_ISDIR(st.st_mode):
            raise MinidockerError(f"the image's /{path} is not a directory: cannot mount on it")
        return kernel.openat2(parent, name, os.O_PATH | os.O_NOFOLLOW, kernel.RESOLVE_IN_ROOT)
    finally:
        os.close(parent)


def _parent_inside(root: str, path: str) -> tuple[int, str]:
    """(an O_PATH descriptor of `path`'s directory, resolved inside `root` and made if missing; its last name)."""
    parent_path, _, name = path.strip("/").rpartition("/")
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return _directory_inside(root_fd, root, parent_path), name
    finally:
        os.close(root_fd)


def _directory_inside(root_fd: int, root: str, path: str, links_followed: int = 0) -> int:
    """An O_PATH descriptor of the directory `path`, resolved inside the root; missing ones are made.

    A symlink on the way to a directory that does not exist yet (``etc -> /real/etc``) leads to
    where it points *inside the root*, and that is made, as runc does.
    """
    if not path:
        return os.dup(root_fd)
    try:
        return kernel.openat2(root_fd, path, os.O_PATH | os.O_DIRECTORY, kernel.RESOLVE_IN_ROOT)
    except kernel.KernelError as e:
        if e.errno != errno.ENOENT:
            raise MinidockerError(f"cannot use /{path} of the image: {os.strerror(e.errno).lower()}") from None
    above, _, name = path.rpartition("/")
    parent = _directory_inside(root_fd, root, above, links_followed)
    try:
        try:
            os.mkdir(name, 0o755, dir_fd=parent)
        except FileExistsError:  # a symlink to a directory that does not exist (yet)
            if links_followed >= MAX_SYMLINKS:
                raise MinidockerError(f"the image's /{path}: too many levels of symbolic links") from None
            target = os.readlink(name, dir_fd=parent)
            inside = os.path.normpath(os.path.join("/", above, target)).lstrip("/")  # "/" and ".." stay in the root
            return _directory_inside(root_fd, root, inside, links_followed + 1)
        return kernel.openat2(parent, name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW, kernel.RESOLVE_IN_ROOT)
    finally:
        os.close(parent)


def _mount_inside(source: str | None, root: str, path: str, kind: str, fstype: str | None = None,
                  flags: int = 0, data: str | None = None, why: str = "") -> None:
    target = open_inside(root, path, kind)
    try:
        kernel.mount_on_fd(source, target, f"{root}/{path}", fstype, flags, data, why=why)
    finally:
        os.close(target)


def mount_proc(root: str) -> None:
    _mount_inside("proc", root, "proc", "dir", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                  why="a /proc that shows only the processes of this PID namespace")


def mount_sys(root: str, read_only: bool = True) -> None:
    flags = (MS_RDONLY if read_only else 0) | MS_NOSUID | MS_NODEV | MS_NOEXEC
    try:
        _mount_inside("sysfs", root, "sys", "dir", "sysfs", flags, why="/sys" + (", read-only" if read_only else ""))
    except kernel.KernelError:
        # sysfs may only be mounted by the owner of the network namespace; with a user
        # namespace but the host's network, show the host's /sys read-only instead.
        _mount_inside("/sys", root, "sys", "dir", None, MS_BIND | MS_REC, why="the host's /sys (shared network)")
        kernel.mount(None, f"{root}/sys", None, MS_BIND | MS_REMOUNT | flags, why="... read-only")


def mount_dev(root: str, can_mknod: bool, private_ipc: bool) -> None:
    dev = f"{root}/dev"  # once our tmpfs is on it, every path below is ours: no symlink of the image's
    _mount_inside("tmpfs", root, "dev", "dir", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k",
                  why="an empty /dev: the container sees only the devices put here")
    for name, major, minor in DEVICES:
        if can_mknod:
            kernel.mknod(f"{dev}/{name}", "c", major, minor, why="a device node is just a name for a driver")
        else:  # a user namespace may not create device nodes: borrow the host's
            open(f"{dev}/{name}", "w").close()
            kernel.mount(f"/dev/{name}", f"{dev}/{name}", None, MS_BIND,
                         why="bind the host's device (mknod is not allowed in a user namespace)")
    kernel.mkdir(f"{dev}/pts")
    kernel.mount("devpts", f"{dev}/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620",
                 why="a private set of pseudo-terminals")
    kernel.mkdir(f"{dev}/shm", 0o1777)
    if private_ipc:
        kernel.mount("shm", f"{dev}/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k",
                     why="POSIX shared memory private to this IPC namespace")
        kernel.mkdir(f"{dev}/mqueue")
        kernel.mount("mqueue", f"{dev}/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                     why="POSIX message queues of this IPC namespace")
    else:
        kernel.mount("/dev/shm", f"{dev}/shm", None, MS_BIND | MS_REC, why="--ipc host: share the host's /dev/shm")
    for target, name in DEV_LINKS:
        kernel.symlink(target, f"{dev}/{name}")


def make_devices(root: str, devices: list, can_mknod: bool) -> None:
    """--device: each host device (cgroups/devices.HostDevice) gets its node at its path in the container.

    The devices cgroup allows its number; the node only gives it a name there.  The path is
    resolved inside the root, as every path minidocker makes there (open_inside).
    """
    for device in devices:
        path = os.path.normpath(device.path).lstrip("/")
        if not can_mknod:  # in a user namespace: bind the host's node, as for the defaults
            _mount_inside(device.host_path, root, path, "file", None, MS_BIND,
                          why=f"--device: bind the host's {device.host_path} (mknod is not allowed in a user namespace)")
            continue
        parent, name = _parent_inside(root, path)
        try:
            if os.path.lexists(f"/proc/self/fd/{parent}/{name}"):
                os.unlink(name, dir_fd=parent)  # (the image may have a node of that name: the flag wins, as in Docker)
            kernel.mknod(name, device.kind, device.major, device.minor, device.mode, dir_fd=parent,
                         shown=f"{root}/{path}",
                         why=f"--device: {device.path} names the host's device {device.major}:{device.minor}")
            os.chown(name, device.uid, device.gid, dir_fd=parent, follow_symlinks=False)
        finally:
            os.close(parent)


def bind_etc_files(root: str, container_dir: str) -> None:
    """/etc/hostname, /etc/hosts, /etc/resolv.conf come from the container's directory, as in Docker."""
    for name in ETC_FILES:
        _mount_inside(f"{container_dir}/{name}", root, f"etc/{name}", "file", None, MS_BIND,
                      why=f"minidocker writes /etc/{name} for each container")


def pivot_into(root: str) -> None:
    """Make `root` the root mount and detach the host's tree entirely."""
    kernel.chdir(root)
    kernel.mkdir(f"{root}/.old_root", 0o700)
    kernel.pivot_root(root, f"{root}/.old_root", why="the container's tree becomes the root mount")
    kernel.chdir("/")
    kernel.umount("/.old_root", MNT_DETACH, why="detach the host's tree: nothing of it stays reachable")
    kernel.rmdir("/.old_root")


def chroot_into(root: str) -> None:
    """--chroot: only change where "/" resolves; the host's tree is still mounted underneath."""
    kernel.chdir(root)
    kernel.chroot(root, why="--chroot (teaching mode): the host's mounts are still there, escapable")
    kernel.chdir("/")


def mask_host_paths() -> None:
    cpus = [f"/sys/devices/system/cpu/{cpu}/thermal_throttle" for cpu in _listdir("/sys/devices/system/cpu")
            if cpu.startswith("cpu") and cpu[3:].isdigit()]  # Docker masks these too: a side channel
    for path in MASKED_PATHS + cpus:
        if os.path.isdir(path):
            kernel.mount("tmpfs", path, "tmpfs", MS_RDONLY, why="hide host information (Docker's masked paths)")
        elif os.path.exists(path):
            kernel.mount("/dev/null", path, None, MS_BIND, why="hide host information (Docker's masked paths)")
    for path in READONLY_PATHS:
        if os.path.exists(path):
            kernel.mount(path, path, None, MS_BIND | MS_REC, why="kernel tunables stay read-only")
            kernel.mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def write_etc_files(container_dir: str, hostname: str, network: str) -> None:
    """Called at create time, on the host."""
    with open(f"{container_dir}/hostname", "w") as f:
        f.write(hostname + "\n")
    if network == "host":
        with open("/etc/hosts") as f:
            hosts = f.read()
    else:
        hosts = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                 "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
    with open(f"{container_dir}/hosts", "w") as f:
        f.write(hosts)
    try:
        with open("/etc/resolv.conf") as f:
            resolv = f.read().splitlines()
    except OSError:
        resolv = []
    if network != "host":  # the host's loopback resolver is unreachable from another network namespace
        resolv = [ln for ln in resolv if not ln.split()[:2] in (["nameserver", "127.0.0.1"],
                                                                 ["nameserver", "127.0.0.53"], ["nameserver", "::1"])]
    with open(f"{container_dir}/resolv.conf", "w") as f:
        f.write("\n".join(resolv) + "\n")
