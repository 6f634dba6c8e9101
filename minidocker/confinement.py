"""Confinement: the last steps before a container's command starts (chapter 1).

There are two ways into a container, and both must end confined the same way:
its first process (:mod:`minidocker.launch`, ``run``/``start``) and every
process that joins it later (:mod:`minidocker.enter`, ``exec``).  Joining a
container's namespaces and cgroup is not enough: a process that ``setns``-es
in from the host still holds everything the host's root holds -- every
capability, no seccomp filter, the host's resource limits, the signals Python
ignores.  With every capability, an ``exec``'d shell could remount /proc/sys
read-write or unmount a masked path, and the change would stay for the whole
container.  So just before ``execve`` both paths call :func:`confine`, which
takes, in this order:

    rlimits        Docker's open-files limit, within what the host allows
    bounding set   only the container's capabilities can ever be gained again
    seccomp        the system calls it may make (seccomp.py); installing needs CAP_SYS_ADMIN, still held
    identity       setgroups, setgid, setuid (-u)
    capsets        permitted = effective = the container's set; nothing inheritable or ambient
    no_new_privs   with --security-opt no-new-privileges

(and launch.exec_command, the execve itself, first puts every ignored signal
back to its default action, with none blocked: Python ignores SIGPIPE and
SIGXFSZ, and ignored signals -- unlike handled ones -- survive execve.)

The order matters: changing identity needs CAP_SETUID and CAP_SETGID, which
the container's set may lack, so the capsets are cut after it; and the
bounding set must be cut while CAP_SETPCAP is still held.
"""

from minidocker import capabilities, kernel, seccomp

# Docker's open-files limit: since Docker 25 neither dockerd's nor containerd's systemd unit raises it,
# so a container gets systemd's default, soft 1024 and hard 524288.  Raising a hard limit needs
# CAP_SYS_RESOURCE, so on a host whose own hard limit is lower, that one is the ceiling.
NOFILE_SOFT, NOFILE_HARD = 1024, 524288


def container_capabilities(host_config: dict, privileged_exec: bool = False) -> set[str]:
    """The capabilities the container's processes keep: its --cap-add/--cap-drop/--privileged,
    or every one for ``exec --privileged`` (as Docker's)."""
    return capabilities.resolve(host_config.get("CapAdd") or [], host_config.get("CapDrop") or [],
                                host_config.get("Privileged", False) or privileged_exec)


def confine(host_config: dict, uid: int, gid: int, seccomp_program: bytes | None,
            privileged_exec: bool = False) -> None:
    """Confine the calling process (inside the container, about to execve) as the container is.

    `seccomp_program` is the container's filter, compiled on the host (seccomp.program_for), or None.
    """
    _limit_open_files()
    keep = container_capabilities(host_config, privileged_exec)
    capabilities.limit_to(keep)
    seccomp.install(seccomp_program)  # every call from here to the command's own must pass the filter
    kernel.set_identity(uid, gid, why="drop the host's groups; -u picks the user")
    # setuid(2) to a user other than root has already emptied the permitted and effective sets.
    capabilities.hold_only(keep if uid == 0 else set())
    if "no-new-privileges" in host_config.get("SecurityOpt", []):
        kernel.set_no_new_privs()


def _limit_open_files() -> None:
    _soft, host_hard = kernel.get_rlimit(kernel.RLIMIT_NOFILE)
    hard = min(NOFILE_HARD, host_hard)  # (RLIM_INFINITY is the largest number of all)
    kernel.set_rlimit(kernel.RLIMIT_NOFILE, "nofile", min(NOFILE_SOFT, hard), hard,
                      why="Docker's open-files limit (soft 1024), not the one minidocker was started with")
