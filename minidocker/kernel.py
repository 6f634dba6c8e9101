"""The kernel shim: every system call minidocker makes goes through here.

Chapter 1 in one file.  A container is nothing but an ordinary process that
the kernel has been asked to show a different view of the world; these are the
calls that ask.  Each function:

* quotes the essentials of its man page, so you can read the kernel's contract
  right where it is used;
* uses the Python standard library where it has the call (``os.unshare`` and
  ``os.setns`` exist from Python 3.12) and ``ctypes`` where it does not;
* turns a failure into a :class:`KernelError` that names the call, the errno
  and the man page's reason;
* records itself in the explain trace (:mod:`minidocker.trace`) as the shell
  command that does the same thing, so ``--explain`` shows exactly what ran.
"""

import ctypes
import errno
import os

from minidocker import trace

_libc = ctypes.CDLL(None, use_errno=True)

# -- namespaces(7) -------------------------------------------------------------
# "A namespace wraps a global system resource in an abstraction that makes it
#  appear to the processes within the namespace that they have their own
#  isolated instance of the global resource."
CLONE_NEWNS = 0x00020000  # mount points
CLONE_NEWCGROUP = 0x02000000  # cgroup root directory
CLONE_NEWUTS = 0x04000000  # hostname and NIS domain name
CLONE_NEWIPC = 0x08000000  # System V IPC, POSIX message queues
CLONE_NEWUSER = 0x10000000  # user and group IDs
CLONE_NEWPID = 0x20000000  # process IDs
CLONE_NEWNET = 0x40000000  # network devices, stacks, ports, ...

# The unshare(1) option for each flag, and the name of its /proc/PID/ns link.
NAMESPACES = {
    CLONE_NEWUSER: ("--user", "user"),
    CLONE_NEWPID: ("--pid", "pid"),
    CLONE_NEWNS: ("--mount", "mnt"),
    CLONE_NEWUTS: ("--uts", "uts"),
    CLONE_NEWIPC: ("--ipc", "ipc"),
    CLONE_NEWNET: ("--net", "net"),
    CLONE_NEWCGROUP: ("--cgroup", "cgroup"),
}

# -- mount(2) flags ---------------------------------------------------------------
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MNT_DETACH = 2  # umount2(2): lazy unmount

# -- prctl(2) options -------------------------------------------------------------
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_NAME = 15
PR_SET_CHILD_SUBREAPER = 36
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2

# -- openat2(2): resolving a path inside a directory tree ----------------------------------
RESOLVE_NO_MAGICLINKS = 0x02  # no /proc/PID/fd/N-style "magic" links on the way
RESOLVE_IN_ROOT = 0x10  # "/" and ".." and absolute symlinks stop at the dirfd: it is the root
SYS_OPENAT2 = 437  # the same number on every architecture (the "new" syscall table)

# Reasons from the man pages, for the errors a learner is likely to meet.
_REASONS = {
    ("mount", errno.EPERM): "the caller does not have the required privileges (CAP_SYS_ADMIN in the "
    "user namespace owning the mount namespace)",
    ("mount", errno.ENOENT): "a pathname was empty or had a nonexistent component",
    ("mount", errno.EINVAL): "source had an invalid superblock, or a remount/move was attempted on "
    "something that is not a mount point",
    ("mount", errno.ENODEV): "filesystemtype not configured in the kernel",
    ("pivot_root", errno.EINVAL): "new_root is not a mount point, or put_old is not at or underneath "
    "new_root, or the current root is not a mount point / has shared propagation",
    ("pivot_root", errno.EBUSY): "new_root or put_old is on the current root filesystem",
    ("unshare", errno.EPERM): "the caller lacks CAP_SYS_ADMIN (for CLONE_NEWUSER: the caller is "
    "in a chroot or has threads)",
    ("unshare", errno.EINVAL): "an invalid bit was specified in flags, or the process is multithreaded",
    ("unshare", errno.ENOSPC): "the limit on the number of nested namespaces of this type was reached",
    ("setns", errno.EINVAL): "fd refers to a namespace whose type does not match nstype, or the "
    "caller may not join it (e.g. a multithreaded process joining a user namespace)",
    ("setns", errno.EPERM): "the calling thread lacks CAP_SYS_ADMIN in the target namespace",
    ("sethostname", errno.EPERM): "the caller lacks CAP_SYS_ADMIN in the user namespace owning its "
    "UTS namespace",
    ("seccomp", errno.EACCES): "the caller did not have the CAP_SYS_ADMIN capability in its user namespace, "
    "or had not set no_new_privs",
    ("seccomp", errno.EINVAL): "the BPF program is not a valid filter (bad instruction or length)",
    ("umount2", errno.EBUSY): "target could not be unmounted because it is busy",
    ("umount2", errno.EINVAL): "target is not a mount point",
    ("bpf", errno.EPERM): "the caller lacks CAP_BPF or CAP_SYS_ADMIN, or a program attached to a cgroup above "
    "was attached without BPF_F_ALLOW_MULTI",
    ("bpf", errno.EACCES): "the verifier found the program unsafe",
    ("bpf", errno.EINVAL): "an attribute is wrong for this command, program type or attach type",
}


class KernelError(OSError):
    """A system call failed; the message says which, why, and what the man page says."""

    def __init__(self, call: str, err: int, detail: str = ""):
        reason = _REASONS.get((call, err), "")
        text = f"{call}({detail}) failed: {errno.errorcode.get(err, err)} ({os.strerror(err)})"
        if reason:
            text += f": {reason}"
        super().__init__(err, text)
        self.call = call

    def __str__(self) -> str:
        return self.strerror


def _check(result: int, call: str, detail: str) -> int:
    if result == -1:
        raise KernelError(call, ctypes.get_errno(), detail)
    return result


def _b(path: str | None) -> bytes | None:
    return None if path is None else os.fsencode(path)


# -- namespaces ----------------------------------------------------------------------


def unshare_options(flags: int) -> str:
    return " ".join(opt for flag, (opt, _) in NAMESPACES.items() if flags & flag)


def unshare(flags: int, why: str = "") -> None:
    """unshare(2): disassociate parts of the process execution context.

    "unshare() allows a process to disassociate parts of its execution
    context that are currently being shared with other processes."  Each
    CLONE_NEW* bit moves the caller into a fresh namespace of that kind --
    except CLONE_NEWPID: "the calling process is not moved into the new
    namespace.  The first child created by the calling process will have
    the process ID 1 and will assume the role of init(1)".
    """
    if hasattr(os, "unshare"):
        try:
            os.unshare(flags)
        except OSError as e:
            raise KernelError("unshare", e.errno, unshare_options(flags)) from None
    else:
        _check(_libc.unshare(flags), "unshare", unshare_options(flags))
    trace.record(f"unshare {unshare_options(flags)}", why)


def setns(pid: int, ns: str, why: str = "") -> None:
    """setns(2): reassociate the calling thread with a namespace.

    "The fd argument is ... a file descriptor referring to one of the
    magic links in a /proc/pid/ns/ directory."  Joining a PID namespace
    affects only children created afterwards (the caller keeps its PID);
    joining a mount namespace requires the caller to chdir afterwards,
    since its cwd still points into the old tree.
    """
    path = f"/proc/{pid}/ns/{ns}"
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if hasattr(os, "setns"):
            try:
                os.setns(fd, 0)
            except OSError as e:
                raise KernelError("setns", e.errno, path) from None
        else:
            _check(_libc.setns(fd, 0), "setns", path)
    finally:
        os.close(fd)
    option = {"mnt": "--mount", "net": "--net", "user": "--user"}.get(ns, f"--{ns}")
    trace.record(f"nsenter --target {pid} {option}", why)


def namespace_id(pid: int | str, ns: str) -> str:
    """The identity of a process's namespace, e.g. 'pid:[4026531836]' (readlink /proc/PID/ns/NS)."""
    return os.readlink(f"/proc/{pid}/ns/{ns}")


# -- mounts --------------------------------------------------------------------------

_FLAG_WORDS = [
    (MS_RDONLY, "ro"),
    (MS_NOSUID, "nosuid"),
    (MS_NODEV, "nodev"),
    (MS_NOEXEC, "noexec"),
    (MS_RELATIME, "relatime"),
    (MS_STRICTATIME, "strictatime"),
]


def _mount_command(source, target, fstype, flags, data) -> str:
    """The mount(8) command line that makes the same mount(2) call."""
    if flags & (MS_PRIVATE | MS_SLAVE | MS_SHARED):
        kind = "private" if flags & MS_PRIVATE else "slave" if flags & MS_SLAVE else "shared"
        return f"mount --make-{'r' if flags & MS_REC else ''}{kind} {target}"
    if flags & MS_MOVE:
        return f"mount --move {source} {target}"
    words = [w for bit, w in _FLAG_WORDS if flags & bit]
    if flags & MS_REMOUNT:
        words.insert(0, "remount" + (",bind" if flags & MS_BIND else ""))
        return f"mount -o {','.join(words)} {target}"
    if data:
        words.append(data)
    opts = f" -o {','.join(words)}" if words else ""
    if flags & MS_BIND:
        return f"mount --{'r' if flags & MS_REC else ''}bind{opts} {source} {target}"
    return f"mount -t {fstype}{opts} {source} {target}"


def mount(source: str | None, target: str, fstype: str | None = None, flags: int = 0,
          data: str | None = None, why: str = "") -> None:
    """mount(2): mount filesystem.

    "mount() attaches the filesystem specified by source (which is often a
    pathname referring to a device, but can also be the pathname of a
    directory or file, or a dummy string) to the location (a directory or
    file) specified by the pathname in target."  MS_BIND makes a file or
    tree visible at another place; MS_REMOUNT changes the flags of an
    existing mount; MS_PRIVATE/MS_SLAVE/MS_SHARED change its propagation
    type (mount_namespaces(7)).
    """
    detail = f"{source} on {target}" + (f" type {fstype}" if fstype else "")
    _check(_libc.mount(_b(source), _b(target), _b(fstype), ctypes.c_ulong(flags), _b(data)),
           "mount", detail)
    trace.record(_mount_command(source, target, fstype, flags, data), why)


def mount_on_fd(source: str | None, target_fd: int, shown_target: str, fstype: str | None = None,
                flags: int = 0, data: str | None = None, why: str = "") -> None:
    """mount(2) onto the file or directory that the open descriptor `target_fd` refers to.

    The target is given as ``/proc/self/fd/N``, a "magic link" that the kernel
    resolves to exactly the object the descriptor holds -- no path is looked
    up again, so no symlink swapped in meanwhile can redirect the mount.
    `shown_target` is the path the trace and errors show (``ROOTFS/etc/hosts``).
    """
    target = f"/proc/self/fd/{target_fd}"
    detail = f"{source} on {shown_target}" + (f" type {fstype}" if fstype else "")
    _check(_libc.mount(_b(source), _b(target), _b(fstype), ctypes.c_ulong(flags), _b(data)), "mount", detail)
    trace.record(_mount_command(source, shown_target, fstype, flags, data),
                 why + "; the target was opened inside the root, the mount goes through /proc/self/fd/N")


def umount(target: str, flags: int = 0, why: str = "") -> None:
    """umount2(2): unmount filesystem.

    "MNT_DETACH: Perform a lazy unmount: make the mount unavailable for new
    accesses, immediately disconnect the filesystem and all filesystems
    mounted below it from each other and from the mount table, and actually
    perform the unmount when the mount ceases to be busy."
    """
    _check(_libc.umount2(_b(target), flags), "umount2", target)
    trace.record(f"umount{' -l' if flags & MNT_DETACH else ''} {target}", why)


SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}  # <asm/unistd.h>


def pivot_root(new_root: str, put_old: str, why: str = "") -> None:
    """pivot_root(2): change the root mount.

    "pivot_root() changes the root mount in the mount namespace of the
    calling process.  More precisely, it moves the root mount to the
    directory put_old and makes new_root the new root mount."  Unlike
    chroot(2), the old root is a mount you can then detach, so nothing of
    the host's tree stays reachable.  new_root must be a mount point.
    """
    _check(_libc.syscall(SYS_PIVOT_ROOT[os.uname().machine], _b(new_root), _b(put_old)), "pivot_root",
           f"{new_root}, {put_old}")
    trace.record(f"pivot_root {new_root} {put_old}", why)


def chroot(path: str, why: str = "") -> None:
    """chroot(2): change root directory.

    "chroot() changes the root directory of the calling process to that
    specified in path.  ...  This call does not change the current working
    directory, so that after the call '.' can be outside the tree rooted
    at '/'."  -- which is exactly the hole the breakout demo climbs through.
    """
    try:
        os.chroot(path)
    except OSError as e:
        raise KernelError("chroot", e.errno, path) from None
    trace.record(f"chroot {path}", why)


def sethostname(name: str, why: str = "") -> None:
    """sethostname(2): set the hostname of the caller's UTS namespace."""
    raw = name.encode()
    _check(_libc.sethostname(raw, len(raw)), "sethostname", name)
    trace.record(f"hostname {name}", why)


def mknod(path: str, kind: str, major: int, minor: int, mode: int = 0o666, why: str = "",
          dir_fd: int | None = None, shown: str | None = None) -> None:
    """mknod(2): create a special file (mknodat(2) with `dir_fd`: `path` is relative to that directory).

    A device node is only a name plus a (major, minor) number pair; the
    driver behind it is the host kernel's, which is why /dev/null inside a
    container is the very same device as outside.  `shown` is the path the
    trace and errors show (a `dir_fd` has no name of its own).
    """
    import stat

    shown = shown or path
    type_bit = stat.S_IFCHR if kind == "c" else stat.S_IFBLK
    try:
        os.mknod(path, type_bit | mode, os.makedev(major, minor), dir_fd=dir_fd)
        os.chmod(path, mode, dir_fd=dir_fd)  # mknod's mode passed through the umask
    except OSError as e:
        raise KernelError("mknod", e.errno, shown) from None
    trace.record(f"mknod -m {mode:o} {shown} {kind} {major} {minor}", why)


def symlink(target: str, path: str, why: str = "") -> None:
    os.symlink(target, path)
    trace.record(f"ln -s {target} {path}", why)


def mkdir(path: str, mode: int = 0o755, why: str = "") -> None:
    os.makedirs(path, mode, exist_ok=True)
    trace.record(f"mkdir -p {path}", why)


def rmdir(path: str, why: str = "") -> None:
    os.rmdir(path)
    trace.record(f"rmdir {path}", why)


def write(path: str, text: str, why: str = "") -> None:
    """Write a kernel control file (cgroupfs, /proc/PID/uid_map, ...) in one write(2)."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    except OSError as e:
        raise KernelError("write", e.errno, f"{text.strip()!r} to {path}") from None
    finally:
        os.close(fd)
    shown = text.strip().replace("\n", "\\n")
    if "\n" not in text.strip() and any(c in shown for c in "*?["):  # a devices rule: quoted, or the shell would expand c *:* m
        shown = f"'{shown}'"
    echo = f"printf '{shown}\\n'" if "\n" in text.strip() else f"echo {shown}"
    trace.record(f"{echo} > {path}", why)


def kill(pid: int, sig: int, why: str = "") -> None:
    import signal

    os.kill(pid, sig)
    trace.record(f"kill -{signal.Signals(sig).name[3:]} {pid}", why)


# -- process attributes -----------------------------------------------------------------


def drop_bounding_capabilities(numbers: list[int], names: list[str]) -> None:
    """prctl(PR_CAPBSET_DROP): "Drop the capability specified by arg2 from the calling thread's
    capability bounding set.  Any children of the calling thread will inherit the newly reduced
    bounding set."  Needs CAP_SETPCAP, so it is the last privileged step."""
    for number in numbers:
        _check(_libc.prctl(PR_CAPBSET_DROP, ctypes.c_ulong(number), 0, 0, 0), "prctl",
               f"PR_CAPBSET_DROP, {number}")
    if numbers:
        trace.record(f"capsh --drop={','.join('cap_' + n for n in names)} --",
                     "root inside keeps only Docker's default capabilities")


def set_no_new_privs() -> None:
    """prctl(PR_SET_NO_NEW_PRIVS): "execve(2) promises not to grant privileges to do anything that
    could not have been done without the execve(2) call" -- setuid binaries stop working."""
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, ctypes.c_ulong(1), 0, 0, 0), "prctl", "PR_SET_NO_NEW_PRIVS")
    trace.record("setpriv --no-new-privs", "--security-opt no-new-privileges")


class _SockFprog(ctypes.Structure):
    """struct sock_fprog (linux/filter.h): how many BPF instructions, and where they are."""
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


BPF_INSTRUCTION_SIZE = 8  # struct sock_filter: u16 code, u8 jt, u8 jf, u32 k


def seccomp_set_filter(program: bytes, why: str = "") -> None:
    """seccomp(2) SECCOMP_SET_MODE_FILTER: "The system calls allowed are defined by a pointer to a
    Berkeley Packet Filter (BPF) passed via args.  This argument is a pointer to a struct sock_fprog".

    "In order to use the SECCOMP_SET_MODE_FILTER operation, either the calling thread must have
    the CAP_SYS_ADMIN capability in its user namespace, or the thread must already have the
    no_new_privs bit set."  "If prctl(2) or seccomp(2) is allowed by the attached filter, further
    filters may be added"; all of them run on every call, and are kept across fork and execve.
    Made through prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog), the older door to the same
    operation, which needs no per-architecture syscall number.
    """
    instructions = len(program) // BPF_INSTRUCTION_SIZE
    code = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(instructions, ctypes.cast(code, ctypes.c_void_p))
    _check(_libc.prctl(PR_SET_SECCOMP, ctypes.c_ulong(SECCOMP_MODE_FILTER), ctypes.byref(fprog), 0, 0),
           "seccomp", f"SECCOMP_SET_MODE_FILTER, {instructions} BPF instructions")
    trace.record(f"# seccomp(SECCOMP_SET_MODE_FILTER, {instructions} BPF instructions) -- no shell command "
                 "does this; runc and Docker make the same call", why)


def set_identity(uid: int, gid: int, why: str = "") -> None:
    """setgroups(2), setgid(2), setuid(2): become `uid`:`gid`, with no supplementary groups.

    The order matters: "setuid() ... if the effective UID of the caller is
    root ... all of the related IDs are set", after which the process no
    longer has the privilege to change its groups -- so groups and gid first.
    """
    os.setgroups([gid])
    os.setgid(gid)
    os.setuid(uid)
    trace.record(f"setpriv --reuid={uid} --regid={gid} --clear-groups", why)


def chdir(path: str, why: str = "") -> None:
    os.chdir(path)
    trace.record(f"cd {path}", why)


def prctl(option: int, value: int | bytes, why: str = "") -> None:
    """prctl(2): operations on a process.

    PR_SET_CHILD_SUBREAPER: "A subreaper fulfills the role of init(1) for
    its descendant processes.  When a process becomes orphaned ... that
    process will be reparented to the nearest still living ancestor
    subreaper."  PR_SET_PDEATHSIG: "Set the parent-death signal of the
    calling process".  PR_SET_NAME: set the thread name shown by ps.
    """
    arg = ctypes.c_char_p(value) if isinstance(value, bytes) else ctypes.c_ulong(value)
    _check(_libc.prctl(option, arg, 0, 0, 0), "prctl", str(option))
    if why:
        trace.record(f"# prctl({option}, {value!r})", why)


def bring_loopback_up(why: str = "") -> None:
    """ioctl(SIOCSIFFLAGS): set IFF_UP on 'lo', as `ip link set lo up` does via netlink.

    A new network namespace starts with only a loopback device, and it is down.
    """
    import _socket  # the socket module's C core: socket.py itself costs a container start 3 ms to import
    import fcntl
    import struct

    SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        ifreq = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, ifreq))[1]
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))
    finally:
        s.close()
    trace.record("ip link set lo up", why)


def setxattr(path: str, name: str, value: bytes, why: str = "") -> None:
    """setxattr(2): set an extended attribute value.

    "Extended attributes are name:value pairs associated with inodes (files,
    directories, symbolic links, etc.)."  Names in the trusted.* namespace
    are visible to and settable by CAP_SYS_ADMIN only; overlayfs keeps its
    own marks there (trusted.overlay.opaque=y: an opaque directory).
    """
    try:
        os.setxattr(path, name, value, follow_symlinks=False)
    except OSError as e:
        raise KernelError("setxattr", e.errno, f"{name} on {path}") from None
    trace.record(f"setfattr -n {name} -v {value.decode(errors='replace')} {path}", why)


# -- resolving paths inside a container's root ---------------------------------------------


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def openat2(dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    """openat2(2): open a file, with control over how its path is resolved.

    "RESOLVE_IN_ROOT: Treat the directory referred to by dirfd as the root
    directory while resolving pathname.  Absolute symbolic links are
    interpreted relative to dirfd.  If a prefix component of pathname
    equates to dirfd, then an immediately following .. component likewise
    equates to dirfd (just as /.. is traditionally equivalent to /)."
    So a symlink an image planted (``etc -> /etc``) can never lead outside
    the container's tree: the kernel resolves it as the container would.
    """
    how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    fd = _libc.syscall(SYS_OPENAT2, dirfd, _b(path), ctypes.byref(how), ctypes.sizeof(how))
    return _check(fd, "openat2", f"{path} in the tree of fd {dirfd}")


# -- the last steps of confinement, just before execve ----------------------------------------


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


_LINUX_CAPABILITY_VERSION_3 = 0x20080522  # 64 capability bits, in two 32-bit halves


def set_capabilities(mask: int, names: list[str]) -> None:
    """capset(2) and prctl(PR_CAP_AMBIENT_CLEAR_ALL): this thread keeps exactly `mask`.

    capabilities(7): a thread has five sets.  The *bounding* set (cut by
    drop_bounding_capabilities) limits what any later execve(2) can grant;
    the *permitted* and *effective* sets are what the thread holds right now;
    the *inheritable* and *ambient* sets are what it could pass on across
    execve.  A process that joins a running container (``exec``) arrives with
    all of the host root's capabilities in its permitted and effective sets,
    so cutting the bounding set alone is not enough: "A thread may drop
    capabilities from its permitted set at any time" -- permitted and
    effective become `mask`, inheritable and ambient become empty, as Docker's.
    """
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    held = (_CapData * 2)()
    _check(_libc.capget(ctypes.byref(header), held), "capget", "self")
    mask &= held[0].permitted | held[1].permitted << 32  # a capability never held cannot be kept
    low, high = mask & 0xFFFFFFFF, mask >> 32
    data = (_CapData * 2)(_CapData(low, low, 0), _CapData(high, high, 0))
    _check(_libc.capset(ctypes.byref(header), data), "capset", f"{mask:#x}")
    _check(_libc.prctl(PR_CAP_AMBIENT, ctypes.c_ulong(PR_CAP_AMBIENT_CLEAR_ALL), 0, 0, 0), "prctl",
           "PR_CAP_AMBIENT_CLEAR_ALL")
    shown = ",".join("cap_" + n for n in names) or "none"
    trace.record(f"capsh --caps={shown}+ep --inh= --noamb --  # capset(2) + PR_CAP_AMBIENT_CLEAR_ALL",
                 "permitted and effective: the container's set; nothing inheritable or ambient")


def set_undumpable(why: str = "") -> None:
    """prctl(PR_SET_DUMPABLE, 0): "Processes that are not dumpable can not be attached via
    ptrace(2) PTRACE_ATTACH", and their /proc/PID files (exe, fd, mem, ...) belong to root and
    refuse a caller without CAP_SYS_PTRACE.  execve(2) of an ordinary program makes the process
    dumpable again, so only minidocker's own setup inside a container is hidden: its /proc/PID/exe
    is the host's python binary, which a container must never get hold of (CVE-2019-5736)."""
    _check(_libc.prctl(PR_SET_DUMPABLE, ctypes.c_ulong(0), 0, 0, 0), "prctl", "PR_SET_DUMPABLE, 0")
    trace.record("# prctl(PR_SET_DUMPABLE, 0)", why)


RLIMIT_NOFILE = 7  # <asm-generic/resource.h>: "one greater than the maximum file descriptor number"
RLIM_INFINITY = 2**64 - 1


class _Rlimit(ctypes.Structure):
    _fields_ = [("soft", ctypes.c_uint64), ("hard", ctypes.c_uint64)]


def get_rlimit(resource_id: int) -> tuple[int, int]:
    """getrlimit(2): (soft, hard) of this process; RLIM_INFINITY is "no limit"."""
    limit = _Rlimit()
    _check(_libc.prlimit(0, resource_id, None, ctypes.byref(limit)), "getrlimit", str(resource_id))
    return limit.soft, limit.hard


def set_rlimit(resource_id: int, name: str, soft: int, hard: int, why: str = "") -> None:
    """setrlimit(2): "The soft limit is the value that the kernel enforces for the corresponding
    resource.  The hard limit acts as a ceiling for the soft limit: an unprivileged process may set
    only its soft limit to a value in the range from 0 up to the hard limit, and (irreversibly)
    lower its hard limit.  A privileged process (CAP_SYS_RESOURCE) may make arbitrary changes."
    (Made through prlimit(2) of pid 0, this process: the same call, with 64-bit limits everywhere.)"""
    limit = _Rlimit(soft, hard)
    _check(_libc.prlimit(0, resource_id, ctypes.byref(limit), None), "setrlimit", f"{name}, {soft}:{hard}")
    trace.record(f"prlimit --pid $$ --{name}={soft}:{hard}", why)


def reset_signals(why: str = "") -> None:
    """Every signal back to its default action, and none blocked.

    signal(7): "A child created via fork(2) inherits a copy of its parent's
    signal dispositions.  During an execve(2), the dispositions of handled
    signals are reset to the default; the dispositions of ignored signals are
    left unchanged" -- and the signal mask is kept too.  Python ignores
    SIGPIPE and SIGXFSZ for itself, so without this every process in the
    container would ignore them: ``yes | head`` would never end.
    """
    import _signal  # signal.py's C core (see init.py)

    for number in range(1, _signal.NSIG):
        # Only an ignored signal survives execve, so only those need a sigaction call here (Python's
        # getsignal answers from its own table, which it read from the kernel when it started).
        if number not in (_signal.SIGKILL, _signal.SIGSTOP) and _signal.getsignal(number) == _signal.SIG_IGN:
            _signal.signal(number, _signal.SIG_DFL)
    _signal.pthread_sigmask(_signal.SIG_SETMASK, [])
    trace.record("# every ignored signal: SIG_DFL (sigaction), and an empty signal mask (sigprocmask)", why)


# -- bpf(2): the device filter of cgroup v2 ------------------------------------------------------

BPF_PROG_LOAD, BPF_PROG_ATTACH, BPF_PROG_QUERY = 5, 8, 16  # enum bpf_cmd
BPF_PROG_TYPE_CGROUP_DEVICE = 15  # enum bpf_prog_type
BPF_CGROUP_DEVICE = 6  # enum bpf_attach_type
BPF_F_ALLOW_MULTI = 2  # a program in a cgroup below runs as well as ours, never instead
_SYS_BPF = {"x86_64": 321, "aarch64": 280}


def _bpf(command: int, attr: ctypes.Array, call: str, detail: str) -> int:
    number = _SYS_BPF.get(os.uname().machine)
    if number is None:
        raise KernelError(call, errno.ENOSYS, f"{detail}: no bpf(2) number known for {os.uname().machine}")
    result = _libc.syscall(ctypes.c_long(number), ctypes.c_int(command), attr, ctypes.c_uint(len(attr)))
    return _check(result, call, detail)


def bpf_load_device_program(code: bytes, why: str = "") -> int:
    """bpf(BPF_PROG_LOAD): load an eBPF program of type BPF_PROG_TYPE_CGROUP_DEVICE; returns its fd.

    "Verify and load an eBPF program, returning a new file descriptor
    associated with the program."  The kernel's verifier first proves the
    program safe (it terminates, reads only its context); when it refuses, its
    log says why, and is quoted in the error.  The program lives as long as a
    file descriptor or an attachment refers to it.  `code`: the instructions,
    8 bytes each (see cgroups/devicefilter.py).
    """
    import struct

    count = len(code) // 8
    license = ctypes.create_string_buffer(b"GPL")  # the kernel asks every program for one
    instructions = ctypes.create_string_buffer(code, len(code))
    detail = f"BPF_PROG_LOAD, cgroup_device, {count} insns"

    def load(log) -> int:
        # union bpf_attr, the BPF_PROG_LOAD part: prog_type, insn_cnt, insns, license, log_level, log_size, log_buf
        attr = ctypes.create_string_buffer(struct.pack(
            "=IIQQIIQ", BPF_PROG_TYPE_CGROUP_DEVICE, count, ctypes.addressof(instructions),
            ctypes.addressof(license), 1 if log is not None else 0, len(log) if log is not None else 0,
            ctypes.addressof(log) if log is not None else 0), 48)
        return _bpf(BPF_PROG_LOAD, attr, "bpf", detail)

    try:
        fd = load(None)  # without the verifier's log: faster
    except KernelError:
        log = ctypes.create_string_buffer(65536)
        try:
            fd = load(log)  # again, to learn why
        except KernelError as e:
            verifier_says = log.value.decode(errors="replace").strip().replace("\n", "; ")
            raise KernelError("bpf", e.errno, f"{detail}; the verifier says: {verifier_says}"
                              if verifier_says else detail) from None
    trace.record(f"# bpf(BPF_PROG_LOAD, BPF_PROG_TYPE_CGROUP_DEVICE, {count} insns) -> fd {fd}", why)
    return fd


def bpf_attach_device_program(program_fd: int, cgroup_dir: str, why: str = "") -> None:
    """bpf(BPF_PROG_ATTACH, BPF_CGROUP_DEVICE): run the program on every device access from the cgroup.

    "Attach an eBPF program to a target_fd at the specified attach_type
    hook."  For a cgroup program target_fd is the cgroup v2 directory, opened.
    With BPF_F_ALLOW_MULTI, the programs of the cgroup and of all its ancestors
    run, and every one must allow: a child can only narrow.  The attachment
    holds the program until the cgroup is removed, so our fd can be closed.
    """
    import struct

    cgroup_fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        # union bpf_attr, the BPF_PROG_ATTACH part: target_fd, attach_bpf_fd, attach_type, attach_flags
        attr = ctypes.create_string_buffer(struct.pack("=IIII", cgroup_fd, program_fd, BPF_CGROUP_DEVICE,
                                                       BPF_F_ALLOW_MULTI), 16)
        _bpf(BPF_PROG_ATTACH, attr, "bpf", f"BPF_PROG_ATTACH, BPF_CGROUP_DEVICE, {cgroup_dir}")
    finally:
        os.close(cgroup_fd)
    trace.record(f"# bpf(BPF_PROG_ATTACH, BPF_CGROUP_DEVICE, fd {program_fd}) on {cgroup_dir}", why)


def bpf_device_programs(cgroup_dir: str) -> list[int]:
    """bpf(BPF_PROG_QUERY, BPF_CGROUP_DEVICE): the IDs of the device programs attached to a cgroup v2 directory.

    "Obtain information about eBPF programs associated with the specified
    attach_type hook" -- what ``bpftool cgroup list DIR`` prints.
    """
    import struct

    ids = (ctypes.c_uint32 * 64)()  # the kernel allows at most 64 programs per hook
    cgroup_fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        # target_fd, attach_type, query_flags, attach_flags, prog_ids, prog_cnt; zeros up to 64 bytes, for the
        # later fields that some kernels write back whatever size is passed
        attr = ctypes.create_string_buffer(struct.pack("=IIIIQI", cgroup_fd, BPF_CGROUP_DEVICE, 0, 0,
                                                       ctypes.addressof(ids), len(ids)), 64)
        _bpf(BPF_PROG_QUERY, attr, "bpf", f"BPF_PROG_QUERY, BPF_CGROUP_DEVICE, {cgroup_dir}")
    finally:
        os.close(cgroup_fd)
    count = struct.unpack_from("=I", attr, 24)[0]
    trace.record(f"bpftool cgroup list {cgroup_dir}", "which device programs the cgroup has")
    return list(ids[:count])
