"""Capabilities: root's power, cut into pieces (chapter 1, the seed's "processes and capabilities").

capabilities(7): "Linux divides the privileges traditionally associated with
superuser into distinct units, known as capabilities, which can be
independently enabled and disabled."  A PID namespace hides the host's
processes, but root inside a container is still root -- unless it lacks the
capabilities that matter.  Like Docker, minidocker removes every capability
but a short default list from the *bounding set* just before the command
starts; "the capability bounding set acts as a limiting superset for the
capabilities that a thread can gain during an execve(2)", so the command and
everything it runs can never get them back.  The container's root can still
chown files or bind port 80; it cannot mount filesystems, configure the
network, load kernel modules or change the clock.
"""

from minidocker import kernel
from minidocker.errors import MinidockerError

# linux/capability.h, by number.
NAMES = ["CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
         "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
         "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
         "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE",
         "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM",
         "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE"]

# Docker's default set (moby's oci/caps/defaults.go).
DEFAULT = {"CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID", "SETFCAP",
           "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE"}


def normalize(name: str) -> str:
    """'net_admin', 'CAP_NET_ADMIN' -> 'NET_ADMIN'; 'all' -> 'ALL'."""
    bare = name.upper().removeprefix("CAP_")
    if bare != "ALL" and bare not in NAMES:
        raise MinidockerError(f"unknown capability: {name!r}")
    return bare


def resolve(cap_add: list[str], cap_drop: list[str], privileged: bool) -> set[str]:
    """The capabilities a container keeps: Docker's defaults, then --cap-drop, then --cap-add."""
    if privileged:
        return set(NAMES)
    keep = set(DEFAULT)
    dropped = {normalize(c) for c in cap_drop}
    keep = set() if "ALL" in dropped else keep - dropped
    added = {normalize(c) for c in cap_add}
    return set(NAMES) if "ALL" in added else keep | added


def limit_to(keep: set[str]) -> None:
    """Drop every other capability from the bounding set (the kernel may know more than NAMES)."""
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    drop = [number for number in range(last + 1) if number >= len(NAMES) or NAMES[number] not in keep]
    kernel.drop_bounding_capabilities(drop, [NAMES[n].lower() if n < len(NAMES) else str(n) for n in drop])


def mask_of(names: set[str]) -> int:
    """The capability set as the kernel's bit mask (as /proc/PID/status shows it: CapEff, ...)."""
    return sum(1 << NAMES.index(name) for name in names)


def hold_only(keep: set[str]) -> None:
    """Make `keep` the permitted and effective sets, and empty the inheritable and ambient ones.

    The bounding set only limits what a later execve(2) can grant; a process
    that already holds a capability keeps it until it drops it here.
    """
    kernel.set_capabilities(mask_of(keep), sorted(name.lower() for name in keep))
