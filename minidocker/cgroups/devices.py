"""Which devices a container may open: the devices cgroup (chapter 1).

A device node such as ``/dev/sda`` is nothing but a name with a type (``c``
for a character device, ``b`` for a block device) and a pair of numbers
(major:minor) that pick a driver in the *host's* kernel.  Anyone allowed to
call mknod(2) -- container root has CAP_MKNOD, as in Docker -- can make a name
for any number: ``mknod /tmp/disk b 8 0`` is the host's first disk, from
inside any mount namespace.  Namespaces do not help here; there is only one
set of drivers.

So the kernel asks the device controller of the opener's cgroup before every
open(2) (and mknod(2)) of a device node: is type T, major:minor, for access A
allowed?  A is ``r`` (read), ``w`` (write) or ``m`` (mknod).  If not, open
fails with EPERM ("Operation not permitted") whatever the file's mode says.

Docker's answer is an allow-list (moby's daemon/pkg/oci/defaults.go, plus the
rules runc always adds): everything is denied, then

* making any node is allowed (``c *:* m``, ``b *:* m``) -- harmless, since
  opening it is what counts;
* reading and writing only the few devices every program expects: null, zero,
  full, random, urandom, tty, console, ptmx and the pseudo-terminals under
  /dev/pts, and /dev/net/tun.

``--device /dev/fuse`` adds one rule (and the node); ``--privileged`` allows
everything.  The two cgroup versions enforce the same list differently:

* v1 (:mod:`.v1`) has a ``devices`` controller: write ``a`` to
  ``devices.deny``, then each rule to ``devices.allow``; ``devices.list`` reads
  them back.  A child cgroup can only have a subset of its parent's rules.
* v2 has no such files: the rules become a tiny eBPF program
  (:mod:`.devicefilter`) attached to the cgroup, which the kernel runs on each
  device access and which returns 1 (allow) or 0 (deny).
"""

import os
import stat

from minidocker.errors import MinidockerError

ANY = None  # a major or minor number of "*": every number


class Rule:
    """One line of an allow-list: type ("c", "b", or "a" = all), major, minor (ANY = "*"), access ("rwm")."""

    def __init__(self, kind: str, major: int | None, minor: int | None, access: str, what: str = ""):
        self.kind, self.major, self.minor, self.access = kind, major, minor, access
        self.what = what  # what it is for, in words: "/dev/null"

    def __str__(self) -> str:
        """The rule as v1's devices.allow and devices.list write it: "c 1:3 rwm", "b *:* m", "a *:* rwm"."""
        if self.kind == "a":
            return "a *:* rwm"
        major, minor = ("*" if n is ANY else str(n) for n in (self.major, self.minor))
        return f"{self.kind} {major}:{minor} {self.access}"

    def __repr__(self) -> str:
        return f"<Rule {self}>"

    def __eq__(self, other) -> bool:
        return isinstance(other, Rule) and str(self) == str(other)

    def allows(self, kind: str, major: int, minor: int, access: str) -> bool:
        """Does this rule allow `access` (one or more of r, w, m) to the device kind major:minor?"""
        return (self.kind in ("a", kind) and self.major in (ANY, major) and self.minor in (ANY, minor)
                and all(a in self.access for a in access))


# Docker's default allow-list (everything else is denied).  moby's list also ends with
# "deny c 10:229 rwm" (/dev/fuse): in a list that starts by denying everything that changes
# nothing beyond taking back the rules above it, so it is left out here.
DEFAULT_RULES = [
    Rule("c", ANY, ANY, "m", "mknod of any character device"),  # a name is harmless, opening it is not
    Rule("c", 1, 3, "rwm", "/dev/null"),
    Rule("c", 1, 5, "rwm", "/dev/zero"),
    Rule("c", 1, 7, "rwm", "/dev/full"),
    Rule("c", 1, 8, "rwm", "/dev/random"),
    Rule("c", 1, 9, "rwm", "/dev/urandom"),
    Rule("c", 5, 0, "rwm", "/dev/tty"),  # the process's own terminal
    Rule("c", 5, 1, "rwm", "/dev/console"),
    Rule("c", 5, 2, "rwm", "/dev/ptmx"),  # opening it makes a new pseudo-terminal ...
    Rule("c", 136, ANY, "rwm", "/dev/pts/*"),  # ... whose other end is /dev/pts/N
    Rule("c", 10, 200, "rwm", "/dev/net/tun"),  # (runc keeps it for Docker's sake)
    Rule("b", ANY, ANY, "m", "mknod of any block device"),
]
ALLOW_ALL = [Rule("a", ANY, ANY, "rwm", "every device (--privileged)")]


def allowed(rules: list[Rule], kind: str, major: int, minor: int, access: str) -> bool:
    """The kernel's decision, in Python: deny unless some rule allows (the model the tests hold the kernel to)."""
    return any(rule.allows(kind, major, minor, access) for rule in rules)


# -- --device HOST[:CONTAINER[:PERMS]] ---------------------------------------------------------


def valid_permissions(text: str) -> bool:
    """Some of r, w, m, each at most once (Docker's validDeviceMode)."""
    return bool(text) and all(c in "rwm" for c in text) and len(set(text)) == len(text)


def parse_device_flag(value: str) -> dict:
    """--device /dev/fuse, /dev/loop0:/dev/xvdc, /dev/loop0:r, /dev/loop0:/dev/xvdc:r -> Docker's HostConfig entry."""
    parts = value.split(":")
    if len(parts) > 3 or not parts[0]:
        raise MinidockerError(f"bad format for path: {value}")
    host, container, permissions = parts[0], parts[0], "rwm"
    if len(parts) == 2:
        if valid_permissions(parts[1]):
            permissions = parts[1]
        else:
            container = parts[1]
    elif len(parts) == 3:
        container, permissions = parts[1], parts[2]
        if not valid_permissions(permissions):
            raise MinidockerError(f"bad mode specified: {permissions}")
    if not container.startswith("/"):
        raise MinidockerError(f"{container} is not an absolute path")
    return {"PathOnHost": host, "PathInContainer": container, "CgroupPermissions": permissions}


class HostDevice:
    """A device node of the host, to be made at `path` inside the container and allowed `access`."""

    def __init__(self, host_path: str, path: str, kind: str, major: int, minor: int, mode: int, uid: int, gid: int,
                 access: str):
        self.host_path, self.path, self.kind, self.major, self.minor = host_path, path, kind, major, minor
        self.mode, self.uid, self.gid, self.access = mode, uid, gid, access

    def rule(self) -> Rule:
        return Rule(self.kind, self.major, self.minor, self.access, f"--device {self.path}")


def _node(path: str) -> tuple[str, os.stat_result] | None:
    """("c" or "b", its stat) if `path` (a symlink is followed) is a device node, else None."""
    st = os.stat(path)
    if stat.S_ISCHR(st.st_mode):
        return "c", st
    if stat.S_ISBLK(st.st_mode):
        return "b", st
    return None


def host_devices(mapping: dict) -> list[HostDevice]:
    """The nodes one HostConfig.Devices entry names: one device, or every device below a directory (as Docker).

    Raises Docker's "error gathering device information" when the host path is missing or holds none.
    """
    host, inside, access = mapping["PathOnHost"], mapping["PathInContainer"], mapping["CgroupPermissions"]
    problem = "not a device node"
    found: list[tuple[str, str]] = []  # (host path, path in the container)
    try:
        if _node(host):
            found.append((host, inside))
        elif os.path.isdir(host):
            for directory, _dirs, names in os.walk(host):
                for name in sorted(names):
                    path = os.path.join(directory, name)
                    try:
                        if _node(path):
                            found.append((path, inside + path[len(host):]))
                    except OSError:
                        pass  # (Docker too skips what it cannot read below a directory)
    except OSError as e:
        problem = os.strerror(e.errno).lower()
    if not found:
        raise MinidockerError(f'error gathering device information while adding custom device "{host}": {problem}')
    devices = []
    for path, target in found:
        kind, st = _node(path)
        devices.append(HostDevice(path, target, kind, os.major(st.st_rdev), os.minor(st.st_rdev), stat.S_IMODE(st.st_mode),
                                  st.st_uid, st.st_gid, access))
    return devices


def custom_devices(host_config: dict) -> list[HostDevice]:
    """Every node the container's /dev gets beyond the defaults: its --device flags', and with
    --privileged every device the host has (as Docker: its cgroup allows them all anyway)."""
    found = [device for mapping in host_config.get("Devices") or [] for device in host_devices(mapping)]
    if host_config.get("Privileged"):
        found += _every_host_device()
    return found


# Below /dev, what --privileged does not copy (as runc's HostDevices): the host's own terminals,
# which the container has its own instance of (devpts, its console), and what holds no devices.
NOT_COPIED = {"pts", "shm", "mqueue", "fd", ".lxc", ".lxd-mounts", ".udev", "console", "ptmx"}  # ptmx: pts/ptmx


def _every_host_device() -> list[HostDevice]:
    devices = []
    for directory, dirs, names in os.walk("/dev"):
        dirs[:] = [d for d in dirs if d not in NOT_COPIED]
        for name in sorted(names):
            path = os.path.join(directory, name)
            try:
                node = None if name in NOT_COPIED else _node(path) if not os.path.islink(path) else None
            except OSError:
                continue  # gone meanwhile, or unreadable: not ours to copy
            if node:
                kind, st = node
                devices.append(HostDevice(path, path, kind, os.major(st.st_rdev), os.minor(st.st_rdev),
                                          stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, "rwm"))
    return devices


def rules_for(host_config: dict) -> list[Rule]:
    """The container's allow-list: everything with --privileged, else Docker's defaults plus each --device."""
    if host_config.get("Privileged"):
        return ALLOW_ALL
    return DEFAULT_RULES + [device.rule() for device in custom_devices(host_config)]
